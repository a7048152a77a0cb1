"""The embedded default model: accurate enough to unlearn from, deterministic for a seed, trained once."""
from types import SimpleNamespace

import pytest
import torch
from conftest import make_config
from hydra.utils import instantiate
from torch.utils.data import Subset, TensorDataset

import ccup.tiny
from ccup.data import fashion_mnist
from ccup.tiny import caption_tokens, load_tiny, training_set
from ccup.zeroshot import class_embeddings


@pytest.mark.slow
@pytest.mark.parametrize("dataset, every, target", [("fashion_mnist", 5, 0.83), ("digits", 1, 0.9)])
def test_tiny_model_reaches_the_zero_shot_accuracy_target(tiny, dataset, every, target):
    data = instantiate(make_config(f"dataset={dataset}").dataset)
    test = data.load(split="test", transform=tiny.preprocess)
    images, labels = zip(*[test[i] for i in range(0, len(test), every)], strict=True)  # 2,000 garments, 599 digits
    images, labels = torch.stack(images), torch.tensor(labels)
    classifier = class_embeddings(tiny.model, tiny.tokenizer, data.classnames, data.templates)
    with torch.no_grad():
        predictions = (tiny.model.encode_image(images, normalize=True) @ classifier).argmax(dim=-1)
    assert (predictions == labels).float().mean() >= target


def test_datasets_train_side_by_side_each_with_its_own_captions():
    labels = torch.tensor([0, 1, 1, 0])
    garments = SimpleNamespace(name="g", classnames=["coat", "bag"], templates=["a {}.", "the {}.", "my {}."],
                               load=lambda split, transform: TensorDataset(torch.zeros(4, 1), labels))
    digits = SimpleNamespace(name="d", classnames=["1", "2", "3"], templates=["number {}."],
                             load=lambda split, transform: TensorDataset(torch.ones(2, 1), torch.tensor([2, 0])))
    data = training_set([garments, digits], {"g": 1, "d": 3}, transform=None)
    assert [int(label) for _, label in data] == [0, 1, 1, 0] + [4, 2] * 3  # digits shifted past the 2 garments
    tokens = caption_tokens([garments, digits], tokenizer=lambda captions: torch.tensor([len(c) for c in captions]))
    expected = [[len(t.format(c)) for c in ("coat", "bag")] + [len(f"number {c}.") for c in "123"]
                for t in garments.templates]  # digits' single template cycled to three
    assert tokens.tolist() == expected


def small_recipe(tmp_path):
    """The tiny model's recipe on 512 training images: enough to test determinism and the cache quickly."""
    data = make_config().dataset
    train_data = SimpleNamespace(
        name="fashion_mnist_512", classnames=data.classnames, templates=data.templates,
        load=lambda split, transform: Subset(fashion_mnist(split, data.load.roots, str(tmp_path), transform),
                                             range(512)))
    return dict(train_data={"fashion_mnist": train_data}, repeats={}, epochs=1, batch_size=128, lr=2e-3, seed=0)


def test_training_is_deterministic_for_a_seed_and_cached(tmp_path, monkeypatch):
    first = load_tiny(**small_recipe(tmp_path), cache_dir=str(tmp_path / "a")).model.state_dict()
    second = load_tiny(**small_recipe(tmp_path), cache_dir=str(tmp_path / "b")).model.state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)
    monkeypatch.setattr(ccup.tiny, "CaptionContrast", None)  # a cache hit must not train
    cached = load_tiny(**small_recipe(tmp_path), cache_dir=str(tmp_path / "a")).model.state_dict()
    assert all(torch.equal(first[key], cached[key]) for key in first)


def test_another_seed_trains_another_model(tmp_path):
    first = load_tiny(**small_recipe(tmp_path), cache_dir=str(tmp_path)).model.state_dict()
    other = load_tiny(**{**small_recipe(tmp_path), "seed": 1}, cache_dir=str(tmp_path)).model.state_dict()
    assert not torch.equal(first["visual.proj"], other["visual.proj"])
    assert len(list((tmp_path / "models").glob("*.pt"))) == 2
