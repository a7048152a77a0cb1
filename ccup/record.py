"""Result records: one JSON file per job with the resolved config, metrics, status and provenance.
The records are the truth; W&B mirrors them and reports are built from them."""
import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from ccup import storage

PACKAGES = ("torch", "torchvision", "open_clip_torch", "pytorch-lightning", "torchmetrics", "hydra-core", "wandb")
# Keys that say where and how a job reports, not what it computes: left out of its identity.
NOT_IDENTITY = ("logger", "results_dir", "cache_dir", "data_dir", "sweep")


def config_id(config: dict) -> str:
    """A job's identity: the hash of its resolved config without logging and path settings."""
    identity = {key: value for key, value in config.items() if key not in NOT_IDENTITY}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def provenance() -> dict:
    """Git commit of the code and versions of the libraries that computed a result."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        sha = None
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"git_sha": sha, "python": platform.python_version(), "versions": versions}


def write_record(record: dict, *paths: Path) -> None:
    """Write the record to each path, atomically: a killed job never leaves a half-written record."""
    text = json.dumps(record, indent=2, sort_keys=True, default=str).encode()
    for path in paths:
        storage.write_bytes(text, path)
