"""The final projection heads of real open_clip architectures take W, and the exported checkpoint
loads in plain open_clip."""
import json

import open_clip
import pytest
import torch

from ccup.errors import UserError
from ccup.export import export_checkpoint
from ccup.heads import fold_projection, project, projection_names, projection_removed
from ccup.models import MODEL_CONFIGS, load_clip


def random_map(d: int) -> torch.Tensor:
    """A well-conditioned, non-symmetric (d, d) map, as CCUP's W* is for mu > 0."""
    return torch.eye(d) + 0.1 * torch.randn(d, d, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", ["ViT-B-32", "RN50", "convnext_tiny"])
def test_edited_embeddings_are_W_times_original(random_clips, name):
    model = random_clips[name].model
    before = {key: value.clone() for key, value in model.state_dict().items()}
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    W = random_map(model.text_projection.shape[1])  # (d, d): the joint embedding width
    edited = fold_projection(model, W)
    with torch.no_grad():
        z, z_edited = model.encode_image(images), edited.encode_image(images)  # (2, d)
    torch.testing.assert_close(z_edited, z @ W.T, atol=1e-4, rtol=1e-4)
    assert all(torch.equal(value, model.state_dict()[key])
               for key, value in before.items()), "input was mutated"
    changed = {key for key, value in edited.state_dict().items()
               if not torch.equal(value, before[key])}
    assert changed == set(projection_names(model))


def test_exported_checkpoint_loads_in_plain_open_clip(tmp_path):
    clip = load_clip("ccup-tiny-p7")  # a custom architecture: the hardest case for plain open_clip
    edited = fold_projection(clip.model, random_map(128))
    path = export_checkpoint(edited, "ccup-tiny-p7", tmp_path, {"classnames": ["a", "b"]})
    images = torch.randn(4, 3, 28, 28, generator=torch.Generator().manual_seed(3))
    # open_clip's own loader, from the exported files (the architecture's config beside the
    # weights; a fresh interpreter that never imports ccup reads them: test_run.py, README's
    # loading snippet)
    assert json.loads((tmp_path / "ccup-tiny-p7.json").read_text()) == json.loads(
        (MODEL_CONFIGS / "ccup-tiny-p7.json").read_text())
    loaded = open_clip.create_model("ccup-tiny-p7", pretrained=str(path)).eval()
    with torch.no_grad():
        expected = edited.eval().encode_image(images)
        torch.testing.assert_close(loaded.encode_image(images), expected)
    assert not torch.allclose(expected, clip.model.eval().encode_image(images))
    assert json.loads((tmp_path / "manifest.json").read_text()) == {"model": "ccup-tiny-p7",
                                                                    "classnames": ["a", "b"]}


@pytest.mark.parametrize("name", ["ViT-B-32", "RN50", "convnext_tiny"])
def test_features_before_the_projection_project_to_the_embeddings(random_clips, name):
    model = random_clips[name].model
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        embeddings = model.encode_image(images)  # (2, d)
        with projection_removed(model):
            features = model.visual(images)  # (2, D)
        assert features.shape[1] == {"ViT-B-32": 768, "RN50": 2048, "convnext_tiny": 768}[name]
        torch.testing.assert_close(project(model, features), embeddings, atol=1e-4, rtol=1e-4)
        assert torch.equal(model.encode_image(images), embeddings)  # the tower is restored


@pytest.mark.parametrize("content", [b"not a checkpoint", None])
def test_a_file_that_is_not_a_checkpoint_is_refused_by_name(tmp_path, content):
    path = tmp_path / "weights.pt"
    if content is None:
        torch.save({"another": torch.zeros(2)}, path)  # a real torch file, of no CLIP
    else:
        path.write_bytes(content)
    with pytest.raises(UserError, match=f"{path} is not a checkpoint of ccup-tiny-p7 .*: pass an "
                                        "open_clip checkpoint"):
        load_clip("ccup-tiny-p7", str(path))


def test_a_tower_without_a_known_final_projection_is_refused_by_name():
    class Tower(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = torch.nn.Sequential(torch.nn.Linear(4, 4))

    with pytest.raises(UserError, match="no final linear projection found in image tower "
                                        "Sequential; CCUP edits ViT"):
        fold_projection(Tower(), torch.eye(4))
