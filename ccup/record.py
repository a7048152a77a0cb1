"""Result records: one JSON file per job with the resolved config, metrics, status and provenance.
The records are the truth; W&B mirrors them and reports are built from them."""
import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ccup import storage
from ccup.errors import UserError
from ccup.provenance import versions

# Keys that say where and how a job reports, whether it runs, or what it keeps besides its numbers
# (export: the model too), not what it computes: left out of its identity.
NOT_IDENTITY = ("logger", "results_dir", "cache_dir", "data_dir", "sweep", "rerun", "export")


# What a report pools within one row: the seed, the forget set (by its size only) and alpha are its
# axes.
AXES = ("seed", "forget", "alpha")
# What the oracle of a job shares with it besides forget set and seed: all but these, the method's
# own keys.
METHOD_KEYS = ("method", "samples", "data", "trainer", "eval", "evaluator")


def config_id(cfg: DictConfig) -> str:
    """A job's identity: the hash of its resolved config without logging, path and run settings,
    its numbers in one spelling (`canonical`). Those keys are resolved as placeholders, so the paths
    they lend to other keys (the feature cache under ${cache_dir}) leave the identity alone too: one
    job has one id on every machine and for every user. The seed is part of it only where the
    method's settings read it (`seed: ${seed}`, directly or through its samples) or an evaluation's
    do: CCUP or the oracle run under three seeds is one job, run once, not three records of one
    number."""
    (identity,) = resolved_without(cfg, NOT_IDENTITY + ("seed",))
    return identity_digest(identity, cfg.seed)


def setting_ids(cfg: DictConfig) -> dict[str, str]:
    """What a report may pool a job with. `setting_id`: everything that can change a number, the
    resolved config without the identity's exclusions and the axes (AXES; the forget set counts by
    its number of classes), so that a key that interpolates the seed or alpha (method.seed) leaves
    it too. `task_id`: the part the oracle shares, without METHOD_KEYS."""
    (setting,) = resolved_without(cfg, NOT_IDENTITY + AXES)
    return setting_digests(setting, len(cfg.forget.classes))


def record_ids(cfg: DictConfig) -> dict[str, str]:
    """`config_id` as `id` and `setting_ids`, from one copy of the config (a job's record holds
    all three)."""
    identity, setting = resolved_without(cfg, NOT_IDENTITY + ("seed",), AXES)
    return {"id": identity_digest(identity, cfg.seed),
            **setting_digests(setting, len(cfg.forget.classes))}


def identity_digest(identity: dict, seed: int) -> str:
    identity = canonical(identity)
    if "<seed>" in json.dumps([identity.get("method"), identity.get("eval")]):
        identity["seed"] = seed
    return storage.digest(identity)


def setting_digests(setting: dict, forget_size: int) -> dict[str, str]:
    setting = canonical(setting)
    setting["forget"] = f"{forget_size} classes"
    return {"setting_id": storage.digest(setting),
            "task_id": storage.digest({k: v for k, v in setting.items() if k not in METHOD_KEYS})}


def resolved_without(cfg: DictConfig, *exclusions: tuple[str, ...]) -> list[dict]:
    """The resolved config once per tuple of `exclusions`: without the top-level keys it and the
    tuples before it name, resolved as placeholders `<key>` where others refer to them, and without
    the settings that only say how often a job reports (storage.REPORTING), at any depth. One copy
    of the config serves them all: making it costs as much as resolving it."""
    unresolved = OmegaConf.create(OmegaConf.to_container(cfg))
    resolutions, excluded = [], set()
    for keys in exclusions:
        excluded.update(keys)
        for key in keys:
            if key in unresolved:
                unresolved[key] = f"<{key}>"
        resolved = OmegaConf.to_container(unresolved, resolve=True)
        resolutions.append({key: storage.without(value, *storage.REPORTING)
                            for key, value in resolved.items() if key not in excluded})
    return resolutions


def canonical(node):
    """A resolved config with one spelling per number: a float that is a whole number as the int it
    equals, so that `alpha=1` on a command line is the default's `alpha: 1.0` (JSON, and so a hash,
    tells 1 from 1.0). Booleans stay booleans, though Python counts them as ints."""
    if isinstance(node, dict):
        return {key: canonical(value) for key, value in node.items()}
    if isinstance(node, list):
        return [canonical(value) for value in node]
    if isinstance(node, float) and node.is_integer():
        return int(node)
    return node


def write_record(record: dict, *paths: Path) -> None:
    """Write the record to each path, atomically: a killed job or a full disk never leaves a
    half-written record."""
    text = json.dumps(record, indent=2, sort_keys=True, default=str).encode()
    for path in paths:
        try:
            storage.write_bytes(text, path)
        except OSError as exc:
            raise unwritable(path, exc) from exc


def check_writable(*paths: Path) -> None:
    """Refuse a job whose record could not be written before it spends any time."""
    for path in paths:
        try:
            storage.check_writable(path.parent)
        except OSError as exc:
            raise unwritable(path, exc) from exc


def unwritable(path: Path, exc: OSError) -> UserError:
    return UserError(f"cannot write the record {path}: {exc.strerror or exc}: free space on its "
                     f"disk or make {path.parent} writable, or write the results elsewhere with "
                     "results_dir=DIR")


def read_record(path: Path) -> dict | None:
    """The record at `path`; None where there is none or it does not parse (a file no atomic writer
    wrote)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def manifest(cfg: DictConfig, method: str, forget: list[str]) -> dict:
    """What an exported model is and how it was made: the classes and templates to read it with, its
    `forget` set by class name, `method` (the option's name) with its resolved settings, alpha, the
    job's record id and the suite's version."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    return {"classnames": resolved["dataset"]["classnames"],
            "templates": resolved["dataset"]["templates"], "forget": list(forget), "method": method,
            "settings": resolved["method"], "alpha": resolved["alpha"], "record": config_id(cfg),
            "suite": versions(("ccup-bench",))["ccup-bench"]}
