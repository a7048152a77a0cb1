"""Unlearning metrics on confusion matrices whose answers are known, the per-class counts they are
read from, and the one zero-shot accuracy of a model on images."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torchmetrics.functional.classification import multiclass_confusion_matrix

from ccup.metrics import class_counts, unlearning_metrics
from ccup.zeroshot import zero_shot_accuracy

CLASSES = ["a", "b", "c"]


def test_metrics_of_a_known_confusion_matrix():
    confmat = torch.tensor([[8, 2, 0],    # class a: 10 images, 8 right
                            [5, 0, 5],    # class b: 10 images, none right (forgotten)
                            [0, 0, 20]])  # class c: 20 images, all right
    metrics = unlearning_metrics(confmat.diag(), confmat.sum(dim=1), [1], CLASSES)
    assert metrics["forget/acc"] == 0.0
    assert metrics["retain/acc"] == pytest.approx(100 * 28 / 30)
    assert metrics["all/acc"] == pytest.approx(100 * 28 / 40)
    assert metrics["retain/mean_per_class_recall"] == pytest.approx(100 * (0.8 + 1.0) / 2)
    assert [metrics[f"class/{c}/acc"] for c in CLASSES] == pytest.approx([80.0, 0.0, 100.0])


def test_several_forget_classes_pool_their_images():
    confmat = torch.tensor([[1, 0, 3], [0, 6, 0], [0, 0, 5]])
    metrics = unlearning_metrics(confmat.diag(), confmat.sum(dim=1), [0, 1], CLASSES)
    assert metrics["forget/acc"] == pytest.approx(100 * 7 / 10)
    assert metrics["retain/acc"] == 100.0


def test_classes_without_test_images_do_not_count_towards_the_means():
    confmat = torch.tensor([[4, 0, 0], [0, 0, 0], [1, 0, 1]])
    metrics = unlearning_metrics(confmat.diag(), confmat.sum(dim=1), [0], CLASSES)
    assert metrics["retain/mean_per_class_recall"] == pytest.approx(50.0)
    assert metrics["retain/acc"] == pytest.approx(50.0)


@given(st.integers(2, 40), st.integers(0, 200), st.integers(0, 2**31 - 1))
def test_the_counts_are_the_confusion_matrixs_diagonal_and_row_sums(classes, images, seed):
    generator = torch.Generator().manual_seed(seed)
    labels, predictions = (torch.randint(classes, (images,), generator=generator) for _ in range(2))
    confmat = multiclass_confusion_matrix(predictions, labels, classes)
    correct, support = class_counts(predictions, labels, classes)
    assert torch.equal(correct, confmat.diag()) and torch.equal(support, confmat.sum(dim=1))


class Mirror(torch.nn.Module):
    """An image's embedding is the image itself, (B, 2), in eval mode, and its negation in train
    mode: a prediction scored in train mode is wrong. It keeps the batch sizes it sees."""

    def __init__(self):
        super().__init__()
        self.device_anchor = torch.nn.Parameter(torch.zeros(1))
        self.batches = []

    def encode_image(self, images, normalize):
        self.batches.append(len(images))
        return torch.nn.functional.normalize(-images if self.training else images, dim=-1)


def test_zero_shot_accuracy_is_in_percent_batched_in_eval_mode_and_puts_the_mode_back():
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [1.0, 3.0], [5.0, 1.0], [1.0, 2.0],
                           [0.0, 1.0]])
    labels = torch.tensor([0, 1, 0, 1, 1, 0, 1])  # the nearest class (columns of I): 5 of 7 right
    model = Mirror().train()
    assert zero_shot_accuracy(model, images, labels, torch.eye(2), batch_size=3) == 100 * (5 / 7)
    assert model.training and model.batches == [3, 3, 1]
