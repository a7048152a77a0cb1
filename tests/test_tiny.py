"""The embedded default model: accurate enough to unlearn from, deterministic for a seed, trained
once."""
import json
import logging
from types import SimpleNamespace

import pytest
import torch
from helpers import ROOT, compose
from hydra.utils import instantiate
from torch.utils.data import Subset, TensorDataset
from torchvision.transforms import ToTensor

import ccup.tiny
from ccup.data import fashion_mnist
from ccup.datasets import labels_of
from ccup.errors import UserError
from ccup.tiny import (
    SHIPPED,
    caption_tokens,
    draw_captions,
    load_tiny,
    recipe_of,
    training_set,
    weights_name,
)
from ccup.zeroshot import class_embeddings


@pytest.mark.slow
@pytest.mark.parametrize("dataset, every, target", [("fashion_mnist", 5, 0.83), ("digits", 1, 0.9)])
def test_tiny_model_reaches_the_zero_shot_accuracy_target(tiny, dataset, every, target):
    data = instantiate(compose(f"dataset={dataset}").dataset)
    test = data.load(split="test", transform=tiny.preprocess)
    # 2,000 garments, 599 digits
    images, labels = zip(*[test[i] for i in range(0, len(test), every)], strict=True)
    images, labels = torch.stack(images), torch.tensor(labels)
    classifier = class_embeddings(tiny.model, tiny.tokenizer, data.classnames, data.templates)
    with torch.no_grad():
        predictions = (tiny.model.encode_image(images, normalize=True) @ classifier).argmax(dim=-1)
    assert (predictions == labels).float().mean() >= target


def test_datasets_train_side_by_side_each_with_its_own_captions_and_names():
    labels = torch.tensor([0, 1, 1, 0])
    garments = SimpleNamespace(name="g", classnames=["coat", "bag"],
                               templates=["a {}.", "the {}.", "my {}."],
                               synonyms={"coat": ["jacket"], "bag": ["purse", "tote"]},
                               load=lambda split, transform: TensorDataset(torch.zeros(4, 1),
                                                                           labels))
    # no synonyms
    digits = SimpleNamespace(name="d", classnames=["1", "2", "3"], templates=["number {}."],
                             load=lambda split, transform: TensorDataset(torch.ones(2, 1),
                                                                         torch.tensor([2, 0])))
    data = training_set([garments, digits], {"g": 1, "d": 3}, transform=None)
    # digits shifted past the 2 garments
    assert [int(label) for _, label in data] == [0, 1, 1, 0] + [4, 2] * 3
    # a stand-in tokenizer
    lengths = lambda captions: torch.tensor([len(caption) for caption in captions])  # noqa: E731
    tokens, names, caption_of = caption_tokens([garments, digits], tokenizer=lengths)
    assert names.tolist() == [2, 3, 1, 1, 1]  # the draws pick among each class's own names only
    # (templates, names, classes): digits' single template and name cycled
    assert tokens.shape == (3, 3, 5)
    words = [["coat", "jacket", "coat"], ["bag", "purse", "tote"]]
    expected = [[[len(t.format(w[n])) for w in words] + [len(f"number {c}.") for c in "123"]
                 for n in range(3)]
                for t in garments.templates]
    assert tokens.tolist() == expected and caption_of.tolist() == [0, 1, 2, 3, 4]
    # Left unnamed, bag leaves the captions: four columns (coat's two names the most left), and the
    # labels after it move one column down.
    tokens, names, caption_of = caption_tokens([garments, digits], tokenizer=lengths,
                                               unnamed=["bag"])
    assert names.tolist() == [2, 1, 1, 1] and caption_of.tolist() == [0, -1, 1, 2, 3]
    assert tokens.tolist() == [[row[:1] + row[2:] for row in per_template[:2]]
                               for per_template in expected]


def test_each_step_captions_every_class_with_one_of_its_own_names_drawn_evenly():
    names = torch.tensor([1, 3, 2])
    # (T=2, N=3, C=3, L=1): the token is its own position
    tokens = torch.arange(2 * 3 * 3).reshape(2, 3, 3, 1)
    torch.manual_seed(0)
    drawn = torch.stack([draw_captions(tokens, names)[:, 0] for _ in range(3000)])  # (draws, C)
    name = drawn % 9 // 3  # the name index of each drawn token
    for c, count in enumerate(names.tolist()):
        assert (drawn[:, c] % 3 == c).all()  # each class gets its own caption
        # its names, evenly
        assert torch.bincount(name[:, c], minlength=3)[:count].min() > 3000 / count * 0.9
        assert (name[:, c] < count).all()  # never a cycled copy


