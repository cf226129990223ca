"""The bag replay regression run, shared by ``test_bag_replay.py`` (compares with the golden file) and
``regen_golden.py`` (rewrites it on purpose).

The run, as a robot stack would do it: ``edge-vision make-bag`` writes the first ``FRAMES`` frames of the sample
video as ``image_raw``; a composed pipeline with no source of its own (detect, track, events, annotate) takes
them from the topic; two ``edge-vision record`` processes (mcap and sqlite3) record its ``detections``,
``tracks``, ``events`` and ``label_info``; ``edge-vision replay --as-fast-as-possible`` plays the bag into it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.duration import Duration

from edge_vision.bag.io import BagReader
from edge_vision.core import config
from edge_vision.ros.container import RosPipeline

REPO = Path(__file__).resolve().parents[1]
VIDEO = REPO / "data" / "vtest.avi"
CONFIG = REPO / "config" / "pipeline.yaml"
GOLDEN = REPO / "test" / "golden" / "replay_vtest.json"
FRAMES = 120
RECORDED = ("detections", "tracks", "events", "label_info")
STORAGES = ("mcap", "sqlite3")
FRAME_ID = "camera_color_optical_frame"
TIMEOUT = 60.0


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from edge_vision.cli import main; main()", *args]


def pipeline_sections() -> dict[str, dict[str, Any]]:
    """The shipped config, composed without a source, writing no file. The image input is reliable: the replay
    keeps at most ``--window`` (4) frames unacknowledged, fewer than the input depth (5), so none is overwritten."""
    sections = config.load_file(CONFIG)
    sections["visualizer"]["video_path"] = ""
    sections["events"]["actions"] = {}
    sections["detector"]["input_reliability"] = "reliable"
    return sections


def wait_for(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


class Recorder:
    """``edge-vision record`` in its own process; ``ready`` once it announced every topic as matched."""

    def __init__(self, bag: Path, storage: str, log: Path) -> None:
        self.bag = bag
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            cli("record", str(bag), "--storage", storage, "--topics", *RECORDED),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.log = log
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    @property
    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"recorder exited early ({self.process.returncode}): {self.lines}")
        return all(
            any(line.startswith(f"edge-vision record: recording /{t} ") for line in self.lines) for t in RECORDED
        )

    def stop(self) -> str:
        """SIGINT: the recorder drains what has arrived and finalises the bag."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        self._reader.join(5)
        self.log.write_text("\n".join(self.lines) + "\n")
        if code != 0:
            raise AssertionError(f"recorder of {self.bag} exited {code}: {self.lines}")
        return self.lines[-1] if self.lines else ""


@dataclass
class ReplayRun:
    bag_frames: int
    bag_stamps: list[int]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # storage -> results_from_bag
    replay_output: str = ""
    frames_processed: int = 0
    live_hashes: dict[str, str] = field(default_factory=dict)  # topic -> RIHS01 of its live publisher
    bag_hashes: dict[str, str] = field(default_factory=dict)


