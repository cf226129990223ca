"""The one runtime: a graph of stages joined by bounded edges, built from config (``build``), with live
``Health``. The CLI, ``bench``, the tests and every ROS executable run this."""

from edge_vision.core.runtime.build import Pipeline, build_pipeline
from edge_vision.core.runtime.edges import Edge
from edge_vision.core.runtime.graph import Graph
from edge_vision.core.runtime.health import Health

__all__ = ["Edge", "Graph", "Health", "Pipeline", "build_pipeline"]
