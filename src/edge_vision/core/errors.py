"""Errors that name the problem: every user-facing failure is one of these."""


class EdgeVisionError(Exception):
    """Base class of all edge_vision errors."""


class ConfigError(EdgeVisionError):
    """A configuration value is missing, of the wrong type or out of range."""


class ModelError(EdgeVisionError):
    """A model file is missing, unreadable, or does not fit the chosen adapter."""


class SourceError(EdgeVisionError):
    """A video source cannot be opened or decoded."""


class PluginError(EdgeVisionError):
    """A plugin name is unknown or its entry point fails to load."""
