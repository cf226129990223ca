"""The core runtime without ROS: edges and their policies, the graph (order, inline stages, routing, errors,
the error budget, closing), and a real ``Pipeline`` on the sample video."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from conftest import CONFIG, LABELS
from edge_vision.core import config
from edge_vision.core.frame import FrameMeta
from edge_vision.core.packet import FramePacket
from edge_vision.core.runtime import Edge, Graph, Health, Pipeline
from edge_vision.core.runtime.health import ERROR, OK, WARN
from edge_vision.core.sources.file import FileSource


def packet(sequence: int, camera_id: str = "cam") -> FramePacket:
    return FramePacket(FrameMeta(stamp_ns=sequence * 100_000_000, camera_id=camera_id, sequence=sequence))


def ev_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("ev-")]


@pytest.fixture()
def graphs() -> Iterator[Callable[..., Graph]]:
    """Graphs made through this are closed at the end, and must leave no thread behind."""
    made: list[Graph] = []

    def make(health: Health | None = None) -> Graph:
        graph = Graph(health or Health())
        made.append(graph)
        return graph

    yield make
    for graph in made:
        assert graph.close(timeout=10.0)
        assert graph.alive_threads() == []
    assert ev_threads() == []


class Collector:
    """A stage that keeps what reaches it (and the thread it ran on)."""

    def __init__(self) -> None:
        self.items: list[int] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, item: FramePacket) -> None:
        with self._lock:
            self.items.append(item.meta.sequence)
            self.threads.add(threading.current_thread().name)

    def passing(self, item: FramePacket) -> FramePacket:
        """As a stage that passes the packet on."""
        self(item)
        return item


# -- edges --------------------------------------------------------------------------------------------------


def test_block_edge_makes_the_producer_wait() -> None:
    edge: Edge[int] = Edge("e", maxsize=1, policy="block")
    assert edge.put(1)
    returned: list[bool] = []
    producer = threading.Thread(target=lambda: returned.append(edge.put(2)))
    producer.start()
    time.sleep(0.2)
    assert producer.is_alive() and returned == [] and edge.depth == 1  # waiting for room, nothing lost
    assert edge.get() == 1
    producer.join(5)
    assert returned == [True] and edge.get() == 2 and edge.dropped == 0


def test_block_edge_releases_a_waiting_producer_on_close() -> None:
    edge: Edge[int] = Edge("e", maxsize=1, policy="block")
    edge.put(1)
    returned: list[bool] = []
    producer = threading.Thread(target=lambda: returned.append(edge.put(2)))
    producer.start()
    time.sleep(0.1)
    edge.close()
    producer.join(5)
    assert returned == [False]


@pytest.mark.parametrize(("policy", "kept", "lost"), [("drop_oldest", [3, 4], [1, 2]), ("drop_newest", [1, 2], [3, 4])])
def test_drop_policies_count_and_report_each_drop(policy: str, kept: list[int], lost: list[int]) -> None:
    dropped: list[int] = []
    edge: Edge[int] = Edge("e", maxsize=2, policy=policy, on_drop=dropped.append)
    results = [edge.put(i) for i in (1, 2, 3, 4)]
    assert results == ([True] * 4 if policy == "drop_oldest" else [True, True, False, False])
    assert edge.dropped == 2 and dropped == lost
    assert [edge.get(), edge.get()] == kept


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
def test_health_sees_drops_while_they_happen(graphs: Callable[..., Graph], policy: str) -> None:
    graph = graphs()
    entered, release = threading.Event(), threading.Event()
    sink = Collector()

    def slow(item: FramePacket) -> FramePacket:
        entered.set()
        release.wait(10)
        return item

    graph.add_stage("slow", slow, workers=1, queue_size=2, policy=policy)
    graph.add_stage("sink", sink, workers=1)
    graph.connect("slow", "sink")
    graph.start()
    graph.feed("slow", packet(0))
    assert entered.wait(5)  # the worker holds 0; the queue holds 2; the other 7 are dropped
    fed = [graph.feed("slow", packet(i)) for i in range(1, 10)]
    report = graph.health.report()  # before anything has been processed
    assert report.frames_dropped == 7 and report.level == WARN and "dropping frames" in report.message
    assert {s.name: s.dropped for s in report.stages} == {"slow": 7, "sink": 0}
    assert {s.name: s.queue_depth for s in report.stages}["slow"] == 2
    release.set()
    assert graph.close()
    if policy == "drop_oldest":
        assert fed == [True] * 9 and sink.items == [0, 8, 9]
    else:
        assert fed == [True, True] + [False] * 7 and sink.items == [0, 1, 2]


def test_edge_rejects_bad_settings() -> None:
    with pytest.raises(Exception, match="policy must be one of"):
        Edge("e", policy="leaky")
    with pytest.raises(Exception, match="queue size must be >= 1"):
        Edge("e", maxsize=0)


# -- graph --------------------------------------------------------------------------------------------------


def test_parallel_workers_deliver_in_arrival_order(graphs: Callable[..., Graph]) -> None:
    graph = graphs()
    rng = random.Random(11)
    delays = [rng.uniform(0.0, 0.004) for _ in range(200)]
    lock = threading.Lock()
    active = peak = 0
    workers: set[str] = set()

    def work(item: FramePacket) -> FramePacket:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
            workers.add(threading.current_thread().name)
        time.sleep(delays[item.meta.sequence])
        with lock:
            active -= 1
        return item

    sink = Collector()
    graph.add_stage("work", work, workers=3, queue_size=8)
    graph.add_stage("sink", sink, workers=1)
    graph.connect("work", "sink")
    graph.start()
    for i in range(200):
        assert graph.feed("work", packet(i))
    assert graph.close()
    assert sink.items == list(range(200))
    assert peak > 1 and workers == {"ev-work-0", "ev-work-1", "ev-work-2"}  # really in parallel


def test_inline_stage_runs_on_its_producers_thread(graphs: Callable[..., Graph]) -> None:
    graph = graphs()
    inline = Collector()
    graph.add_stage("threaded", lambda p: p, workers=1)
    graph.add_stage("inline", inline.passing, workers=0)
    graph.connect("threaded", "inline")
    graph.start()
    assert sorted(graph.alive_threads()) == ["ev-threaded-0"]  # no thread of its own
    for i in range(5):
        graph.feed("threaded", packet(i))
    assert graph.close()
    assert inline.items == list(range(5)) and inline.threads == {"ev-threaded-0"}
    direct = Collector()
    other = Graph()
    other.add_stage("inline", direct.passing, workers=0)
    other.start()
    other.feed("inline", packet(0))  # fed from outside: runs on the caller's thread
    assert other.close() and direct.threads == {threading.current_thread().name}


def test_router_sends_each_packet_to_its_target(graphs: Callable[..., Graph]) -> None:
    graph = graphs()
    left, right = Collector(), Collector()
    graph.add_stage("split", lambda p: p, workers=1)
    graph.add_stage("left", left, workers=1)
    graph.add_stage("right", right, workers=1)
    routes = {"L": "left", "R": "right"}
    graph.connect("split", lambda p: routes.get(p.meta.camera_id))  # None: nowhere
    graph.start()
    cameras = ["L", "R", "L", "X", "R", "R", "L", "X"]
    for i, camera in enumerate(cameras):
        graph.feed("split", packet(i, camera))
    assert graph.close()
    assert left.items == [0, 2, 6] and right.items == [1, 4, 5]


def test_a_stage_failing_on_some_items_counts_errors_and_keeps_going(graphs: Callable[..., Graph]) -> None:
    graph = graphs(Health(error_budget=3))
    sink = Collector()

    def flaky(item: FramePacket) -> FramePacket:
        if item.meta.sequence % 7 == 3:
            raise ValueError(f"bad item {item.meta.sequence}")
        return item

    graph.add_stage("flaky", flaky, workers=1)
    graph.add_stage("sink", sink, workers=1)
    graph.connect("flaky", "sink")
    graph.start()
    for i in range(70):
        graph.feed("flaky", packet(i))
    assert graph.close()
    assert sink.items == [i for i in range(70) if i % 7 != 3]
    report = graph.health.report()
    flaky_report = next(s for s in report.stages if s.name == "flaky")
    assert flaky_report.errors == 10 and flaky_report.processed == 60
    assert flaky_report.last_error == "ValueError: bad item 66"
    # Never error_budget (3) failures in a row: WARN with the errors, not failed.
    assert not graph.health.failed and report.level == WARN and "flaky: 10 errors" in report.message


def test_error_budget_fails_the_graph_and_stops_its_sources(graphs: Callable[..., Graph], video: Path) -> None:
    health = Health(error_budget=5)
    graph = graphs(health)
    source = FileSource(str(video), camera_id="cam", loop=True)  # endless: only the failure can stop it
    calls = 0

    def broken(item: FramePacket) -> FramePacket:
        nonlocal calls
        calls += 1
        raise RuntimeError("model exploded")

    graph.add_source("source", source, camera="cam")
    graph.add_stage("broken", broken, camera="cam", queue_size=4)
    graph.connect("source", "broken")
    graph.start()
    assert graph.wait(60), "the sources did not stop"
    assert graph.stopping and health.failed
    report = health.report()
    assert report.level == ERROR
    assert report.message == "stage broken failed 5 times in a row: RuntimeError: model exploded"
    assert [s.state for s in report.sources] == ["stopped"]
    assert source.frames_decoded < 50  # stopped at once, not after a loop of the 795-frame file
    assert graph.close()
    assert 5 <= calls <= source.frames_decoded


def test_close_joins_every_thread(graphs: Callable[..., Graph], video: Path) -> None:
    graph = graphs()
    source = FileSource(str(video), camera_id="cam", max_frames=20)
    sink = Collector()
    graph.add_source("source", source, camera="cam")
    graph.add_stage("a", lambda p: p, camera="cam", workers=2)
    graph.add_stage("b", lambda p: p, camera="cam", workers=0)
    graph.add_stage("sink", sink, camera="cam", workers=1)
    graph.connect("source", "a")
    graph.connect("a", "b")
    graph.connect("b", "sink")
    graph.start()
    # One thread per worker and per source; the inline stage has none (the source may have ended already).
    assert set(graph.alive_threads()) <= {"ev-a-0", "ev-a-1", "ev-sink-0", "ev-source"}
    assert {"ev-a-0", "ev-a-1", "ev-sink-0"} <= set(ev_threads())
    assert graph.wait(60)
    assert graph.close()
    assert graph.alive_threads() == [] and ev_threads() == []
    assert sink.items == list(range(20))
    assert graph.health.report().level in (OK, WARN)  # WARN: no frame_done() callers in a bare graph


# -- the real pipeline --------------------------------------------------------------------------------------


def test_pipeline_runs_the_sample_video_without_copying_frames(tmp_path: Path, video: Path, model: Path) -> None:
    sections = config.load_file(CONFIG)
    sections["camera"]["uri"] = str(video)
    sections["camera"]["max_frames"] = 30
    sections["detector"]["model"] = str(model)
    sections["detector"]["labels"] = str(LABELS)
    sections["events"]["output_dir"] = str(tmp_path)
    pipeline = Pipeline(sections)
    seen: dict[str, dict[int, NDArray[np.uint8]]] = {"source": {}, "detect": {}, "track": {}}

    def recorder(images: dict[int, NDArray[np.uint8]]) -> Callable[[FramePacket], None]:
        def record(packet: FramePacket) -> None:
            assert packet.image is not None
            images[packet.meta.sequence] = packet.image

        return record

    for stage, images in seen.items():
        pipeline.graph.tap(stage, recorder(images))
    assert pipeline.run(timeout=300)
    assert pipeline.graph.alive_threads() == [] and ev_threads() == []
    report = pipeline.health.report()
    assert report.level == OK and report.frames_processed == 30 and report.frames_decoded == 30
    assert pipeline.summary.frames == 30
    assert all(s.processed == 30 and s.errors == 0 for s in report.stages if s.name in ("source", "detect", "track"))
    assert sorted(seen["source"]) == sorted(seen["detect"]) == sorted(seen["track"]) == list(range(30))
    for sequence, image in seen["source"].items():
        assert image.shape == (576, 768, 3)
        # One ndarray from the decoder to the tracker: handed on by reference, never copied.
        assert seen["detect"][sequence] is image and seen["track"][sequence] is image
    assert (tmp_path / "events.jsonl").is_file()
