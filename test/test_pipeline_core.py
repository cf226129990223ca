"""The in-process plumbing of composed pipelines, with real threads: order, back-pressure, drops."""

from __future__ import annotations

import random
import threading
import time

from edge_vision.core.pipeline import DirectLink, LocalLink, ParallelStage


def test_parallel_stage_emits_in_arrival_order_whatever_the_finishing_order() -> None:
    emitted: list[int] = []
    workers_seen: set[int] = set()
    rng = random.Random(7)
    delays = [rng.uniform(0, 0.004) for _ in range(200)]

    def process(worker: int, item: int) -> int:
        workers_seen.add(worker)
        time.sleep(delays[item])  # later items often finish first
        return item

    stage: ParallelStage[int] = ParallelStage("test", process, emitted.append, workers=3, maxsize=2)
    for item in range(200):
        stage.put(item)
    stage.close()
    assert emitted == list(range(200))
    assert workers_seen == {0, 1, 2}


def test_failed_item_does_not_block_the_ones_after_it() -> None:
    emitted: list[int] = []

    def process(worker: int, item: int) -> int:
        if item == 3:
            raise ValueError("bad frame")
        return item

    stage: ParallelStage[int] = ParallelStage("test", process, emitted.append, workers=2)
    for item in range(8):
        stage.put(item)
    stage.close()
    assert emitted == [0, 1, 2, 4, 5, 6, 7] and stage.errors == 1


def test_dropping_stage_releases_dropped_tickets() -> None:
    emitted: list[int] = []
    gate, started = threading.Event(), threading.Event()

    def process(worker: int, item: int) -> int:
        started.set()
        gate.wait(5)
        return item

    stage: ParallelStage[int] = ParallelStage(
        "live", process, emitted.append, workers=1, maxsize=2, drop_when_full=True
    )
    stage.put(0)
    assert started.wait(5)
    for item in range(1, 10):  # the worker is stuck on item 0: most of the rest must be dropped
        stage.put(item)
    gate.set()
    stage.close()
    assert stage.dropped == 7
    assert emitted == [0, 8, 9], "fresh frames flow on; dropped ones leave no hole that stalls the order"


def test_blocking_link_loses_nothing() -> None:
    received: list[int] = []

    def slow(item: int) -> None:
        time.sleep(0.001)
        received.append(item)

    link: LocalLink[int] = LocalLink("files", slow, maxsize=1)
    for item in range(50):
        link.put(item)
    link.close()
    assert received == list(range(50)) and link.dropped == 0 and not link.alive


def test_direct_link_runs_on_the_callers_thread() -> None:
    threads: list[str] = []
    link: DirectLink[int] = DirectLink(lambda _item: threads.append(threading.current_thread().name))
    link.put(1)
    assert threads == [threading.current_thread().name]
