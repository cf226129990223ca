"""Process entry points shared by the nodes: init rclpy, build the node, spin, and turn configuration
errors into one clear line and exit code 2 instead of a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException

from edge_vision.core.errors import EdgeVisionError
from edge_vision.ros.stage_node import StageNode


def run_node(factory: Callable[[], StageNode], args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    node: StageNode | None = None
    try:
        node = factory()
        node.start()
        rclpy.spin_until_future_complete(node, node.done)
        return 0
    except EdgeVisionError as exc:
        print(f"edge_vision: error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    finally:
        if node is not None:
            node.close()
            node.get_logger().info(f"stopped: {node.report()}")
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
