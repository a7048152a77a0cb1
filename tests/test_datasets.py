"""Dataset tests: each dataset config loads its real on-disk layout, built here in miniature, into
(image, label) pairs whose labels index the config's class names; missing data and unknown splits
are refused with one line."""
import json
import os
import pickle
import re

import numpy as np
import pytest
import torchvision.datasets.cifar
from helpers import (
    SPLIT_LAYOUTS,
    SPLIT_SIZES,
    compose,
    config_names,
    dataset,
    run_job,
    write_image_folder,
    write_jpeg,
    write_split_dataset,
)
from hydra.utils import instantiate
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader
from torchvision.datasets import FashionMNIST
from torchvision.transforms import ToTensor

from ccup.classnames import folder_classes
from ccup.data import image_folder
from ccup.datasets import ArrayImages, dataset_key, half
from ccup.errors import MissingFiles, UserError, find_user_error

# The protocol's forget classes, three per dataset (docs/method.md#the-protocol).
PROTOCOL_FORGET = {
    "stanford_dogs": ["Pekinese", "toy poodle", "Scotch terrier"],
    "stanford_cars": ["2009 Spyker C8 Coupe", "2010 Dodge Ram Pickup 3500 Crew Cab",
                      "2011 Ford Ranger SuperCab"],
    "caltech101": ["euphonium", "minaret", "platypus"],
    "oxford_flowers": ["gazania", "tree mallow", "trumpet creeper"],
}

# Where each dataset must be under the data root: the file or folder a missing dataset's error
# names.
EXPECTED_PATHS = {
    "caltech101": "caltech-101/split_zhou_Caltech101.json",
    "oxford_flowers": "oxford_flowers/split_zhou_OxfordFlowers.json",
    "stanford_cars": "stanford_cars/split_zhou_StanfordCars.json",
    "stanford_dogs": "stanford_dogs/split_alexey_stanford_dogs.json",
    "cifar10": "cifar-10-batches-py",
    "cifar100": "cifar-100-python",
    "oxford_pets": "oxford-iiit-pet",
    "imagenet": "imagenet/val",
}
TORCHVISION_DOWNLOADS = {"cifar10", "cifar100", "oxford_pets"}
CLASS_COUNTS = {"fashion_mnist": 10, "caltech101": 100, "oxford_flowers": 102, "stanford_cars": 196,
                "stanford_dogs": 120, "cifar10": 10, "cifar100": 100, "oxford_pets": 37,
                "imagenet": 1000, "digits": 10}


def items(data) -> list:
    return [data[i] for i in range(len(data))]


def grey_of(image) -> float:
    """The grey level, 0..255, of a (3, 4, 5) tensor from `write_jpeg` and ToTensor."""
    assert tuple(image.shape) == (3, 4, 5)
    return image.mean().item() * 255


# folder's classes are your folders (below)
NAMED = [name for name in config_names("dataset") if name != "folder"]


def test_every_dataset_but_the_embedded_ones_is_tested_here():
    assert set(EXPECTED_PATHS) == set(NAMED) - {"fashion_mnist", "digits"}


@pytest.mark.parametrize("name", sorted(PROTOCOL_FORGET))
def test_protocol_forget_classes_are_class_names_of_their_dataset(name):
    classnames = compose(f"dataset={name}").dataset.classnames
    assert set(PROTOCOL_FORGET[name]) <= set(classnames)


@pytest.mark.parametrize("name", NAMED)
def test_class_names_are_counted_unique_and_fit_every_template(name):
    data = compose(f"dataset={name}").dataset
    assert len(data.classnames) == CLASS_COUNTS[name]
    assert len(set(data.classnames)) == len(data.classnames), (
        "forget sets name classes: names must be unique")
    assert all(isinstance(c, str) for c in data.classnames)
    assert all(template.count("{}") == 1 for template in data.templates)


