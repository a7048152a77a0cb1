"""SSD beyond the contract: its importances and its dampening rule on constructed cases, and its
weights computed once per setting."""
import pytest
import torch
from helpers import compose, fashion_task
from open_clip.modified_resnet import ModifiedResNet
from open_clip.transformer import VisionTransformer

from baselines.ssd import SSD, authors_selection_weighting, dampening, importances
from ccup.method import build


def two_parameter_loss(parameters: dict[str, torch.Tensor]):
    """loss(x, y) = mean over the batch of a x_0 + b x_1: its gradient is the batch mean of x, known
    exactly."""
    def loss(inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return (inputs[:, 0] * parameters["a"] + inputs[:, 1] * parameters["b"]).mean()
    return loss


def batch(*rows: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(rows, dtype=torch.float64), torch.zeros(len(rows), dtype=torch.long)


@pytest.fixture
def two_parameters():
    return {name: torch.tensor(1.0, dtype=torch.float64, requires_grad=True) for name in ("a", "b")}


def test_importances_are_the_mean_over_batches_of_squared_batch_gradients(two_parameters):
    loss = two_parameter_loss(two_parameters)
    # The forget batch's gradient is (2, 0.1); each retain batch's (0, 1), the first one's as the
    # mean of two samples (0, 0.5) and (0, 1.5): squared after averaging, as the authors'
    # calc_importance does (per sample: 1.25, not 1).
    forget = [batch((1.0, 0.0), (3.0, 0.2))]
    retain = [batch((0.0, 0.5), (0.0, 1.5)), batch((0.0, 1.0)), batch((0.0, 1.0))]
    f = importances(loss, two_parameters, forget)
    full = importances(loss, two_parameters, retain + forget)
    torch.testing.assert_close(f["a"], torch.tensor(4.0, dtype=torch.float64))
    torch.testing.assert_close(f["b"], torch.tensor(0.01, dtype=torch.float64))
    torch.testing.assert_close(full["a"], torch.tensor(4.0 / 4, dtype=torch.float64))
    torch.testing.assert_close(full["b"], torch.tensor(3.01 / 4, dtype=torch.float64))


def test_dampening_scales_the_selected_entries_by_their_importance_ratio_and_keeps_the_others():
    forget = torch.tensor([4.0, 0.01, 3.0, 0.0])
    full = torch.tensor([1.0, 0.7525, 0.1, 0.0])
    # selection_weighting 2: entries 0 and 2 are over twice as important to the forget samples;
    # entry 3 is important to nothing, and is kept rather than divided by zero.
    expected = torch.tensor([1.0 / 4, 1.0, 0.1 / 3, 1.0])
    assert torch.equal(dampening(forget, full, 2.0, 1.0), expected)
    # A large dampening constant would raise entry 0 (20 * 1 / 4 = 5): bounded by 1, as the authors
    # bound it.
    assert torch.equal(dampening(forget, full, 2.0, 20.0),
                       torch.tensor([1.0, 1.0, 20 * 0.1 / 3, 1.0]))


def test_the_two_parameter_model_dampens_only_the_parameter_of_the_forget_data(two_parameters):
    loss = two_parameter_loss(two_parameters)
    forget = [batch((2.0, 0.1))]
    # D: retain then forget, the forget batch a quarter of D's
    full = [batch((0.0, 1.0))] * 3 + forget
    f = importances(loss, two_parameters, forget)
    d = importances(loss, two_parameters, full)
    factors = {name: dampening(f[name], d[name], 2.0, 1.0) for name in two_parameters}
    # []_D / []_f = 1 / 4
    torch.testing.assert_close(factors["a"], torch.tensor(0.25, dtype=torch.float64))
    assert factors["b"] == 1.0
    # The authors' selection_weighting 10 selects nothing here: []_f is at most (all batches /
    # forget batches) = 4 times []_D, since D holds the forget batch.
    assert all(dampening(f[name], d[name], 10.0, 1.0) == 1.0 for name in two_parameters)


def ssd(cache_dir, *overrides) -> SSD:
    # selection_weighting 1: with some 50 sandals among 512 images the authors' 10 may select
    # nothing
    return build(compose("method=ssd", "method.selection_weighting=1", f"cache_dir={cache_dir}",
                         *overrides).method)


def test_a_second_run_reuses_the_dampened_weights_for_every_alpha(random_tiny, tmp_path,
                                                                  monkeypatch):
    task = fashion_task(random_tiny)
    first = ssd(tmp_path)
    full = first(random_tiny.model, task)
    assert first.stats["unlearn/cache_hit"] == 0 and first.stats["unlearn/dampened"] > 0
    monkeypatch.setattr(SSD, "compute", None)  # a cache hit must not compute the importances again
    again, half = ssd(tmp_path), ssd(tmp_path, "alpha=0.5")
    original = random_tiny.model.state_dict()
    dampened = full.state_dict()
    reused = again(random_tiny.model, task).state_dict()
    assert all(torch.equal(value, dampened[key]) for key, value in reused.items())
    # the cost reported is that of the computation
    assert again.stats == {**first.stats, "unlearn/cache_hit": 1}
    halfway = half(random_tiny.model, task).state_dict()
    for key in first.edits(random_tiny.model):
        torch.testing.assert_close(halfway[key], (original[key] + dampened[key]) / 2)


def test_the_default_selection_weighting_is_the_authors_value_for_the_tower_at_hand():
    vit = VisionTransformer(image_size=28, patch_size=7, width=32, layers=1, heads=2, mlp_ratio=2,
                            output_dim=8)
    resnet = ModifiedResNet(layers=[1, 1, 1, 1], output_dim=8, heads=2, image_size=32, width=16)
    assert (authors_selection_weighting(vit), authors_selection_weighting(resnet)) == (5.0, 10.0)
    assert compose("method=ssd").method.selection_weighting is None
