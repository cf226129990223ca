"""ROS 2 nodes: thin translators between ROS messages and the core stages. The only place rclpy is used."""
