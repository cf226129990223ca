"""``Edge``: the bounded queue between two stages, with its back-pressure policy.

- ``block``: the producer waits for room (lossless: files, replays, anything after the detector).
- ``drop_oldest``: the oldest queued item is dropped to make room (live cameras: fresh frames matter most;
  GStreamer's ``leaky=downstream``).
- ``drop_newest``: the new item is dropped (keeps a steady cadence of already-queued work).

Every drop is counted at once in the graph's ``Health`` under the edge's name, so drops show on ``stats`` and
``/diagnostics`` while they happen.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from edge_vision.core.errors import ConfigError

T = TypeVar("T")

POLICIES = ("block", "drop_oldest", "drop_newest")


class Closed(Exception):
    """``get`` on an edge that is closed and empty: the producer side has finished."""


class Edge(Generic[T]):
    def __init__(
        self,
        name: str,
        *,
        maxsize: int = 4,
        policy: str = "block",
        on_drop: Callable[[T], None] | None = None,
    ) -> None:
        if policy not in POLICIES:
            raise ConfigError(f"edge {name}: policy must be one of {list(POLICIES)}, got {policy!r}")
        if maxsize < 1:
            raise ConfigError(f"edge {name}: queue size must be >= 1, got {maxsize}")
        self.name = name
        self.maxsize = maxsize
        self.policy = policy
        self._on_drop = on_drop
        self._items: deque[T] = deque()
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._closed = False
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Queue ``item`` under the edge's policy. True when it was queued; False when it was dropped
        (``drop_newest``) or the edge is closed."""
        dropped: T | None = None
        with self._lock:
            if self._closed:
                return False
            if len(self._items) >= self.maxsize:
                if self.policy == "block":
                    while len(self._items) >= self.maxsize and not self._closed:
                        self._not_full.wait()
                    if self._closed:
                        return False
                elif self.policy == "drop_oldest":
                    dropped = self._items.popleft()
                    self.dropped += 1
                else:
                    self.dropped += 1
                    dropped = item
            if dropped is not item:
                self._items.append(item)
                self._not_empty.notify()
        if dropped is not None and self._on_drop is not None:
            self._on_drop(dropped)
        return dropped is not item

    def get(self) -> T:
        """The next item; blocks while empty; raises ``Closed`` once closed and drained."""
        with self._lock:
            while not self._items:
                if self._closed:
                    raise Closed(self.name)
                self._not_empty.wait()
            item = self._items.popleft()
            self._not_full.notify()
            return item

    def prune(self, select: Callable[[list[T]], list[T]]) -> list[T]:
        """Remove the queued items that ``select`` picks from the queue's items (oldest first); returns them
        (the lag guard skipping to the newest frame). Not counted here: the caller says why they went."""
        with self._lock:
            gone = select(list(self._items))
            if gone:
                ids = {id(item) for item in gone}
                self._items = deque(item for item in self._items if id(item) not in ids)
                self._not_full.notify_all()
        return gone

    def close(self) -> None:
        """No more items: consumers drain what is queued, then see ``Closed``; blocked producers return."""
        with self._lock:
            self._closed = True
            self._not_empty.notify_all()
            self._not_full.notify_all()

    @property
    def depth(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed
