"""Config sections -> a running ``Graph`` for N cameras sharing one detector.

Per camera ``c`` (stage names ``c/source``, ``c/track``...; a single unnamed camera has plain names):

    c/source -> detect (shared, ``detector.workers`` threads, in order) -> c/track -> c/events
             -> actions (shared, own queue: a slow action never stalls detection)
             -> c/annotate (drawing and the annotated video; inline unless it writes a video)

``stages`` selects a subset: a standalone ROS node builds just its own stage and feeds it from a topic
(``Pipeline.entry``); a composed process builds them all, or all but the ones left to other processes
(``pipeline.external``). Every plugin is built by ``plugins.build`` from its own schema.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import queue
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_vision.core import assets, config, plugins
from edge_vision.core.actions.video import VideoRecorder
from edge_vision.core.annotate import Annotator
from edge_vision.core.detection.adapters import Thresholds
from edge_vision.core.detection.detector import Detector
from edge_vision.core.detections import Detections
from edge_vision.core.errors import EdgeVisionError
from edge_vision.core.foxglove_view import attach_view
from edge_vision.core.frame import Frame
from edge_vision.core.interfaces import Action, Rule, Source, Tracker
from edge_vision.core.packet import FramePacket
from edge_vision.core.runtime.graph import Graph
from edge_vision.core.runtime.health import Health
from edge_vision.core.runtime.rollout import Generation, Rollout
from edge_vision.core.storage import StorageErrors, StorageGuard, check_writable, guards_for, recover_orphans
from edge_vision.core.summary import RunSummary

log = logging.getLogger(__name__)

STAGES = config.STAGES


def stage_name(camera: str, stage: str) -> str:
    """Graph name of ``stage`` for ``camera``: the detector is shared, the rest are per camera."""
    if stage == "detect":
        return "detect"
    return f"{camera}/{stage}" if camera else stage


def labels_file(detector: Mapping[str, Any]) -> str:
    """The class-name file ``detector`` values use: ``detector.labels``, COCO for the bundled model, else ""
    (then the model must embed its names)."""
    return str(detector["labels"] or ("" if detector["model"] else assets.find(assets.DEFAULT_LABELS)))


def build_detector(detector: Mapping[str, Any]) -> Detector:
    model = model_name(detector)
    labels = labels_file(detector)
    backend_params = {k: detector[k] for k in config.plugin_keys("detector", detector)}
    return Detector.from_config(
        model,
        backend=detector["backend"],
        backend_params=backend_params,
        adapter=detector["adapter"],
        labels=labels or None,
        classes=detector["classes"] or None,
        confidence=detector["confidence"],
        iou=detector["iou"],
        max_detections=detector["max_detections"],
    )


def model_name(detector: Mapping[str, Any]) -> str:
    """The model file ``detector`` values run: ``detector.model``, or the bundled default."""
    return str(detector["model"] or assets.find(assets.DEFAULT_MODEL))


def build_source(camera: Mapping[str, Any], clock: Callable[[], int] = time.time_ns) -> Source:
    values = {k: camera[k] for k in config.plugin_keys("camera", camera)}
    source: Source = plugins.build(
        "sources", camera["source"], values, where="camera", camera_id=camera["camera_id"], clock=clock
    )
    return source


def build_tracker(tracker: Mapping[str, Any]) -> Tracker:
    values = {k: tracker[k] for k in config.plugin_keys("tracker", tracker)}
    built: Tracker = plugins.build("trackers", tracker["tracker"], values, where="tracker")
    return built


def build_rules(rules: Mapping[str, Mapping[str, Any]], labels: Sequence[str], section: str = "events") -> list[Rule]:
    built: list[Rule] = []
    for name, spec in rules.items():
        values = {k: v for k, v in spec.items() if k != "type"}
        built.append(
            plugins.build(
                "rules", spec["type"], values, where=f"{section}.rules.{name}", name=name, labels=list(labels)
            )
        )
    return built


def build_actions(events: Mapping[str, Any], labels: Sequence[str]) -> list[Action]:
    actions: list[Action] = []
    output_dir = events["output_dir"] or "."
    try:
        for name, spec in events["actions"].items():
            values = {k: v for k, v in spec.items() if k != "type"}
            actions.append(
                plugins.build(
                    "actions",
                    spec["type"],
                    values,
                    where=f"events.actions.{name}",
                    name=name,
                    output_dir=output_dir,
                    labels=list(labels),
                )
            )
    except BaseException:
        for action in actions:  # the ones already open: leave no temporary file behind
            action.close()
        raise
    return actions


# -- stages -------------------------------------------------------------------------------------------------


class DetectStage:
    """One detector (inference session) per worker thread; a worker takes whichever session is free.

    The sessions form a ``Generation`` (one model): ``swap`` replaces it before the next frame (model roll-out,
    runtime/rollout.py); a session in use finishes its frame and goes back to its own generation's pool."""

    SAMPLES = 3  # recent frames kept (references) to validate a new model on

    def __init__(self, detectors: Sequence[Detector], model: str = "") -> None:
        self.labels = detectors[0].labels
        self._pending: tuple[Thresholds, Sequence[str] | None, set[int]] | None = None
        self._samples: deque[NDArray[np.uint8]] = deque(maxlen=self.SAMPLES)
        self.generation = Generation(model, list(detectors))
        self._free: queue.SimpleQueue[Detector] = self._pool(self.generation)

    @staticmethod
    def _pool(generation: Generation) -> queue.SimpleQueue[Detector]:
        free: queue.SimpleQueue[Detector] = queue.SimpleQueue()
        for detector in generation.detectors:
            free.put(detector)
        return free

    @property
    def detectors(self) -> list[Detector]:
        return self.generation.detectors

    def swap(self, generation: Generation) -> Generation:
        """Put ``generation``'s sessions in place (before the next frame); returns the replaced generation."""
        old = self.generation
        pending = self._pending
        if pending is not None:
            for detector in generation.detectors:  # the live thresholds/classes carry over
                detector.retune(pending[0], pending[1])
        self._free, self.generation = self._pool(generation), generation
        return old

    def samples(self) -> list[NDArray[np.uint8]]:
        return list(self._samples)

    def retune(self, thresholds: Thresholds, classes: Sequence[str] | None) -> None:
        """Validate now; each session takes the new values before its next frame."""
        self.detectors[0]._filter(classes)  # raises ConfigError naming an unknown class
        self._pending = (thresholds, classes, set())

    def process(self, packet: FramePacket) -> FramePacket:
        if packet.image is None:
            raise ValueError("the detector needs a packet with an image")
        free, generation = self._free, self.generation
        detector = free.get()
        pending = self._pending
        if pending is not None and id(detector) not in pending[2]:
            detector.retune(pending[0], pending[1])
            pending[2].add(id(detector))
        try:
            packet.detections = detector.detect(packet.image)
            timings = detector.timings
        except Exception:
            generation.record(None)
            raise
        finally:
            free.put(detector)  # back to its own pool: a swapped-out generation's pool is dropped with it
        generation.record(timings.inference_ms)
        self._samples.append(packet.image)
        packet.timings_ms["preprocess"] = timings.preprocess_ms
        packet.timings_ms["inference"] = timings.inference_ms
        packet.timings_ms["postprocess"] = timings.postprocess_ms
        return packet


