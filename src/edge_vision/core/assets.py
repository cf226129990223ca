"""Where the bundled defaults (YOLOX-nano, COCO labels, sample video) live in a checkout or an install."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from edge_vision.core.errors import ConfigError

DEFAULT_MODEL = "models/yolox_nano.onnx"
DEFAULT_LABELS = "models/coco80_names.txt"
DEFAULT_VIDEO = "data/vtest.avi"


def _roots() -> list[Path]:
    roots = []
    if env := os.environ.get("EDGE_VISION_SHARE"):
        roots.append(Path(env))
    roots.append(Path(__file__).resolve().parents[3])  # a source checkout: <repo>/src/edge_vision/core
    roots.append(Path(sys.prefix) / "share" / "edge_vision")  # pip or colcon install
    if ament := os.environ.get("AMENT_PREFIX_PATH"):
        roots.extend(Path(p) / "share" / "edge_vision" for p in ament.split(os.pathsep) if p)
    return roots


def find(relative: str) -> Path:
    """Absolute path of a bundled file, or ConfigError listing where it was looked for."""
    roots = _roots()
    for root in roots:
        candidate = root / relative
        if candidate.is_file():
            return candidate
    raise ConfigError(f"bundled file {relative} not found under any of {[str(r) for r in roots]}")
