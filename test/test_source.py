"""PyAV file source on the real sample video, and what broken inputs do."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_vision.core.errors import ConfigError, SourceError
from edge_vision.core.sources.file import FileSource


def test_decodes_every_frame_with_media_clock_stamps(video: Path) -> None:
    with FileSource(str(video), camera_id="cam0") as source:
        frames = list(source.frames())
    assert len(frames) == 795
    assert frames[0].image.shape == (576, 768, 3) and frames[0].camera_id == "cam0"
    assert [f.sequence for f in frames[:3]] == [0, 1, 2]
    assert frames[10].stamp_ns - frames[0].stamp_ns == pytest.approx(1e9, abs=1e3)  # 10 fps
    assert frames[0].image.mean() > 50  # real pixels, not a blank buffer


def test_every_nth_keeps_source_indices(video: Path) -> None:
    with FileSource(str(video), every_nth=5, max_frames=4) as source:
        frames = list(source.frames())
        assert [f.sequence for f in frames] == [0, 5, 10, 15]
        assert source.frames_skipped == 12


def test_loop_continues_the_sequence(video: Path) -> None:
    with FileSource(str(video), loop=True, max_frames=800) as source:
        sequences = [f.sequence for f in source.frames()]
    assert sequences[-1] == 799 and len(set(sequences)) == 800


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"video file not found: .*missing.avi"):
        FileSource(str(tmp_path / "missing.avi"))
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes(b"not a video" * 1000)
    with pytest.raises(SourceError, match=r"cannot open video .*corrupt.avi"):
        FileSource(str(corrupt))


def test_truncated_file_yields_what_was_captured(video: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(video.read_bytes()[:2_000_000])  # a recording cut off mid-write
    with FileSource(str(truncated)) as source:
        frames = list(source.frames())
    assert 100 < len(frames) < 795


def test_bad_parameters_name_themselves(video: Path) -> None:
    with pytest.raises(ConfigError, match="every_nth"):
        FileSource(str(video), every_nth=0)