class TrackStage:
    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.pending: dict[str, Any] | None = None

    def retune(self, params: Mapping[str, Any], fresh: Tracker) -> None:
        """New tracker parameters (already validated by building ``fresh``), applied before the next frame:
        set on the live tracker where it exposes them as attributes (its tracks are kept), else the fresh
        tracker replaces it (its tracks restart)."""
        self.pending = {"params": dict(params), "fresh": fresh}

    def process(self, packet: FramePacket) -> FramePacket:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            if all(hasattr(self.tracker, k) for k in pending["params"]):
                for key, value in pending["params"].items():
                    setattr(self.tracker, key, value)
            else:
                self.tracker = pending["fresh"]
        t0 = time.perf_counter()
        detections = packet.detections if packet.detections is not None else Detections.empty()
        packet.tracks = self.tracker.update(detections, packet.meta)
        packet.timings_ms["tracking"] = (time.perf_counter() - t0) * 1e3
        return packet


class EventStage:
    """Rules in order; geometry is checked against the first frame whose size is known."""

    def __init__(
        self, rules: Sequence[Rule], on_config_error: Callable[[EdgeVisionError], None], device_id: str = ""
    ) -> None:
        self.rules = list(rules)
        self.device_id = device_id
        self._checked = False
        self._on_config_error = on_config_error
        self._pending: tuple[list[Rule], AnnotateStage | None] | None = None

    def replace_rules(self, rules: Sequence[Rule], also: AnnotateStage | None = None) -> None:
        """Rules rebuilt from new parameters (validated), swapped in before the next frame; a changed rule
        starts afresh (its per-track state and counters restart)."""
        self._pending = (list(rules), also)

    def process(self, packet: FramePacket) -> FramePacket | None:
        if self._pending is not None:
            (rules, annotate), self._pending = self._pending, None
            self.rules = rules
            if annotate is not None:
                annotate.rules = rules
        t0 = time.perf_counter()
        if not self._checked and packet.meta.width > 0:
            self._checked = True
            try:
                for rule in self.rules:
                    rule.check_frame(packet.meta.width, packet.meta.height)
            except EdgeVisionError as exc:
                self._on_config_error(exc)
                return None
        tracks = packet.tracks if packet.tracks is not None else Detections.empty()
        packet.events = [event for rule in self.rules for event in rule.update(tracks, packet.meta)]
        if self.device_id and packet.events:
            packet.events = [dataclasses.replace(event, device_id=self.device_id) for event in packet.events]
        packet.timings_ms["events"] = (time.perf_counter() - t0) * 1e3
        return packet


