"""In-process plumbing for composed pipelines: bounded hand-off queues with one worker thread per stage,
so stages overlap (decode frame N+1 while inferring frame N) and items pass by reference.

ONNX Runtime, FFmpeg and OpenCV release the GIL in their heavy loops, which is what lets threads overlap.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
_STOP = object()


class LocalLink(Generic[T]):
    """Deliver items to ``handler`` on a dedicated thread through a bounded queue.

    drop_when_full=False blocks the producer (lossless, for files); True drops the OLDEST queued item
    (live cameras: fresh frames matter more than old ones) and counts it in ``dropped``.
    """

    def __init__(
        self,
        name: str,
        handler: Callable[[T], None],
        *,
        maxsize: int = 4,
        drop_when_full: bool = False,
        on_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self.name = name
        self.handler = handler
        self.drop_when_full = drop_when_full
        self.dropped = 0
        self.errors = 0
        self._queue: queue.Queue[object] = queue.Queue(maxsize=maxsize)
        self._on_error = on_error
        self._thread = threading.Thread(target=self._run, name=f"link-{name}", daemon=True)
        self._thread.start()

    def put(self, item: T) -> None:
        if not self.drop_when_full:
            self._queue.put(item)
            return
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self.handler(item)  # type: ignore[arg-type]
            except Exception as exc:  # one bad item must not kill the stage thread
                self.errors += 1
                log.exception("stage %s failed on an item", self.name)
                if self._on_error is not None:
                    self._on_error(self.name, exc)

    def close(self, timeout: float | None = None) -> None:
        """Process what is queued, then stop the worker thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
