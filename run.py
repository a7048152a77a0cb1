"""The command line: one unlearning job (ccup.pipeline: load model and data, unlearn, evaluate,
export), or a sweep of them, or a search's trial; ccup.job writes each job's record and mirrors it
to the loggers.

    python run.py                              # the embedded default: CCUP forgets one
                                                 Fashion-MNIST class
    python run.py -m alpha=0,0.5,1             # a sweep: one job, one record, one W&B run per alpha
    python run.py -m alpha=0,0.5,1             # again: jobs whose record is complete are skipped
                                                 (rerun=true runs them)
"""
import os
import sys
from pathlib import Path

import hydra
from hydra._internal.utils import get_args_parser
from hydra.errors import ConfigCompositionException, OverrideParseException
from omegaconf import DictConfig

from ccup.errors import UserError, check_group_choices, composition_error
from ccup.job import Job, run


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict | float | None:
    job = Job.from_hydra()
    # a trial of conf/hparams_search/: the validation classes in turn, one number to minimise
    if "search" in cfg:
        from ccup import search

        return search.trial(cfg, job)
    return run(cfg, job)


def flags_first(args: list[str]) -> tuple[list[str], list[str]]:
    """(Hydra's flags with their values, the overrides), each in its order. Hydra's parser
    (argparse) reads the overrides as one run of words, so one that follows a flag that follows
    another override (`-m alpha=0,1 --config-dir my_conf method=x`) gets argparse's usage text; with
    the flags put first, a flag goes anywhere."""
    flags, overrides, actions = [], [], get_args_parser()._option_string_actions
    words = list(args)
    while words:
        word = words.pop(0)
        if not word.startswith("-"):  # an override never starts with a dash
            overrides.append(word)
            continue
        flags.append(word)
        action = actions.get(word)  # None for --flag=value, or a flag Hydra does not know (it says)
        if action is None or not words:
            continue
        if action.nargs is None or action.nargs == "?" and words[0] in action.choices:  # -cd DIR
            flags.append(words.pop(0))
    return flags, overrides


if __name__ == "__main__":
    # Hydra raises what it cannot compose, for one error line instead of a dump
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        flags, overrides = flags_first(sys.argv[1:])
        sys.argv[1:] = [*flags, *overrides]
        check_group_choices(overrides, Path(__file__).parent / "conf")
        main()  # a sweep that lost jobs, or its report, exits non-zero (ccup.sweep.Sweep)
    # an unknown option or key, a bad override
    except (ConfigCompositionException, OverrideParseException) as exc:
        sys.exit(composition_error(exc))
    # refused before any job started: a group's choice, a launcher's submission
    except UserError as exc:
        sys.exit(f"error: {exc}")
