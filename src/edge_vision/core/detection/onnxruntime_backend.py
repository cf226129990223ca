"""ONNX Runtime inference backend: CPU, CUDA, TensorRT and OpenVINO execution providers, provider options passed
through as ``key=value`` strings, thread and session settings exposed."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from edge_vision.core.config import Param
from edge_vision.core.detection import common
from edge_vision.core.errors import ConfigError, ModelError

# Best first; "auto" takes those of these that the installed onnxruntime build offers.
_PREFERRED_PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "OpenVINOExecutionProvider",
    "CPUExecutionProvider",
)
ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}
_OPTIMIZATION = ("all", "extended", "basic", "disable")


def provider_name(name: str) -> str:
    return ALIASES.get(name.lower(), name)


def split_provider_options(
    items: Sequence[str], chosen: Sequence[str], where: str = "detector.provider_options"
) -> list[dict[str, str]]:
    """One options dict per chosen provider. ``key=value`` goes to the first (preferred) provider;
    ``provider:key=value`` (``tensorrt:trt_fp16_enable=1``, or the full provider name) to that provider."""
    per_provider: list[dict[str, str]] = [{} for _ in chosen]
    for item in items:
        head, sep, rest = str(item).partition("=")
        target = 0
        if ":" in head:
            name, _, key = head.partition(":")
            full = provider_name(name.strip())
            if full not in chosen:
                raise ConfigError(f"{where}: {item!r} is for {full}, which is not among the providers {list(chosen)}")
            target, head = list(chosen).index(full), key
        per_provider[target].update(common.parse_options([f"{head}{sep}{rest}"], where))
    return per_provider


class OnnxRuntimeBackend:
    """One ``InferenceSession`` with explicit threading, because on a small edge CPU the detector shares
    cores with decode and tracking threads: idle-spinning intra-op workers would steal them."""

    PARAMS: ClassVar[tuple[Param, ...]] = (
        Param(
            "providers",
            ["auto"],
            "onnxruntime execution providers, best first (full names or cpu/cuda/tensorrt/openvino); "
            "auto = those of TensorRT, CUDA, OpenVINO, CPU available",
        ),
        Param("intra_op_threads", 0, "inference threads (0 = onnxruntime default)", min=0, max=256),
        Param("allow_spinning", True, "let idle intra-op threads spin (lower latency, but they hold their cores)"),
        Param("inter_op_threads", 0, "threads across independent graph branches (parallel mode only)", min=0, max=256),
        Param("execution_mode", "sequential", "graph execution mode", choices=("sequential", "parallel")),
        Param("graph_optimization", "all", "onnxruntime graph optimisation level", choices=_OPTIMIZATION),
        Param(
            "provider_options",
            [""],
            "execution provider options as key=value (first provider) or provider:key=value, e.g. "
            "tensorrt:trt_engine_cache_enable=1",
        ),
        Param("session_config", [""], "onnxruntime session config entries as key=value"),
        *common.INPUT_PARAMS,
    )

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        providers: Sequence[str] | str = ("auto",),
        intra_op_threads: int = 0,
        allow_spinning: bool = True,
        inter_op_threads: int = 0,
        execution_mode: str = "sequential",
        graph_optimization: str = "all",
        provider_options: Sequence[str] = (),
        session_config: Sequence[str] = (),
        input_size: Sequence[int] = (),
        batch: int = 1,
    ) -> None:
        import onnxruntime as ort

        path = common.model_path_of(model_path)
        available = ort.get_available_providers()
        requested = [providers] if isinstance(providers, str) else list(providers)
        if requested in ([], ["auto"]):
            chosen = [p for p in _PREFERRED_PROVIDERS if p in available]
        else:
            chosen = [provider_name(p) for p in requested]
            missing = [p for p in chosen if p not in available]
            if missing:
                raise ConfigError(f"execution providers {missing} not available; this build offers {available}")
        if intra_op_threads < 0:
            raise ConfigError(f"intra_op_threads must be >= 0 (0 = onnxruntime default), got {intra_op_threads}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = inter_op_threads
        options.execution_mode = (
            ort.ExecutionMode.ORT_PARALLEL if execution_mode == "parallel" else ort.ExecutionMode.ORT_SEQUENTIAL
        )
        options.graph_optimization_level = {
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        }[graph_optimization]
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        for key, value in common.parse_options(session_config, "detector.session_config").items():
            options.add_session_config_entry(key, value)
        per_provider = split_provider_options(provider_options, chosen)
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=options, providers=chosen, provider_options=per_provider
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ModelError(f"cannot load model {path} with onnxruntime: {exc}") from exc
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"model {path} has {len(inputs)} inputs; a detector model needs exactly one image input")
        self.model_path = path
        self.providers: list[str] = self.session.get_providers()
        self.input_name: str = inputs[0].name
        self.metadata: Mapping[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        self.input_shape: tuple[int, ...] = common.resolve_input_shape(
            inputs[0].shape, input_size=input_size, batch=batch, metadata=self.metadata, path=path, name=inputs[0].name
        )
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.output_shapes: list[list[int | str | None]] = [list(o.shape) for o in self.session.get_outputs()]
        self.precision = _precision(inputs[0].type, self.session)

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the model expects."""
        return self.input_shape[2], self.input_shape[3]

    def class_names(self) -> list[str] | None:
        """Class names embedded in the model (Ultralytics exports store a ``names`` dict literal)."""
        return common.class_names(self.metadata)

    def infer(self, tensor: NDArray[np.float32]) -> Sequence[NDArray[np.float32]]:
        outputs: Sequence[NDArray[np.float32]] = self.session.run(None, {self.input_name: tensor})
        return outputs


def _precision(input_type: str, session: Any) -> str:
    """What the bench reports: fp16 for a float16-input model, int8 for a quantized graph, else fp32."""
    if "float16" in input_type:
        return "fp16"
    try:
        meta = session.get_modelmeta().custom_metadata_map
    except Exception:  # pragma: no cover - onnxruntime always has it
        meta = {}
    quantized = meta.get("edge_vision.precision") or ("int8" if "quant" in meta.get("onnx.infer", "") else "")
    return quantized or "fp32"
