"""The fine-tuning baselines beyond the contract: weights trained once per setting, the data
regimes, synthesis, the Lipschitz baseline's schedule."""
import copy
import math
import sys

import pytest
import pytorch_lightning as pl
import torch
from helpers import compose, fashion_task
from hydra.utils import instantiate
from pytorch_lightning.utilities.combined_loader import CombinedLoader
from torch.utils.data import DataLoader, Subset, TensorDataset

from baselines import lipschitz, losses
from baselines.finetune import FineTune
from baselines.samples import RealSamples, SyntheticSamples
from ccup.data import fashion_mnist
from ccup.errors import UserError, find_user_error
from ccup.loop import classification_loss
from ccup.method import build
from ccup.task import UnlearnTask
from ccup.zeroshot import zero_shot_logits


def finetune(cache_dir, *overrides) -> FineTune:
    return build(compose("method=finetune", "method.steps=3", f"cache_dir={cache_dir}",
                         *overrides).method)


def test_a_second_run_reuses_the_trained_weights_for_every_alpha(random_tiny, tmp_path,
                                                                 monkeypatch):
    task = fashion_task(random_tiny)
    first = finetune(tmp_path)
    full = first(random_tiny.model, task)
    assert first.stats["unlearn/cache_hit"] == 0 and first.stats["time/unlearn_s"] > 0
    monkeypatch.setattr(FineTune, "compute", None)  # a cache hit must not train
    again, half = finetune(tmp_path), finetune(tmp_path, "alpha=0.5")
    assert torch.equal(again(random_tiny.model, task).visual.proj, full.visual.proj)
    # the cost reported is that of the training
    assert again.stats == {**first.stats, "unlearn/cache_hit": 1}
    midpoint = (random_tiny.model.visual.proj + full.visual.proj) / 2
    torch.testing.assert_close(half(random_tiny.model, task).visual.proj, midpoint)


@pytest.mark.parametrize("terminal", [False, True])
def test_training_shows_a_progress_bar_in_a_terminal_only(random_tiny, tmp_path, monkeypatch,
                                                          capsys, terminal):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: terminal)  # ccup.trainers.on_terminal
    finetune(tmp_path)(random_tiny.model, fashion_task(random_tiny))
    assert ("3/3" in capsys.readouterr().out) == terminal  # the bar's count of steps


def test_another_setting_trains_again(random_tiny, tmp_path):
    task = fashion_task(random_tiny)
    finetune(tmp_path)(random_tiny.model, task)
    other = finetune(tmp_path, "method.lr=0.01")
    other(random_tiny.model, task)
    assert other.stats["unlearn/cache_hit"] == 0


def test_the_weights_are_keyed_by_their_settings_not_by_where_they_are_kept(random_tiny, tmp_path):
    task = fashion_task(random_tiny)

    def key(cache_dir, *overrides):
        return finetune(cache_dir, "samples=synthetic", *overrides).key(random_tiny.model, task)

    # the synthetic samples' cache folder is no setting, nor the word the report says them in
    assert key(tmp_path / "a") == key(tmp_path / "b") == key(tmp_path / "a", "samples.source=x")
    assert key(tmp_path / "a") == key(tmp_path / "a", "trainer.log_every_n_steps=5")  # nor logging
    assert (key(tmp_path / "a") != key(tmp_path / "a", "samples.steps=7")
            != key(tmp_path / "a", "method.lr=0.5"))


@pytest.mark.parametrize("override, message", [
    ("method.lr=0", "lr must be a positive finite number"),
    ("method.lr=-1e-3", "lr must be a positive finite number"),
    ("method.lr=inf", "lr must be a positive finite number"),
    ("method.steps=0", "steps must be at least 1"),
    ("method.params=[nothing.*]", "match no parameter"),
])
def test_bad_settings_are_refused(random_tiny, tmp_path, override, message):
    with pytest.raises(Exception) as error:  # Hydra wraps what a constructor raises
        finetune(tmp_path, override)(random_tiny.model, fashion_task(random_tiny))
    assert message in str(find_user_error(error.value))


def test_real_samples_draw_per_class_images_of_the_right_classes(random_tiny):
    task = fashion_task(random_tiny, forget=("sandal", "bag"), train_range=range(2000))
    sets, _ = RealSamples(per_class=7, seed=0)(random_tiny.model, task, ("forget", "retain"))
    forget_labels = sorted(int(label) for _, label in sets["forget"])
    assert forget_labels == [5] * 7 + [8] * 7
    retain_labels = [int(label) for _, label in sets["retain"]]
    assert len(retain_labels) == 8 * 7 and not {5, 8} & set(retain_labels)


