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
        on_drop: Callable[[T], None] | None = None,
    ) -> None:
        self.name = name
        self._on_drop = on_drop
        self.handler = handler
        self.drop_when_full = drop_when_full
        self.dropped = 0
        self.errors = 0
        self._queue: queue.Queue[object] = queue.Queue(maxsize=maxsize)
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
                    old = self._queue.get_nowait()
                except queue.Empty:
                    continue
                self.dropped += 1
                if self._on_drop is not None:
                    self._on_drop(old)  # type: ignore[arg-type]

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                self.handler(item)  # type: ignore[arg-type]
            except Exception:  # one bad item must not kill the stage thread
                self.errors += 1
                log.exception("stage %s failed on an item", self.name)

    def close(self, timeout: float | None = None) -> None:
        """Process what is queued, then stop the worker thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


class DirectLink(Generic[T]):
    """Call ``handler`` on the producer's thread: for cheap stages, where a queue hop costs more than it saves."""

    def __init__(self, handler: Callable[[T], None]) -> None:
        self.handler = handler
        self.dropped = 0

    def put(self, item: T) -> None:
        self.handler(item)

    def close(self, timeout: float | None = None) -> None:
        """Nothing queued, nothing to wait for."""


class ParallelStage(Generic[T]):
    """Run ``process`` on N worker threads, then ``emit`` results in arrival order.

    Inference on a small CPU scales better as N single-threaded sessions on N frames than as one session with
    N threads (YOLOX-nano, 2 cores: ~170 vs ~120 fps), but trackers need frames in order: results wait in a
    small reorder buffer until every earlier frame has been emitted.
    """

    def __init__(
        self,
        name: str,
        process: Callable[[int, T], T],
        emit: Callable[[T], None],
        *,
        workers: int = 1,
        maxsize: int = 4,
        drop_when_full: bool = False,
    ) -> None:
        self.name = name
        self._process = process
        self._emit = emit
        self._done: dict[int, T | None] = {}
        self._next_in = 0
        self._next_out = 0
        self._lock = threading.Lock()
        self._ticket_lock = threading.Lock()
        self.errors = 0
        # Dispatch happens on the producer's thread (no extra hop); a full worker queue drops its oldest frame
        # when drop_when_full, and the dropped ticket is released so later frames are not held back.
        self._links = [
            LocalLink(
                f"{name}-{i}",
                self._worker(i),
                maxsize=maxsize,
                drop_when_full=drop_when_full,
                on_drop=self._release,
            )
            for i in range(workers)
        ]

    @property
    def dropped(self) -> int:
        return sum(link.dropped for link in self._links)

    def put(self, item: T) -> None:
        with self._ticket_lock:
            ticket = self._next_in
            self._next_in += 1
        # Round robin keeps each worker's queue short and the reorder buffer at most ``workers`` deep.
        self._links[ticket % len(self._links)].put((ticket, item))

    def _release(self, job: tuple[int, T]) -> None:
        self._finish(job[0], None)

    def _finish(self, ticket: int, result: T | None) -> None:
        with self._lock:
            self._done[ticket] = result
            while self._next_out in self._done:
                ready = self._done.pop(self._next_out)
                self._next_out += 1
                if ready is not None:
                    self._emit(ready)

    def _worker(self, index: int) -> Callable[[tuple[int, T]], None]:
        def run(job: tuple[int, T]) -> None:
            ticket, item = job
            result: T | None = None
            try:
                result = self._process(index, item)
            except Exception:
                self.errors += 1
                log.exception("stage %s failed on an item", self.name)
            self._finish(ticket, result)

        return run

    def close(self, timeout: float | None = None) -> None:
        for link in self._links:
            link.close(timeout)
