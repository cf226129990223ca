"""Camera calibration (intrinsics) for sources: the ROS ``sensor_msgs/CameraInfo`` fields without ROS.

Configured with the source's parameters (``CALIBRATION_PARAMS``): either ``calibration_file``, a YAML file as
written by ROS' camera_calibration / camera_calibration_parsers, or an inline ``camera_matrix`` (and
``distortion``). A source exposes the result as ``camera_info`` (None when nothing is configured); the ROS
layer publishes it beside the images.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edge_vision.core.config import Param
from edge_vision.core.errors import ConfigError

DISTORTION_MODELS = ("plumb_bob", "rational_polynomial", "equidistant")
_IDENTITY: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

CALIBRATION_PARAMS = (
    Param("calibration_file", "", "camera calibration YAML (ROS camera_calibration format); empty = none"),
    Param("camera_matrix", [0.0], "inline intrinsics K, 9 numbers row-major (instead of calibration_file)"),
    Param("distortion_model", "plumb_bob", "model of the inline distortion coefficients", choices=DISTORTION_MODELS),
    Param("distortion", [0.0], "inline distortion coefficients D (plumb_bob: k1 k2 t1 t2 k3)"),
)


@dataclass(frozen=True, slots=True)
class CameraInfo:
    """The fields of ``sensor_msgs/CameraInfo``. width/height 0: the stream's size, known at its first frame."""

    width: int
    height: int
    distortion_model: str
    d: tuple[float, ...]
    k: tuple[float, ...]  # 3x3 row-major
    r: tuple[float, ...]  # 3x3
    p: tuple[float, ...]  # 3x4
    camera_name: str = ""

    def sized(self, width: int, height: int) -> CameraInfo:
        """This calibration with the stream's size filled in where the calibration did not give one."""
        if self.width and self.height:
            return self
        return replace(self, width=width, height=height)


def _matrix(raw: Any, where: str, size: int) -> tuple[float, ...]:
    data = raw.get("data") if isinstance(raw, dict) else raw
    if not isinstance(data, list) or len(data) != size:
        raise ConfigError(f"{where} must hold {size} numbers, got {data!r}")
    try:
        return tuple(float(v) for v in data)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where} must hold numbers, got {data!r}") from exc


def _projection(k: tuple[float, ...]) -> tuple[float, ...]:
    return (k[0], k[1], k[2], 0.0, k[3], k[4], k[5], 0.0, k[6], k[7], k[8], 0.0)


def load_calibration(path: str | Path, where: str = "camera.calibration_file") -> CameraInfo:
    """Read a ROS camera_calibration YAML (image_width, camera_matrix, distortion_coefficients...)."""
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{where}: calibration file not found: {file}")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: {file} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or "camera_matrix" not in raw:
        raise ConfigError(f"{where}: {file} is not a ROS camera calibration file (no camera_matrix)")
    k = _matrix(raw["camera_matrix"], f"{where} ({file}) camera_matrix", 9)
    model = str(raw.get("distortion_model", "plumb_bob"))
    coefficients = raw.get("distortion_coefficients", {"data": []})
    d_raw = coefficients.get("data") if isinstance(coefficients, dict) else coefficients
    d = _matrix(d_raw or [], f"{where} ({file}) distortion_coefficients", len(d_raw or []))
    r = _IDENTITY
    if "rectification_matrix" in raw:
        r = _matrix(raw["rectification_matrix"], f"{where} ({file}) rectification_matrix", 9)
    p = _projection(k)
    if "projection_matrix" in raw:
        p = _matrix(raw["projection_matrix"], f"{where} ({file}) projection_matrix", 12)
    try:
        width, height = int(raw.get("image_width", 0)), int(raw.get("image_height", 0))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {file}: image_width / image_height must be integers") from exc
    return CameraInfo(width, height, model, d, k, r, p, str(raw.get("camera_name", "")))


def calibration_from_params(
    calibration_file: str,
    camera_matrix: list[float],
    distortion_model: str,
    distortion: list[float],
    *,
    where: str = "camera",
) -> CameraInfo | None:
    """The calibration configured by ``CALIBRATION_PARAMS``, or None when none is."""
    if calibration_file and camera_matrix:
        raise ConfigError(f"{where}.calibration_file and {where}.camera_matrix are both set: use one")
    if calibration_file:
        return load_calibration(calibration_file, f"{where}.calibration_file")
    if not camera_matrix:
        if distortion:
            raise ConfigError(f"{where}.distortion is set without {where}.camera_matrix")
        return None
    k = _matrix(list(camera_matrix), f"{where}.camera_matrix", 9)
    d = tuple(float(v) for v in distortion)
    expected = {"plumb_bob": (5,), "rational_polynomial": (8,), "equidistant": (4,)}[distortion_model]
    if d and len(d) not in expected:
        raise ConfigError(f"{where}.distortion: {distortion_model} takes {expected[0]} coefficients, got {len(d)}")
    return CameraInfo(0, 0, distortion_model, d or (0.0,) * expected[0], k, _IDENTITY, _projection(k))