class ActionStage:
    """Every action on every frame's events. A storage error of one action (disk full, read-only: its file,
    ``path`` where it has one) goes to ``storage`` (reported once, on /diagnostics; ``pipeline.on_storage_error``)
    and the other actions still run; any other error is the stage's error as before."""

    def __init__(self, actions: Sequence[Action], storage: StorageErrors | None = None) -> None:
        self.actions = list(actions)
        self.storage = storage

    def _where(self, action: Action) -> str:
        return str(getattr(action, "path", "") or type(action).__name__)

    def _consequence(self, action: Action) -> str:
        lost = getattr(action, "lost", None)
        return f"{lost} events not written" if isinstance(lost, int) else "action skipped"

    def process(self, packet: FramePacket) -> None:
        tracks = packet.tracks if packet.tracks is not None else Detections.empty()
        for action in self.actions:
            try:
                action.handle(packet.events, packet.meta, tracks)
            except OSError as exc:
                if self.storage is None or not self.storage.failed(self._where(action), exc, self._consequence(action)):
                    raise
                continue
            if self.storage is not None and packet.events:
                self.storage.recovered(self._where(action))

    def close(self) -> None:
        errors: list[Exception] = []
        for action in self.actions:
            try:
                action.close()
            except OSError as exc:
                if self.storage is None or not self.storage.failed(self._where(action), exc, self._consequence(action)):
                    errors.append(exc)
            except Exception as exc:  # close every action, then report
                errors.append(exc)
        if errors:
            raise errors[0]