def test_the_oracle_is_trained_without_exactly_the_forget_classes_images():
    cfg = compose()
    datasets = [instantiate(node) for node in cfg.model.train_data.values()]
    repeats = {data.name: cfg.model.repeats.get(data.name, 1) for data in datasets}
    full, oracle = (training_set(datasets, repeats, ToTensor(), exclude)
                    for exclude in ([], ["sandal", "3"]))
    labels = {data: [label for part in data.datasets for label in labels_of(part)]
              for data in (full, oracle)}
    before, after = (torch.bincount(torch.tensor(labels[data]), minlength=20)
                     for data in (full, oracle))
    # each image read carries the label counted (counting them reads no image)
    for data in (full, oracle):
        assert [data[i][1] for i in range(0, len(data), 997)] == labels[data][::997]
    sandal, three = 5, 10 + 3  # digits' labels follow the ten garments'
    assert (len(full) == 60_000 + repeats["digits"] * 1_198 and before[sandal] == 6_000
            and before[three] > 0)
    assert after[[sandal, three]].tolist() == [0, 0]
    kept = torch.ones(20, dtype=torch.bool)
    kept[[sandal, three]] = False
    # every image of every other class, repeats included
    assert torch.equal(after[kept], before[kept])


def test_the_oracle_refuses_classes_the_training_data_never_had(tmp_path):
    with pytest.raises(UserError, match=r"cannot leave out \['sandals'\]: the model's training "
                                        r"data has no such"):
        load_tiny(**small_recipe(tmp_path), cache_dir=str(tmp_path), exclude=["sandals"])


def small_recipe(tmp_path):
    """The tiny model's recipe on 512 training images: enough to test determinism and the cache
    quickly."""
    data = compose().dataset
    train_data = SimpleNamespace(
        name="fashion_mnist_512", classnames=data.classnames, templates=data.templates,
        load=lambda split, transform: Subset(
            fashion_mnist(split, data.load.roots, str(tmp_path), transform), range(512)))
    return dict(arch="ccup-tiny-p7", train_data={"fashion_mnist": train_data}, repeats={}, epochs=1,
                batch_size=128, lr=2e-3, seed=0)


def test_training_is_deterministic_for_a_seed_and_cached(tmp_path, monkeypatch):
    first = load_tiny(**small_recipe(tmp_path), cache_dir=str(tmp_path / "a")).model.state_dict()
    second = load_tiny(**small_recipe(tmp_path), cache_dir=str(tmp_path / "b")).model.state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)
    monkeypatch.setattr(ccup.tiny, "CaptionContrast", None)  # a cache hit must not train
    cached = load_tiny(**small_recipe(tmp_path), cache_dir=str(tmp_path / "a")).model.state_dict()
    assert all(torch.equal(first[key], cached[key]) for key in first)


def test_weights_that_do_not_load_are_trained_again_with_a_warning(tmp_path, caplog):
    first = load_tiny(**small_recipe(tmp_path), cache_dir=str(tmp_path)).model.state_dict()
    (weights,) = (tmp_path / "models").glob("*.pt")
    # truncated, as by a killed writer on a shared filesystem
    weights.write_bytes(weights.read_bytes()[:1000])
    with caplog.at_level(logging.WARNING):
        again = load_tiny(**small_recipe(tmp_path), cache_dir=str(tmp_path))
    assert f"rebuilding cache entry {weights}" in caplog.text and again.info["cache_hit"] == 0
    assert all(torch.equal(value, again.model.state_dict()[key]) for key, value in first.items())


def test_another_seed_trains_another_model(tmp_path):
    first = load_tiny(**small_recipe(tmp_path), cache_dir=str(tmp_path)).model.state_dict()
    other = load_tiny(**{**small_recipe(tmp_path), "seed": 1},
                      cache_dir=str(tmp_path)).model.state_dict()
    assert not torch.equal(first["visual.proj"], other["visual.proj"])
    assert len(list((tmp_path / "models").glob("*.pt"))) == 2


@pytest.mark.parametrize("option", ["tiny", "tiny_rn"])
def test_the_shipped_weights_are_those_of_the_current_recipe(option):
    model = compose(f"model={option}").model
    datasets = [instantiate(node) for node in model.train_data.values()]
    recipe = recipe_of(model.arch, datasets, model.repeats, model.epochs, model.batch_size,
                       model.lr, model.seed)
    # A change of the recipe changes the name: stale weights are never read for it (`make tiny
    # SHIP=1` ships anew).
    assert (SHIPPED / weights_name(model.arch, recipe)).exists(), (
        f"no shipped weights for conf/model/{option}.yaml")
    clip = instantiate(model)
    # trained by committed code
    assert clip.info["recipe"] == recipe and clip.info["git_dirty"] is False


def test_the_models_page_quotes_each_embedded_models_committed_accuracy():
    records = [json.loads(path.read_text())
               for path in (ROOT / "results" / "models" / "records").glob("*.json")]
    assert {(r["choices"]["model"], r["choices"]["dataset"]) for r in records} == {
        (model, dataset) for model in ("tiny", "tiny_rn")
        for dataset in ("fashion_mnist", "digits")}
    models_page = (ROOT / "docs" / "models.md").read_text()
    for record in records:
        assert f"**{record['metrics']['all/acc_before']:.2f} %**" in models_page, record["choices"]
