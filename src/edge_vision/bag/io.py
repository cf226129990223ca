"""Writing and reading rosbag2 bags (mcap or sqlite3) with ``rosbags``: serialized CDR in, serialized CDR out.

Messages are stored exactly as they travel on DDS (the recorder subscribes raw, the player publishes raw), so a
replay carries the recorded header stamps byte for byte.
"""

from __future__ import annotations

import struct
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rosbags.interfaces import Connection, Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer, WriterError

from edge_vision.bag.types import BagError, check_type, typestore

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
_NO_TIME = QosTime(sec=0, nsec=0)


def qos(*, reliable: bool = True, latched: bool = False, depth: int = 10) -> Qos:
    """A QoS profile as rosbag2 stores it per connection (``ros2 bag play`` and ``replay`` republish with it)."""
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=depth,
        reliability=QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
        durability=QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE,
        deadline=_NO_TIME,
        lifespan=_NO_TIME,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=_NO_TIME,
        avoid_ros_namespace_conventions=False,
    )


class BagWriter:
    """One bag being written. ``add`` a topic once (its type from the type store), then ``write`` serialized
    messages; ``close`` finalises it (an mcap without its footer or a sqlite3 bag without metadata.yaml is not
    readable by rosbag2). Thread-safe: subscription callbacks of several threads may write."""

    def __init__(self, path: str | Path, storage: str = "mcap") -> None:
        if storage not in STORAGES:
            raise BagError(f"bag storage must be one of {sorted(STORAGES)}, got {storage!r}")
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"bag {self.path} already exists: rosbag2 never writes into an existing bag")
        self.storage = storage
        self.counts: Counter[str] = Counter()
        self._connections: dict[str, Connection] = {}
        self._lock = threading.Lock()
        self._writer = Writer(self.path, version=9, storage_plugin=STORAGES[storage])
        try:
            self._writer.open()
        except (WriterError, OSError) as exc:
            raise BagError(f"cannot create bag {self.path}: {exc}") from exc
        self._open = True

    def add(self, topic: str, msgtype: str, offered: Sequence[Qos] = ()) -> None:
        msgtype = check_type(msgtype)
        with self._lock:
            if topic in self._connections:
                if self._connections[topic].msgtype != msgtype:
                    raise BagError(f"{self.path}: topic {topic} is {self._connections[topic].msgtype}, not {msgtype}")
                return
            self._connections[topic] = self._writer.add_connection(
                topic, msgtype, typestore=typestore(), offered_qos_profiles=list(offered) or [qos()]
            )

    def write(self, topic: str, stamp_ns: int, data: bytes | memoryview) -> None:
        with self._lock:
            if not self._open:
                return  # closed while a late callback ran: the bag is final
            connection = self._connections.get(topic)
            if connection is None:
                raise BagError(f"{self.path}: topic {topic} was not added before writing to it")
            self._writer.write(connection, stamp_ns, data)
            self.counts[topic] += 1

    def close(self) -> None:
        with self._lock:
            if self._open:
                self._open = False
                self._writer.close()

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class BagTopic:
    name: str
    msgtype: str
    count: int
    latched: bool  # recorded from a transient-local publisher (label_info): republish latched
    digest: str  # RIHS01 hash of the type definition


@dataclass(frozen=True, slots=True)
class BagMessage:
    topic: str
    msgtype: str
    stamp_ns: int  # the bag's timestamp (receive time when recorded; media time from make-bag)
    data: bytes  # serialized CDR, as published


class BagReader:
    """A bag opened for reading (either storage, detected from its metadata)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"bag {self.path} does not exist")
        self._reader = Reader(self.path)
        try:
            self._reader.open()
        except (ReaderError, OSError) as exc:
            raise BagError(f"cannot read bag {self.path}: {exc}") from exc

    @property
    def topics(self) -> dict[str, BagTopic]:
        found: dict[str, BagTopic] = {}
        for connection in self._reader.connections:
            profiles = getattr(connection.ext, "offered_qos_profiles", [])
            latched = any(p.durability == QosDurability.TRANSIENT_LOCAL for p in profiles)
            previous = found.get(connection.topic)
            count = connection.msgcount + (previous.count if previous else 0)
            found[connection.topic] = BagTopic(connection.topic, connection.msgtype, count, latched, connection.digest)
        return found

    @property
    def start_ns(self) -> int:
        return int(self._reader.start_time)

    @property
    def duration_ns(self) -> int:
        return int(self._reader.duration)

    def messages(self, topics: Sequence[str] | None = None) -> Iterator[BagMessage]:
        """Every message of ``topics`` (default: all) in timestamp order."""
        available = self.topics
        if topics:
            missing = [t for t in topics if t not in available]
            if missing:
                raise BagError(f"bag {self.path} has no topic(s) {missing}; it has {sorted(available)}")
        connections = [c for c in self._reader.connections if not topics or c.topic in topics]
        for connection, stamp_ns, data in self._reader.messages(connections=connections):
            yield BagMessage(connection.topic, connection.msgtype, int(stamp_ns), bytes(data))

    def deserialize(self, message: BagMessage) -> object:
        return typestore().deserialize_cdr(message.data, message.msgtype)

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def header_stamp_ns(data: bytes | memoryview) -> int:
    """The header stamp of a serialized message whose first field is a std_msgs/Header, read from its first
    12 bytes (4 of CDR encapsulation, then int32 sec and uint32 nanosec) without deserialising the rest: a
    Full-HD Image is 6 MB, its stamp 8 bytes."""
    if len(data) < 12:
        raise BagError(f"serialized message of {len(data)} bytes is too short to hold a header stamp")
    little = bytes(data[1:2]) == b"\x01"  # encapsulation kind 0x0001 = CDR_LE, 0x0000 = CDR_BE
    sec, nanosec = struct.unpack_from("<iI" if little else ">iI", data, 4)
    return int(sec) * 1_000_000_000 + int(nanosec)