@pytest.mark.parametrize("name", sorted(SPLIT_LAYOUTS))
def test_split_file_datasets_read_their_real_layout(name, tmp_path):
    expected = write_split_dataset(tmp_path, name)
    data = dataset(name, tmp_path)
    for split, images in expected.items():
        loaded = items(data.load(split=split, transform=ToTensor()))
        assert len(loaded) == SPLIT_SIZES[split]
        assert ([data.classnames[label] for _, label in loaded]
                == [classname for classname, _ in images])
        assert [round(grey_of(image)) for image, _ in loaded] == pytest.approx(
            [g for _, g in images], abs=2)


def test_split_file_labels_come_from_class_names_not_the_files_numbers(tmp_path):
    expected = write_split_dataset(tmp_path, "caltech101", labels=0)
    data = dataset("caltech101", tmp_path)
    labels = [label for _, label in items(data.load(split="test"))]
    assert labels == [data.classnames.index(classname) for classname, _ in expected["test"]]
    assert [data.classnames[label] for label in labels] == ["face", "euphonium", "water lilly",
                                                            "face"]


def test_split_file_refuses_unknown_splits_classes_and_missing_images(tmp_path):
    write_split_dataset(tmp_path, "caltech101")
    data = dataset("caltech101", tmp_path)
    with pytest.raises(UserError, match=r"has splits \['test', 'train', 'val'\], not 'validation'"):
        data.load(split="validation")
    folder = tmp_path / "caltech-101"
    (folder / "101_ObjectCategories" / "euphonium" / "image_0002.jpg").unlink()
    with pytest.raises(UserError, match=r"1 of the 3 train images .* missing, "
                                        r".*euphonium/image_0002\.jpg"):
        data.load(split="train")
    split = json.loads((folder / "split_zhou_Caltech101.json").read_text())
    split["test"][0][2] = "BACKGROUND_Google"
    (folder / "split_zhou_Caltech101.json").write_text(json.dumps(split))
    with pytest.raises(UserError, match="BACKGROUND_Google"):
        data.load(split="test")


def test_an_image_that_cannot_be_read_is_one_line_naming_it_also_from_a_loaders_workers(tmp_path):
    write_split_dataset(tmp_path, "caltech101")
    images = tmp_path / "caltech-101" / "101_ObjectCategories"
    truncated = images / "Faces" / "image_0006.jpg"  # the first test image
    truncated.write_bytes(truncated.read_bytes()[:100])
    (images / "euphonium" / "image_0007.jpg").write_text("not an image")
    test = dataset("caltech101", tmp_path).load(split="test", transform=ToTensor())
    with pytest.raises(UserError) as read:
        test[0]
    said = str(read.value)  # PIL's word for a JPEG cut short: Truncated File Read
    assert re.fullmatch(rf"cannot read image {re.escape(str(truncated))} \(Truncated File Read\): "
                        "replace or remove it", said)
    with pytest.raises(UserError, match=r"euphonium/image_0007\.jpg \(not an image PIL can read\)"):
        test[1]
    with pytest.raises(UserError) as error:  # torch rebuilds it from the worker's traceback as text
        list(DataLoader(test, batch_size=1, num_workers=2))
    assert str(error.value) == said and find_user_error(error.value) is error.value


@pytest.mark.parametrize("name", sorted(EXPECTED_PATHS))
def test_missing_data_is_one_line_naming_the_expected_path(name, tmp_path):
    data = dataset(name, tmp_path)
    with pytest.raises(UserError) as error:
        data.load(split=data.split)
    message = str(error.value)
    assert str(tmp_path / EXPECTED_PATHS[name]) in message
    assert "\n" not in message
    assert ("dataset.load.download=true" in message) == (name in TORCHVISION_DOWNLOADS)


@pytest.mark.parametrize("name, splits",
                         [("cifar10", "'train' and 'test'"), ("cifar100", "'train' and 'test'"),
                          ("oxford_pets", "'train' and 'test'"),
                          ("imagenet", "'train' and 'val'"), ("digits", "'train' and 'test'")])
