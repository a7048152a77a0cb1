"""What a result was computed from besides its config: the code (a digest of each source file the
job ran) and the data (a fingerprint of each dataset's files: names, sizes, modification times). A
complete record is skipped only while both are what they were when it was written (ccup.job);
otherwise `change` says in a few words what moved.

The commit is provenance (ccup.provenance), not identity: a commit that changes no source file a
job ran (README, another method) reruns nothing, and an uncommitted edit of one does."""
import functools
import glob
import hashlib
import os
import stat
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = (ROOT / "ccup", ROOT / "baselines", ROOT / "run.py")  # wherever Python installed the suite
# Modules that read, report or mirror results and compute none: editing them reruns no job.
REPORTING = ("ccup.report", "ccup.plots", "ccup.sweep", "ccup.loggers")
# a package's modules with it: ccup.report.files
REPORTING_PARTS = [name.split(".") for name in REPORTING]


def code() -> dict[str, str]:
    """{file: digest} of the source files this process has imported that can change a job's
    numbers: every module of the suite (SUITE) and every module loaded from outside a Python
    installation (a method or evaluation of your own loaded by `_target_`, wherever it lies, and
    the modules it imports), but those in REPORTING. Libraries are left to the versions the record
    names (ccup.provenance). A file inside the checkout is named relative to it, so that a record
    reads the same in another clone; any other by its absolute path."""
    files = set()
    suite, libraries = tuple(map(str, SUITE)), library_prefixes()
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        # by its name first: resolving each of a job's some 5,000 modules would take half a second
        if (path is None or name.split(".")[:2] in REPORTING_PARTS
                or path.startswith(libraries) and not path.startswith(suite)):
            continue
        try:
            path = Path(path).resolve()
        except (OSError, RuntimeError):  # a link loop: nothing a job ran
            continue
        if (in_suite(path) or not in_library(path)) and path.is_file():
            files.add(path)
    digests = {name_of(path): file_digest(path) for path in sorted(files)}
    return {name: digest for name, digest in digests.items() if digest is not None}


def in_suite(path: Path) -> bool:
    return any(path == part or part in path.parents for part in SUITE)


@functools.cache
def library_folders() -> tuple[Path, ...]:
    """Where this interpreter's standard library and installed packages lie."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    return tuple(Path(prefix).resolve() for prefix in prefixes)


@functools.cache
def library_prefixes() -> tuple[str, ...]:
    """library_folders as the start of a module's file name, as written and as resolved."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    return tuple(os.path.join(str(p), "") for p in {*prefixes, *library_folders()})


def in_library(path: Path) -> bool:
    """Whether a module file is part of Python or of an installed package (also in a user's
    site-packages)."""
    return (any(part in ("site-packages", "dist-packages") for part in path.parts)
            or any(folder in path.parents for folder in library_folders()))


