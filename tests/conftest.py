"""Shared fixtures: the tests' own cache, random-weight open_clip models, and the embedded tiny model (helpers.py holds
what else the tests share)."""
import os
import shutil
import tempfile

import pytest
import torch
from helpers import make_config
from hydra.utils import instantiate

from ccup.models import load_clip


def pytest_configure(config):
    """The tests' own cache (CCUP_CACHE, for every config they compose and every job they start): never the user's,
    whose fine-tuned weights would let a test pass without training. The embedded model ships in the repository."""
    os.environ["CCUP_CACHE"] = tempfile.mkdtemp(prefix="ccup-tests-")


def pytest_unconfigure(config):
    shutil.rmtree(os.environ["CCUP_CACHE"], ignore_errors=True)


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
