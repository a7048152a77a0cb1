"""Forget sets name classes of the dataset: refusals say what is wrong and how to fix it."""
import pytest
import torch

from ccup.classnames import check_forget_set
from ccup.errors import UserError
from ccup.method import CCUP
from ccup.models import load_clip
from ccup.task import UnlearnTask

CLASSES = ("t-shirt", "trouser", "sandal", "bag")


@pytest.mark.parametrize("forget, message", [
    (["sandals"], "unknown forget class 'sandals': did you mean 'sandal'? the dataset's classes "
                  "are 't-shirt', "),
    (["boat"], "unknown forget class 'boat': the dataset's classes are 't-shirt', 'trouser', "
               "'sandal', 'bag' (dataset.classnames)"),
    ([], "the forget set is empty: name at least one class"),
    (["sandal", "sandal"], "a forget class is given twice in ['sandal', 'sandal']"),
    (list(CLASSES), "cannot forget every class"),
])
def test_bad_forget_sets_are_refused(forget, message):
    with pytest.raises(UserError) as error:
        check_forget_set(forget, CLASSES)
    assert message in str(error.value)


def test_a_long_class_list_is_cut_to_ten_names_and_a_count():
    names = [f"class {i}" for i in range(1000)]
    with pytest.raises(UserError) as error:
        check_forget_set(["boat"], names)
    assert str(error.value) == ("unknown forget class 'boat': the dataset's classes are "
                                + ", ".join(f"'class {i}'" for i in range(10))
                                + ", … and 990 more (dataset.classnames)")


def test_task_indices_split_the_classes():
    task = UnlearnTask(CLASSES, ("bag", "trouser"), ("a {}.",), str.split,
                       torch.zeros(4, len(CLASSES)))
    assert task.forget_idx == [3, 1] and task.retain_idx == [0, 2]


@pytest.mark.parametrize("settings, message", [
    ({"alpha": -0.5, "lam": 1.0, "mu": 1.0}, r"alpha must lie in \[0, 1\]"),
    ({"alpha": 1.0, "lam": -1.0, "mu": 1.0}, "lam >= 0"),
    ({"alpha": 1.0, "lam": 1.0, "mu": -1.0}, "finite mu >= 0"),
    ({"alpha": 1.0, "lam": 1.0, "mu": 1.0, "rtol": "abc"}, r"method.rtol .* lies in \(0, 1\), "
                                                           r"got 'abc'"),
    ({"alpha": 1.0, "lam": 1.0, "mu": 1.0, "rtol": 0.0}, r"lies in \(0, 1\), got 0.0"),
])
def test_ccup_refuses_bad_settings_when_configured(settings, message):
    with pytest.raises(UserError, match=message):
        CCUP(**settings)


def test_unknown_pretrained_tags_list_the_known_ones():
    with pytest.raises(UserError, match="neither a file nor a tag of RN50; tags: \\['openai'"):
        load_clip("RN50", pretrained="nosuchtag")
