"""Text-space adaptation (baselines/text_space.py): the pooled features it edits, the empty prompt
it sends the forget name to, its retry rule and its strength."""
import pytest
import torch
from helpers import compose
from hydra.utils import instantiate

from baselines.text_space import TextSpace, empty_target, pooled
from ccup.errors import UserError, find_user_error
from ccup.method import build
from ccup.task import UnlearnTask
from ccup.zeroshot import class_embeddings


@pytest.fixture(scope="module")
def setup(tiny):
    clip = tiny
    data = compose().dataset
    return clip, UnlearnTask.of(clip, data.classnames, data.templates, ["sandal"])


def text_space(**settings) -> TextSpace:
    return instantiate(compose("method=text_space").method, **settings)


@torch.no_grad()
def test_the_pooled_features_are_what_the_text_projection_maps(setup):
    clip, _ = setup
    texts = ["sandal", "a photo of a bag.", ""]
    torch.testing.assert_close(
        pooled(clip.model, clip.tokenizer, texts) @ clip.model.text_projection,
        clip.model.encode_text(clip.tokenizer(texts)))


@torch.no_grad()
def test_the_empty_prompt_is_drawn_again_while_a_forget_class_is_its_nearest(setup):
    clip, task = setup
    empty = torch.nn.functional.normalize(clip.model.encode_text(clip.tokenizer([""])), dim=-1)
    near = torch.nn.functional.normalize(
        empty + 0.01 * torch.randn(empty.shape, generator=torch.Generator().manual_seed(0)), dim=-1)
    # the first class is the empty prompt itself, the second close to it
    names = torch.cat([empty, near])

    def target(forget):
        return empty_target(clip.model, clip.tokenizer, names, forget,
                            torch.Generator().manual_seed(0))

    # nearest to a class kept: the embedding as it is
    torch.testing.assert_close(target([1]), empty)
    redrawn = target([0])
    # the empty prompt, noisy
    assert int((names @ redrawn.T).argmax()) == 1 and 0.5 < float(redrawn @ empty.T) < 1
    with pytest.raises(UserError, match="stays nearest to a forget class after 100 noisy draws"):
        target([0, 1])


def test_the_forget_name_lands_on_the_empty_prompt_and_the_others_stay(setup):
    clip, task = setup
    method = text_space()
    unlearned = method(clip.model, task)
    assert method.stats == {"unlearn/trials": 1, "unlearn/lamb_forget": 1.1,
                            "unlearn/forget_cut": pytest.approx(method.stats["unlearn/forget_cut"])}
    assert method.stats["unlearn/forget_cut"] >= 0.7
    with torch.no_grad():
        before = class_embeddings(clip.model, clip.tokenizer, task.classnames, ["{}"]).T
        after = class_embeddings(unlearned, clip.tokenizer, task.classnames, ["{}"]).T
        empty = class_embeddings(clip.model, clip.tokenizer, [""], ["{}"]).T
    similarity = (after * before).sum(dim=-1)
    sandal = task.classnames.index("sandal")
    assert float(after[sandal] @ empty[0]) > 0.95 > float(before[sandal] @ empty[0])
    assert similarity[sandal] < 0.5 < 0.85 < similarity[task.retain_idx].min(), similarity


def test_a_trial_that_cuts_too_little_is_run_again_with_more_forgetting(setup):
    clip, task = setup
    method = text_space(steps=1, trials=3, reduction=0.99)
    method(clip.model, task)
    assert method.stats["unlearn/trials"] == 3
    # raised before the 2nd and 3rd
    assert method.stats["unlearn/lamb_forget"] == pytest.approx(1.1 + 2 * 0.05)
    assert method.stats["unlearn/forget_cut"] < 0.99


def test_alpha_moves_the_text_projection_along_the_line_to_the_unlearned_one(setup):
    clip, task = setup
    full, half = (text_space(alpha=alpha)(clip.model, task).text_projection for alpha in (1.0, 0.5))
    torch.testing.assert_close(half, torch.lerp(clip.model.text_projection, full, 0.5))


@pytest.mark.parametrize("override, message", [
    ("method.rank=0", "method.rank, method.steps and method.trials must be at least 1, got 0, "
                      "2000 and 100"),
    ("method.lamb_forget=-1", "method.lamb_forget, lamb_preserve, lamb_weight and raise_forget "
                              "must be finite"),
    ("method.reduction=1", "method.reduction (the forget distance's least relative cut) lies in "
                           "[0, 1), got 1"),
])
def test_bad_settings_are_refused_by_name(override, message):
    with pytest.raises(Exception) as error:  # Hydra wraps what a constructor raises
        build(compose("method=text_space", override).method)
    assert message in str(find_user_error(error.value))


def test_a_model_without_a_text_projection_matrix_is_refused(setup):
    _, task = setup
    with pytest.raises(UserError, match="text_space edits the text projection"):
        text_space()(torch.nn.Linear(2, 2), task)
