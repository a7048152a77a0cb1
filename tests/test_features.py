"""The feature cache: the same metrics as encoding every time, safe under parallel writers,
self-healing."""
import logging
import multiprocessing
from collections import OrderedDict

import pytest
import torch
from helpers import compose
from hydra.utils import instantiate
from torch.utils.data import Subset, TensorDataset

from ccup import features
from ccup.data import fashion_mnist
from ccup.datasets import dataset_key
from ccup.evaluator import Evaluator
from ccup.features import FeatureCache, preprocessed, write_features
from ccup.heads import fold_projection
from ccup.models import load_clip
from ccup.task import UnlearnTask


@pytest.fixture(scope="module")
def setup():
    """A random-weight tiny model, a CCUP-like edit of its projection, and 600 test images."""
    torch.manual_seed(0)
    clip = load_clip("ccup-tiny-p7")
    data = compose().dataset
    test = Subset(fashion_mnist("test", data.load.roots, data.load.cache_dir, clip.preprocess),
                  range(600))
    task = UnlearnTask.of(clip, data.classnames, data.templates, ["sandal"])
    W = torch.eye(128) + 0.3 * torch.randn(128, 128, generator=torch.Generator().manual_seed(1))
    return clip, task, test, fold_projection(clip.model, W)


def evaluator(cache_dir, *overrides, enabled=True) -> Evaluator:
    return instantiate(compose(f"cache_dir={cache_dir}", f"evaluator.cache.enabled={enabled}",
                               "eval=[]", *overrides).evaluator)


def direct_metrics(model, task, dataset) -> dict:
    """The naive way: encode_image on every image, no features, no cache."""
    images, labels = zip(*[dataset[i] for i in range(len(dataset))], strict=True)
    with torch.no_grad():
        logits = model.encode_image(torch.stack(images), normalize=True) @ task.classifier_of(model)
    correct = (logits.argmax(-1) == torch.tensor(labels)).float()
    return {"all/acc": 100 * correct.mean().item()}


def accuracies(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k.endswith("acc") or k.endswith("acc_before")
            or "recall" in k}


def test_cached_and_uncached_paths_give_the_same_metrics(setup, tmp_path):
    clip, task, test, edited = setup
    cold = evaluator(tmp_path)(clip.model, edited, task, test)  # fills the cache
    warm = evaluator(tmp_path)(clip.model, edited, task, test)  # reads it
    bypass = evaluator(tmp_path / "off", enabled=False)(clip.model, edited, task, test)
    assert accuracies(cold) == accuracies(warm) == accuracies(bypass)
    assert not (tmp_path / "off").exists()
    assert cold["all/acc"] == pytest.approx(direct_metrics(edited, task, test)["all/acc"], abs=1e-6)
    assert cold["all/acc_before"] == pytest.approx(
        direct_metrics(clip.model, task, test)["all/acc"], abs=1e-6)


def test_a_model_with_another_image_tower_is_encoded_anew(setup, tmp_path):
    clip, task, test, _ = setup
    other = load_clip("ccup-tiny-p7").model  # other random weights throughout
    metrics = evaluator(tmp_path)(clip.model, other, task, test)
    assert metrics["all/acc"] == pytest.approx(direct_metrics(other, task, test)["all/acc"],
                                               abs=1e-6)
    # only the original's features are kept
    assert len(list((tmp_path / "features").glob("*.pt"))) == 1


def test_features_computed_at_another_precision_get_their_own_entry(setup, tmp_path, monkeypatch):
    clip, task, test, edited = setup
    full = evaluator(tmp_path)(clip.model, edited, task, test)
    half = evaluator(tmp_path, "+evaluator.trainer.precision=bf16-mixed")(
        clip.model, edited, task, test)
    entries = list((tmp_path / "features").glob("*.pt"))
    assert len(entries) == 2
    features = [torch.load(entry, weights_only=True)["features"] for entry in entries]
    assert not torch.equal(*features)  # bf16 rounding: neither may stand in for the other
    with monkeypatch.context() as patch:
        # the fp32 entry is still there: nothing is encoded
        patch.setattr("ccup.features.encode", None)
        assert accuracies(evaluator(tmp_path)(clip.model, edited, task, test)) == accuracies(full)
    assert abs(half["all/acc_before"] - full["all/acc_before"]) < 5


def test_a_corrupt_entry_is_rebuilt_with_a_warning(setup, tmp_path, caplog):
    clip, task, test, edited = setup
    good = evaluator(tmp_path)(clip.model, edited, task, test)
    (entry,) = (tmp_path / "features").glob("*.pt")
    entry.write_bytes(entry.read_bytes()[:1000])  # truncated, as by a full disk or a killed writer
    with caplog.at_level(logging.WARNING):
        again = evaluator(tmp_path)(clip.model, edited, task, test)
    assert f"rebuilding cache entry {entry}" in caplog.text
    assert accuracies(again) == accuracies(good)
    assert torch.load(entry, weights_only=True)["features"].shape == (600, 128)


def fill(path, start_barrier):
    """One of several processes writing the same cache entry at once."""
    features = torch.randn(600, 128)
    start_barrier.wait()
    write_features((features, torch.zeros(600, dtype=torch.long)), path)


def test_parallel_writers_leave_one_complete_entry(setup, tmp_path):
    clip, _, test, _ = setup
    path = FeatureCache(str(tmp_path / "cache")).path(clip.model, test, "cpu 32-true")
    # copies of this one, which imported torch already
    processes = multiprocessing.get_context("fork")
    # one writer per core, released together to publish the same entry
    barrier = processes.Barrier(2)
    args = (path, barrier)
    # processes of their own, sharing nothing
    workers = [processes.Process(target=fill, args=args) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0] * 2
    entries = list((tmp_path / "cache").iterdir())
    assert len(entries) == 1 and entries[0].suffix == ".pt"
    assert torch.load(entries[0], weights_only=True)["features"].shape == (600, 128)


def test_a_process_preprocesses_an_evaluation_set_once_within_its_budget(setup, monkeypatch):
    _, _, test, _ = setup
    monkeypatch.setattr(features, "_kept", OrderedDict())
    kept = preprocessed(test)
    assert isinstance(kept, TensorDataset) and preprocessed(test) is kept  # made once
    # the very images and labels the dataset gives
    images, labels = zip(*(test[i] for i in (0, 599)), strict=True)
    assert torch.equal(kept.tensors[0][[0, 599]], torch.stack(images))
    assert kept.tensors[1][[0, 599]].tolist() == list(labels)
    # a budget of one such set: another set lets the first go
    monkeypatch.setattr(features, "PIXEL_BUDGET", kept.tensors[0].nbytes)
    other = Subset(test.dataset, range(600, 1200))
    assert isinstance(preprocessed(other), TensorDataset)
    assert list(features._kept) == [dataset_key(other)]
    # a set the budget cannot hold is read as it is
    larger = Subset(test.dataset, range(1200, 2400))
    assert preprocessed(larger) is larger and list(features._kept) == [dataset_key(other)]
