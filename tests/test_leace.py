"""LEACE beyond the contract: the folded map is the linear part of the package's eraser, fitted on
the samples' normalised embeddings, and what LEACE guarantees survives dropping its mean shift."""
import pandas as pd
import pytest
import torch
from concept_erasure import LeaceFitter
from helpers import ROOT, compose
from torch.utils.data import DataLoader, Subset

from baselines.leace import Leace, shift, shift_effect, summary
from baselines.samples import RealSamples
from ccup.data import fashion_mnist
from ccup.models import load_clip
from ccup.task import UnlearnTask


@pytest.fixture(scope="module")
def setup():
    """A random-weight tiny model, a task forgetting sandals, and the samples LEACE is fitted on."""
    torch.manual_seed(0)
    clip = load_clip("ccup-tiny-p7")
    data = compose().dataset
    train = Subset(fashion_mnist("train", data.load.roots, data.load.cache_dir, clip.preprocess),
                   range(512))
    task = UnlearnTask.of(clip, data.classnames, data.templates, ["sandal"],
                          load_train=lambda: train)
    samples = RealSamples(per_class=32, seed=0)
    sets, _ = samples(clip.model, task, ("forget", "retain"))
    return clip.model, task, samples, sets


@torch.no_grad()
def raw_embeddings(model, dataset) -> torch.Tensor:
    """(N, d) unnormalised image embeddings, in float64."""
    return torch.cat([model.encode_image(images)
                      for images, _ in DataLoader(dataset, batch_size=500)]).double()


def test_the_folded_map_is_the_linear_part_of_the_erasers_fit_on_normalised_embeddings(setup):
    model, task, samples, sets = setup
    z = {name: raw_embeddings(model, sets[name]) for name in sets}
    u = (torch.cat([z["forget"], z["retain"]])
         / torch.cat([z["forget"], z["retain"]]).norm(dim=1, keepdim=True))
    concept = torch.cat([torch.ones(len(z["forget"])), torch.zeros(len(z["retain"]))]).double()
    eraser = LeaceFitter.fit(u, concept[:, None]).eraser
    P = eraser.proj_left @ eraser.proj_right  # the eraser is x - P (x - mu)
    for alpha in (1.0, 0.5):
        edited = Leace(alpha=alpha, samples=samples, batch_size=64)(model, task)
        for name in sets:
            expected = z[name] - alpha * z[name] @ P.T  # W_alpha z, the mean shift P mu dropped
            torch.testing.assert_close(raw_embeddings(edited, sets[name]), expected, rtol=1e-4,
                                       atol=1e-5)


def test_forget_and_retain_samples_have_one_mean_after_the_edit_without_the_shift(setup):
    model, task, samples, sets = setup
    edited = Leace(alpha=1.0, samples=samples, batch_size=64)(model, task)
    means = {}
    for name in sets:
        norms = raw_embeddings(model, sets[name]).norm(dim=1, keepdim=True)
        # W u: the edit of the normalised u
        means[name] = (raw_embeddings(edited, sets[name]) / norms).mean(dim=0)
    # No affine classifier of W u tells the concept apart better than a constant: the means of its
    # two sides agree.
    torch.testing.assert_close(means["forget"], means["retain"], rtol=0, atol=1e-5)
    before = {name: torch.nn.functional.normalize(raw_embeddings(model, sets[name]), dim=1).mean(0)
              for name in sets}
    assert (before["forget"] - before["retain"]).norm() > 1e-2  # they did not agree before


def test_leaces_own_output_is_the_folded_map_plus_the_shift_it_drops(setup):
    model, task, samples, sets = setup
    eraser, _ = Leace(alpha=1.0, samples=samples, batch_size=64).eraser(model, task)
    u = torch.nn.functional.normalize(raw_embeddings(model, sets["retain"]), dim=1)
    labels = torch.tensor([label for _, label in sets["retain"]])
    P = eraser.proj_left @ eraser.proj_right
    # the package's own application
    torch.testing.assert_close(eraser(u), u - u @ P.T + shift(eraser))
    effect = shift_effect(eraser, u, labels, task.classifier, task.forget_idx)
    exact, folded = (x @ task.classifier.double() for x in (eraser(u), u - u @ P.T))
    alike = (exact.argmax(1) == folded.argmax(1)).double().mean().item()
    assert effect["predicted alike %"] == pytest.approx(100 * alike)
    assert effect["retain/acc exact"] == pytest.approx(
        100 * (exact.argmax(1) == labels).double().mean().item())


def test_the_method_page_quotes_the_committed_shift_measurement():
    measured = pd.read_csv(ROOT / "results" / "leace" / "shift.csv")
    assert len(measured) == 21  # seven test classes, three seeds
    assert summary(measured).to_markdown(index=False) in (ROOT / "docs" / "method.md").read_text()
