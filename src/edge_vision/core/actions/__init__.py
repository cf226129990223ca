"""Actions do something with events (``JsonlEventLog``); ``VideoWriter`` is the sink for annotated images."""

from __future__ import annotations

from edge_vision.core.actions.jsonl import JsonlEventLog
from edge_vision.core.actions.video import VideoWriter

__all__ = ["JsonlEventLog", "VideoWriter"]
