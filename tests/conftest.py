"""Shared fixtures: composed configs, random-weight open_clip models, and the embedded tiny model."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import create_config_search_path
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from ccup.models import load_clip

ROOT = Path(__file__).parents[1]
CONF = ROOT / "conf"


def pytest_configure(config):
    """The tests' own cache (CCUP_CACHE, for every config they compose and every job they start): never the user's,
    whose fine-tuned weights would let a test pass without training. The embedded model ships in the repository."""
    os.environ["CCUP_CACHE"] = tempfile.mkdtemp(prefix="ccup-tests-")


def pytest_unconfigure(config):
    shutil.rmtree(os.environ["CCUP_CACHE"], ignore_errors=True)


def config_names(group: str) -> list[str]:
    """The options of a config group: the folder is the registry."""
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


def make_config(*overrides: str):
    """The composed job config, with Hydra's runtime set so `${hydra:...}` resolves as in a real job."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra  # as in a job: the job config without Hydra's own node
    return cfg


def sweep_jobs(experiment: str) -> list[dict[str, str]]:
    """The jobs an experiment's sweep runs, as Hydra's basic sweeper expands them (`glob(*)` included): one
    {key: value} per job."""
    params = OmegaConf.load(CONF / "experiment" / f"{experiment}.yaml").hydra.sweeper.params
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONF)))
    overrides = OverridesParser.create(config_loader=loader).parse_overrides([f"{k}={v}" for k, v in params.items()])
    (jobs,) = BasicSweeper.split_arguments(overrides, max_batch_size=None)
    return [dict(override.split("=", 1) for override in job) for job in jobs]


def suite_command(tmp_path: Path, *args: str) -> list[str]:
    """`python run.py ARGS` as a user runs it, writing results and outputs under tmp_path."""
    return [sys.executable, "run.py", *args, f"sweep={tmp_path.name}", f"results_dir={tmp_path}/results",
            f"hydra.run.dir={tmp_path}/outputs", f"hydra.sweep.dir={tmp_path}/multirun"]


def start_suite(tmp_path: Path, *args: str, **popen) -> subprocess.Popen:
    """The suite command started offline, not waited for: runs that mostly import libraries overlap on the cores."""
    return subprocess.Popen(suite_command(tmp_path, *args), cwd=ROOT, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, **popen)


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    """A started suite command waited for, with its output (started with stdout and stderr piped); killed, as
    subprocess.run would, if it outlives its time."""
    try:
        stdout, stderr = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run_suite(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The suite command run to its end, its output captured."""
    return finish(start_suite(tmp_path, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE))


@pytest.fixture(scope="session")
def tiny():
    """The embedded default model, trained once per cache directory (~3.5 min on 2 cores), shared by all tests."""
    return instantiate(make_config().model)


@pytest.fixture(scope="session")
def random_clips():
    """Real open_clip architectures with random weights: a ViT, a ModifiedResNet and a timm tower (ConvNeXt, whose
    embedding comes out of head.proj)."""
    torch.manual_seed(0)
    return {name: load_clip(name) for name in ("ViT-B-32", "RN50", "convnext_tiny")}
