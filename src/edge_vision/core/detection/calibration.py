"""Calibration data for INT8: frames from a folder of images or a video, pre-processed exactly as at run time
(the adapter's own ``preprocess``), stacked into batches. Used by the TensorRT entropy calibrator and by
``edge-vision quantize``; errors name the path."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from edge_vision.core.errors import ConfigError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def frames(source: str | os.PathLike[str], count: int, *, where: str = "calibration") -> Iterator[NDArray[np.uint8]]:
    """Up to ``count`` bgr8 frames: every image of a folder (sorted, spread evenly when there are more), or
    frames spread over a video (every n-th, n from its frame count)."""
    path = Path(source)
    if count < 1:
        raise ConfigError(f"{where}: the number of calibration frames must be >= 1, got {count}")
    if path.is_dir():
        files = image_files(path)
        if not files:
            raise ConfigError(f"{where}: folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        step = max(1, len(files) // count)
        for file in files[::step][:count]:
            image = cv2.imread(str(file), cv2.IMREAD_COLOR)
            if image is None:
                raise ConfigError(f"{where}: cannot read image {file}")
            yield image
        return
    if not path.is_file():
        raise ConfigError(f"{where}: {path} is neither a folder of images nor a video file")
    yield from _video_frames(path, count, where)


def _video_frames(path: Path, count: int, where: str) -> Iterator[NDArray[np.uint8]]:
    import av

    try:
        container = av.open(str(path))
    except Exception as exc:  # av raises its own error types per codec/format
        raise ConfigError(f"{where}: cannot open video {path}: {exc}") from exc
    with container:
        if not container.streams.video:
            raise ConfigError(f"{where}: {path} has no video stream")
        stream = container.streams.video[0]
        total = stream.frames or 0
        step = max(1, total // count) if total else 1
        produced = 0
        for index, frame in enumerate(container.decode(stream)):
            if index % step:
                continue
            yield frame.to_ndarray(format="bgr24")
            produced += 1
            if produced >= count:
                break
        if produced == 0:
            raise ConfigError(f"{where}: video {path} decoded no frames")


def tensors(
    source: str | os.PathLike[str], preprocess: Callable[[NDArray[np.uint8]], tuple[Any, Any]], count: int
) -> list[NDArray[np.float32]]:
    """The model input tensors ([1, 3, H, W]) of up to ``count`` calibration frames."""
    return [np.asarray(preprocess(image)[0], dtype=np.float32) for image in frames(source, count)]


def batches(items: list[NDArray[np.float32]], batch: int) -> Iterator[NDArray[np.float32]]:
    """Stack [1, 3, H, W] tensors into [batch, 3, H, W]; the last, short batch is dropped (TensorRT's
    calibrator needs full batches), unless it is the only one."""
    if batch < 1:
        raise ConfigError(f"calibration batch must be >= 1, got {batch}")
    full = len(items) // batch
    if full == 0 and items:
        yield np.ascontiguousarray(np.concatenate(items, axis=0))
        return
    for start in range(0, full * batch, batch):
        yield np.ascontiguousarray(np.concatenate(items[start : start + batch], axis=0))


def digest(items: list[NDArray[np.float32]]) -> str:
    """A short digest of the calibration tensors: part of an INT8 engine's cache key."""
    hasher = hashlib.sha256()
    for item in items:
        hasher.update(np.ascontiguousarray(item).tobytes())
    return hasher.hexdigest()[:16]
