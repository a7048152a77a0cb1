"""Transformers CLIP models (model=hf, ccup/hf.py) and open_clip's hub names, offline, on a
random-weight CLIPModel saved as a hub model is (helpers.write_hf_clip): the suite sees what
transformers computes, CCUP forgets on it, a job runs end to end and its export loads in plain
transformers; open_clip's schema names export a folder open_clip reads; hub names refuse at once."""
import json
import time

import open_clip
import pytest
import torch
from helpers import compose, fashion_task, run_job, suite_in_process
from PIL import Image
from transformers import CLIPModel

from baselines.text_space import TextProjection, pooled
from ccup.errors import MissingFiles
from ccup.heads import projection_names
from ccup.hf import load_hf_clip
from ccup.method import CCUP, build
from ccup.models import load_clip
from ccup.task import UnlearnTask


def images(clip, count: int = 4) -> torch.Tensor:
    """(count, 3, H, W) images as the model's preprocess gives them: grey squares of several sizes
    and levels."""
    squares = [Image.new("L", (8 + 5 * i, 8 + 5 * i), 40 * i) for i in range(count)]
    return torch.stack([clip.preprocess(square) for square in squares])


@torch.no_grad()
def test_the_suite_sees_what_transformers_computes(random_hf, hf_folder):
    model, reference = random_hf.model, CLIPModel.from_pretrained(hf_folder).eval()
    texts = ["a photo of a sandal.", "sandal", ""]
    tokens = random_hf.tokenizer(texts)
    kept = open_clip.get_tokenizer("ViT-B-32")(texts)  # CLIP's tokens, padded with 0
    assert tokens.shape == (3, 77) and torch.equal(tokens[kept != 0], kept[kept != 0])
    x = images(random_hf)
    image = reference.visual_projection(reference.vision_model(pixel_values=x).pooler_output)
    text = reference.text_projection(reference.text_model(input_ids=tokens).pooler_output)
    torch.testing.assert_close(model.encode_image(x), image, rtol=0, atol=0)
    torch.testing.assert_close(model.encode_text(tokens, normalize=True),
                               text / text.norm(dim=-1, keepdim=True))
    assert projection_names(model) == ["visual.visual_projection.weight"]
    visual = ("vision_model.", "visual_projection.")  # under visual.*, the text side as it was
    assert set(model.state_dict()) == {f"visual.{name}" if name.startswith(visual) else name
                                       for name in reference.state_dict()}


@torch.no_grad()
def test_the_pooled_text_features_are_what_the_text_projection_maps(random_hf):
    model, texts = random_hf.model, ["sandal", "a photo of a bag.", ""]
    P = TextProjection(model).matrix(model)  # (width, d)
    torch.testing.assert_close(pooled(model, random_hf.tokenizer, texts) @ P,
                               model.encode_text(random_hf.tokenizer(texts)))


@torch.no_grad()
def test_the_nullspace_projection_sends_the_forget_class_score_to_zero(random_hf):
    task = fashion_task(random_hf)
    unlearned = CCUP(alpha=1.0, lam=float("inf"), mu=0.0)(random_hf.model, task)
    forget = task.classifier[:, task.forget_idx]  # (d, 1)
    scores = unlearned.encode_image(images(random_hf, 8), normalize=True) @ forget
    before = random_hf.model.encode_image(images(random_hf, 8), normalize=True) @ forget
    assert scores.abs().max() < 1e-5 < before.abs().min()


@pytest.fixture(scope="module")
def job(tmp_path_factory, hf_folder):
    """A job of run.py on the model's folder, as a user runs it (the default evaluations),
    exporting its model."""
    tmp_path = tmp_path_factory.mktemp("hf-job")
    record = run_job(tmp_path, "model=hf", f"model.name={hf_folder}", "dataset=digits",
                     "forget.classes=['3']", "logger=none", "export=true", debug=False)
    return tmp_path, record


def test_a_job_on_a_transformers_model_completes_with_every_default_evaluation(job):
    tmp_path, metrics = job
    (path,) = (tmp_path / "results" / "records").glob("*.json")
    record = json.loads(path.read_text())
    assert record["status"] == "complete" and record["metrics"] == metrics
    evaluations = {"cross/fashion_mnist/acc", "leak/probe_auroc", "forget/acc_heldout_prompts"}
    assert evaluations <= set(metrics)


@torch.no_grad()
def test_the_export_loads_in_transformers_with_the_unlearned_embeddings(job, random_hf, hf_folder):
    tmp_path, _ = job
    folder = tmp_path / "outputs" / "checkpoint"
    exported = CLIPModel.from_pretrained(folder).eval()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (manifest["model"], manifest["method"], manifest["forget"]) == (str(hf_folder), "ccup",
                                                                          ["3"])
    data = compose("dataset=digits").dataset  # the job's task: '3' forgotten, CCUP at its defaults
    task = UnlearnTask.of(random_hf, data.classnames, data.templates, ["3"])
    expected = build(compose("method=ccup").method)(random_hf.model, task)
    x = images(random_hf)
    got = exported.visual_projection(exported.vision_model(pixel_values=x).pooler_output)
    torch.testing.assert_close(got, expected.encode_image(x))
    assert not torch.allclose(got, random_hf.model.encode_image(x), atol=1e-4)
    again = load_hf_clip(str(folder))  # the suite reads it back, processor and tokenizer too
    torch.testing.assert_close(again.model.encode_image(x), got)


def test_an_open_clip_local_dir_model_exports_a_folder_open_clip_reads(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    tiny = load_clip("ccup-tiny-p7")
    config = {"model_cfg": open_clip.get_model_config("ccup-tiny-p7"),
              "preprocess_cfg": tiny.model.visual.preprocess_cfg}
    (source / "open_clip_config.json").write_text(json.dumps(config))
    torch.save(tiny.model.state_dict(), source / "open_clip_pytorch_model.bin")
    clip = load_clip(f"local-dir:{source}", pretrained="openai")  # the folder's weights win
    clip.export(clip.model, clip.name, tmp_path / "export", {"forget": ["sandal"]})
    again, _, _ = open_clip.create_model_and_transforms(f"local-dir:{tmp_path / 'export'}")
    x = torch.randn(2, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(again.eval().encode_image(x), tiny.model.encode_image(x))


@pytest.mark.parametrize("load, name", [(load_clip, "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"),
                                        (load_hf_clip, "openai/clip-vit-base-patch32")])
def test_a_hub_name_offline_is_refused_at_once(load, name):
    start = time.perf_counter()
    with pytest.raises(MissingFiles, match="not on this machine"):
        load(name)
    assert time.perf_counter() - start < 1


@pytest.mark.parametrize("overrides", [
    ["model=vit_b32_openai", "model.name=hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"],
    ["model=hf"]])
def test_a_hub_name_offline_ends_the_command_with_one_error_line(tmp_path, overrides, capfd):
    result = suite_in_process(tmp_path, *overrides, "logger=none")
    # the exit message is the line the interpreter prints; nothing else is an error or on stderr
    assert result.exit.startswith("error: ") and "not on this machine" in result.exit
    assert "error:" not in result.stdout and "Traceback" not in result.stdout
    assert capfd.readouterr().err == ""