class AnnotateStage:
    """Draws rules, boxes and labels on a copy of the frame (``packet.annotated``) when someone wants it:
    the video file, or ``wanted()`` (a ROS subscriber). The video (``actions.video.VideoRecorder``) is written
    at the rate of the frames it holds: its fps comes from the stamps of its first two frames (or
    ``video_fps``); ``segment_s`` splits it into time-named files; a storage error pauses it (``storage``)."""

    def __init__(
        self,
        labels: Sequence[str],
        rules: Sequence[Rule],
        *,
        video_path: str = "",
        video_fps: float = 0.0,
        segment_s: float = 0.0,
        storage: StorageErrors | None = None,
        wanted: Callable[[], bool] = lambda: False,
    ) -> None:
        self.labels = list(labels)
        self.rules = list(rules)
        self.annotator = Annotator()
        self.video_path = video_path
        self.wanted = wanted
        self.video = (
            VideoRecorder(video_path, fps=video_fps, segment_s=segment_s, storage=storage) if video_path else None
        )

    @property
    def frames_written(self) -> int:
        return self.video.frames_written if self.video is not None else 0

    @property
    def video_files(self) -> list[str]:
        """The video files written (one, or the segments), published at close (segments as they complete)."""
        return list(self.video.files) if self.video is not None else []

    def process(self, packet: FramePacket) -> FramePacket:
        if not self.video_path and not self.wanted():
            return packet
        if packet.image is None:
            raise ValueError("the annotator needs a packet with an image")
        frame = Frame(packet.image, packet.meta.stamp_ns, packet.meta.camera_id, packet.meta.sequence)
        tracks = packet.tracks if packet.tracks is not None else packet.detections
        image = self.annotator.annotate(frame, tracks, self.labels, self.rules)
        packet.annotated = image
        if self.video is not None:
            self.video.write(packet.meta.stamp_ns, image)
        return packet

    def close(self) -> None:
        if self.video is not None:
            self.video.close()


# -- the pipeline -------------------------------------------------------------------------------------------


@dataclass
class CameraParts:
    name: str
    camera_id: str
    source: Source | None = None
    tracker: Tracker | None = None
    events: EventStage | None = None
    annotate: AnnotateStage | None = None
    stages: list[str] = field(default_factory=list)


