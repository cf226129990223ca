"""What every inference backend shares: the parameters that describe the model's input rather than the runtime
(``input_size``, ``batch``), the model metadata that adapters read (class names, input size, stride,
normalisation), ``key=value`` option lists (ROS parameters cannot nest), and one input-shape resolution so a
dynamic-shape model gets a configured or metadata size instead of a ``-1`` that would crash much later with
``negative dimensions``.
"""

from __future__ import annotations

import ast
import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edge_vision.core.config import Param
from edge_vision.core.errors import ConfigError, ModelError

INPUT_PARAMS: tuple[Param, ...] = (
    Param(
        "input_size",
        [0],
        "model input [height, width] (or [size]) for a model with dynamic spatial dimensions; "
        "[0] = the model's own shape, else its metadata (imgsz)",
    ),
    Param("batch", 1, "batch size the backend is prepared for (a dynamic-batch model is run at this batch)", min=1),
)


def model_path_of(model_path: str | os.PathLike[str]) -> Path:
    path = Path(model_path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    return path


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def parse_options(items: Sequence[str], where: str) -> dict[str, str]:
    """``["key=value", ...]`` (ROS parameters cannot hold a mapping) -> dict; errors name ``where``."""
    options: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{where}: {item!r} is not key=value")
        options[key.strip()] = value.strip()
    return options


def metadata_size(metadata: Mapping[str, str]) -> tuple[int, int] | None:
    """(height, width) from metadata ``imgsz`` (Ultralytics: ``[640, 640]`` or ``640``), if present."""
    raw = metadata.get("imgsz") or metadata.get("input_size")
    if not raw:
        return None
    try:
        value = ast.literal_eval(str(raw))
    except (ValueError, SyntaxError):
        return None
    if isinstance(value, int):
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    return None


def configured_size(input_size: Sequence[int], where: str = "detector.input_size") -> tuple[int, int] | None:
    values = [int(v) for v in input_size]
    if not values or values == [0]:
        return None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 1:
        raise ConfigError(f"{where} must be [height, width] or [size] of positive integers, got {list(input_size)}")
    return values[0], values[1]


def resolve_input_shape(
    shape: Sequence[Any],
    *,
    input_size: Sequence[int],
    batch: int,
    metadata: Mapping[str, str],
    path: Path,
    name: str,
) -> tuple[int, int, int, int]:
    """The static NCHW shape to run ``path``'s image input ``name`` at.

    A fixed dimension wins (a configured size that contradicts it is an error naming both); a dynamic height
    or width takes ``detector.input_size``, else the metadata ``imgsz``, else it is a ``ModelError`` naming the
    parameter; a dynamic batch takes ``detector.batch``."""
    dims = [d if isinstance(d, int) and d > 0 else -1 for d in shape]
    if len(dims) != 4 or dims[1] not in (3, -1):
        raise ModelError(f"model {path} input {name} has shape {list(shape)}; expected [N, 3, H, W]")
    wanted = configured_size(input_size)
    if -1 in dims[2:]:
        size = wanted or metadata_size(metadata)
        if size is None:
            raise ModelError(
                f"model {path} input {name} has dynamic height/width {list(shape)} and no imgsz metadata: "
                "set detector.input_size to [height, width]"
            )
        dims[2] = size[0] if dims[2] == -1 else dims[2]
        dims[3] = size[1] if dims[3] == -1 else dims[3]
    if wanted is not None and tuple(dims[2:]) != wanted:
        raise ModelError(
            f"model {path} input {name} is fixed at {dims[2]}x{dims[3]} (HxW) but detector.input_size asks for "
            f"{wanted[0]}x{wanted[1]}: leave detector.input_size at [0] or export the model with that size"
        )
    if dims[0] == -1:
        dims[0] = batch
    elif dims[0] != batch:
        raise ModelError(f"model {path} has a fixed batch of {dims[0]} but detector.batch is {batch}")
    return dims[0], 3, dims[2], dims[3]


def class_names(metadata: Mapping[str, str]) -> list[str] | None:
    """Class names from metadata ``names`` (Ultralytics: a dict literal ``{0: 'person', ...}``; a list, or one
    name per line, also accepted)."""
    names = metadata.get("names")
    if not names:
        return None
    try:
        parsed = ast.literal_eval(names)
    except (ValueError, SyntaxError):
        lines = [line.strip() for line in names.splitlines() if line.strip()]
        return lines if len(lines) > 1 else None
    if isinstance(parsed, dict):
        return [str(parsed[k]) for k in sorted(parsed)]
    if isinstance(parsed, (list, tuple)):
        return [str(v) for v in parsed]
    return None


def onnx_metadata(path: Path) -> dict[str, str]:
    """``metadata_props`` of an ONNX file without loading its weights into a runtime (used where the runtime
    does not expose them: TensorRT, calibration)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends
        raise ModelError(f"cannot read model {path} as ONNX: {exc}") from exc
    return {p.key: p.value for p in model.metadata_props}
