"""ONNX Runtime inference backend (CPU, CUDA, TensorRT, OpenVINO execution providers)."""

from __future__ import annotations

import ast
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from edge_vision.core.config import Param
from edge_vision.core.errors import ConfigError, ModelError

# Best first; "auto" takes those of these that the installed onnxruntime build offers.
_PREFERRED_PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "OpenVINOExecutionProvider",
    "CPUExecutionProvider",
)


class OnnxRuntimeBackend:
    """One ``InferenceSession`` with explicit threading, because on a small edge CPU the detector shares
    cores with decode and tracking threads: idle-spinning intra-op workers would steal them."""

    PARAMS: ClassVar[tuple[Param, ...]] = (
        Param(
            "providers",
            ["auto"],
            "onnxruntime execution providers, best first; auto = those of TensorRT, CUDA, OpenVINO, CPU available",
        ),
        Param("intra_op_threads", 0, "inference threads (0 = onnxruntime default)", min=0, max=256),
        Param("allow_spinning", True, "let idle intra-op threads spin (lower latency, but they hold their cores)"),
    )

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        providers: Sequence[str] | str = ("auto",),
        intra_op_threads: int = 0,
        allow_spinning: bool = True,
    ) -> None:
        import onnxruntime as ort

        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        available = ort.get_available_providers()
        requested = [providers] if isinstance(providers, str) else list(providers)
        if requested in ([], ["auto"]):
            chosen = [p for p in _PREFERRED_PROVIDERS if p in available]
        else:
            chosen = requested
            missing = [p for p in chosen if p not in available]
            if missing:
                raise ConfigError(f"execution providers {missing} not available; this build offers {available}")
        options = ort.SessionOptions()
        if intra_op_threads < 0:
            raise ConfigError(f"intra_op_threads must be >= 0 (0 = onnxruntime default), got {intra_op_threads}")
        options.intra_op_num_threads = intra_op_threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ModelError(f"cannot load model {path} with onnxruntime: {exc}") from exc
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"model {path} has {len(inputs)} inputs; a detector model needs exactly one image input")
        self.model_path = path
        self.providers: list[str] = self.session.get_providers()
        self.input_name: str = inputs[0].name
        self.input_shape: tuple[int, ...] = tuple(d if isinstance(d, int) else -1 for d in inputs[0].shape)
        self.output_shapes: list[list[int | str | None]] = [list(o.shape) for o in self.session.get_outputs()]
        self.metadata: Mapping[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        if len(self.input_shape) != 4 or self.input_shape[1] != 3:
            raise ModelError(f"model {path} input {inputs[0].name} has shape {inputs[0].shape}; expected [1, 3, H, W]")

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the model expects."""
        return self.input_shape[2], self.input_shape[3]

    def class_names(self) -> list[str] | None:
        """Class names embedded in the model (Ultralytics exports store a ``names`` dict literal)."""
        names = self.metadata.get("names")
        if not names:
            return None
        try:
            parsed = ast.literal_eval(names)
        except (ValueError, SyntaxError):
            return None
        if isinstance(parsed, dict):
            return [str(parsed[k]) for k in sorted(parsed)]
        if isinstance(parsed, list):
            return [str(v) for v in parsed]
        return None

    def infer(self, tensor: NDArray[np.float32]) -> Sequence[NDArray[np.float32]]:
        outputs: Sequence[NDArray[np.float32]] = self.session.run(None, {self.input_name: tensor})
        return outputs