def test_unknown_split_is_refused_with_the_valid_ones(name, splits, tmp_path):
    with pytest.raises(UserError, match=f"has splits {splits}, not 'validation'"):
        dataset(name, tmp_path).load(split="validation")


# CIFAR's python pickles: per file the labels of its images; the label key and the meta file with
# its class-name keys.
CIFAR_LAYOUTS = {
    "cifar10": ("cifar-10-batches-py",
                {**{f"data_batch_{i}": [i - 1] for i in range(1, 6)}, "test_batch": [9, 0, 5]},
                ["labels"], "batches.meta", ["label_names"]),
    "cifar100": ("cifar-100-python", {"train": [0, 1], "test": [99, 30, 0]},
                 ["fine_labels", "coarse_labels"], "meta",
                 ["fine_label_names", "coarse_label_names"]),
}


@pytest.mark.parametrize("name, train_size, test_names", [
    ("cifar10", 5, ["truck", "airplane", "dog"]),
    ("cifar100", 2, ["worm", "dolphin", "apple"]),
])
def test_cifar_reads_torchvisions_pickled_batches(name, train_size, test_names, tmp_path,
                                                  monkeypatch):
    folder, files, label_keys, meta_file, meta_keys = CIFAR_LAYOUTS[name]
    (tmp_path / folder).mkdir()
    reds = {}
    for file, labels in files.items():
        data = np.zeros((len(labels), 3, 32, 32), np.uint8)
        reds[file] = [20 * (i + 1) + label for i, label in enumerate(labels)]
        # a red plane per image, green and blue black
        data[:, 0] = np.array(reds[file], np.uint8)[:, None, None]
        entry = {"data": data.reshape(len(labels), 3072), **{key: labels for key in label_keys}}
        (tmp_path / folder / file).write_bytes(pickle.dumps(entry))
    (tmp_path / folder / meta_file).write_bytes(pickle.dumps({key: ["name"] * 100
                                                              for key in meta_keys}))
    # torchvision checks the real files' MD5 sums, which no fixture can match
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    data = dataset(name, tmp_path)
    assert len(data.load(split="train")) == train_size
    test = items(data.load(split="test", transform=ToTensor()))
    assert [data.classnames[label] for _, label in test] == test_names
    test_file = "test_batch" if name == "cifar10" else "test"
    assert [round(image[0].mean().item() * 255) for image, _ in test] == reds[test_file]
    assert all(image.shape == (3, 32, 32) and image[1:].max() == 0 for image, _ in test)


