"""Files written whole or not at all: each is written under a temporary name beside its target, then renamed, so a
killed job or a parallel writer never leaves a half-written file where a reader looks."""
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch


def replace_atomically(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(temporary path)`, then move the result to `path` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def save(obj, path: str | Path) -> Path:
    """torch.save, atomically."""
    return replace_atomically(path, lambda tmp: torch.save(obj, tmp))


def write_bytes(data: bytes, path: str | Path) -> Path:
    return replace_atomically(path, lambda tmp: tmp.write_bytes(data))
