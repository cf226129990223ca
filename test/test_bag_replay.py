"""Bags: the replay regression test against the golden file, and the player's pacing, clock, stepping and loss
reporting. Real rclpy / Fast DDS (localhost), the real sample video and model, real mcap and sqlite3 bags.

Regression (``test_replay_of_vtest_matches_golden``): ``edge-vision make-bag`` writes the first 120 frames of
data/vtest.avi; ``edge-vision replay --as-fast-as-possible`` plays them into a composed pipeline that has no
source of its own (it takes ``image_raw`` from the topic); two ``edge-vision record`` processes (mcap, sqlite3)
record ``detections``, ``tracks``, ``events`` and ``label_info``. Every frame of the bag must come back, and the
results must match ``test/golden/replay_vtest.json``:

- boxes within 1e-3 px, scores within 1e-5 (ONNX Runtime's CPU kernels differ in the last bits between
  instruction sets; the decoder and everything after it are exact);
- classes, track ids, frame stamps, and events (stamp, kind, rule, direction, track id, class) identical.

A deliberate change of model, config, detector or tracker changes the results: regenerate the golden file on
purpose with ``python test/regen_golden.py`` and review its diff.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from bag_replay import FRAMES, GOLDEN, RECORDED, STORAGES, cli, compare, run_replay, wait_for
from conftest import LABELS, VIDEO
from edge_vision.bag.io import BagReader
from edge_vision.bag.video import make_bag
from edge_vision.ros.conversions import stamp_to_ns
from ros_participant import Participant

RELIABLE = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
BEST_EFFORT = QoSProfile(depth=1000, reliability=ReliabilityPolicy.BEST_EFFORT)


@pytest.mark.slow
def test_replay_of_vtest_matches_golden(tmp_path: Path, video: Path, model: Path) -> None:
    run = run_replay(tmp_path)

    # Every frame of the bag was processed: one detections and one tracks message per image, by stamp.
    assert run.bag_frames == FRAMES and len(run.bag_stamps) == FRAMES
    assert f"{FRAMES}/{FRAMES} images acknowledged on /tracks" in run.replay_output, run.replay_output
    assert run.frames_processed == FRAMES
    for storage in STORAGES:
        result = run.results[storage]
        assert result["counts"]["detections"] == FRAMES, (storage, result["counts"])
        assert result["counts"]["tracks"] == FRAMES, (storage, result["counts"])
        assert result["counts"]["label_info"] == 1
        assert sorted(int(stamp) for stamp in result["frames"]) == run.bag_stamps
        assert all(set(frame) == {"detections", "tracks"} for frame in result["frames"].values())
    # Both storages hold the same messages, and the recorded labels are the model's.
    assert run.results["mcap"] == run.results["sqlite3"]
    assert run.results["mcap"]["labels"] == LABELS.read_text().split("\n")[:80]
    # The bag's type definitions are the live ones (same RIHS01 hash as the publishers'): ros2 bag and Foxglove
    # decode them.
    for topic in ("detections", "tracks", "events"):
        assert run.bag_hashes[topic] == run.live_hashes[topic], topic

    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert golden["frames"] == FRAMES
    assert len(golden["results"]["events"]) > 0, "the golden run must exercise the rules"
    problems = compare(run.results["mcap"], golden["results"])
    assert not problems, (
        f"{len(problems)} difference(s) from {GOLDEN.name} (if the change is intended: python test/regen_golden.py):\n"
        + "\n".join(problems[:30])
    )


# -- the player on its own ---------------------------------------------------------------------------------


class Peer(Participant):
    """Another participant: records what it hears and can act as a pipeline acknowledging frames on ``tracks``."""

    def __init__(self) -> None:
        super().__init__("test_peer")
        self.images: list[Image] = []
        self.clock: list[int] = []
        self.arrivals: list[float] = []
        self.spin()

    def listen(self, *, ack_except: set[int] | None = None, clock: bool = False) -> None:
        """Subscribe image_raw; with ``ack_except`` also publish tracks for every image but those stamps."""
        tracks = self.node.create_publisher(Detection2DArray, "tracks", RELIABLE) if ack_except is not None else None

        def on_image(msg: Image) -> None:
            self.images.append(msg)
            self.arrivals.append(time.monotonic())
            if tracks is not None and stamp_to_ns(msg.header.stamp) not in (ack_except or set()):
                tracks.publish(Detection2DArray(header=msg.header))

        self.node.create_subscription(Image, "image_raw", on_image, RELIABLE)
        if clock:
            self.node.create_subscription(
                Clock, "/clock", lambda m: self.clock.append(stamp_to_ns(m.clock)), BEST_EFFORT
            )


@pytest.fixture()
def peer() -> Iterator[Peer]:
    peer = Peer()
    yield peer
    peer.close()


@pytest.fixture(scope="module")
def small_bag(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    made = make_bag(VIDEO, tmp_path_factory.mktemp("bags") / "ten", max_frames=10)
    return made.path, made.stamps_ns


def replay(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli("replay", *args), input=stdin, capture_output=True, text=True, timeout=120)


def stamps(images: list[Image]) -> list[int]:
    return [stamp_to_ns(m.header.stamp) for m in images]


def test_replay_at_rate_keeps_stamps_and_publishes_clock(peer: Peer, small_bag: tuple[Path, list[int]]) -> None:
    bag, recorded = small_bag
    peer.listen(clock=True)
    done = replay(str(bag), "--rate", "2.0", "--clock")
    assert done.returncode == 0, done.stderr
    assert "without acknowledgements" in done.stderr  # nothing publishes tracks here
    wait_for(lambda: len(peer.images) == len(recorded), "every image", 10)
    assert stamps(peer.images) == recorded  # the recorded header stamps, in order
    # 0.9 s of media time at rate 2: about 0.45 s between the first and the last image.
    span = peer.arrivals[-1] - peer.arrivals[0]
    assert 0.35 < span < 1.5, span
    # /clock follows the bag time: never backwards, within the bag, reaching the last stamp.
    assert peer.clock and peer.clock == sorted(peer.clock)
    assert recorded[0] <= peer.clock[0] and peer.clock[-1] == recorded[-1]
    assert len(peer.clock) > len(recorded)  # also between messages (40 Hz)


def test_replay_steps_on_enter_and_quits_on_q(peer: Peer, small_bag: tuple[Path, list[int]]) -> None:
    bag, recorded = small_bag
    peer.listen(ack_except=set())
    done = replay(str(bag), "--step", "--step-count", "3", stdin="\n\nq\n")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("Enter plays 3 more") == 3
    assert "6/6 images acknowledged on /tracks" in done.stdout
    wait_for(lambda: len(peer.images) == 6, "six images", 10)
    time.sleep(0.3)
    assert stamps(peer.images) == recorded[:6]


def test_replay_holds_back_and_reports_frames_never_acknowledged(peer: Peer, small_bag: tuple[Path, list[int]]) -> None:
    bag, recorded = small_bag
    peer.listen(ack_except=set(recorded[4:]))  # a pipeline that stops answering after 4 frames
    done = replay(str(bag), "--as-fast-as-possible", "--window", "2", "--ack-timeout", "2")
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"2 of 6 image(s) were not acknowledged on /tracks within 2 s (first stamp {recorded[4]} ns)" in done.stderr
    # Flow control: never more than 2 images unacknowledged, so the last 4 were never sent into the stall.
    time.sleep(0.3)
    assert stamps(peer.images) == recorded[:6]


def test_replay_without_subscriber_fails_naming_the_topic(small_bag: tuple[Path, list[int]]) -> None:
    done = replay(str(small_bag[0]), "--wait-timeout", "1")
    assert done.returncode == 1
    assert "/image_raw: 0 subscriber(s) after 1 s" in done.stderr and "ROS_DOMAIN_ID" in done.stderr


def test_make_bag_lossless_png_in_sqlite3(tmp_path: Path, video: Path) -> None:
    raw = make_bag(video, tmp_path / "raw", max_frames=3)
    png = make_bag(video, tmp_path / "png", max_frames=3, storage="sqlite3", fmt="png", frame_id="cam")
    assert (tmp_path / "png" / "png.db3").is_file() and raw.stamps_ns == png.stamps_ns == [0, 100_000_000, 200_000_000]
    with BagReader(raw.path) as a, BagReader(png.path) as b:
        assert {t.msgtype for t in b.topics.values()} == {"sensor_msgs/msg/CompressedImage"}
        assert list(b.topics) == ["/image_raw/compressed"]
        for x, y in zip(a.messages(), b.messages(), strict=True):
            image: Any = a.deserialize(x)
            compressed: Any = b.deserialize(y)
            assert compressed.header.frame_id == "cam" and image.header == type(image.header)(
                stamp=compressed.header.stamp, frame_id="camera"
            )
            pixels = np.asarray(image.data).reshape(image.height, image.width, 3)
            assert np.array_equal(cv2.imdecode(np.asarray(compressed.data), cv2.IMREAD_COLOR), pixels)


def test_record_refuses_an_existing_bag(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    done = subprocess.run(cli("record", str(tmp_path / "taken"), "--topics", *RECORDED), capture_output=True, text=True)
    assert done.returncode == 2
    assert "already exists" in done.stderr and "taken" in done.stderr


def test_ack_timeout_runs_only_while_frames_are_out() -> None:
    """A pipeline idle before the first frame (discovery, settling) is not 'no progress': the clock starts when a
    frame goes out, so acknowledgements that take a moment under load are waited for."""
    from edge_vision.ros.replay import _Acks

    acks = _Acks()
    acks.last_progress -= 60.0  # a minute of set-up before the first frame
    acks.sent("/tracks", 1)
    acks.sent("/tracks", 2)
    threading.Timer(0.3, acks.received, args=("/tracks", 1)).start()
    assert acks.wait_below(2, timeout=2.0, alive=lambda: True)
    assert acks.lost() == [2]
