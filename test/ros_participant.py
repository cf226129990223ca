"""``Participant``: a ROS participant of a test (its own context and node), spun on a background thread, so a
test can listen and publish beside the pipeline it drives. The test files subclass it for what they collect."""

from __future__ import annotations

import threading
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor


class Participant:
    def __init__(self, name: str) -> None:
        self.context = Context()
        rclpy.init(args=[], context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin(self) -> None:
        """Start spinning; call once the subclass's own state exists (callbacks may come at once)."""
        self._thread = threading.Thread(target=self.executor.spin, name=f"test-{self.node.get_name()}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.executor.shutdown()
        self._thread.join(5)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def diagnostic_values(status: Any) -> dict[str, str]:
    """A DiagnosticStatus's key/value pairs as a dict."""
    return {kv.key: kv.value for kv in status.values}
