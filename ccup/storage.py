"""Files written whole or not at all: each is written under a unique temporary name beside its target, flushed to
disk, then renamed, so a killed job, a dead node or a parallel writer (also on a shared filesystem) never leaves a
half-written file where a reader looks. Temporary names start with a dot and end in .tmp: no reader globs them."""
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch


def file_mode() -> int:
    """The permissions open() gives a new file (0o666 less the umask): mkstemp's 0o600 would hide results and cache
    entries from the other users of a shared filesystem. Read once, at import: setting the umask to read it is not
    thread-safe."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = file_mode()


def replace_atomically(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(temporary path)`, then move the result to `path` in one step. On any error (a full disk, a
    read-only folder) `path` is left as it was and the temporary file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(tmp))
        os.chmod(tmp, FILE_MODE)
        sync(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def sync(path: str | Path) -> None:
    """Flush a file's bytes to disk: renamed before its data is written, a file can come back empty after a crash,
    and a network filesystem may only report a full disk here."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def check_writable(folder: str | Path) -> None:
    """Raise the OSError that creating a file in `folder` raises (read-only, no permission, missing parent)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=folder, prefix=".write-check.", suffix=".tmp")
    os.close(handle)
    os.remove(tmp)


def save(obj, path: str | Path) -> Path:
    """torch.save, atomically."""
    return replace_atomically(path, lambda tmp: torch.save(obj, tmp))


def write_bytes(data: bytes, path: str | Path) -> Path:
    return replace_atomically(path, lambda tmp: tmp.write_bytes(data))


def digest(key: object, length: int = 16) -> str:
    """A short hash of a JSON-able key (dict keys sorted): cache entries are named by what they were computed from."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:length]
