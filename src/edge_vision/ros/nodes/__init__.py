"""One node per pipeline stage. Each runs alone (``ros2 run edge_vision <stage>_node``) or composed."""
