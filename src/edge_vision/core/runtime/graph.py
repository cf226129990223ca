"""``Graph``: stages joined by bounded edges, each stage on its own worker thread(s).

- A *source* runs on its own thread and pushes packets downstream.
- A *stage* has one ``process(packet) -> packet | None`` (None: consumed, nothing to pass on) and
  ``workers`` threads reading its input edge. ``workers > 1`` runs items in parallel and delivers them
  downstream in arrival order (a small reorder buffer: trackers need frames in order). ``workers == 0`` runs
  the stage inline on its producer's thread: for cheap stages, where a queue hop costs more than it saves
  (measured on 2 cores: ~10% of composed throughput for events + annotate on their own threads).
- ``connect`` joins a stage's output to another stage, or to a router that picks the next stage per packet
  (one shared detector feeding N cameras' trackers). ``tap`` adds an observer of a stage's output (a ROS
  publisher, the run summary); ``feed`` injects a packet from outside (a ROS subscription).

Stage failures never kill a thread: each is counted in ``Health``; a stage that fails ``error_budget`` times
in a row fails the graph, which stops its sources (the process then exits non-zero).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edge_vision.core.interfaces import Source
from edge_vision.core.packet import FramePacket, decoded_packets
from edge_vision.core.runtime.edges import Closed, Edge
from edge_vision.core.runtime.health import Health

log = logging.getLogger(__name__)

Process = Callable[[FramePacket], FramePacket | None]
Router = Callable[[FramePacket], str | None]
Tap = Callable[[FramePacket], None]
# A stop past pipeline.stop_timeout_s: threads get this long to finish the item in hand once the queues are
# emptied, so a stage that is merely slow still closes (its video finished) and only a stuck one is abandoned.
ABANDON_GRACE_S = 1.0
Screen = Callable[[FramePacket], bool]  # False: the item is dropped before the stage runs (the screen counts it)


@dataclass(slots=True)
class _Stage:
    name: str
    process: Process
    camera: str
    workers: int
    edge: Edge[FramePacket] | None
    close: Callable[[], None] | None
    outputs: list[str | Router] = field(default_factory=list)
    taps: list[Tap] = field(default_factory=list)
    screens: list[Screen] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    take_lock: threading.Lock = field(default_factory=threading.Lock)
    order_lock: threading.Lock = field(default_factory=threading.Lock)
    next_ticket: int = 0
    next_out: int = 0
    done: dict[int, FramePacket | None] = field(default_factory=dict)


@dataclass(slots=True)
class _Source:
    name: str
    camera: str
    source: Source
    outputs: list[str | Router] = field(default_factory=list)
    taps: list[Tap] = field(default_factory=list)
    thread: threading.Thread | None = None


class Graph:
    def __init__(self, health: Health | None = None) -> None:
        self.health = health or Health()
        self._stages: dict[str, _Stage] = {}
        self._sources: dict[str, _Source] = {}
        self._stop = threading.Event()
        self._running = threading.Event()  # cleared: sources pause before their next frame
        self._running.set()
        self._started = False
        self._closed = False
        self.abandoned: dict[str, str] = {}  # set by a ``close`` that ran out of time: stage -> what was left
        # Items a stage is working on now, by thread: (stage, since time.monotonic(), camera_id, sequence). The
        # stuck-stage watchdog (core/ops) reads it; two dict operations per item, no lock (atomic under the GIL).
        self._busy: dict[int, tuple[str, float, str, int]] = {}
        self.health.on_failure(lambda reason: self.stop())

    # -- building ------------------------------------------------------------------------------------------

    def add_source(self, name: str, source: Source, *, camera: str = "") -> None:
        self._check_new(name)
        self._sources[name] = _Source(name, camera, source)
        self.health.stage(name, camera)
        status = getattr(source, "status", None)  # a live source reports its own state (see SourceStatus)
        self.health.source(camera, state="starting", status=status if callable(status) else None)

    def add_stage(
        self,
        name: str,
        process: Process,
        *,
        camera: str = "",
        workers: int = 1,
        queue_size: int = 4,
        policy: str = "block",
        close: Callable[[], None] | None = None,
    ) -> None:
        self._check_new(name)
        edge: Edge[FramePacket] | None = None
        if workers > 0:
            edge = Edge(name, maxsize=queue_size, policy=policy, on_drop=lambda _p: self.health.dropped(name))
        stage = _Stage(name, process, camera, workers, edge, close)
        self._stages[name] = stage
        self.health.stage(name, camera, depth=(lambda: edge.depth) if edge is not None else None)

    def _check_new(self, name: str) -> None:
        if self._started:
            raise RuntimeError(f"graph already started; cannot add {name!r}")
        if name in self._stages or name in self._sources:
            raise ValueError(f"graph already has a stage named {name!r}")

    def connect(self, upstream: str, downstream: str | Router) -> None:
        node = self._node(upstream)
        if isinstance(downstream, str) and downstream not in self._stages:
            raise ValueError(f"no stage named {downstream!r} to connect {upstream!r} to")
        node.outputs.append(downstream)

    def wrap(self, name: str, after: Process) -> None:
        """Run ``after`` on each result of stage ``name`` before it is passed on (None drops the packet):
        a filter between two stages without a thread of its own (tests inject loss this way)."""
        stage = self._stages[name]
        inner = stage.process

        def process(packet: FramePacket) -> FramePacket | None:
            result = inner(packet)
            return None if result is None else after(result)

        stage.process = process

    def tap(self, name: str, callback: Tap) -> None:
        self._node(name).taps.append(callback)

    def screen(self, name: str, check: Screen) -> None:
        """Run ``check`` on each item stage ``name`` takes, before it runs (after its queue): False drops the item,
        neither processed nor timed; ``check`` counts it. The load shedding and lag guards of core/ops."""
        self._stages[name].screens.append(check)

    def prune(self, name: str, select: Callable[[list[FramePacket]], list[FramePacket]]) -> list[FramePacket]:
        """Remove from stage ``name``'s queue the items ``select`` picks out of the queued ones (oldest first);
        returns them (the caller counts them as drops)."""
        edge = self._stages[name].edge
        return edge.prune(select) if edge is not None else []

    def busy(self) -> list[tuple[str, float, str, int]]:
        """What each stage is working on now: (stage, since time.monotonic(), camera_id, sequence) per item."""
        return list(self._busy.copy().values())

    def _node(self, name: str) -> _Stage | _Source:
        node = self._stages.get(name) or self._sources.get(name)
        if node is None:
            raise ValueError(f"no stage or source named {name!r}; have {sorted([*self._sources, *self._stages])}")
        return node

    @property
    def stages(self) -> list[str]:
        return list(self._stages)

    @property
    def sources(self) -> dict[str, Source]:
        return {name: s.source for name, s in self._sources.items()}

    # -- running -------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        for stage in self._stages.values():
            for index in range(stage.workers):
                thread = threading.Thread(
                    target=self._work, args=(stage,), name=f"ev-{stage.name}-{index}", daemon=True
                )
                stage.threads.append(thread)
                thread.start()
        for source in self._sources.values():
            source.thread = threading.Thread(
                target=self._produce, args=(source,), name=f"ev-{source.name}", daemon=True
            )
            source.thread.start()

    def feed(self, name: str, packet: FramePacket) -> bool:
        """Put a packet from outside (a ROS subscription) into stage ``name``; False if dropped or closed."""
        return self._deliver(self._stages[name], packet)

    def stop(self) -> None:
        """Ask every source to stop after its current frame (idempotent, any thread)."""
        self._stop.set()
        self._running.set()  # a paused source must wake up to stop
        for node in self._sources.values():
            interrupt = getattr(node.source, "interrupt", None)
            if callable(interrupt):  # a live source waiting out an outage returns from frames() now
                interrupt()

    def pause(self) -> None:
        """Sources hold before their next frame until ``resume`` (a deactivated lifecycle node)."""
        if not self._stop.is_set():
            self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every source has ended (or the graph was stopped); True when none is still running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for source in self._sources.values():
            if source.thread is None:
                continue
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            source.thread.join(left)
            if source.thread.is_alive():
                return False
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Stop sources, let queued packets flow out stage by stage (in the order stages were added, which is
        upstream first), join every thread and release every stage. True when every thread ended in time.

        Past ``timeout`` (``pipeline.stop_timeout_s``: a stage stuck, or too much queued) whatever is still
        queued is abandoned, every thread gets ``ABANDON_GRACE_S`` to finish the item in hand, and only stages
        whose threads have all ended are closed (a video still being written to is never finished under its
        writer: its temp file is recovered on the next start). ``abandoned`` says what was left, and it is
        logged."""
        if self._closed:
            return True
        self._closed = True
        self.stop()
        deadline = time.monotonic() + timeout
        for source in self._sources.values():
            if source.thread is not None:
                source.thread.join(max(0.0, deadline - time.monotonic()))
        for stage in self._stages.values():
            if stage.edge is not None:
                stage.edge.close()
            for thread in stage.threads:
                thread.join(max(0.0, deadline - time.monotonic()))
        clean = not self.alive_threads()
        if not clean:
            for stage in self._stages.values():
                if stage.edge is not None:
                    stage.edge.close()
                    left = stage.edge.prune(lambda items: items)
                    if left:
                        self.abandoned[stage.name] = f"{len(left)} queued frames"
            grace = time.monotonic() + ABANDON_GRACE_S
            for thread in [t for s in self._stages.values() for t in s.threads]:
                thread.join(max(0.0, grace - time.monotonic()))
        for stage in self._stages.values():
            if any(t.is_alive() for t in stage.threads):  # recorded for every stage, with or without a close
                queued = self.abandoned.get(stage.name)
                self.abandoned[stage.name] = "; ".join(filter(None, (queued, "still busy, not closed")))
                continue
            if stage.close is not None:
                try:
                    stage.close()
                except Exception as exc:  # one stage's close must not keep the others from releasing
                    self.health.error(stage.name, exc)
                    log.exception("closing stage %s failed", stage.name)
        for source in self._sources.values():
            if source.thread is not None and source.thread.is_alive():
                self.abandoned[source.name] = "still decoding, not closed"
                continue
            try:
                source.source.close()
            except Exception:
                log.exception("closing source %s failed", source.name)
        if not clean:
            log.error(
                "stop: not drained within %.1f s (pipeline.stop_timeout_s); abandoned: %s; threads still running: %s",
                timeout,
                ", ".join(f"{name}: {what}" for name, what in self.abandoned.items()) or "nothing queued",
                self.alive_threads(),
            )
        return clean

    def alive_threads(self) -> list[str]:
        threads = [t for s in self._stages.values() for t in s.threads]
        threads += [s.thread for s in self._sources.values() if s.thread is not None]
        return [t.name for t in threads if t.is_alive()]

    # -- internals -----------------------------------------------------------------------------------------

    def _produce(self, node: _Source) -> None:
        health, camera, source = self.health, node.camera, node.source
        health.source(camera, state="streaming")
        try:
            for packet in decoded_packets(source):
                if not self._running.is_set():
                    health.source(camera, state="paused")
                    self._running.wait()
                    health.source(camera, state="streaming")
                    if self._stop.is_set():
                        break
                health.record(node.name, packet.timings_ms["decode"])
                health.source(camera, decoded=source.frames_decoded, skipped=source.frames_skipped)
                self._emit(node, packet)
                if self._stop.is_set():
                    break
        except Exception as exc:  # a failing source ends its camera only; others keep running
            log.error("source %s failed: %s", node.name, exc)
            health.source(
                camera,
                state="failed",
                message=f"{type(exc).__name__}: {exc}",
                decoded=source.frames_decoded,
                skipped=source.frames_skipped,
            )
            return
        health.source(
            camera,
            state="ended" if not self._stop.is_set() else "stopped",
            decoded=source.frames_decoded,
            skipped=source.frames_skipped,
        )

    def _deliver(self, stage: _Stage, packet: FramePacket) -> bool:
        if stage.edge is None:
            result = self._run(stage, packet)
            if result is not None:
                self._emit(stage, result)
            return True
        return stage.edge.put(packet)

    def _run(self, stage: _Stage, packet: FramePacket) -> FramePacket | None:
        for check in stage.screens:
            if not check(packet):
                return None
        t0 = time.perf_counter()
        thread = threading.get_ident()
        self._busy[thread] = (stage.name, time.monotonic(), packet.meta.camera_id, packet.meta.sequence)
        try:
            result = stage.process(packet)
        except Exception as exc:  # one bad item must not kill the stage thread
            if not self.health.error(stage.name, exc):
                log.warning(
                    "stage %s failed on %s#%d: %s: %s",
                    stage.name,
                    packet.meta.camera_id,
                    packet.meta.sequence,
                    type(exc).__name__,
                    exc,
                )
            else:
                log.error("%s", self.health.failure)
            return None
        finally:
            self._busy.pop(thread, None)
        self.health.record(stage.name, (time.perf_counter() - t0) * 1e3)
        return result

    def _work(self, stage: _Stage) -> None:
        assert stage.edge is not None
        ordered = stage.workers > 1
        while True:
            with stage.take_lock:  # a ticket per item taken, so parallel results leave in arrival order
                try:
                    packet = stage.edge.get()
                except Closed:
                    return
                ticket = stage.next_ticket
                stage.next_ticket += 1
            result = self._run(stage, packet)
            if not ordered:
                if result is not None:
                    self._emit(stage, result)
                continue
            with stage.order_lock:
                stage.done[ticket] = result
                while stage.next_out in stage.done:
                    ready = stage.done.pop(stage.next_out)
                    stage.next_out += 1
                    if ready is not None:
                        self._emit(stage, ready)

    def _emit(self, node: _Stage | _Source, packet: FramePacket) -> None:
        for tap in node.taps:
            try:
                tap(packet)
            except Exception as exc:  # an observer (a publisher) failing is that stage's error, not a crash
                if self.health.error(node.name, exc):
                    log.error("%s", self.health.failure)
                else:
                    log.warning("output of %s failed: %s: %s", node.name, type(exc).__name__, exc)
        for output in node.outputs:
            target = output if isinstance(output, str) else output(packet)
            if target is not None:
                self._deliver(self._stages[target], packet)
