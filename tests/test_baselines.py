"""The fine-tuning baselines beyond the contract: weights trained once per setting, the data regimes, synthesis."""
import pytest
import torch
from helpers import compose
from hydra.utils import instantiate
from torch.utils.data import Subset

from baselines.finetune import FineTune
from baselines.samples import RealSamples, SyntheticSamples
from ccup.data import fashion_mnist
from ccup.errors import UserError, find_user_error
from ccup.models import load_clip
from ccup.task import UnlearnTask


def task_for(clip, forget=("sandal",), train_range=range(512)):
    data = compose().dataset
    train = Subset(fashion_mnist("train", data.load.roots, data.load.cache_dir, clip.preprocess), train_range)
    return UnlearnTask.of(clip, data.classnames, data.templates, list(forget), train=lambda: train)


@pytest.fixture(scope="module")
def random_tiny():
    torch.manual_seed(0)
    return load_clip("ccup-tiny-p7")


def finetune(cache_dir, *overrides) -> FineTune:
    return instantiate(compose("method=finetune", "method.steps=3", f"cache_dir={cache_dir}", *overrides).method)


def test_a_second_run_reuses_the_trained_weights_for_every_alpha(random_tiny, tmp_path, monkeypatch):
    task = task_for(random_tiny)
    first = finetune(tmp_path)
    full = first(random_tiny.model, task)
    assert first.stats["unlearn/cache_hit"] == 0 and first.stats["time/unlearn_s"] > 0
    monkeypatch.setattr(FineTune, "train", None)  # a cache hit must not train
    again, half = finetune(tmp_path), finetune(tmp_path, "alpha=0.5")
    assert torch.equal(again(random_tiny.model, task).visual.proj, full.visual.proj)
    assert again.stats == {**first.stats, "unlearn/cache_hit": 1}  # the cost reported is that of the training
    midpoint = (random_tiny.model.visual.proj + full.visual.proj) / 2
    torch.testing.assert_close(half(random_tiny.model, task).visual.proj, midpoint)


def test_another_setting_trains_again(random_tiny, tmp_path):
    task = task_for(random_tiny)
    finetune(tmp_path)(random_tiny.model, task)
    other = finetune(tmp_path, "method.lr=0.01")
    other(random_tiny.model, task)
    assert other.stats["unlearn/cache_hit"] == 0


def test_the_weights_are_keyed_by_their_settings_not_by_where_they_are_kept(random_tiny, tmp_path):
    task = task_for(random_tiny)

    def key(cache_dir, *overrides):
        return finetune(cache_dir, "samples=synthetic", *overrides).key(random_tiny.model, task)

    assert key(tmp_path / "a") == key(tmp_path / "b")  # the synthetic samples' cache folder is no setting
    assert key(tmp_path / "a") != key(tmp_path / "a", "samples.steps=7") != key(tmp_path / "a", "method.lr=0.5")


@pytest.mark.parametrize("override, message", [
    ("method.lr=0", "lr must be a positive finite number"),
    ("method.lr=-1e-3", "lr must be a positive finite number"),
    ("method.lr=inf", "lr must be a positive finite number"),
    ("method.steps=0", "steps must be at least 1"),
    ("method.params=[nothing.*]", "match no parameter"),
])
def test_bad_settings_are_refused(random_tiny, tmp_path, override, message):
    with pytest.raises(Exception) as error:  # Hydra wraps what a constructor raises
        finetune(tmp_path, override)(random_tiny.model, task_for(random_tiny))
    assert message in str(find_user_error(error.value))


def test_real_samples_draw_per_class_images_of_the_right_classes(random_tiny):
    task = task_for(random_tiny, forget=("sandal", "bag"), train_range=range(2000))
    sets, _ = RealSamples(per_class=7, seed=0)(random_tiny.model, task, ("forget", "retain"))
    forget_labels = sorted(int(label) for _, label in sets["forget"])
    assert forget_labels == [5] * 7 + [8] * 7
    retain_labels = [int(label) for _, label in sets["retain"]]
    assert len(retain_labels) == 8 * 7 and not {5, 8} & set(retain_labels)


def test_a_method_needing_retain_data_refuses_a_split_without_retain_images(random_tiny):
    data = compose().dataset
    train = fashion_mnist("train", data.load.roots, data.load.cache_dir, random_tiny.preprocess)
    sandals_only = Subset(train, (train.targets == 5).nonzero().flatten()[:50].tolist())
    task = UnlearnTask.of(random_tiny, data.classnames, data.templates, ["sandal"], train=lambda: sandals_only)
    with pytest.raises(UserError, match="no images of the retain classes"):
        RealSamples(per_class=8, seed=0)(random_tiny.model, task, ("forget", "retain"))


def synthetic(cache_dir, **settings) -> SyntheticSamples:
    overrides = [f"samples.{key}={value}" for key, value in settings.items()]
    return instantiate(compose("samples=synthetic", f"cache_dir={cache_dir}", *overrides).samples)


def test_synthesis_that_never_reaches_its_threshold_is_reported_not_looped(random_tiny, tmp_path):
    # softmax confidence never exceeds 1, so no attempt can succeed: the generator must give up at the floor.
    samples = synthetic(tmp_path, per_class=2, steps=2, threshold=1.0, threshold_floor=0.95)
    with pytest.raises(UserError, match="never reached its confidence threshold"):
        samples(random_tiny.model, task_for(random_tiny), ("forget",))


@pytest.mark.slow
def test_synthetic_samples_are_classified_as_their_class(tiny, tmp_path):
    task = task_for(tiny, forget=("sandal", "bag"))
    samples = synthetic(tmp_path, per_class=8)
    sets, stats = samples(tiny.model, task, ("forget", "retain"))
    for name in ("forget", "retain"):
        images, labels = sets[name].tensors
        with torch.no_grad():
            predictions = (tiny.model.encode_image(images, normalize=True) @ task.classifier).argmax(dim=-1)
        assert torch.equal(predictions, labels), name
    assert stats["synthesis/cache_hits"] == 0
    _, again = samples(tiny.model, task, ("forget",))
    assert again["synthesis/cache_hits"] == 2  # cached per (model, class, setting)
