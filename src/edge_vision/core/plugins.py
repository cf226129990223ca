"""Plugin discovery through entry points (one group per kind) and the one generic builder.

Built-in plugins are registered in this package's own ``setup.py`` exactly as third-party ones are, so
there is a single lookup path. ``register`` exists for tests and for embedding without packaging.

A plugin class declares its parameters in ``PARAMS`` (a tuple of ``config.Param``); ``build`` validates a
config mapping against them (unknown keys, types, ranges: errors naming ``where.parameter``), then calls the
class with those parameters plus the run-time context values its constructor names (``CONTEXT``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from edge_vision.core.config import Param, clean_list
from edge_vision.core.errors import ConfigError, EdgeVisionError, PluginError

GROUPS = {
    "sources": "edge_vision.sources",
    "backends": "edge_vision.backends",
    "model_adapters": "edge_vision.model_adapters",
    "trackers": "edge_vision.trackers",
    "rules": "edge_vision.rules",
    "actions": "edge_vision.actions",
}

# Values the runtime hands to a plugin constructor that asks for them by parameter name.
CONTEXT = ("name", "labels", "camera_id", "output_dir", "model_path", "input_size", "thresholds", "clock")

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


def schema(factory: Callable[..., Any]) -> dict[str, Param]:
    """The plugin's declared parameters by name (``PARAMS``; none declared = no parameters)."""
    return {p.name: p for p in getattr(factory, "PARAMS", ())}


def validate(kind: str, name: str, values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``values`` checked against plugin ``name``'s schema, defaults filled in; errors name ``where.key``."""
    params = schema(load(kind, name))
    unknown = sorted(k for k in values if k not in params)
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {', '.join(f'{where}.{k}' for k in unknown)} for {kind} plugin {name!r}; "
            f"it takes {sorted(params)}"
        )
    return {key: clean_list(p.validate(where, values.get(key, p.default))) for key, p in params.items()}


def build(kind: str, plugin: str, values: Mapping[str, Any], /, *, where: str, **context: Any) -> Any:
    """Instantiate ``plugin`` of ``kind`` from config ``values`` plus the context it asks for.

    Errors raised by the constructor (cross-field checks) come back as one ``ConfigError`` line naming
    ``where``; errors that already name their problem (``EdgeVisionError``: a missing model, a bad file)
    pass through as they are."""
    factory = load(kind, plugin)
    params = validate(kind, plugin, values, where)
    unknown_context = sorted(set(context) - set(CONTEXT))
    if unknown_context:
        raise PluginError(f"internal: context {unknown_context} is not one of {CONTEXT}")
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
        wanted = {k: v for k, v in context.items() if accepts_any or k in signature.parameters}
    else:
        wanted = dict(context)
    try:
        return factory(**params, **wanted)
    except EdgeVisionError as exc:
        if str(exc).startswith(where):
            raise
        raise type(exc)(f"{where}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {kind} plugin {plugin!r} rejected its parameters: {exc}") from exc


def create(kind: str, plugin: str, /, **params: Any) -> Any:
    """Instantiate ``plugin`` with keyword parameters as they are (no schema), naming it on bad parameters."""
    factory = load(kind, plugin)
    try:
        return factory(**params)
    except TypeError as exc:
        raise PluginError(f"{kind} plugin {plugin!r} rejected its parameters {sorted(params)}: {exc}") from exc