def test_a_method_needing_retain_data_refuses_a_split_without_retain_images(random_tiny):
    data = compose().dataset
    train = fashion_mnist("train", data.load.roots, data.load.cache_dir, random_tiny.preprocess)
    sandals_only = Subset(train, (train.targets == 5).nonzero().flatten()[:50].tolist())
    task = UnlearnTask.of(random_tiny, data.classnames, data.templates, ["sandal"],
                          load_train=lambda: sandals_only)
    with pytest.raises(UserError, match="no images of the retain classes"):
        RealSamples(per_class=8, seed=0)(random_tiny.model, task, ("forget", "retain"))


def synthetic(cache_dir, **settings) -> SyntheticSamples:
    overrides = [f"samples.{key}={value}" for key, value in settings.items()]
    return instantiate(compose("samples=synthetic", f"cache_dir={cache_dir}", *overrides).samples)


def test_synthesis_that_never_reaches_its_threshold_is_reported_not_looped(random_tiny, tmp_path):
    # softmax confidence never exceeds 1, so no attempt can succeed: the generator must give up at
    # the floor.
    samples = synthetic(tmp_path, per_class=2, steps=2, threshold=1.0, threshold_floor=0.95)
    with pytest.raises(UserError, match="never reached its confidence threshold"):
        samples(random_tiny.model, fashion_task(random_tiny), ("forget",))


@pytest.mark.slow
def test_synthetic_samples_are_classified_as_their_class(tiny, tmp_path):
    task = fashion_task(tiny, forget=("sandal", "bag"))
    samples = synthetic(tmp_path, per_class=8)
    sets, stats = samples(tiny.model, task, ("forget", "retain"))
    for name in ("forget", "retain"):
        images, labels = sets[name].tensors
        with torch.no_grad():
            predictions = (tiny.model.encode_image(images, normalize=True)
                           @ task.classifier).argmax(dim=-1)
        assert torch.equal(predictions, labels), name
    assert stats["synthesis/cache_hits"] == 0
    _, again = samples(tiny.model, task, ("forget",))
    assert again["synthesis/cache_hits"] == 2  # cached per (model, class, setting)


# --- the Lipschitz baseline's schedule (Kravets & Namboodiri's train_forget.py) -------------------
# The forget-sample accuracy is scripted (monkeypatched): the tests decide which epoch improves and
# when the target is reached. The random-weight tiny model trains on random images of the forget
# class, one noise draw per batch.

def lipschitz_run(clip, tmp_path, images: int, batch_size: int, *overrides):
    """The Lipschitz module as conf/method/lipschitz.yaml builds it, on a copy of `clip`'s model,
    and a function that trains it on `images` random images of the forget class under the configured
    Trainer with the given callbacks."""
    method = build(compose("method=lipschitz", f"cache_dir={tmp_path}",
                           "method.module.noise_samples=1", *overrides).method)
    model = copy.deepcopy(clip.model)
    module = method.module(model=model, task=fashion_task(clip), trainable=method.edits(model),
                           lr=method.lr)
    data = TensorDataset(torch.randn(images, 3, 28, 28), torch.full((images,), 5))

    def fit(*callbacks):
        loader = CombinedLoader({"forget": DataLoader(data, batch_size=batch_size)},
                                mode="max_size_cycle")
        method.trainer(max_steps=method.steps, callbacks=list(callbacks)).fit(module, loader)
    return module, fit


def trainable_weights(module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.model.named_parameters()
            if n in module.trainable}


