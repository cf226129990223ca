"""Fleet operation: layered configuration (``edge-vision config show``), a device identity on every event, and
model roll-out with validation, probation and automatic rollback (core ``Rollout`` and ``edge-vision model``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml

from conftest import CONFIG, MODEL, VIDEO, ros2_at_node
from edge_vision.core import config
from edge_vision.core.errors import ConfigError, ModelError
from edge_vision.core.frame import FrameMeta
from edge_vision.core.model_store import ModelStore
from edge_vision.core.packet import FramePacket
from edge_vision.core.runtime.build import Pipeline
from edge_vision.core.runtime.health import OK, WARN

CLI = [sys.executable, "-m", "edge_vision.cli"]


def write(path: Path, document: dict) -> Path:
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


# -- layered configuration ---------------------------------------------------------------------------------


def layers(tmp_path: Path) -> list[Path]:
    site = write(
        tmp_path / "site.yaml",
        {
            "/**/detector": {"ros__parameters": {"confidence": 0.4}},
            "/**/pipeline": {"ros__parameters": {"device_id": "site-a-gateway"}},
        },
    )
    device = write(
        tmp_path / "device.yaml",
        {"detector": {"confidence": 0.45}, "pipeline": {"device_id": "box-0042"}, "camera": {"every_nth": 2}},
    )
    return [CONFIG, site, device]


def test_layers_merge_later_files_win_key_by_key(tmp_path: Path) -> None:
    files = layers(tmp_path)
    fleet = config.load_file(CONFIG)
    merged = config.load_files(files)
    assert merged["detector"]["confidence"] == 0.45  # device over site over fleet
    assert merged["pipeline"]["device_id"] == "box-0042"
    assert merged["camera"]["every_nth"] == 2
    # Untouched keys, and rule instances (mappings), come through from the fleet file.
    assert merged["detector"]["iou"] == fleet["detector"]["iou"]
    assert merged["events"]["rules"] == fleet["events"]["rules"]
    # A site layer that changes one field of one rule keeps the rule's other fields (deep merge, as ROS does).
    name = next(iter(fleet["events"]["rules"]))
    tweak = write(tmp_path / "tweak.yaml", {"events": {"rules": {name: {"classes": ["car"]}}}})
    tweaked = config.load_files([CONFIG, tweak])["events"]["rules"][name]
    assert tweaked["classes"] == ["car"]
    assert {k: v for k, v in tweaked.items() if k != "classes"} == {
        k: v for k, v in fleet["events"]["rules"][name].items() if k != "classes"
    }


def test_config_show_prints_the_merged_result_and_origins(tmp_path: Path) -> None:
    files = [str(p) for p in layers(tmp_path)]
    shown = subprocess.run([*CLI, "config", "show", *files], capture_output=True, text=True, timeout=60, check=True)
    document = yaml.safe_load(shown.stdout)
    # What it prints is itself a valid parameter file equal to the merge (to_ros_parameters writes the events'
    # rules out for a standalone visualizer as well).
    out = write(tmp_path / "merged.yaml", document)
    shown_sections, merged = config.load_file(out), config.load_files(files)
    assert shown_sections["visualizer"].pop("rules") == merged["events"]["rules"]
    merged["visualizer"].pop("rules")
    assert shown_sections == merged
    origin = subprocess.run(
        [*CLI, "config", "show", *files, "--origin"], capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()
    assert f"detector.confidence: {files[2]}" in origin
    assert f"pipeline.device_id: {files[2]}" in origin
    assert f"detector.iou: {files[0]}" in origin or not any(line.startswith("detector.iou:") for line in origin)


def test_a_bad_value_is_blamed_on_the_layer_that_set_it(tmp_path: Path) -> None:
    files = layers(tmp_path)
    bad = write(tmp_path / "bad-device.yaml", {"detector": {"confidence": 2.0}})
    with pytest.raises(ConfigError, match=r"bad-device\.yaml.*detector\.confidence must be <= 1"):
        config.load_files([*files, bad])
    result = subprocess.run([*CLI, "config", "show", *map(str, files), str(bad)], capture_output=True, text=True)
    assert result.returncode == 2 and "bad-device.yaml" in result.stderr and "Traceback" not in result.stderr


def test_device_id_on_every_event_and_in_the_summary(tmp_path: Path) -> None:
    files = [*layers(tmp_path)[:2], write(tmp_path / "d.yaml", {"pipeline": {"device_id": "box-0042"}})]
    out = tmp_path / "out"
    subprocess.run(
        [*CLI, "run", *map(str, files), "--max-frames", "300", "--output-dir", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert events, "the bundled config's rules fire on the first 300 frames"
    assert {e["device_id"] for e in events} == {"box-0042"}
    assert json.loads((out / "summary.json").read_text())["device_id"] == "box-0042"


# -- model roll-out (core) -----------------------------------------------------------------------------------


def poisoned_copy(tmp_path: Path) -> Path:
    """YOLOX-nano, plus a Gather that indexes out of bounds when the input's brightest value is over 200: it
    validates on dark frames (the letterbox pads with 114) and fails inside ONNX Runtime on bright ones."""
    model = onnx.load(str(MODEL))
    graph = model.graph
    image, output = graph.input[0].name, graph.output[0].name
    graph.output[0].name = "poisoned_output"
    graph.initializer.extend(
        [
            onnx.numpy_helper.from_array(np.array(200.0, np.float32), "poison_threshold"),
            onnx.numpy_helper.from_array(np.zeros(1, np.float32), "poison_table"),
        ]
    )
    graph.node.extend(
        [
            onnx.helper.make_node("ReduceMax", [image], ["poison_max"], keepdims=0),
            onnx.helper.make_node("Greater", ["poison_max", "poison_threshold"], ["poison_flag"]),
            onnx.helper.make_node("Cast", ["poison_flag"], ["poison_index"], to=onnx.TensorProto.INT64),
            onnx.helper.make_node("Gather", ["poison_table", "poison_index"], ["poison_value"]),
            onnx.helper.make_node("Add", [output, "poison_value"], ["poisoned_output"]),
        ]
    )
    path = tmp_path / "poisoned.onnx"
    onnx.save(model, str(path))
    return path


def detect_only(**detector: object) -> Pipeline:
    sections = config.load_file(CONFIG)
    sections["detector"] = config.resolve("detector", {**sections["detector"], **detector})
    # Every failing frame of a poisoned model counts: the error budget must not end the run first.
    sections["pipeline"] = config.resolve("pipeline", {**sections["pipeline"], "error_budget": 1000})
    pipeline = Pipeline(sections, stages=("detect",))
    pipeline.start()
    return pipeline


def feed(pipeline: Pipeline, value: int, count: int, start: int = 0) -> None:
    image = np.full((480, 640, 3), value, np.uint8)
    for index in range(start, start + count):
        meta = FrameMeta(stamp_ns=index * 33_000_000, camera_id="camera", sequence=index, width=640, height=480)
        assert pipeline.graph.feed("detect", FramePacket(meta, image))
        time.sleep(0.01)


def settle(pipeline: Pipeline, processed: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stage = next(s for s in pipeline.health.report().stages if s.name == "detect")
        if stage.processed + stage.errors >= processed:
            return
        time.sleep(0.05)
    raise AssertionError(f"the detect stage did not take {processed} frames in {timeout} s")


@pytest.mark.parametrize("poisoned", [False, True], ids=["control-good-model", "poisoned-model"])
def test_rollout_probation_rolls_back_a_model_that_fails_live(tmp_path: Path, poisoned: bool) -> None:
    good = tmp_path / "copy.onnx"
    shutil.copyfile(MODEL, good)
    candidate = poisoned_copy(tmp_path) if poisoned else good
    pipeline = detect_only(probation_s=1.0, rollback_max_errors=0)
    assert pipeline.rollout is not None and pipeline.detect is not None
    rolled_back: list[tuple[str, str]] = []
    pipeline.rollout.on_rollback = lambda model, reason: rolled_back.append((model, reason))
    try:
        feed(pipeline, 0, 5)  # dark frames: what the new model is validated on
        settle(pipeline, 5)
        old = pipeline.detect.generation.model
        pipeline.reconfigure("detector", {**pipeline.sections["detector"], "model": str(candidate)})
        assert pipeline.detect.generation.model == str(candidate)
        feed(pipeline, 255, 30, start=5)  # bright frames: the poisoned model fails on every one
        assert pipeline.rollout.wait(30)
        settle(pipeline, 35)
        report = pipeline.health.report()
        if poisoned:
            assert pipeline.detect.generation.model == old
            assert rolled_back and rolled_back[0][0] == old and "errors in probation" in rolled_back[0][1]
            model = next(c for c in report.conditions if c.name == "model")
            assert model.level == WARN and "rolled back" in model.message and "poisoned.onnx" in model.message
            # The old model serves again: later bright frames are detected without errors.
            before = next(s for s in report.stages if s.name == "detect")
            # The old model was back on the frame after the first failure (rollback_max_errors 0, one worker).
            assert 1 <= before.errors <= 2
            feed(pipeline, 255, 10, start=35)
            settle(pipeline, before.processed + before.errors + 10)
            after = next(s for s in pipeline.health.report().stages if s.name == "detect")
            assert after.errors == before.errors and after.processed == before.processed + 10
        else:
            assert pipeline.detect.generation.model == str(candidate)
            assert not rolled_back and pipeline.rollout.last_outcome.startswith("accepted")
            assert all(c.name != "model" for c in report.conditions) and report.level == OK
    finally:
        pipeline.stop()
        pipeline.close()


def test_rollout_refuses_an_unusable_model_and_keeps_running(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(MODEL.read_bytes()[:20_000])  # a truncated download
    pipeline = detect_only()
    assert pipeline.detect is not None
    try:
        feed(pipeline, 60, 3)
        settle(pipeline, 3)
        old = pipeline.detect.generation.model
        with pytest.raises(ModelError, match=r"broken\.onnx"):
            pipeline.reconfigure("detector", {**pipeline.sections["detector"], "model": str(broken)})
        assert pipeline.detect.generation.model == old
        feed(pipeline, 60, 3, start=3)
        settle(pipeline, 6)
        assert next(s for s in pipeline.health.report().stages if s.name == "detect").errors == 0
    finally:
        pipeline.stop()
        pipeline.close()


# -- model store and the CLI ---------------------------------------------------------------------------------


def test_model_store_install_offline_and_rollback(tmp_path: Path) -> None:
    store = tmp_path / "store"
    first, second = tmp_path / "a.onnx", tmp_path / "b.onnx"
    shutil.copyfile(MODEL, first)
    model = onnx.load(str(MODEL))
    model.doc_string = "retrained"  # other bytes, same network
    onnx.save(model, str(second))
    for path in (first, second):
        subprocess.run(
            [*CLI, "model", "install", str(path), "--store", str(store), "--samples", str(VIDEO)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    listing = ModelStore(store)
    current = listing.current()
    assert current is not None and current.name.startswith("b-")
    assert (store / "current.onnx").resolve() == current
    result = subprocess.run([*CLI, "model", "rollback", "--store", str(store)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    current = listing.current()
    assert current is not None and current.name.startswith("a-")
    assert [e.outcome for e in listing.history()] == ["current", "current", "rollback"]
    # A broken model never reaches the store.
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    result = subprocess.run(
        [*CLI, "model", "install", str(broken), "--store", str(store), "--samples", str(VIDEO)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "broken.onnx" in result.stderr and "Traceback" not in result.stderr
    assert len(listing.history()) == 3 and not any(p.name.startswith("broken") for p in store.iterdir())


def test_model_install_rolls_out_to_a_running_pipeline(tmp_path: Path) -> None:
    """`edge-vision model install --node /detector` against `ros2 launch`: the running pipeline validates the
    model, swaps it in without a restart, holds it on probation, and the store makes it current."""
    from test_ros_tools import echo_once, finish, launched, params_file

    params = params_file(tmp_path, loop=True, rate=1.0)
    document = yaml.safe_load(params.read_text())
    document["/**/detector"]["ros__parameters"]["probation_s"] = 2.0
    # Latency is judged in probation; this machine is shared, so only a gross slowdown may roll back here.
    document["/**/detector"]["ros__parameters"]["rollback_latency_ratio"] = 5.0
    params.write_text(yaml.safe_dump(document))
    candidate = tmp_path / "retrained.onnx"
    shutil.copyfile(MODEL, candidate)
    store = tmp_path / "store"
    with launched("pipeline.launch.py", f"params_file:={params}", log=tmp_path / "launch.log"):
        finish(echo_once("/detections", "vision_msgs/msg/Detection2DArray"))  # frames flow
        result = subprocess.run(
            [*CLI, "model", "install", str(candidate), "--store", str(store), "--node", "/detector", "--timeout", "30"],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "probation of" in result.stdout and "accepted" in result.stdout, result.stdout
        current = ModelStore(store).current()
        assert current is not None and current.name.startswith("retrained-")
        running = ros2_at_node("param", "get", "/detector", "model")
        assert str(current) in running.stdout, running.stdout
        # Detections keep flowing from the new model.
        assert finish(echo_once("/detections", "vision_msgs/msg/Detection2DArray"))
        # A model that fails on the running node's frames is refused by it (validated here on dark frames, it
        # fails inside ONNX Runtime on the video's bright ones), and the store keeps the current model.
        refused = subprocess.run(
            [
                *CLI,
                *("model", "install", str(poisoned_copy(tmp_path)), "--store", str(store), "--node", "/detector"),
                *("--timeout", "30", "--samples", str(dark_samples(tmp_path))),
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert re.search(r"/detector refused the model: .*poisoned-\w+\.onnx failed on a sample frame", refused.stderr)
        assert ModelStore(store).current() == current


def dark_samples(tmp_path: Path) -> Path:
    import cv2

    folder = tmp_path / "dark"
    folder.mkdir()
    for index in range(3):
        cv2.imwrite(str(folder / f"{index}.png"), np.full((480, 640, 3), 20 * index, np.uint8))
    return folder
