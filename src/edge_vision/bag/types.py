"""The ``rosbags`` type store for this package's bags: ROS 2 Kilted's standard messages plus ``vision_msgs`` and
``edge_vision_msgs``, registered from their ``.msg`` files as installed (so a bag's definitions and RIHS01 hashes
are those of the types the nodes publish, and ``ros2 bag`` / Foxglove can read them)."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from edge_vision.core.errors import EdgeVisionError

# Interface packages that are not in rosbags' ROS 2 Kilted store.
MSG_PACKAGES = ("vision_msgs", "edge_vision_msgs")

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
CLOCK = "rosgraph_msgs/msg/Clock"

_REPO = Path(__file__).resolve().parents[3]
# A source checkout before set-up: the compat vision_msgs (used only where no vision_msgs is installed) and
# this repository's edge_vision_msgs.
_CHECKOUT = {
    "vision_msgs": _REPO / "compat" / "vision_msgs" / "msg",
    "edge_vision_msgs": _REPO / "src" / "edge_vision_msgs" / "msg",
}


class BagError(EdgeVisionError):
    """A bag cannot be written or read as asked (names the bag, topic or type)."""


def msg_folders(package: str) -> list[Path]:
    """Where ``package``'s ``.msg`` files are looked for, in order: every ament prefix, this Python's prefix
    (the venv set-up installs the interface packages there), then the source checkout."""
    prefixes = [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    prefixes.append(Path(sys.prefix))
    folders = [prefix / "share" / package / "msg" for prefix in prefixes]
    if package in _CHECKOUT:
        folders.append(_CHECKOUT[package])
    return folders


def find_msg_folder(package: str) -> Path:
    folders = msg_folders(package)
    for folder in folders:
        if any(folder.glob("*.msg")):
            return folder
    raise BagError(f"no .msg files of {package} under any of {[str(f) for f in folders]}: run scripts/setup.sh")


@functools.cache
def typestore() -> Typestore:
    """Kilted's standard types plus ``MSG_PACKAGES``; built once per process (~50 ms)."""
    store = get_typestore(Stores.ROS2_KILTED)
    for package in MSG_PACKAGES:
        folder = find_msg_folder(package)
        types: dict[str, Any] = {}
        for path in sorted(folder.glob("*.msg")):
            types.update(get_types_from_msg(path.read_text(encoding="utf-8"), f"{package}/msg/{path.stem}"))
        store.register(types)
    return store


def check_type(msgtype: str) -> str:
    """``msgtype`` in the ``pkg/msg/Name`` form, known to the store; BagError naming it otherwise."""
    if msgtype.count("/") == 1:  # pkg/Name, as some tools print it
        package, name = msgtype.split("/")
        msgtype = f"{package}/msg/{name}"
    if msgtype not in typestore().fielddefs:
        raise BagError(
            f"message type {msgtype} is unknown to the bag type store (Kilted standard types + {list(MSG_PACKAGES)})"
        )
    return msgtype


def has_header(msgtype: str) -> bool:
    """True when the type's first field is a std_msgs/Header (its stamp can be read from the CDR bytes)."""
    fields = typestore().fielddefs[msgtype][1]
    if not fields:
        return False
    name, (_kind, spec) = fields[0]
    return name == "header" and spec == "std_msgs/msg/Header"