def adam_state(module) -> dict[tuple, torch.Tensor]:
    state = module.trainer.optimizers[0].state_dict()["state"]
    return {(i, key): value.clone() for i, entry in state.items() for key, value in entry.items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


class Snapshots(pl.Callback):
    """The trainable weights and Adam state as each epoch starts, and as it ends before the module
    judges it (callbacks' epoch-end hooks run before the module's)."""

    def __init__(self):
        self.starts, self.ends = [], []

    def on_train_epoch_start(self, trainer, module):
        self.starts.append((trainable_weights(module), adam_state(module)))

    def on_train_epoch_end(self, trainer, module):
        self.ends.append((trainable_weights(module), adam_state(module)))


def test_lipschitz_rolls_back_an_epoch_that_does_not_improve_and_moves_to_the_next_stage(
        random_tiny, tmp_path, monkeypatch):
    module, fit = lipschitz_run(random_tiny, tmp_path, 4, 2, "method.module.epochs=3",
                                "method.module.stop_accuracy=0",
                                "method.module.sigmas=[0.1,0.2,0.3]",
                                "method.module.k_image=[2,3,4]", "method.module.k_text=[1,2,3]")
    accuracy = {0: 50.0, 1: 60.0, 2: 40.0}  # per epoch: improves, does not, improves
    monkeypatch.setattr(lipschitz, "forget_accuracy", lambda *args: accuracy[module.current_epoch])
    stage = {}  # per epoch: (sigma, image tensors updated, text tensors updated)
    loss, top_k = lipschitz.lipschitz_loss, module.top_k

    def recorded_loss(model, images, captions, sigma, noise_samples, *rest):
        stage[module.current_epoch] = (sigma,)
        return loss(model, images, captions, sigma, noise_samples, *rest)

    def recorded_top_k():
        selected = top_k()
        image = sum(name.startswith("visual.") for name in selected)
        stage[module.current_epoch] += (image, len(selected) - image)
        return selected

    monkeypatch.setattr(lipschitz, "lipschitz_loss", recorded_loss)
    monkeypatch.setattr(module, "top_k", recorded_top_k)
    snapshots = Snapshots()
    fit(snapshots)
    (original, _), (after_0, adam_0), (after_1, adam_1) = snapshots.starts
    # epoch 0 improved: kept
    assert not same(after_0, original) and same(after_0, snapshots.ends[0][0])
    assert not same(snapshots.ends[1][0], after_0)  # epoch 1 trained ...
    # ... did not improve: weights and Adam state put back
    assert same(after_1, after_0) and same(adam_1, adam_0)
    # and the next sigma and k from epoch 2 on
    assert stage == {0: (0.1, 2, 1), 1: (0.1, 2, 1), 2: (0.2, 3, 2)}
    assert not same(trainable_weights(module), after_1)  # epoch 2 improved: kept
    assert same(trainable_weights(module), snapshots.ends[2][0])
    assert module.stats == {"unlearn/steps": 3, "unlearn/forget_sample_acc": 40.0}


def test_lipschitz_stops_mid_epoch_at_the_first_step_that_reaches_the_target(random_tiny, tmp_path,
                                                                             monkeypatch):
    # 15 batches of one image per epoch; a step every 5 batches (the authors' gradient
    # accumulation).
    module, fit = lipschitz_run(random_tiny, tmp_path, 15, 1, "method.module.stop_accuracy=10")
    monkeypatch.setattr(lipschitz, "forget_accuracy",
                        lambda *args: 50.0 if module.global_step < 2 else 10.0)
    batches, loss = [], lipschitz.lipschitz_loss
    monkeypatch.setattr(lipschitz, "lipschitz_loss", lambda *args: batches.append(1) or loss(*args))
    original = trainable_weights(module)
    fit()
    # the target reached by step 2: batches 11-15 never ran
    assert len(batches) == 10 and module.global_step == 2
    assert module.stats["unlearn/forget_sample_acc"] == 10.0
    assert not same(trainable_weights(module), original)  # the weights that reached it are kept


# --- SCRUB: a loss with a teacher on the shared loop ----------------------------------------------

def scrub_loss(*overrides):
    """SCRUB's loss as conf/method/scrub.yaml configures it."""
    return instantiate(compose("method=scrub", *overrides).method.module.loss)


def scrub_batch(forget: int = 4, retain: int = 6) -> dict:
    """Random images, forget ones labelled sandal (5), retain ones any class."""
    generator = torch.Generator().manual_seed(1)
    return {"forget": (torch.randn(forget, 3, 28, 28, generator=generator),
                       torch.full((forget,), 5)),
            "retain": (torch.randn(retain, 3, 28, 28, generator=generator),
                       torch.randint(0, 10, (retain,), generator=generator))}


def test_distillation_kl_is_the_softened_kl_from_teacher_to_student_times_temperature_squared():
    student = torch.tensor([[0.0, 0.0], [1.0, 1.0]])  # uniform
    # at temperature 2: (3/4, 1/4), then uniform
    teacher = torch.tensor([[2 * math.log(3), 0.0], [0.0, 0.0]])
    # batch mean, times T^2
    expected = (0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5) + 0) / 2 * 2 ** 2
    torch.testing.assert_close(losses.distillation_kl(student, teacher, 2.0),
                               torch.tensor(expected))