def name_of(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if ROOT in path.parents else str(path)


def file_digest(name: str | Path) -> str | None:
    """The sha256 (16 hex digits) of a source file named as `code` names it; None where it is gone.
    Remembered per size and modification time: the skip checks of a long sweep read each file
    once."""
    path = ROOT / name
    try:
        info = path.stat()
    except OSError:
        return None
    return contents_digest(path, info.st_size, info.st_mtime_ns)


@functools.cache
def contents_digest(path: Path, size: int, mtime_ns: int) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def data(config: dict) -> dict[str, dict]:
    """The fingerprint of every dataset a resolved config declares its files for, by its dotted key
    (`dataset`, `eval.cross.datasets.digits`): a node with `files: {roots: path or [paths], globs:
    [patterns]}` (conf/dataset/), each glob read under each root (the root itself without globs). A
    dataset bundled with a library (digits) declares none."""
    found, printed = {}, set()
    # A dataset named in several places (the job's, the model's training data, an evaluation's) by
    # the shortest of its keys: `dataset` first.
    shortest = sorted(declarations(config), key=lambda kv: (kv[0] != "dataset", kv[0].count(".")))
    for key, node in shortest:
        files_node = repr(node["files"])
        if files_node in printed:
            continue
        printed.add(files_node)
        roots = node["files"]["roots"]
        roots = [roots] if isinstance(roots, str) else list(roots)
        patterns = node["files"].get("globs") or ["."]
        prints = [(root, pattern, *files(str(root), str(pattern)))
                  for root in roots for pattern in patterns]
        found[key] = {"name": node.get("name"), "files": sum(p[2] for p in prints),
                      "bytes": sum(p[3] for p in prints),
                      "digest": hashlib.sha256(repr(prints).encode()).hexdigest()[:16]}
    return found


def declarations(node, key: str = ""):
    """(dotted key, node) for every node of a config that declares `files`."""
    if not isinstance(node, dict):
        return
    if isinstance(node.get("files"), dict) and "roots" in node["files"]:
        yield key, node
    for name, value in node.items():
        if name != "files":
            yield from declarations(value, f"{key}.{name}" if key else str(name))


@functools.cache
def files(root: str, pattern: str) -> tuple[int, int, str]:
    """(files, bytes, digest of their names relative to `root`, sizes and modification times) of
    what `pattern` matches under `root`: the regular files it names and every regular file under the
    folders it names. Symlinks are followed (a `data` linked to another disk, a class folder linked
    from elsewhere: what the loaders read), each folder walked once; nothing else (sockets, pipes)
    counts, and no file is opened. Computed once per process: a sweep walks each dataset once."""
    digest, count, size = hashlib.sha256(), 0, 0
    for match in sorted(glob.glob(os.path.join(glob.escape(root), pattern))):
        for path, info in walk(match, set()):
            name = os.path.relpath(path, root)
            digest.update(f"{name}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
            count, size = count + 1, size + info.st_size
    return count, size, digest.hexdigest()[:16]


def walk(path: str, seen: set):
    """(path, stat) of each regular file at or under `path`, in name order."""
    try:
        info = os.stat(path)
    except OSError:  # a broken link, or gone since it was listed
        return
    if stat.S_ISREG(info.st_mode):
        yield path, info
    elif stat.S_ISDIR(info.st_mode) and (info.st_dev, info.st_ino) not in seen:
        seen.add((info.st_dev, info.st_ino))  # a link back up the tree is walked once
        try:
            with os.scandir(path) as entries:
                names = sorted(entry.name for entry in entries)
        except OSError:
            return
        for name in names:
            yield from walk(os.path.join(path, name), seen)


def change(done: dict, data_now: dict) -> str | None:
    """What changed since a complete record was written, in a few words; None where nothing did:
    each source file it names has its digest (`code`) and each dataset its fingerprint (`data`). A
    record without them (written before records carried them) counts as changed."""
    if "code" not in done or "data" not in done:
        return "the record does not say which code and data it came from (an older suite wrote it)"
    changed = [name for name, digest in done["code"].items() if file_digest(name) != digest]
    if changed:
        more = f" and {len(changed) - 2} more" if len(changed) > 2 else ""
        return f"the code changed since the record ({', '.join(changed[:2])}{more})"
    moved = [f"{label(key, now['name'])}: {difference(done['data'].get(key), now)}"
             for key, now in data_now.items() if done["data"].get(key) != now]
    return f"the data changed ({'; '.join(moved)})" if moved else None


def label(key: str, name: str | None) -> str:
    """A dataset in a line: its key and its name, once where the key ends in it."""
    return key if name is None or key.split(".")[-1] == name else f"{key} {name}"


def difference(before: dict | None, now: dict) -> str:
    """How a dataset's files differ from their fingerprint `before`."""
    if before is None:
        return "not fingerprinted before"
    fewer = before["files"] - now["files"]
    if fewer:
        return f"{abs(fewer)} file{'s' * (abs(fewer) != 1)} {'fewer' if fewer > 0 else 'more'}"
    return f"{now['files']} files as before, but changed"
