"""Files written whole or not at all, and the one disk cache built on them.

Each file is written under a unique temporary name beside its target, flushed to disk, then renamed,
so a killed job, a dead node or a parallel writer (also on a shared filesystem) never leaves a
half-written file where a reader looks. Temporary names start with a dot and end in .tmp: no reader
globs them. Every cache (image features, fine-tuned and retrained weights, synthetic samples,
unpacked data) is `cached(path, compute)`, its entries named by the `digest` of what they were
computed from; a lock file beside an entry (`<entry>.lock`) lets one process compute it while the
others wait to read it.
"""
import contextlib
import functools
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from omegaconf import DictConfig, ListConfig, OmegaConf

log = logging.getLogger(__name__)
T = TypeVar("T")

# Settings that say only how often a computation reports (a Trainer's logging interval), wherever
# they are: no result depends on them, so neither a cache key nor a job's identity (ccup.record).
REPORTING = ("log_every_n_steps",)


def file_mode() -> int:
    """The permissions open() gives a new file (0o666 less the umask): mkstemp's 0o600 would hide
    results and cache entries from the other users of a shared filesystem. Read once, at import:
    setting the umask to read it is not thread-safe."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = file_mode()


def replace_atomically(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(temporary path)`, then move the result to `path` in one step. On any error (a
    full disk, a read-only folder) `path` is left as it was and the temporary file is removed."""
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
    """Flush a file's bytes to disk: renamed before its data is written, a file can come back empty
    after a crash, and a network filesystem may only report a full disk here."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def check_writable(folder: str | Path) -> None:
    """Raise the OSError that creating a file in `folder` raises (read-only, no permission, missing
    parent)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=folder, prefix=".write-check.", suffix=".tmp")
    os.close(handle)
    os.remove(tmp)


def save(obj, path: str | Path) -> Path:
    """torch.save, atomically."""
    # torch is for the jobs that save tensors: the command line's checks never pay for it
    import torch

    return replace_atomically(path, lambda tmp: torch.save(obj, tmp))


def write_bytes(data: bytes, path: str | Path) -> Path:
    return replace_atomically(path, lambda tmp: tmp.write_bytes(data))


def load(path: Path):
    """torch.load of a cache entry onto the CPU, tensors and containers only."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def cached(path: Path | None, compute: Callable[[], T], read: Callable[[Path], T] = load,
           write: Callable[[T, Path], object] = save) -> tuple[T, bool]:
    """(value, whether it came from the cache): `compute()` once per `path`, written there by
    `write` (atomically), read back by `read` ever after. Processes after the same entry at once
    compute it once: the first holds its lock, the others wait and read what it wrote (two trials
    of a search, each with the same oracle to train; alpha 0.5 and 1 of one method on two workers).
    An entry that `read` refuses (truncated, corrupt, not what it should hold: it raises) is
    computed again, with a warning. `path` None: no cache, `compute()` every time."""
    if path is None:
        return compute(), False
    if (entry := read_entry(path, read)) is not None:
        return entry, True
    path.parent.mkdir(parents=True, exist_ok=True)
    with lock(path):
        if (entry := read_entry(path, read)) is not None:  # computed while this one waited
            return entry, True
        value = compute()
        write(value, path)
    return value, False


@contextlib.contextmanager
def lock(path: Path) -> Iterator[None]:
    """Hold the lock file beside a cache entry; on a filesystem without file locks, go on without
    (each process computes the entry, and the last rename wins, as before there were locks)."""
    from filelock import FileLock

    held = FileLock(f"{path}.lock")
    try:
        held.acquire()
    except NotImplementedError:  # filelock's word for a filesystem without flock
        log.warning("no file locks on the filesystem of %s: computing it unlocked", path)
        held = None
    try:
        yield
    finally:
        if held is not None:
            held.release()


def read_entry(path: Path, read: Callable[[Path], T]) -> T | None:
    """The cache entry at `path` as `read` gives it; None where there is none or `read` refuses it
    (then with a warning: it is computed again)."""
    if not path.exists():
        return None
    try:
        return read(path)
    except Exception as exc:  # never trusted, always rebuilt
        log.warning("rebuilding cache entry %s: %s", path, exc)
        return None


def digest(key: object, length: int = 16) -> str:
    """A short hash of a key: JSON with sorted dict keys, where a configured object stands for what
    it declares it is computed from (`key_of`), never for its whole state. Cache entries are named
    by the digest of what they hold."""
    return hashlib.sha256(
        json.dumps(key, sort_keys=True, default=key_of).encode()).hexdigest()[:length]


def key_of(obj: object) -> object:
    """The JSON-able identity of a non-JSON value in a cache key: a path's text; a config node's
    values; a partial's function and arguments but REPORTING ones (Hydra's `_partial_` targets); a
    function's or class's import path; an object's class with its explicit `key` (the settings it
    declares its results depend on: the suite's own configured objects), or else with its plain
    attributes (a library's object built from settings, as a Trainer plugin): a key never depends on
    what such an object holds besides its settings (a cache folder, tensors, modules)."""
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, DictConfig | ListConfig):  # what Hydra passes for nested settings
        return OmegaConf.to_container(obj)
    if isinstance(obj, functools.partial):
        keywords = {k: value for k, value in obj.keywords.items() if k not in REPORTING}
        return {"func": obj.func, "args": list(obj.args), "keywords": keywords}
    if callable(obj) and hasattr(obj, "__qualname__"):
        return f"{obj.__module__}.{obj.__qualname__}"
    key = getattr(obj, "key", None)
    settings = key if key is not None and not callable(key) else {
        name: value for name, value in vars(obj).items()
        if isinstance(value, str | int | float | bool | type(None))}
    return {"class": f"{type(obj).__module__}.{type(obj).__qualname__}", "key": settings}


def without(config, *keys: str):
    """A resolved config (dicts and lists) without `keys` at any depth."""
    if isinstance(config, dict):
        return {k: without(v, *keys) for k, v in config.items() if k not in keys}
    if isinstance(config, list):
        return [without(v, *keys) for v in config]
    return config