def run_replay(work: Path) -> ReplayRun:
    work.mkdir(parents=True, exist_ok=True)
    bag = work / "vtest_bag"
    # Stamped in a camera driver's optical frame, not the pipeline's camera_id: a single-camera pipeline takes
    # every image of its topic.
    made = subprocess.run(
        cli("make-bag", str(VIDEO), str(bag), "--max-frames", str(FRAMES), "--frame-id", FRAME_ID),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    with BagReader(bag) as reader:
        stamps = [m.stamp_ns for m in reader.messages()]
    run = ReplayRun(len(stamps), stamps)

    context = Context()
    rclpy.init(args=[], context=context)
    ros = RosPipeline(stages=("detect", "track", "events", "annotate"), sections=pipeline_sections(), context=context)
    codes: list[int] = []
    runner = threading.Thread(target=lambda: codes.append(ros.run()), name="replay-pipeline", daemon=True)
    recorders: list[Recorder] = []
    try:
        runner.start()
        recorders = [Recorder(work / f"out_{s}", s, work / f"record_{s}.log") for s in STORAGES]
        # Both ends of every recorded link: the recorders' readers matched (their "recording" lines) and the
        # pipeline's writers see both readers (a lazy publisher sends only to subscribers it knows of).
        wait_for(lambda: all(r.ready for r in recorders), "the recorders to match every topic")
        outputs = {
            name: ros.outputs[("", stage)].publisher
            for stage, name in (("detect", "detections"), ("track", "tracks"), ("events", "events"))
        }
        wait_for(lambda: all(p.get_subscription_count() >= len(STORAGES) for p in outputs.values()), "the writers")
        replay = subprocess.run(
            cli("replay", str(bag), "--as-fast-as-possible"), capture_output=True, text=True, timeout=300
        )
        run.replay_output = replay.stdout + replay.stderr
        assert replay.returncode == 0, f"replay failed ({replay.returncode}): {run.replay_output}"
        # Every frame was acknowledged on tracks; let the events of the last one out too: closing the graph
        # drains it (its taps publish while the context is up), then every recorder has acknowledged it all.
        assert ros.pipeline is not None
        ros.pipeline.close()
        for publisher in outputs.values():
            assert publisher.wait_for_all_acked(Duration(seconds=10))
        run.frames_processed = ros.health.report().frames_processed
        for topic in ("detections", "tracks", "events"):
            infos = ros.owner.get_publishers_info_by_topic(f"/{topic}")
            run.live_hashes[topic] = str(infos[0].topic_type_hash)
    finally:
        stopped = [recorder.stop for recorder in recorders]
        errors = []
        for stop in stopped:  # every recorder, even after one failed: none is left running
            try:
                stop()
            except AssertionError as exc:
                errors.append(exc)
        ros.finished.set()  # what the lifecycle shutdown transition does: run() closes and returns
        runner.join(30)
        ros.destroy()
        rclpy.shutdown(context=context)
    assert not errors, errors
    assert codes == [0], f"pipeline exit code {codes}"
    for storage in STORAGES:
        run.results[storage] = results_from_bag(work / f"out_{storage}")
    with BagReader(work / "out_mcap") as reader:
        run.bag_hashes = {name.strip("/"): topic.digest for name, topic in reader.topics.items()}
    return run


def _boxes(msg: Any) -> list[dict[str, Any]]:
    found = []
    for det in msg.detections:
        cx, cy = det.bbox.center.position.x, det.bbox.center.position.y
        w, h = det.bbox.size_x, det.bbox.size_y
        best = det.results[0].hypothesis
        item: dict[str, Any] = {
            "box": [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2],
            "class": best.class_id,
            "score": float(best.score),
        }
        if det.id:
            item["id"] = int(det.id)
        found.append(item)
    return found


def _stamp(msg: Any) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


def results_from_bag(path: Path) -> dict[str, Any]:
    """``{"frames": {stamp: {"detections": [...], "tracks": [...]}}, "events": [...], "labels": [...],
    "counts": {topic: n}}`` from a recorded bag."""
    frames: dict[str, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    labels: list[str] = []
    counts: dict[str, int] = {}
    with BagReader(path) as reader:
        for message in reader.messages():
            topic = message.topic.strip("/")
            counts[topic] = counts.get(topic, 0) + 1
            msg: Any = reader.deserialize(message)
            if topic in ("detections", "tracks"):
                frames.setdefault(str(_stamp(msg)), {})[topic] = _boxes(msg)
            elif topic == "events":
                events.append(
                    {
                        "stamp": _stamp(msg),
                        "kind": msg.kind,
                        "rule": msg.rule,
                        "direction": msg.direction,
                        "track_id": int(msg.track_id),
                        "class_name": msg.class_name,
                        "score": float(msg.score),
                        "box": [float(v) for v in msg.bbox_xyxy],
                    }
                )
            elif topic == "label_info":
                labels = [c.class_name for c in sorted(msg.class_map, key=lambda c: c.class_id)]
    return {
        "frames": dict(sorted(frames.items(), key=lambda kv: int(kv[0]))),
        "events": events,
        "labels": labels,
        "counts": counts,
    }


def golden_document(run: ReplayRun) -> dict[str, Any]:
    result = run.results["mcap"]
    return {
        "about": "edge-vision replay of the first 120 frames of data/vtest.avi into the composed pipeline "
        "(config/pipeline.yaml, models/yolox_nano.onnx). Regenerate on purpose: python test/regen_golden.py",
        "frames": run.bag_frames,
        "results": {"frames": result["frames"], "events": result["events"]},
    }


def write_golden(run: ReplayRun, path: Path = GOLDEN) -> Path:
    """One line per frame and per event, so a regenerated file reviews as a readable diff."""
    document = golden_document(run)
    results = document["results"]
    frames = ",\n".join(f"   {json.dumps(stamp)}: {json.dumps(value)}" for stamp, value in results["frames"].items())
    events = ",\n".join(f"   {json.dumps(event)}" for event in results["events"])
    head = {k: v for k, v in document.items() if k != "results"}
    text = (
        "{\n"
        + "".join(f" {json.dumps(k)}: {json.dumps(v)},\n" for k, v in head.items())
        + f' "results": {{\n  "frames": {{\n{frames}\n  }},\n  "events": [\n{events}\n  ]\n }}\n}}\n'
    )
    assert json.loads(text) == document
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- comparison ---------------------------------------------------------------------------------------------

BOX_TOL_PX = 1e-3
SCORE_TOL = 1e-5


def _close(a: list[float], b: list[float], tol: float) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def compare(actual: dict[str, Any], golden: dict[str, Any]) -> list[str]:
    """Differences beyond the tolerances: boxes 1e-3 px, scores 1e-5; classes, track ids, event kinds, rules,
    directions, stamps and counts identical. Empty when they agree."""
    problems: list[str] = []
    want, got = golden["frames"], actual["frames"]
    if set(want) != set(got):
        missing, extra = sorted(set(want) - set(got), key=int), sorted(set(got) - set(want), key=int)
        problems.append(f"frame stamps differ: missing {missing[:5]}, unexpected {extra[:5]}")
    for stamp in sorted(set(want) & set(got), key=int):
        for topic in ("detections", "tracks"):
            a, b = got[stamp].get(topic), want[stamp].get(topic)
            if a is None or b is None:
                problems.append(f"frame {stamp}: {topic} {'missing' if a is None else 'unexpected'}")
                continue
            if len(a) != len(b):
                problems.append(f"frame {stamp}: {len(a)} {topic}, golden has {len(b)}")
                continue
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                if x["class"] != y["class"] or x.get("id") != y.get("id"):
                    problems.append(
                        f"frame {stamp} {topic}[{i}]: class/id {x['class']}/{x.get('id')}, golden "
                        f"{y['class']}/{y.get('id')}"
                    )
                if not _close(x["box"], y["box"], BOX_TOL_PX):
                    problems.append(f"frame {stamp} {topic}[{i}]: box {x['box']}, golden {y['box']}")
                if abs(x["score"] - y["score"]) > SCORE_TOL:
                    problems.append(f"frame {stamp} {topic}[{i}]: score {x['score']}, golden {y['score']}")
    a_events, b_events = actual["events"], golden["events"]
    if len(a_events) != len(b_events):
        problems.append(f"{len(a_events)} events, golden has {len(b_events)}")
    for i, (x, y) in enumerate(zip(a_events, b_events, strict=False)):
        exact = ("stamp", "kind", "rule", "direction", "track_id", "class_name")
        if any(x[k] != y[k] for k in exact):
            problems.append(f"event {i}: {[x[k] for k in exact]}, golden {[y[k] for k in exact]}")
        if not _close(x["box"], y["box"], BOX_TOL_PX) or abs(x["score"] - y["score"]) > SCORE_TOL:
            problems.append(f"event {i}: box/score {x['box']}/{x['score']}, golden {y['box']}/{y['score']}")
    return problems
