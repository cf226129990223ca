"""Secrets in configuration: one ``redact`` for everything that leaves the process (logs, exceptions,
diagnostics, summary.json, ROS parameter read-back), and ``${NAME}`` references expanded from the environment
where the value is used, so config files and ROS parameters carry no secret:

    camera:
      ros__parameters:
        source: stream
        uri: rtsp://admin:${CAM1_PASSWORD}@192.168.1.20:554/stream1

What counts as a secret: the password of a URL (``scheme://user:password@host``), the value of a query
parameter whose name looks secret (``?token=``, ``password=``, ``api_key=``, ``sig=``...), the value of a
parameter whose own name looks secret (``token``, ``password``...), and every value expanded from the
environment (remembered, and replaced wherever it shows up, e.g. in an FFmpeg message that quotes a URL
in a form the patterns above miss).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping

from edge_vision.core.errors import ConfigError

MASK = "***"
# Names of query parameters and configuration keys whose values are secrets.
SECRET_NAME = re.compile(r"pass|pwd|token|secret|key|auth|sig|credential|cookie", re.IGNORECASE)
# scheme://user:password@ in any text (a URL alone, or quoted inside a message).
# The password runs to the last "@" before the path, as urllib reads it: an unencoded "@" in it is masked too.
_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/@\s:'\"]*:)[^/\s'\"]*@")
# ?name=value / &name=value where the name looks secret.
_QUERY = re.compile(r"(?P<head>[?&;](?P<name>[^=&#\s'\"]+)=)(?P<value>[^&#\s'\"]*)")
_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}")

_MIN_KNOWN = 4
_known: set[str] = set()  # values expanded from the environment: redacted wherever they appear
_lock = threading.Lock()


def _query_value(match: re.Match[str]) -> str:
    if SECRET_NAME.search(match["name"]) and match["value"]:
        return f"{match['head']}{MASK}"
    return match[0]


def redact(text: str) -> str:
    """``text`` (a URL or a message quoting one) with every secret replaced by ``***``; the user name, host,
    path and ordinary query values stay, so the message still says which camera it is about."""
    if not text:
        return text
    result = _USERINFO.sub(lambda m: f"{m['head']}{MASK}@", text)
    if "=" in result:
        result = _QUERY.sub(_query_value, result)
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:  # longest first: a secret containing another is masked whole
        result = result.replace(value, MASK)
    return result


def redact_value(name: str, value: object) -> object:
    """A configuration value fit to show: all of it masked when ``name`` looks secret, else URLs and
    messages redacted (strings and lists of strings); other values unchanged."""
    leaf = name.rsplit(".", 1)[-1]
    if isinstance(value, str):
        if value and SECRET_NAME.search(leaf) and not _REFERENCE.fullmatch(value):
            return MASK
        return redact(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [str(redact_value(name, v)) for v in value]
    return value


def references(value: str) -> list[str]:
    """The ``${NAME}`` environment references in ``value``."""
    return [m["name"] for m in _REFERENCE.finditer(value)]


def check_references(value: str, where: str, environ: Mapping[str, str] | None = None) -> None:
    """ConfigError naming ``where`` and every ``${NAME}`` of ``value`` that the environment lacks (the names,
    never a value)."""
    env = os.environ if environ is None else environ
    missing = [name for name in references(value) if name not in env]
    if missing:
        raise ConfigError(
            f"{where} refers to environment variable(s) {', '.join(missing)}, which are not set "
            "(set them in the environment of the process, e.g. a systemd EnvironmentFile)"
        )


def expand(value: str, where: str, environ: Mapping[str, str] | None = None) -> str:
    """``value`` with each ``${NAME}`` replaced by the environment's ``NAME`` (ConfigError naming ``where``
    when one is not set). The expanded values are remembered as secrets: ``redact`` masks them anywhere.
    In a URL, a value is inserted as it is: percent-encode reserved characters (``@``, ``:``, ``/``) in it."""
    if "${" not in value:
        return value
    check_references(value, where, environ)
    env = os.environ if environ is None else environ
    for name in references(value):
        secret = env[name]
        # Masked wherever it appears; a very short value (a port, "1") would garble every message it occurs in
        # by chance, and inside a URL the patterns above mask it anyway.
        if len(secret) >= _MIN_KNOWN:
            with _lock:
                _known.add(secret)
    return _REFERENCE.sub(lambda m: env[m["name"]], value)