class Pipeline:
    """The graph for every camera of ``sections``, built and ready to ``start``.

    stages: which of ``STAGES`` run here (default all but ``pipeline.external``). Without ``detect``, pass
    ``labels`` (a standalone tracker learns them from ``label_info``).
    wanted: ``wanted(camera, stage)`` -> True while someone outside wants that stage's output even if no local
    stage consumes it (a ROS subscriber to ``image_annotated``).
    clock: ns now, for sources that stamp frames (the ROS clock in a node: sim time follows /clock).
    """

    def __init__(
        self,
        sections: Mapping[str, Mapping[str, Any]],
        *,
        stages: Collection[str] | None = None,
        labels: Sequence[str] | None = None,
        health: Health | None = None,
        wanted: Callable[[str, str], bool] = lambda camera, stage: False,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        config.check_cross(sections)
        pipeline = sections["pipeline"]
        if stages is None:
            stages = [s for s in STAGES if s not in pipeline["external"]]
        unknown = sorted(set(stages) - set(STAGES))
        if unknown:
            raise ValueError(f"unknown stages {unknown}; expected {STAGES}")
        self.sections = sections
        self.device_id = config.device_id(sections)
        self.stages = [s for s in STAGES if s in stages]
        self.health = health or Health(error_budget=pipeline["error_budget"])
        self.graph = Graph(self.health)
        self.fatal: EdgeVisionError | None = None
        self.cameras: dict[str, CameraParts] = {}
        self.detect: DetectStage | None = None
        self.rollout: Rollout | None = None  # detector.model changes while running (runtime/rollout.py)
        self.actions: ActionStage | None = None
        self._track_stages: dict[str, TrackStage] = {}
        self._closers: list[Callable[[], Any]] = []
        # Output writers report storage errors here (core/storage.py); guards keep recordings within limits.
        self.storage = StorageErrors(self.health, pipeline["on_storage_error"])
        self.guards: list[StorageGuard] = []
        queue_size = pipeline["queue_size"]
        try:
            camera_sections = config.camera_sections(sections)
            if "detect" in self.stages:
                workers = sections["detector"]["workers"]
                self.detect = DetectStage(
                    [build_detector(sections["detector"]) for _ in range(workers)], model_name(sections["detector"])
                )
                # A model rolled out without its own detector.labels takes the started model's labels file.
                self._labels_file = labels_file(sections["detector"])
                self.rollout = Rollout(
                    health=self.health,
                    build=self._rollout_detector,
                    swap=self.detect.swap,
                    current=lambda: self.detect.generation if self.detect is not None else Generation("", []),
                    samples=self.detect.samples,
                )
                self._closers.append(self.rollout.close)
                labels = self.detect.labels
            self.labels: list[str] = list(labels or [])
            if not self.labels and any(s in self.stages for s in ("track", "events", "annotate")):
                raise ValueError("stages after the detector need the detector's labels")
            self.summary = RunSummary(self.labels)
            # Sources first: a missing video fails before any output is opened.
            for name, camera in camera_sections.items():
                parts = self.cameras[name] = CameraParts(name, camera["camera_id"])
                if "source" in self.stages:
                    parts.source = build_source(camera, clock)
                    self._closers.append(parts.source.close)
            video_folder = self._prepare_video_folder()
            # Stages are added upstream first: that is the order the graph drains them in at the end.
            for parts in self.cameras.values():
                if parts.source is not None:
                    self.graph.add_source(stage_name(parts.name, "source"), parts.source, camera=parts.name)
            if self.detect is not None:
                self.graph.add_stage(
                    "detect",
                    self.detect.process,
                    workers=len(self.detect.detectors),
                    queue_size=queue_size,
                    policy=pipeline["policy"],
                )
                self.graph.tap("detect", self._on_detected)
            for parts in self.cameras.values():
                self._build_camera(parts, queue_size, wanted)
            if "events" in self.stages:
                # One action stage for every camera (events carry their camera_id): one events.jsonl per run,
                # written by one thread in arrival order, never by two writers of one path.
                actions = build_actions(sections["events"], self.labels)
                written = {Path(str(getattr(a, "path", ""))).parent for a in actions if getattr(a, "path", None)}
                for folder in written - {video_folder}:
                    recover_orphans(folder)  # after opening: this run's own (locked) temp files are left alone
                if actions:
                    self.actions = ActionStage(actions, self.storage)
                    self._closers.append(self.actions.close)
                    self.graph.add_stage(
                        "actions", self.actions.process, queue_size=max(queue_size, 64), close=self.actions.close
                    )
            self._wire()
            recordings = [
                (Path(parts.annotate.video_path).parent, parts.annotate.video.patterns)
                for parts in self.cameras.values()
                if parts.annotate is not None and parts.annotate.video is not None
            ]
            self.guards = guards_for(recordings, pipeline, self.health)
            self.view = attach_view(self, pipeline)  # Foxglove WebSocket view (pipeline.foxglove), taps only
            if self.view is not None:
                self._closers.append(self.view.close)
            # Watchdogs, resource guards and load shedding, metrics: one supervisor per pipeline (core/ops).
            from edge_vision.core.ops.supervisor import Supervisor  # core.ops imports the runtime: import at use

            self.ops = Supervisor(
                self.graph,
                self.health,
                pipeline,
                clock=clock,
                camera_of=self.camera_of,
                cameras={name: parts.camera_id for name, parts in self.cameras.items()},
                output_dir=sections["events"]["output_dir"] or str(Path(sections["visualizer"]["video_path"]).parent),
                detect="detect" if self.detect is not None else None,
            )
            self._closers.append(self.ops.close)
        except BaseException:
            self._release()
            raise

    def _prepare_video_folder(self) -> Path | None:
        """The annotated video's folder: writable (else a ConfigError naming ``visualizer.video_path``, before
        any work, rather than one failure per frame), and what a killed earlier run left there recovered."""
        video_path = self.sections["visualizer"]["video_path"]
        if "annotate" not in self.stages or not video_path:
            return None
        folder = check_writable(Path(video_path).parent, "visualizer.video_path")
        recover_orphans(folder)
        return folder

    def _build_camera(self, parts: CameraParts, queue_size: int, wanted: Callable[[str, str], bool]) -> None:
        name, graph, sections = parts.name, self.graph, self.sections
        if "track" in self.stages:
            parts.tracker = build_tracker(sections["tracker"])
            stage = stage_name(name, "track")
            track = self._track_stages[name] = TrackStage(parts.tracker)
            graph.add_stage(stage, track.process, camera=name, queue_size=queue_size)
            graph.tap(stage, lambda p: self.summary.on_tracks(p.tracks, name))
        rules: list[Rule] = []
        if "events" in self.stages:
            events = sections["events"]
            rules = build_rules(events["rules"], self.labels)
            source = parts.source
            if source is not None and source.width > 0:
                # Known before the first frame (files, configured cameras): a rule outside the image fails
                # now, before any output is opened, rather than at the first frame.
                for rule in rules:
                    rule.check_frame(source.width, source.height)
            parts.events = EventStage(rules, self._config_error, self.device_id)
            stage = stage_name(name, "events")
            graph.add_stage(stage, parts.events.process, camera=name, workers=0)
            graph.tap(stage, lambda p: self.summary.on_events(p.events))
        if "annotate" in self.stages:
            visualizer = sections["visualizer"]
            if not rules:
                rules = build_rules(visualizer["rules"] or sections["events"]["rules"], self.labels, "visualizer")
            video_path = visualizer["video_path"]
            if video_path and len(self.cameras) > 1:
                stem = Path(video_path)
                video_path = str(stem.with_name(f"{stem.stem}_{name}{stem.suffix}"))
            parts.annotate = AnnotateStage(
                self.labels,
                rules,
                video_path=video_path,
                video_fps=visualizer["video_fps"],
                segment_s=visualizer["segment_s"],
                storage=self.storage,
                wanted=lambda: wanted(name, "annotate"),
            )
            self._closers.append(parts.annotate.close)
            # Inline on the tracker's thread unless it encodes video: an extra hop costs more than drawing.
            graph.add_stage(
                stage_name(name, "annotate"),
                parts.annotate.process,
                camera=name,
                workers=1 if video_path else 0,
                queue_size=queue_size,
                close=parts.annotate.close,
            )

    def _wire(self) -> None:
        graph = self.graph
        for name, parts in self.cameras.items():
            chain = [stage_name(name, s) for s in ("source", "track", "events") if s in self.stages]
            if "source" in self.stages and "detect" in self.stages:
                graph.connect(stage_name(name, "source"), "detect")
                chain = chain[1:]
            for upstream, downstream in itertools.pairwise(chain):
                graph.connect(upstream, downstream)
            last = chain[-1] if chain else None
            if self.actions is not None and last is not None:
                graph.connect(last, "actions")
            if parts.annotate is not None and last is not None and last != stage_name(name, "source"):
                graph.connect(last, stage_name(name, "annotate"))
            # A frame is done when it leaves the last stage here (the shared detector is tapped once, below).
            end: str | None = next((s for s in ("events", "track") if s in self.stages), None)
            if end is None and "detect" not in self.stages:
                end = "annotate" if "annotate" in self.stages else "source" if "source" in self.stages else None
            if end is not None:
                graph.tap(stage_name(name, end), self._frame_done)
        if "detect" in self.stages and not {"track", "events"} & set(self.stages):
            graph.tap("detect", self._frame_done)
        if "detect" in self.stages and "track" in self.stages:
            routes = {parts.camera_id: stage_name(name, "track") for name, parts in self.cameras.items()}
            if len(routes) == 1:
                # One camera: every frame is its own, whatever frame_id images from a topic carry (a driver's
                # optical frame); routing by camera_id dropped them all after the detector, uncounted.
                graph.connect("detect", next(iter(routes.values())))
            else:
                graph.connect("detect", functools.partial(self._route, routes))
        self._by_camera_id = {parts.camera_id: name for name, parts in self.cameras.items()}

    def _route(self, routes: Mapping[str, str], packet: FramePacket) -> str | None:
        target = routes.get(packet.meta.camera_id)
        if target is None:  # a frame_id no camera of this process has: counted, never silently lost
            self.health.dropped("detect")
        return target

    def _frame_done(self, packet: FramePacket) -> None:
        self.health.frame_done(self._camera_of(packet), (time.perf_counter() - packet.created) * 1e3)
        self.ops.frame_done(packet.meta.camera_id, packet.meta.stamp_ns)

    def _on_detected(self, packet: FramePacket) -> None:
        self.summary.on_detections(packet.detections)
        # The detector's latency budget (what a deployer tunes) as sub-stages of ``detect`` on stats.
        for part in ("preprocess", "inference", "postprocess"):
            if part in packet.timings_ms:
                self.health.record(f"detect.{part}", packet.timings_ms[part])

    def _camera_of(self, packet: FramePacket) -> str:
        return self._by_camera_id.get(packet.meta.camera_id, "")

    def camera_of(self, camera_id: str) -> str | None:
        """The camera name (namespace) whose frames carry ``camera_id``."""
        return self._by_camera_id.get(camera_id)

    def _config_error(self, exc: EdgeVisionError) -> None:
        if self.fatal is None:
            self.fatal = exc
        self.health.fail(str(exc))

    def _rollout_detector(self, values: Mapping[str, Any]) -> Detector:
        """A session of a model being rolled out: without its own detector.labels it takes the running
        model's labels file (it must have the running model's classes anyway)."""
        return build_detector({**values, "labels": values["labels"] or self._labels_file})

    def reconfigure(self, section: str, values: Mapping[str, Any]) -> None:
        """Apply changed parameters of ``section`` (resolved values) on each stage's next frame. Everything is
        validated (and rules and trackers built) before anything changes: an error raises ``ConfigError``
        naming the parameter and leaves the running pipeline as it was."""
        if section == "detector" and self.detect is not None:
            thresholds = Thresholds(values["confidence"], values["iou"], values["max_detections"])
            self.detect.retune(thresholds, values["classes"] or None)
            if model_name(values) != self.detect.generation.model and self.rollout is not None:
                self.rollout.install(values)  # validated first: raises ModelError and changes nothing
        elif section == "tracker":
            params = {k: values[k] for k in config.plugin_keys("tracker", values)}
            fresh = {name: build_tracker(values) for name, parts in self.cameras.items() if parts.tracker}
            for name, tracker in fresh.items():
                stage = self._track_stages[name]
                stage.retune(params, tracker)
        elif section == "events":
            rebuilt: dict[str, list[Rule]] = {}
            for name, parts in self.cameras.items():
                if parts.events is None:
                    continue
                rules = build_rules(values["rules"], self.labels)
                if parts.source is not None and parts.source.width > 0:
                    for rule in rules:
                        rule.check_frame(parts.source.width, parts.source.height)
                rebuilt[name] = rules
            for name, rules in rebuilt.items():
                events = self.cameras[name].events
                assert events is not None
                events.replace_rules(rules, self.cameras[name].annotate)
        self.sections = {**self.sections, section: dict(values)}

    def entry(self, camera: str) -> str:
        """The first stage of ``camera`` here: where packets from outside (a topic) are fed."""
        for stage in STAGES:
            if stage in self.stages and stage != "source":
                return stage_name(camera, stage)
        raise ValueError("this pipeline has no stage that takes input")

    # -- running -------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self.view is not None:
            self.view.start()  # waits up to pipeline.foxglove_wait s for a client before the first frame
        self.summary.started = time.perf_counter()
        for guard in self.guards:
            guard.start()
        self.ops.start()
        self.graph.start()

    def run(self, timeout: float | None = None) -> bool:
        """Start, run every source to its end (or ``stop``), drain and close. True when the run succeeded."""
        from edge_vision.core.ops import sdnotify

        self.start()
        try:
            self.graph.wait(timeout)
        finally:
            sdnotify.stopping()  # systemd: the process is ending (RosPipeline.run says so for the executables)
            self.close()
        return self.succeeded

    def stop(self) -> None:
        self.graph.stop()

    def close(self) -> bool:
        """Drain (up to ``pipeline.stop_timeout_s``; past it, what is left is abandoned: ``graph.abandoned``),
        finish every output and stop the storage guards. True when every thread ended in time."""
        clean = self.graph.close(timeout=self.sections["pipeline"]["stop_timeout_s"])
        self.ops.close()
        for guard in self.guards:
            guard.close()
        if self.view is not None:
            self.view.close()
        self.summary.finish()
        self._closers.clear()
        return clean

    def _release(self) -> None:
        """Constructor failed: release what was opened (no temporary output left behind)."""
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception:
                log.exception("release after a failed build")
        self._closers.clear()

    @property
    def succeeded(self) -> bool:
        return not self.health.failed and not self.health.source_failed()

    def failure(self) -> str:
        return self.health.problems()


def build_pipeline(sections: Mapping[str, Mapping[str, Any]], **kwargs: Any) -> Pipeline:
    return Pipeline(sections, **kwargs)
