"""Shared fixtures: the tests' own cache, random-weight open_clip models, and the embedded tiny
model (helpers.py holds what else the tests share)."""
import os
import shutil
import tempfile

import pytest

# torch and the suite are imported by the fixtures and hooks that use them, not here: `make test`'s
# controller loads this file too and runs no test, and importing them costs every process some 8 s
# of CPU.


def pytest_configure(config):
    """The tests' own cache (CCUP_CACHE, for every config they compose and every job they start):
    never the user's, whose fine-tuned weights would let a test pass without training. The embedded
    model ships in the repository.

    Under pytest-xdist (`make test` runs test modules side by side, a worker per core), the workers
    share the cache the controller made, so that what one encodes or trains the others read; and one
    thread per process, for each worker and every job it starts (OMP_NUM_THREADS): threads of
    several processes spinning on the same cores cost more than they give (the suite's numbers do
    not depend on the thread count: README's table is the same with one)."""
    # no internet: fail at once; set before any test imports the hub
    os.environ["HF_HUB_OFFLINE"] = "1"
    if "PYTEST_XDIST_WORKER" in os.environ:
        import torch

        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)
    else:
        os.environ["CCUP_CACHE"] = tempfile.mkdtemp(prefix="ccup-tests-")


# The modules whose end-to-end runs take longest (the SLURM queue under `make test-full`, every
# method's contract, the launchers, the oracle) start first, and the rest fill in around them:
# started last, one would run on alone.
FIRST = ["test_slurm.py", "test_methods.py", "test_launchers.py", "test_sweeps.py",
         "test_retrain.py", "test_compare.py", "test_run.py", "test_search.py"]


def pytest_collection_modifyitems(items):
    """The modules in FIRST's order, then the others as collected (`make test` tells xdist to keep
    this order)."""
    items.sort(key=lambda item: FIRST.index(item.path.name) if item.path.name in FIRST
               else len(FIRST))


def pytest_collection_finish(session):
    """What collection imported lives until the end (helpers.spare_the_collector)."""
    from helpers import spare_the_collector

    spare_the_collector()


def pytest_unconfigure(config):
    if "PYTEST_XDIST_WORKER" not in os.environ:
        shutil.rmtree(os.environ["CCUP_CACHE"], ignore_errors=True)


@pytest.fixture(scope="session")
def tiny():
    """The embedded default model, as jobs load it (its weights ship with the suite), shared by all
    tests."""
    from helpers import compose
    from hydra.utils import instantiate

    return instantiate(compose().model)


@pytest.fixture(scope="session")
def random_clips():
    """Real open_clip architectures with random weights: a ViT, a ModifiedResNet and a timm tower
    (ConvNeXt, whose embedding comes out of head.proj)."""
    import torch

    from ccup.models import load_clip

    torch.manual_seed(0)
    return {name: load_clip(name) for name in ("ViT-B-32", "RN50", "convnext_tiny")}


@pytest.fixture(scope="module")
def random_tiny():
    """The embedded model's architecture with random weights (seed 0): methods run on it in
    seconds."""
    import torch

    from ccup.models import load_clip

    torch.manual_seed(0)
    return load_clip("ccup-tiny-p7")


@pytest.fixture(scope="session")
def hf_folder(tmp_path_factory):
    """A random-weight transformers CLIP model, its processor and tokenizer, saved as a hub model is
    (helpers.write_hf_clip): what `model=hf model.name=<folder>` loads."""
    from helpers import write_hf_clip

    return write_hf_clip(tmp_path_factory.mktemp("hf-clip"))


@pytest.fixture(scope="module")
def random_hf(hf_folder):
    """That model loaded as jobs load it (`model=hf`)."""
    from ccup.hf import load_hf_clip

    return load_hf_clip(str(hf_folder))
