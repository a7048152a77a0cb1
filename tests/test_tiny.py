"""The embedded default model: accurate enough to unlearn from, deterministic for a seed, trained once."""
from types import SimpleNamespace

import pytest
import torch
from conftest import make_config
from torch.utils.data import Subset

import ccup.tiny
from ccup.data import fashion_mnist
from ccup.tiny import load_tiny
from ccup.zeroshot import class_embeddings


@pytest.mark.slow
def test_tiny_model_reaches_the_zero_shot_accuracy_target(tiny):
    data = make_config().dataset
    test = fashion_mnist("test", data.load.roots, data.load.cache_dir, transform=tiny.preprocess)
    images, labels = zip(*[test[i] for i in range(0, len(test), 5)], strict=True)  # 2,000 images
    images, labels = torch.stack(images), torch.tensor(labels)
    classifier = class_embeddings(tiny.model, tiny.tokenizer, data.classnames, data.templates)
    with torch.no_grad():
        predictions = (tiny.model.encode_image(images, normalize=True) @ classifier).argmax(dim=-1)
    assert (predictions == labels).float().mean() >= 0.83


def small_recipe(tmp_path):
    """The tiny model's recipe on 512 training images: enough to test determinism and the cache quickly."""
    data = make_config().dataset
    train_data = SimpleNamespace(
        name="fashion_mnist_512", classnames=data.classnames, templates=data.templates,
        load=lambda split, transform: Subset(fashion_mnist(split, data.load.roots, str(tmp_path), transform),
                                             range(512)))
    return dict(train_data=train_data, epochs=1, batch_size=128, lr=2e-3, seed=0)


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
