"""A job's Lightning loggers (W&B by default) and W&B's offline runs read back.

A job's run opens with its config, gets the curves of the training its method does and the model
it exports, and closes with its record's metrics. Without a W&B account, list the offline runs:

    python -m ccup.loggers                 # those of results/wandb: name, group, state, metrics
    python -m ccup.loggers results/search  # those of another results folder
"""
import argparse
import inspect
import json
import re
import struct
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ccup.errors import UserError
from ccup.storage import without

# Summary metrics the listing shows where a run has them, with their format.
LISTED = {"forget/acc": ".2f", "retain/acc": ".2f", "unlearn/steps": ".0f", "time/job_s": ".1f"}


def start_logger(logger, config: dict):
    """Open a Lightning logger's run with the resolved config; alpha also as a string, since W&B
    groups 0.0 as 0. A logger that refuses to start (a bad setting, W&B online without a login)
    fails the job with one clear error."""
    from pytorch_lightning.loggers import WandbLogger

    init = getattr(logger, "_wandb_init", None)  # Lightning's W&B arguments (private: looked up)
    if isinstance(logger, WandbLogger) and isinstance(init, dict):
        init.pop("anonymous", None)  # Lightning passes anonymous=None: a W&B deprecation per run
    try:
        logger.log_hyperparams({**without(config, "synonyms"), "alpha_str": str(config["alpha"])})
    except Exception as exc:
        raise UserError(f"{type(logger).__name__} could not start: {exc}: fix its settings "
                        "(conf/logger/) or run with logger=none") from exc
    return logger


def finish_loggers(loggers: list, record: dict) -> None:
    """Log the metrics of a complete record and close each run, marked failed unless the record is
    complete."""
    if not loggers:  # a job refused before its loggers started: Lightning is not needed to say so
        return
    from pytorch_lightning.loggers import WandbLogger

    ok = record["status"] == "complete"
    for logger in loggers:
        if ok:
            logger.log_metrics(record["metrics"])
        logger.finalize("success" if ok else "failed")
        if isinstance(logger, WandbLogger):  # left open by Lightning: each job closes its own
            logger.experiment.finish(exit_code=0 if ok else 1)


def handed(node: Mapping, loggers: Sequence) -> dict:
    """`{"loggers": [...]}` to instantiate a config `node` whose target takes `loggers` with (a
    method that trains: its Trainers log their curves to the job's runs), else nothing:
    `instantiate(node, **handed(node, loggers))`."""
    from hydra.utils import get_object

    takes = "loggers" in inspect.signature(get_object(node["_target_"])).parameters
    return {"loggers": list(loggers)} if takes and loggers else {}


def log_model(loggers: Sequence, folder: Path) -> None:
    """The model exported into `folder` (ccup.export.export_checkpoint) as an artifact of each
    W&B run: type `model`, its manifest as metadata, named by method and record id (W&B keeps a
    version per upload of one name)."""
    import wandb
    from pytorch_lightning.loggers import WandbLogger

    manifest = json.loads((folder / "manifest.json").read_text())
    name = re.sub(r"[^\w.-]", "-", f"{manifest['method']}-{manifest['record']}")  # W&B's alphabet
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            artifact = wandb.Artifact(name, type="model", metadata=manifest)
            artifact.add_dir(str(folder), policy="immutable")  # the export is final: no copy
            logger.experiment.log_artifact(artifact)


# --- W&B's offline runs, read back -----------------------------------------------------------

def wandb_records(path: Path) -> list:
    """The records (W&B's protobuf messages) of a run's `.wandb` file: a 7-byte header, then
    LevelDB-style 32 KiB blocks of chunks, each with a 7-byte header (crc32c, little-endian length,
    type: 1 full, 2 first, 3 middle, 4 last). W&B's Python package no longer reads them itself
    (`wandb leet`, its terminal viewer, does)."""
    from wandb.proto import wandb_internal_pb2

    data, block, offset, records, pending = path.read_bytes(), 32768, 7, [], b""
    while offset + 7 <= len(data):
        if block - offset % block < 7:  # a block's tail too short for a chunk header is padding
            offset += block - offset % block
            continue
        _, length, kind = struct.unpack("<IHB", data[offset:offset + 7])
        pending += data[offset + 7:offset + 7 + length]
        offset += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
        elif kind == 0:
            break
    return records


def key(item) -> str:
    """W&B stores a key with a slash as a one-element nested key."""
    return item.key or "/".join(item.nested_key)


def values(items) -> dict:
    return {key(item): json.loads(item.value_json) for item in items}


def wandb_run(run_dir: Path) -> dict:
    """What a run's folder holds: name, group, job type, tags, config, summary, history (a dict per
    logged row: the training's curves, then the record's metrics), artifacts (name, type, metadata,
    files), exit code and state: `finished`, `failed`, or `unfinished` (running, or killed before
    W&B closed it; W&B also writes a closed run's file in the background, for a moment after)."""
    run = {"config": {}, "summary": {}, "history": [], "artifacts": [], "exit_code": None}
    for record in wandb_records(next(Path(run_dir).glob("*.wandb"))):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.update(name=record.run.display_name, group=record.run.run_group,
                       job_type=record.run.job_type, tags=list(record.run.tags))
        elif kind == "config":
            run["config"].update(values(record.config.update))
        elif kind == "summary":
            run["summary"].update(values(record.summary.update))
        elif kind == "history":
            run["history"].append(values(record.history.item))
        elif kind == "artifact":
            contents = record.artifact.manifest.contents
            run["artifacts"].append({"name": record.artifact.name, "type": record.artifact.type,
                                     "metadata": json.loads(record.artifact.metadata or "{}"),
                                     "files": [entry.path for entry in contents]})
        elif kind == "exit":
            run["exit_code"] = record.exit.exit_code
    code = run["exit_code"]
    run["state"] = "unfinished" if code is None else "finished" if code == 0 else "failed"
    return run


def run_dirs(folder: Path) -> list[Path]:
    """The W&B run folders (offline and online) in `folder`, or in its `wandb/` (a results
    folder), oldest first."""
    for place in (folder, folder / "wandb"):
        if found := sorted(path for path in place.glob("*run-*") if list(path.glob("*.wandb"))):
            return found
    return []


def runs_table(folder: Path) -> str:
    """The runs in `folder` as a table: name, group, state and the LISTED summary metrics that some
    run has."""
    from tabulate import tabulate

    dirs = run_dirs(folder)
    if not dirs:
        raise UserError(f"no W&B runs in {folder} or {folder / 'wandb'}: give the folder "
                        "logger.wandb.save_dir wrote them to (results_dir)")
    runs = [wandb_run(path) for path in dirs]
    shown = [k for k in LISTED if any(k in run["summary"] for run in runs)]
    rows = [[run.get("name", path.name), run.get("group", ""), run["state"],
             *(format(run["summary"][k], LISTED[k]) if k in run["summary"] else "" for k in shown)]
            for path, run in zip(dirs, runs, strict=True)]
    return tabulate(rows, headers=["name", "group", "state", *shown], disable_numparse=True,
                    colalign=["left"] * 3 + ["right"] * len(shown))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ccup.loggers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default="results/wandb", type=Path,
                        help="a folder of W&B runs, or a results folder (default: results/wandb)")
    args = parser.parse_args(argv)
    try:
        print(runs_table(args.folder))
    except UserError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
