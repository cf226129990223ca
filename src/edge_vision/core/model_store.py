"""``ModelStore``: the models a device has installed, and which one it runs.

    STORE/yolox_nano-3f2a9c1b7d4e.onnx      one file per installed model, named by content (sha256)
    STORE/current.onnx -> yolox_nano-...    what a (re)started pipeline loads: point detector.model here
    STORE/history.json                      every install / rollback, newest last

Files are copied under a temporary name and renamed, and ``current.onnx`` is replaced by renaming a new
symlink over it, so a power cut leaves either the old or the new model current, never half a file. A roll-out
to a running pipeline (``edge-vision model install --node``) makes the new model current only after it passed
its probation; ``rollback`` points ``current`` back at the previously accepted model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge_vision.core.actions.atomic import fsync_dir, publish, temp_path
from edge_vision.core.errors import ConfigError

__all__ = ["CURRENT", "ModelStore", "StoreEntry"]

CURRENT = "current.onnx"


@dataclass(frozen=True, slots=True)
class StoreEntry:
    model: str  # file name inside the store
    sha256: str
    source: str  # where it was installed from
    at: float  # unix time
    outcome: str  # "current" (offline install), "accepted ...", "rolled back ...", "rollback"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ModelStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"model store {self.root}: cannot create it: {exc.strerror}") from exc
        self.history_path = self.root / "history.json"

    # -- reading -------------------------------------------------------------------------------------------

    def history(self) -> list[StoreEntry]:
        if not self.history_path.is_file():
            return []
        try:
            raw = json.loads(self.history_path.read_text(encoding="utf-8"))
            return [StoreEntry(**item) for item in raw]
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"model store {self.root}: history.json is unreadable: {exc}") from exc

    def current(self) -> Path | None:
        link = self.root / CURRENT
        return link.resolve() if link.is_symlink() and link.resolve().is_file() else None

    # -- changing ------------------------------------------------------------------------------------------

    def add(self, source: str | Path) -> Path:
        """Copy ``source`` into the store (named by its content); returns the stored path."""
        src = Path(source)
        if not src.is_file():
            raise ConfigError(f"model file not found: {src}")
        sha = sha256_of(src)
        dest = self.root / f"{src.stem}-{sha[:12]}{src.suffix or '.onnx'}"
        if not dest.is_file() or sha256_of(dest) != sha:
            temp = temp_path(dest)
            try:
                shutil.copyfile(src, temp)
                with temp.open("rb") as f:
                    os.fsync(f.fileno())
                publish(temp, dest)
            except OSError as exc:
                temp.unlink(missing_ok=True)
                raise ConfigError(f"model store {self.root}: cannot store {src}: {exc.strerror}") from exc
        return dest

    def record(self, path: Path, source: str, outcome: str) -> StoreEntry:
        entry = StoreEntry(path.name, sha256_of(path), source, time.time(), outcome)
        entries = [*self.history(), entry]
        temp = temp_path(self.history_path)
        temp.write_text(json.dumps([asdict(e) for e in entries], indent=2) + "\n", encoding="utf-8")
        publish(temp, self.history_path)
        return entry

    def activate(self, path: Path) -> None:
        """Make ``path`` (a file in the store) what ``current.onnx`` points at, atomically."""
        if path.parent.resolve() != self.root.resolve() or not path.is_file():
            raise ConfigError(f"model store {self.root}: {path} is not a model in this store")
        link = self.root / CURRENT
        temp = temp_path(link)
        os.symlink(path.name, temp)
        os.replace(temp, link)
        fsync_dir(self.root)

    def previous(self) -> Path | None:
        """The model that was current before the current one (the target of ``rollback``)."""
        current = self.current()
        made_current = [e.model for e in self.history() if e.outcome.startswith(("current", "accepted", "rollback"))]
        for name in reversed(made_current):
            candidate = self.root / name
            if candidate.is_file() and (current is None or candidate.resolve() != current):
                return candidate
        return None

    def as_dict(self) -> dict[str, Any]:
        current = self.current()
        return {
            "store": str(self.root),
            "current": current.name if current else None,
            "history": [asdict(e) for e in self.history()],
        }
