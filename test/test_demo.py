"""The main job end to end: `edge-vision run` on the bundled video with the bundled model and config."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import av

from conftest import cli


def test_demo_finds_tracks_and_counts_line_crossings(tmp_path: Path, video: Path, model: Path) -> None:
    result = subprocess.run(cli("run", "--output-dir", str(tmp_path)), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "frames: 795" in result.stdout and "tracks:" in result.stdout

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["frames"] == 795
    assert summary["detections_per_class"]["person"] > 3000  # 5-12 people per frame walk through the scene
    # Stable ids: a few dozen people cross the square, each followed for many frames, not thousands of
    # fragments of a few frames each.
    assert 10 <= summary["tracks"] <= 120
    assert summary["median_track_length"] >= 30
    crossings = {k: v for k, v in summary["events"].items() if k.startswith("crossing/line_cross/")}
    assert sum(crossings.values()) >= 10 and set(crossings) == {"crossing/line_cross/in", "crossing/line_cross/out"}

    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert len(events) == sum(summary["events"].values())
    line_events = [e for e in events if e["kind"] == "line_cross"]
    assert all(e["class_name"] == "person" and e["track_id"] > 0 for e in line_events)
    # Jitter on the line must not fire back-and-forth pairs: a track's crossings are seconds apart.
    last: dict[int, int] = {}
    for event in line_events:
        assert event["sequence"] - last.get(event["track_id"], -100) >= 10, event
        last[event["track_id"]] = event["sequence"]

    with av.open(str(tmp_path / "annotated.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (768, 576)
        assert sum(1 for _ in container.decode(video=0)) == 795