def test_scrub_loss_is_gamma_ce_on_retain_and_minus_the_kl_on_forget(random_tiny):
    model, classifier, batch = (random_tiny.model, fashion_task(random_tiny).classifier,
                                scrub_batch())
    loss = scrub_loss("method.module.loss.gamma=3")
    teacher = copy.deepcopy(model)
    max_step = {"teacher": teacher, "step": 0, "steps": 100}
    min_step = {"teacher": teacher, "step": 1, "steps": 100}
    # The student is its teacher: no divergence to raise or lower (up to the rounding of the
    # teacher's no-grad path).
    torch.testing.assert_close(loss(model, classifier, batch, **max_step), torch.tensor(0.0),
                               rtol=0, atol=1e-6)
    retain_ce = classification_loss(model, classifier, *batch["retain"])
    torch.testing.assert_close(loss(model, classifier, batch, **min_step), 3 * retain_ce)
    # The student moved away from its teacher: -KL on the forget batch, 3 CE + 0.5 KL on the retain
    # batch.
    with torch.no_grad():
        teacher.visual.proj.add_(0.1 * torch.randn_like(teacher.visual.proj))
    logits = {name: (zero_shot_logits(model, batch[name][0], classifier),
                     zero_shot_logits(teacher, batch[name][0], classifier)) for name in batch}
    forget_kl = losses.distillation_kl(*logits["forget"], 2.0)
    retain_kl = losses.distillation_kl(*logits["retain"], 2.0)
    assert forget_kl > 0 and retain_kl > 0
    torch.testing.assert_close(loss(model, classifier, batch, **max_step), -forget_kl)
    torch.testing.assert_close(loss(model, classifier, batch, **min_step),
                               3 * retain_ce + 0.5 * retain_kl)


class Reads(dict):
    """A batch that records which sample sets a loss reads."""

    def __init__(self, batch: dict):
        super().__init__(batch)
        self.read = []

    def __getitem__(self, name):
        self.read.append(name)
        return super().__getitem__(name)


def test_scrub_takes_a_max_step_every_max_every_steps_in_the_first_max_fraction_of_them(
        random_tiny):
    model, classifier = random_tiny.model, fashion_task(random_tiny).classifier
    loss, teacher = scrub_loss(), copy.deepcopy(model)  # max_fraction 0.3, max_every 10
    max_steps = []
    for step in range(100):
        batch = Reads(scrub_batch(1, 1))
        loss(model, classifier, batch, teacher=teacher, step=step, steps=100)
        assert batch.read in (["forget"], ["retain"])
        if batch.read == ["forget"]:
            max_steps.append(step)
    assert max_steps == [0, 10, 20]


def test_scrubs_teacher_is_the_original_model_frozen_through_training(random_tiny, tmp_path):
    method = build(compose("method=scrub", f"cache_dir={tmp_path}", "method.steps=4").method)
    model = copy.deepcopy(random_tiny.model)
    module = method.module(model=model, task=fashion_task(random_tiny),
                           trainable=method.edits(model), lr=method.lr)
    sets = scrub_batch(8, 16)
    loaders = {name: DataLoader(TensorDataset(*sets[name]), batch_size=4) for name in sets}
    method.trainer(max_steps=method.steps).fit(module,
                                               CombinedLoader(loaders, mode="max_size_cycle"))
    original = random_tiny.model.state_dict()
    # the student trained ...
    assert module.global_step == 4 and differing(module.model.state_dict(), original)
    assert not differing(module.teacher.state_dict(), original)  # ... its teacher did not move
    assert not module.teacher.training and not any(p.requires_grad
                                                   for p in module.teacher.parameters())


def test_scrub_trains_with_its_authors_adam_weight_decay_and_tenfold_learning_rate_drops(
        random_tiny, tmp_path):
    method = build(compose("method=scrub", f"cache_dir={tmp_path}", "method.steps=10").method)
    model = copy.deepcopy(random_tiny.model)
    module = method.module(model=model, task=fashion_task(random_tiny),
                           trainable=method.edits(model), lr=method.lr)
    sets = scrub_batch(8, 16)
    loaders = {name: DataLoader(TensorDataset(*sets[name]), batch_size=4) for name in sets}
    trainer = method.trainer(max_steps=method.steps)
    trainer.fit(module, CombinedLoader(loaders, mode="max_size_cycle"))
    (optimizer,), (schedule,) = trainer.optimizers, trainer.lr_scheduler_configs
    assert type(optimizer) is torch.optim.Adam and optimizer.defaults["weight_decay"] == 0.1
    # 0.516, 0.806 and 0.903 of 10 steps, rounded
    assert schedule.scheduler.milestones == {5: 1, 8: 1, 9: 1}
    # all three drops taken
    assert optimizer.param_groups[0]["lr"] == pytest.approx(method.lr * 0.1 ** 3)


def test_only_a_loss_declared_with_a_teacher_gets_one(random_tiny, tmp_path):
    method = build(compose("method=finetune", f"cache_dir={tmp_path}").method)
    model = copy.deepcopy(random_tiny.model)
    assert method.module(model=model, task=fashion_task(random_tiny), trainable=[],
                         lr=method.lr).teacher is None


def differing(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> set[str]:
    return {key for key, value in a.items() if not torch.equal(value, b[key])}
