"""Plugin discovery through entry points: one group per kind of stage.

Built-in plugins are registered in this package's own ``setup.py`` exactly as third-party ones are, so
there is a single lookup path. ``register`` exists for tests and for embedding without packaging.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from edge_vision.core.errors import PluginError

GROUPS = {
    "sources": "edge_vision.sources",
    "backends": "edge_vision.backends",
    "model_adapters": "edge_vision.model_adapters",
    "trackers": "edge_vision.trackers",
    "rules": "edge_vision.rules",
    "actions": "edge_vision.actions",
}

_registered: dict[str, dict[str, Callable[..., Any]]] = {group: {} for group in GROUPS.values()}


def _group(kind: str) -> str:
    if kind not in GROUPS:
        raise PluginError(f"unknown plugin kind {kind!r}; expected one of {sorted(GROUPS)}")
    return GROUPS[kind]


def register(kind: str, name: str, factory: Callable[..., Any]) -> None:
    """Register a plugin factory at run time (takes precedence over entry points)."""
    _registered[_group(kind)][name] = factory


def available(kind: str) -> list[str]:
    group = _group(kind)
    return sorted({ep.name for ep in entry_points(group=group)} | set(_registered[group]))


def load(kind: str, name: str) -> Callable[..., Any]:
    """Return the factory registered as ``name`` for ``kind``; raise PluginError naming the choices."""
    group = _group(kind)
    if name in _registered[group]:
        return _registered[group][name]
    matches = [ep for ep in entry_points(group=group) if ep.name == name]
    if not matches:
        raise PluginError(f"no {kind} plugin named {name!r} (entry-point group {group}); available: {available(kind)}")
    try:
        factory: Callable[..., Any] = matches[0].load()
    except Exception as exc:  # a broken third-party plugin must not look like a missing one
        raise PluginError(f"{kind} plugin {name!r} failed to load from {matches[0].value}: {exc}") from exc
    return factory


def create(kind: str, plugin: str, /, **params: Any) -> Any:
    """Instantiate ``plugin`` with keyword parameters, naming the plugin on bad parameters."""
    factory = load(kind, plugin)
    try:
        return factory(**params)
    except TypeError as exc:
        raise PluginError(f"{kind} plugin {plugin!r} rejected its parameters {sorted(params)}: {exc}") from exc