def test_oxford_pets_reads_torchvisions_layout_with_class_id_labels(tmp_path):
    # split "train"
    splits = {"trainval": [("Abyssinian_1", 1, 1), ("yorkshire_terrier_12", 37, 2)],
              "test": [("Bengal_3", 6, 1), ("american_bulldog_45", 2, 2), ("Abyssinian_6", 1, 1)]}
    folder = tmp_path / "oxford-iiit-pet"
    (folder / "annotations").mkdir(parents=True)
    for split, images in splits.items():
        for i, (image_id, _, _) in enumerate(images):
            write_jpeg(folder / "images" / f"{image_id}.jpg", 40 * i + 30)
        lines = [f"{image_id} {class_id} {species} 1" for image_id, class_id, species in images]
        (folder / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    data = dataset("oxford_pets", tmp_path)
    assert len(data.load(split="train")) == 2
    test = items(data.load(split="test", transform=ToTensor()))
    assert [data.classnames[label] for _, label in test] == ["Bengal", "American Bulldog",
                                                             "Abyssinian"]
    assert [round(grey_of(image)) for image, _ in test] == pytest.approx([30, 70, 110], abs=2)


def test_imagenet_reads_wnid_folders_in_sorted_order(tmp_path):
    val = tmp_path / "imagenet" / "val"
    for k in range(1000):  # folders named like WordNet ids; only their sorted order matters
        write_jpeg(val / f"n{1000 + 7 * k:08d}" / f"ILSVRC2012_val_{k + 1:08d}.JPEG", k % 250)
    data = dataset("imagenet", tmp_path)
    loaded = data.load(split="val", transform=ToTensor())
    assert len(loaded) == 1000
    for k in (0, 744, 999):
        image, label = loaded[k]
        assert label == k and grey_of(image) == pytest.approx(k % 250, abs=2)
    assert (data.classnames[0], data.classnames[999]) == ("tench", "toilet paper")
    for image in (val / f"n{1000:08d}").iterdir():
        image.unlink()
    (val / f"n{1000:08d}").rmdir()
    with pytest.raises(UserError, match="expected 1000 class folders .* found 999"):
        data.load(split="val")


def test_digits_is_a_fixed_stratified_third_of_scikit_learns_digits(tmp_path):
    data = dataset("digits", tmp_path)
    train, test = (items(data.load(split=split, transform=ToTensor()))
                   for split in ("train", "test"))
    assert (len(train), len(test)) == (1198, 599)
    reference = load_digits()
    per_class = np.bincount(reference.target)
    test_per_class = np.bincount([label for _, label in test], minlength=10)
    assert np.all(np.abs(test_per_class - per_class / 3) <= 1)
    assert np.array_equal(np.bincount([label for _, label in train], minlength=10) + test_per_class,
                          per_class)
    images = [image for image, _ in train + test]
    assert all(image.shape == (1, 8, 8) for image in images)
    # 0..16 scaled to 0..255: the two splits hold exactly the scaled images of the whole set
    total = sum(round(image.sum().item() * 255) for image in images)
    assert total == np.rint(reference.images * 255 / 16).sum()
    assert max(image.max().item() for image in images) == 1.0
    again = items(data.load(split="test"))
    assert [label for _, label in again] == [label for _, label in test]


# --- your own images: dataset=folder --------------------------------------------------------------
# class folders named as ImageNet's are, by id
GREYS = {"n03": [30, 40], "n01": [50, 60], "n02": [70, 80]}


def folder_dataset(root, *overrides):
    return instantiate(compose("dataset=folder", f"dataset.root={root}", *overrides).dataset)


def images_by_class(data, split: str) -> list[tuple[str, int]]:
    """(class name of the label, grey level) of every image of a split, sorted."""
    return sorted((data.classnames[label], round(grey_of(image)))
                  for image, label in items(data.load(split=split, transform=ToTensor())))


def test_a_folder_datasets_classes_are_its_folders_and_labels_follow_names_not_positions(tmp_path):
    write_image_folder(tmp_path, GREYS)
    data = folder_dataset(tmp_path, "dataset.names={n03: bag, n01: sandal}")
    # folders in sorted order, named as `names` maps them
    assert list(data.classnames) == ["sandal", "n02", "bag"]
    reordered = folder_dataset(tmp_path, "dataset.names={n03: bag, n01: sandal}",
                               "dataset.classnames=[bag,n02,sandal]")
    for each in (data, reordered):
        for split in ("train", "test"):
            assert images_by_class(each, split) == [("bag", 30), ("bag", 40), ("n02", 70),
                                                    ("n02", 80), ("sandal", 50), ("sandal", 60)]


def test_a_flat_folder_is_split_per_class_by_its_stated_rule(tmp_path):
    # file names sort as the levels do
    greys = {"a": list(range(10, 110, 10)), "b": list(range(15, 115, 10))}
    write_image_folder(tmp_path, greys, flat=True)
    data = folder_dataset(tmp_path)
    train, test = images_by_class(data, "train"), images_by_class(data, "test")
    # round(0.2 * 10) of each class, by default_rng(split_seed)
    order = np.random.default_rng(0).permutation(10)[:2]
    assert test == sorted((name, levels[i]) for name, levels in greys.items() for i in order)
    assert sorted(train + test) == sorted((name, level) for name, levels in greys.items()
                                          for level in levels)
    assert images_by_class(folder_dataset(tmp_path), "test") == test
    assert len(images_by_class(folder_dataset(tmp_path, "dataset.load.test_fraction=0.5"),
                               "test")) == 10


def test_an_image_replaced_under_its_name_gives_the_split_another_feature_cache_key(tmp_path):
    root = write_image_folder(tmp_path, GREYS)
    key = dataset_key(folder_dataset(root).load(split="test"))
    assert dataset_key(folder_dataset(root).load(split="test")) == key
    write_jpeg(root / "test" / "n01" / "050.jpg", 51)  # another picture, the same name
    os.utime(root / "test" / "n01" / "050.jpg", ns=(10**9, 10**9))  # written in the same clock tick
    assert dataset_key(folder_dataset(root).load(split="test")) != key


def test_a_folder_dataset_refuses_what_it_cannot_read_in_one_line(tmp_path):
    with pytest.raises(MissingFiles, match=r"dataset.root=\S+/nowhere: no such folder; a folder "
                                           r"dataset reads"):
        folder_classes(str(tmp_path / "nowhere"), None)
    write_image_folder(tmp_path / "one_split", {"a": [10], "b": [20]})
    (tmp_path / "one_split" / "test").rename(tmp_path / "one_split" / "val")
    with pytest.raises(UserError, match="has train/ but no test/: give both splits"):
        folder_classes(str(tmp_path / "one_split"), None)
    root = write_image_folder(tmp_path / "images", GREYS)
    with pytest.raises(UserError, match=r"dataset.names maps 'n09', which \S+ has no class "
                                        r"folder for"):
        folder_classes(str(root), {"n09": "dog"})
    with pytest.raises(UserError, match=r"class folder 'n02' of \S+ is not among "
                                        r"dataset.classnames 'n01', 'n03'"):
        image_folder(str(root), "test", ["n01", "n03"], None, 0.2, 0)
    (root / "train" / "n04").mkdir()
    with pytest.raises(MissingFiles, match="Found no valid file for the classes n04"):
        image_folder(str(root), "train", ["n01", "n02", "n03", "n04"], None, 0.2, 0)


def test_a_test_split_halves_into_disjoint_stratified_validation_and_test_images(tmp_path):
    digits = instantiate(compose("dataset=digits").dataset).load(split="test")
    validation, test = half(digits, "validation"), half(digits, "test")
    assert half(digits, "all") is digits and not set(validation.indices) & set(test.indices)
    assert sorted(validation.indices + test.indices) == list(range(len(digits)))
    labels = np.asarray(digits.targets)
    # each class halved
    assert np.array_equal(np.bincount(labels[validation.indices]), np.bincount(labels) // 2)
    # fixed: the same on every call and machine
    assert half(digits, "validation").indices == validation.indices
    with pytest.raises(UserError, match="test_images='val': score all"):
        half(digits, "val")


@pytest.mark.slow
def test_a_search_scores_the_validation_half_only_and_the_benchmark_the_test_half(
        tmp_path, monkeypatch, tiny):
    assert {compose(f"hparams_search={name}").test_images
            for name in config_names("hparams_search")} == {"validation"}
    assert compose("experiment=benchmark").test_images == "test"
    read = []  # (split size, index) of every image read
    for cls in (ArrayImages, FashionMNIST):
        monkeypatch.setattr(cls, "__getitem__", lambda self, i, get=cls.__getitem__: read.append(
            (len(self), i)) or get(self, i))
    # a cache of its own: every image is encoded here, none read from disk
    run_job(tmp_path, "dataset=digits", "forget.classes=['3']", "test_images=validation",
            "eval=[cross]", f"cache_dir={tmp_path}/cache")
    for load in (instantiate(compose("dataset=digits").dataset).load(split="test"),
                 instantiate(compose().dataset).load(split="test")):
        seen = {index for size, index in read if size == len(load)}
        # the validation half, every image of it, no other
        assert seen == set(half(load, "validation").indices)
