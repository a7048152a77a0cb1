"""Where a result comes from: the commit and state of the code, the Python and library versions.
Records carry it, and the feature cache keys its entries by the versions."""
import hashlib
import os
import platform
import stat
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "torchvision", "open_clip_torch", "pytorch-lightning", "torchmetrics",
            "hydra-core", "wandb")


def provenance() -> dict:
    """Git commit of the code, whether the code differed from it, and versions of the libraries that
    computed a result."""
    return {**git_state(Path(__file__).parents[1]), "python": platform.python_version(),
            "versions": versions()}


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """The installed version of each package, None for one that is not installed."""
    found = {}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def git_state(root: Path) -> dict:
    """The commit checked out at `root`; `git_dirty`: whether the code differed from it (tracked
    changes or untracked files outside results/, where records are written), and then `git_diff`, a
    hash of that difference, so that two records from one dirty tree can be told apart from two from
    different ones. All None outside a git checkout. An untracked file enters the hash by its name,
    size and modification time, never its contents, and anything untracked that is not a regular
    file (a symlinked data/ or .venv) is skipped: a large file dropped in the checkout costs no
    read, and nothing there can stop a job."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                              cwd=root).stdout

    code = ["--", ".", ":(exclude)results"]
    try:
        sha = git("rev-parse", "HEAD").strip()
        diff = git("diff", "HEAD", "--binary", *code)
        untracked = git("ls-files", "--others", "--exclude-standard", "-z", *code).split("\0")
    except (OSError, subprocess.CalledProcessError):
        return {"git_sha": None, "git_dirty": None, "git_diff": None}
    digest = hashlib.sha256(diff.encode())
    files = 0
    for name in filter(None, untracked):
        try:
            info = os.lstat(root / name)
        # removed since git listed it, or not ours to stat: provenance never stops a job
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode):  # a symlink, whatever it points to, or a nested checkout
            continue
        digest.update(f"{name}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
        files += 1
    dirty = bool(diff) or files > 0
    return {"git_sha": sha, "git_dirty": dirty,
            "git_diff": digest.hexdigest()[:16] if dirty else None}
