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
        self._links = [
            LocalLink(f"{name}-{i}", self._worker(i), maxsize=maxsize, drop_when_full=False) for i in range(workers)
        ]
        self._intake = LocalLink(f"{name}-intake", self._dispatch, maxsize=maxsize, drop_when_full=drop_when_full)

    @property
    def dropped(self) -> int:
        return self._intake.dropped

    def put(self, item: T) -> None:
        self._intake.put(item)

    def _dispatch(self, item: T) -> None:
        ticket = self._next_in
        self._next_in += 1
        # Round robin keeps each worker's queue short and the reorder buffer at most ``workers`` deep.
        self._links[ticket % len(self._links)].put((ticket, item))

    def _worker(self, index: int) -> Callable[[tuple[int, T]], None]:
        def run(job: tuple[int, T]) -> None:
            ticket, item = job
            result: T | None = None
            try:
                result = self._process(index, item)
            except Exception:
                self.errors += 1
                log.exception("stage %s failed on an item", self.name)
            with self._lock:
                self._done[ticket] = result
                while self._next_out in self._done:
                    ready = self._done.pop(self._next_out)
                    self._next_out += 1
                    if ready is not None:
                        self._emit(ready)

        return run

    def close(self, timeout: float | None = None) -> None:
        self._intake.close(timeout)
        for link in self._links:
            link.close(timeout)
