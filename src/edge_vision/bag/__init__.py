"""rosbag2 bags without a ROS install: the type store (``types``), writing and reading (``io``), and a bag of
``image_raw`` made from a video (``video``). Nothing here imports rclpy; the recorder and the player that talk
to a running pipeline are ``edge_vision.ros.record`` and ``edge_vision.ros.replay``."""
