"""Usage telemetry of the dependencies, switched off in one place (``disable``), before a runtime loads.

Measured on the installed versions:

- ONNX Runtime: ``onnxruntime.disable_telemetry_events()``. Its events go to Windows' ETW only (a no-op
  elsewhere), but the switch is documented and costs nothing, so it is always thrown.
- OpenVINO: the runtime (``openvino.Core``) sends nothing; its model conversion (``openvino.convert_model``,
  ``ovc``) reports usage to Google Analytics through ``openvino_telemetry`` *without asking* when no consent
  file exists (``enable_opt_in_dialog=False``: no file counts as consent). The consent check is made to
  answer "declined" for this process; the user's consent file (``~/intel/openvino_telemetry``) is not
  touched. ``test/test_hostile.py`` checks both the default (consent) and the switched-off state.
- OpenCV, PyAV/FFmpeg, NumPy, rclpy/Fast DDS, TensorRT, foxglove-sdk: no usage telemetry.
"""

from __future__ import annotations

import importlib.util
import threading
from typing import Any

_lock = threading.Lock()
_done = False


def disable() -> None:
    """Idempotent; imports only what is installed (and ONNX Runtime, which every default run loads anyway)."""
    global _done
    with _lock:
        if _done:
            return
        _done = True
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime

        onnxruntime.disable_telemetry_events()
    if importlib.util.find_spec("openvino_telemetry") is not None:
        from openvino_telemetry.utils import opt_in_checker  # type: ignore[import-untyped]

        def declined(self: Any, enable_opt_in_dialog: bool = True, disable_in_ci: bool = False) -> Any:
            return opt_in_checker.ConsentCheckResult.DECLINED

        opt_in_checker.OptInChecker.check = declined
