"""On-disk cache of TensorRT engines, and the checks that keep a stale or foreign engine from being loaded.

An engine is only valid for the exact model, GPU (name and compute capability), TensorRT version, precision,
batch profile, input size and DLA core it was built with (INT8: and its calibration). All of them go into the
key; the file name carries the key's digest and a JSON sidecar carries the key itself plus the model's
metadata (class names, imgsz: an engine file has no ONNX metadata). A lookup returns an engine only when the
sidecar matches the key exactly, so any change rebuilds, and nothing else does. Pure Python: tested without a
GPU or TensorRT.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge_vision.core.errors import ModelError

ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
SIDECAR_SUFFIX = ".json"
FORMAT = 1  # bump when the key's fields change


def default_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edge_vision" / "engines"


@dataclass(frozen=True, slots=True)
class EngineKey:
    """Everything an engine depends on. ``batch_profile`` is (min, opt, max); ``dla_core`` -1 = GPU only."""

    model_sha256: str
    gpu_name: str
    compute_capability: str
    tensorrt_version: str
    precision: str
    batch_profile: tuple[int, int, int]
    input_size: tuple[int, int]
    dla_core: int = -1
    calibration: str = ""  # INT8: digest of the calibration data / cache; "" otherwise
    format: int = FORMAT

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["batch_profile"] = list(self.batch_profile)
        values["input_size"] = list(self.input_size)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> EngineKey:
        data = dict(values)
        data["batch_profile"] = tuple(data["batch_profile"])
        data["input_size"] = tuple(data["input_size"])
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(slots=True)
class CachedEngine:
    path: Path
    key: EngineKey
    metadata: dict[str, str] = field(default_factory=dict)


def sidecar_of(engine: Path) -> Path:
    return engine.with_suffix(engine.suffix + SIDECAR_SUFFIX)


def read_sidecar(engine: Path) -> tuple[EngineKey, dict[str, str]] | None:
    """The key and model metadata stored beside ``engine``; None when there is no readable sidecar."""
    path = sidecar_of(engine)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return EngineKey.from_dict(data["key"]), {str(k): str(v) for k, v in data.get("metadata", {}).items()}
    except (ValueError, KeyError, TypeError):
        return None


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class EngineCache:
    """Engines under ``folder``, named ``<model stem>.<precision>.b<min>-<opt>-<max>.<digest>.engine``."""

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self.folder = Path(folder) if folder else default_folder()

    def path_for(self, key: EngineKey, stem: str) -> Path:
        low, opt, high = key.batch_profile
        return self.folder / f"{stem}.{key.precision}.b{low}-{opt}-{high}.{key.digest()}.engine"

    def lookup(self, key: EngineKey, stem: str) -> CachedEngine | None:
        """The cached engine for exactly ``key``, or None (missing, or its sidecar does not match)."""
        path = self.path_for(key, stem)
        if not path.is_file():
            return None
        stored = read_sidecar(path)
        if stored is None or stored[0] != key:
            return None
        return CachedEngine(path, key, stored[1])

    def store(self, key: EngineKey, stem: str, engine: bytes, metadata: Mapping[str, str] | None = None) -> Path:
        """Write the engine, then its sidecar (a reader that finds the sidecar finds the whole engine)."""
        path = self.path_for(key, stem)
        _atomic_write(path, engine)
        sidecar = {"key": key.as_dict(), "metadata": dict(metadata or {})}
        _atomic_write(sidecar_of(path), json.dumps(sidecar, indent=2, sort_keys=True).encode())
        return path

    def stale(self, key: EngineKey, stem: str) -> list[Path]:
        """Other engines of the same model file name (older builds, other GPUs or settings)."""
        current = self.path_for(key, stem)
        return sorted(p for p in self.folder.glob(f"{stem}.*.engine") if p != current)

    def prune(self, key: EngineKey, stem: str) -> list[Path]:
        """Delete the engines of ``stem`` built for the same GPU and precision that ``key`` replaces (a changed
        model or TensorRT), keeping those for other GPUs or settings a shared cache folder may serve."""
        removed = []
        for path in self.stale(key, stem):
            stored = read_sidecar(path)
            if stored is None or (
                stored[0].gpu_name == key.gpu_name
                and stored[0].precision == key.precision
                and stored[0].batch_profile == key.batch_profile
                and stored[0].input_size == key.input_size
                and stored[0].dla_core == key.dla_core
            ):
                path.unlink(missing_ok=True)
                sidecar_of(path).unlink(missing_ok=True)
                removed.append(path)
        return removed


def check_compatible(engine: Path, stored: EngineKey, gpu_name: str, compute_capability: str, trt_version: str) -> None:
    """A ``ModelError`` naming the difference when an engine file was built for another GPU or TensorRT."""
    problems = []
    if stored.compute_capability != compute_capability or stored.gpu_name != gpu_name:
        problems.append(
            f"it was built for GPU {stored.gpu_name!r} (compute capability {stored.compute_capability}), "
            f"this is {gpu_name!r} ({compute_capability})"
        )
    if stored.tensorrt_version != trt_version:
        problems.append(f"it was built with TensorRT {stored.tensorrt_version}, this is TensorRT {trt_version}")
    if problems:
        raise ModelError(
            f"TensorRT engine {engine} cannot run here: {'; '.join(problems)}. Rebuild it from the ONNX model "
            "(edge-vision build-engine MODEL.onnx, or give detector.model the .onnx and let the cache build it)"
        )
