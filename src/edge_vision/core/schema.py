"""JSON Schema of the config, generated from the same declarations that validate it and that declare the ROS
parameters (``config.SCHEMA`` and each installed plugin's ``PARAMS``): one source of truth.

A document is ``{section or /**/section: {ros__parameters: {...}}}`` (or the section body directly)."""

from __future__ import annotations

from typing import Any

from edge_vision.core import config, plugins


def param_schema(param: config.Param) -> dict[str, Any]:
    default = param.default
    result: dict[str, Any] = {"description": param.description, "default": default}
    if isinstance(default, bool):
        result["type"] = "boolean"
    elif isinstance(default, int):
        result["type"] = "integer"
    elif isinstance(default, float):
        result["type"] = "number"
    elif isinstance(default, str):
        result["type"] = "string"
    elif isinstance(default, list):
        item = {str: "string", float: "number", int: "integer"}[type(default[0])] if default else "string"
        result["type"] = "array"
        result["items"] = {"type": item}
    if param.min is not None:
        result["minimum"] = param.min
    if param.max is not None:
        result["maximum"] = param.max
    if param.choices:
        result["enum"] = list(param.choices)
    return result


def _properties(params: dict[str, config.Param]) -> dict[str, Any]:
    return {name: param_schema(p) for name, p in params.items()}


def _instances(kind: str) -> dict[str, Any]:
    """A mapping name -> instance, or a list of instances; each instance is one plugin's params plus type."""
    variants = []
    for name in plugins.available(kind):
        try:
            schema = plugins.schema(plugins.load(kind, name))
        except plugins.PluginError:
            continue
        properties = {"type": {"const": name}, "name": {"type": "string"}, **_properties(schema)}
        variants.append(
            {"type": "object", "properties": properties, "required": ["type"], "additionalProperties": False}
        )
    instance = {"oneOf": variants}
    return {"oneOf": [{"type": "object", "additionalProperties": instance}, {"type": "array", "items": instance}]}


def section_schema(section: str) -> dict[str, Any]:
    properties = _properties(config.SCHEMA[section])
    body: dict[str, Any] = {"type": "object", "properties": properties}
    for key, kind in config.INSTANCE_KEYS.get(section, {}).items():
        properties[key] = _instances(kind)
    if section in config.PLUGIN_SECTIONS:
        kind, selector = config.PLUGIN_SECTIONS[section]
        default = config.SCHEMA[section][selector].default
        branches = []
        names = []
        for name in plugins.available(kind):
            try:
                schema = plugins.schema(plugins.load(kind, name))
            except plugins.PluginError:
                continue
            names.append(name)
            # The selector may be left out only for the default plugin: each other branch applies only when
            # its name is given (an absent property would satisfy every ``if``).
            condition: dict[str, Any] = {"properties": {selector: {"const": name}}}
            if name != default:
                condition["required"] = [selector]
            branch_props = {**properties, **_properties(schema)}
            branch: dict[str, Any] = {"if": condition, "then": {"properties": branch_props}}
            if section != "camera":
                branch["then"]["additionalProperties"] = False
            branches.append(branch)
        properties[selector] = {**properties[selector], "enum": names}
        body["allOf"] = branches
        if section == "camera":
            # Per-camera overrides: camera: {front: {uri: ...}}, each a camera section of its own. Keys the
            # selected source's branch evaluated are not "unevaluated"; anything else must be an override
            # (never ros__parameters itself, or a wrapped document would also match the unwrapped form).
            override = {"type": "object", "properties": properties, "allOf": branches, "unevaluatedProperties": False}
            body["propertyNames"] = {"not": {"const": "ros__parameters"}}
            body["unevaluatedProperties"] = override
    else:
        body["additionalProperties"] = False
    return {
        "oneOf": [
            body,
            {
                "type": "object",
                "properties": {"ros__parameters": body},
                "required": ["ros__parameters"],
                "additionalProperties": False,
            },
        ]
    }


def json_schema() -> dict[str, Any]:
    sections = {section: section_schema(section) for section in config.SCHEMA}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "edge_vision pipeline configuration",
        "type": "object",
        "patternProperties": {f"^(/\\*\\*/)?{section}$": schema for section, schema in sections.items()},
        "additionalProperties": False,
    }
