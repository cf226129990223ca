"""Camera node: decodes a source (file, stream) and emits frames on ``image_raw``."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Any

from rclpy.duration import Duration
from sensor_msgs.msg import Image

from edge_vision.core.interfaces import Source
from edge_vision.core.packet import FramePacket, decoded_packets
from edge_vision.core.stages import build_source
from edge_vision.ros.conversions import frame_to_image
from edge_vision.ros.runner import run_node
from edge_vision.ros.stage_node import Output, StageNode


class CameraNode(StageNode):
    section = "camera"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source: Source = build_source(self.params)
        self.image_out: Output[FramePacket] = self.output("image_raw", Image, lambda p: frame_to_image(p.frame))
        self.frames_emitted = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def frames_decoded(self) -> int:
        return int(getattr(self.source, "frames_decoded", self.frames_emitted))

    @property
    def frames_skipped(self) -> int:
        return int(getattr(self.source, "frames_skipped", 0))

    def run(self) -> None:
        """Decode until the source ends or ``stop``; blocking (the container calls it on its main thread)."""
        try:
            for packet in decoded_packets(self.source):
                if self._stop.is_set():
                    break
                self.statistics.add("decode", packet.timings_ms["decode"])
                self.statistics.frames_decoded = self.frames_decoded
                self.statistics.frames_skipped = self.frames_skipped
                self.image_out.emit(packet)
                self.frames_emitted += 1
        except Exception as exc:
            self.error = exc
            self.get_logger().error(f"source failed: {exc}")
            raise
        finally:
            self.get_logger().info(f"source finished after {self.frames_emitted} frames")

    def _wait_for_subscribers(self, timeout: float = 30.0) -> None:
        """Replays and regression runs must not lose their first frames to DDS discovery."""
        wanted = self.params["wait_for_subscribers"]
        deadline = time.monotonic() + timeout
        while self.image_out.publisher.get_subscription_count() < wanted and not self._stop.is_set():
            if time.monotonic() > deadline:
                self.get_logger().warning(f"starting with fewer than {wanted} subscribers after {timeout:.0f} s")
                return
            time.sleep(0.02)
        if wanted:
            # The writer sees a match slightly before the reader side has matched it back; a sample sent in
            # between is discarded by the reader, so give discovery a moment to settle.
            time.sleep(0.5)

    def start(self) -> None:
        def produce() -> None:
            self._wait_for_subscribers()
            with contextlib.suppress(Exception):  # already logged and kept in self.error
                self.run()
            # Give reliable subscribers the last frames before a standalone process exits.
            self.image_out.publisher.wait_for_all_acked(Duration(seconds=5))
            self.done.set_result(self.error is None)

        self._thread = threading.Thread(target=produce, name="camera-decode", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.source.close()


def main(args: list[str] | None = None) -> None:
    sys.exit(run_node(CameraNode, args))


if __name__ == "__main__":
    main()
