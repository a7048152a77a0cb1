"""SLUG beyond the contract: its Pareto front, its layer and step rules on constructed cases, its
differentiable classifier, and its step computed once per setting."""
import math

import pytest
import torch
from helpers import compose, fashion_task

from baselines.slug import (
    SLUG,
    candidates,
    class_cosine,
    layer_group,
    pareto_front,
    select_layer,
    step_search,
    text_classifier,
)
from ccup.method import build


def test_the_front_holds_the_layers_no_other_beats_on_both_alignment_and_importance():
    alignment = {"a": 0.1, "b": 0.5, "c": 0.9, "d": 0.6, "e": 0.1}
    importance = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 1.5, "e": 0.5}
    # d is beaten by b (less aligned, more important); e ties a on alignment and is kept (the test
    # is strict)
    assert pareto_front(alignment, importance) == ["a", "b", "c", "e"]


def test_the_layer_is_the_deepest_blocks_most_important_front_member_moving_with_its_mlp_twin():
    order = ["proj_in", "blocks.0.attn.w", "blocks.0.mlp.c_fc.weight", "blocks.0.mlp.c_proj.weight",
             "blocks.1.attn.w", "blocks.1.mlp.c_fc.weight", "blocks.1.mlp.c_proj.weight", "proj"]
    weights = {name: torch.ones(2) for name in order}
    retain = {name: torch.tensor([1.0, 0.0]) for name in order}
    # forget gradients: norm sets importance (||G_f|| / ||theta||), direction sets alignment with
    # the retain one orthogonal: alignment 0 everywhere
    forget = {name: torch.tensor([0.0, 1.0]) for name in order}
    forget["blocks.1.mlp.c_fc.weight"] = torch.tensor([0.0, 3.0])
    forget["blocks.1.attn.w"] = torch.tensor([0.0, 2.0])
    forget["proj"] = torch.tensor([0.0, 9.0])  # the most important, but in no block
    forget["blocks.0.attn.w"] = torch.zeros(2)  # out of reach of the forget loss: never picked
    # all at alignment 0: every reached layer on the front
    layer, front = select_layer(forget, retain, weights)
    assert front == [name for name in order if name != "blocks.0.attn.w"]
    # block 1 is the deepest; c_fc its most important member
    assert layer == "blocks.1.mlp.c_fc.weight"
    assert layer_group(layer, order) == ["blocks.1.mlp.c_fc.weight", "blocks.1.mlp.c_proj.weight"]
    # the blocks' gradients aligned with the retain one now: proj beats them all
    for name in order[1:-1]:
        retain[name] = forget[name] + torch.tensor([0.1, 0.0])
    layer, front = select_layer(forget, retain, weights)
    # no block on the front: its most important member
    assert front == ["proj_in", "proj"] and layer == "proj"
    assert layer_group("blocks.1.attn.w", order) == ["blocks.1.attn.w"]


def test_the_step_doubles_until_the_target_then_bisects_and_keeps_the_smallest_step_that_reached_it(
):
    def accuracy(step):  # forgets at step 10 and beyond
        return 0.0 if step >= 10 else 50.0
    step, tried = step_search(accuracy, 1.0, 6, 0.0)
    assert [s for s, _ in tried] == [1, 2, 4, 8, 16, 12]
    assert step == 12

    # None reaches the target: the smallest of the steps that forgot most, not the last tried
    def plateau(step):  # never below 5 %, reached at step 17.5
        return max(5.0, 40 - 2 * step)
    step, tried = step_search(plateau, 1.0, 7, 0.0)
    assert [s for s, _ in tried] == [1, 2, 4, 8, 16, 32, 64] and step == 32
    step, tried = step_search(plateau, 1.0, 7, 5.0)  # a target of 5 % is reached
    assert [s for s, _ in tried] == [1, 2, 4, 8, 16, 32, 24] and step == 24
    assert math.isclose(step_search(lambda s: 0.0, 3.0, 3, 0.0)[0], 0.75)  # bisected towards 0


def test_the_differentiable_classifier_is_the_zero_shot_one_and_the_forget_step_lowers_the_cosine(
        random_tiny):
    task = fashion_task(random_tiny)
    model = random_tiny.model
    torch.testing.assert_close(text_classifier(model, task).detach(), task.classifier)
    images = torch.stack([task.load_train()[i][0] for i in range(8)])
    labels = torch.full((8,), task.forget_idx[0])
    name = "transformer.resblocks.1.attn.out_proj.weight"
    weight = dict(model.named_parameters())[name]
    (grad,) = torch.autograd.grad(class_cosine(model, text_classifier(model, task), images, labels),
                                  [weight])
    before = float(class_cosine(model, task.classifier, images, labels).detach())
    with torch.no_grad():
        weight -= 1e-2 * grad
        after = float(class_cosine(model, text_classifier(model, task), images, labels))
        weight += 1e-2 * grad
    assert after < before


def slug(cache_dir, *overrides) -> SLUG:
    return build(compose("method=slug", "method.evaluations=3", f"cache_dir={cache_dir}",
                         *overrides).method)


@pytest.mark.parametrize("tower", ["text", "image"])
def test_one_layer_moves_and_a_second_run_reuses_it_for_every_alpha(tower, random_tiny, tmp_path,
                                                                    monkeypatch):
    task = fashion_task(random_tiny)
    first = slug(tmp_path, f"method.tower={tower}")
    full = first(random_tiny.model, task).state_dict()
    original = random_tiny.model.state_dict()
    layer = first.stats["unlearn/layer"]
    assert layer in candidates(random_tiny.model, tower) and first.stats["unlearn/step"] > 0
    changed = [key for key, value in full.items() if not torch.equal(value, original[key])]
    assert changed == layer_group(layer, first.edits(random_tiny.model))
    monkeypatch.setattr(SLUG, "compute", None)  # a cache hit must not compute the gradients again
    again, half = (slug(tmp_path, f"method.tower={tower}"),
                   slug(tmp_path, f"method.tower={tower}", "alpha=0.5"))
    assert all(torch.equal(value, full[key])
               for key, value in again(random_tiny.model, task).state_dict().items())
    assert again.stats == {**first.stats, "unlearn/cache_hit": 1}
    halfway = half(random_tiny.model, task).state_dict()
    torch.testing.assert_close(halfway[layer], (original[layer] + full[layer]) / 2)
