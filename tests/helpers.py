"""What the tests share besides fixtures (conftest.py): composed configs, the suite run as a user
runs it, its records read back (its offline W&B runs: ccup.loggers.wandb_run), and datasets written
in their published layouts."""
import builtins
import contextlib
import copy
import functools
import gc
import gzip
import io
import json
import logging
import os
import runpy
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.hydra import Hydra
from hydra._internal.utils import create_config_search_path
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig
from PIL import Image
from torch.utils.data import Subset

from ccup import configs
from ccup.configs import CONF
from ccup.data import fashion_mnist
from ccup.job import Job, run
from ccup.task import UnlearnTask

ROOT = Path(__file__).parents[1]


def page(name: str) -> str:
    """The text of README.md, or of a page of the documentation in docs/ (`page("tests.md")`)."""
    return (ROOT / name if name == "README.md" else ROOT / "docs" / name).read_text()


def compose(*overrides: str) -> DictConfig:
    """`ccup.configs.compose`: the job config for `overrides`, with Hydra's runtime set to it. Each
    command line is composed once per test process and copied after that: Hydra takes some 0.2 s of
    CPU to compose one, and the tests ask for the same ones many times."""
    hydra_config, cfg = composed(overrides)
    HydraConfig.instance().cfg = hydra_config  # what `${hydra:...}` in the config resolves against
    return copy.deepcopy(cfg)


@functools.cache
def composed(overrides: tuple[str, ...]) -> tuple[DictConfig, DictConfig]:
    """The config with Hydra's own node, as HydraConfig holds it, and the job config."""
    cfg = configs.compose(*overrides)
    return HydraConfig.instance().cfg, cfg


def spare_the_collector() -> None:
    """For a test process whose imports (torch, Lightning, Hydra, the suite) live until it ends:
    they are moved out of the collector's sight, and the collector runs ten times less often. The
    tests compose and instantiate hundreds of configs, each thousands of short-lived objects, and
    every collection rescanned that long-lived heap."""
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def fashion_task(clip, forget=("sandal",), train_range=range(512)) -> UnlearnTask:
    """Forget `forget` from Fashion-MNIST, the train images in `train_range` (the first 512: some 50
    of each class) standing for the train split the samples are drawn from."""
    data = compose().dataset
    train = Subset(fashion_mnist("train", data.load.roots, data.load.cache_dir, clip.preprocess),
                   train_range)
    return UnlearnTask.of(clip, data.classnames, data.templates, list(forget),
                          load_train=lambda: train)


def config_names(group: str) -> list[str]:
    """The options of a config group: the folder is the registry."""
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


@functools.cache
def method_class(name: str) -> type:
    """The class conf/method/<name>.yaml builds, read from that file and its defaults alone: a
    fraction of a job config's composition, for what decides which tests to collect."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return get_class(hydra_compose(config_name=f"method/{name}").method._target_)


def sweep_jobs(experiment: str, config_dir: Path | None = None) -> list[dict[str, str]]:
    """The jobs an experiment's sweep runs, as Hydra's basic sweeper expands them (`glob(*)` and
    `every_option` included), with `config_dir` on the search path as `--config-dir` puts it: one
    {key: value} per job."""
    search_path = create_config_search_path(str(CONF))
    if config_dir is not None:
        search_path.prepend("command-line", f"file://{config_dir}")
    # the GlobalHydra that every_option reads, as in a sweep
    hydra = Hydra.create_main_hydra2("run", search_path)
    try:
        cfg = hydra.compose_config("config", [f"experiment={experiment}"],
                                   run_mode=RunMode.MULTIRUN)
        params = [f"{key}={value}" for key, value in cfg.hydra.sweeper.params.items()]
        overrides = OverridesParser.create(
            config_loader=hydra.config_loader).parse_overrides(params)
        (jobs,) = BasicSweeper.split_arguments(overrides, max_batch_size=None)
    finally:
        GlobalHydra.instance().clear()
    return [dict(override.split("=", 1) for override in job) for job in jobs]


def run_job(tmp_path: Path, *overrides: str, debug: bool = True, sweeping: bool = False,
            folder: str = "outputs") -> dict | None:
    """One job of run.py in this process, the pipeline on the default config with `overrides`,
    writing under tmp_path (records in results/, the job's own files in `folder`). `debug` adds the
    debug preset (a few steps, no logger, no extra evaluations); `sweeping` runs it as a job of a
    sweep, whose failure is logged and recorded, not raised."""
    preset = ["debug=default"] if debug else []
    mode = ["hydra.mode=MULTIRUN"] if sweeping else []
    return in_process(compose(*preset, *overrides, *mode, f"results_dir={tmp_path}/results",
                              f"hydra.run.dir={tmp_path}/{folder}"))


def in_process(cfg: DictConfig) -> dict | None:
    """The pipeline on a config `compose` made, as run.py runs it: the job Hydra holds (`compose`
    set it)."""
    return run(cfg, Job.from_hydra())


def refuse_reads_under(monkeypatch, root: Path) -> None:
    """Make every way Python opens a file fail for a path under `root`, so a test sees whether code
    reads it."""
    top = os.path.abspath(root)

    def refuse(path) -> None:
        # abspath, not resolve: a read through the data symlink is a read under root too
        if (isinstance(path, str | bytes | os.PathLike)
                and os.path.abspath(os.fsdecode(path)).startswith(top + os.sep)):
            raise AssertionError(f"read {path}")

    def guarded(original: Callable) -> Callable:
        def opener(path, *args, **kwargs):
            refuse(path)
            return original(path, *args, **kwargs)
        return opener

    def guarded_method(original: Callable) -> Callable:
        def method(self, *args, **kwargs):
            refuse(self)
            return original(self, *args, **kwargs)
        return method

    for owner, name in ((builtins, "open"), (io, "open"), (os, "open")):
        monkeypatch.setattr(owner, name, guarded(getattr(owner, name)))
    for name in ("open", "read_bytes", "read_text"):
        monkeypatch.setattr(Path, name, guarded_method(getattr(Path, name)))


# --- the suite as its users run it ----------------------------------------------------------------
# A test starts a process of its own only for what only a process shows: an exit status and the last
# line it printed, a command killed halfway, a launcher's processes, a fresh interpreter. Everything
# else runs in the test's process: a job (run_job), or a command line whose Hydra machinery is the
# subject (a sweep, its callback: hydra_app), without the interpreter's start-up (some 6 s of CPU
# importing torch, Lightning and open_clip).

def suite_args(tmp_path: Path, *args: str, named: bool = True) -> list[str]:
    """run.py's arguments ARGS, writing results and outputs under tmp_path; `named=False` leaves the
    sweep its default name, the time it starts at."""
    name = [f"sweep={tmp_path.name}"] if named else []
    return [*args, *name, f"results_dir={tmp_path}/results", f"hydra.run.dir={tmp_path}/outputs",
            f"hydra.sweep.dir={tmp_path}/multirun"]


def run_python(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """`python ARGS` (a script, or -m and a module) in a fresh interpreter, run to its end, its
    output captured."""
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def run_suite(tmp_path: Path, *args: str, named: bool = True) -> subprocess.CompletedProcess:
    """`python run.py ARGS` as a user runs it (suite_args), run to its end, its output captured."""
    return run_python("run.py", *suite_args(tmp_path, *args, named=named))


def start_suite(tmp_path: Path, *args: str, named: bool = True) -> subprocess.Popen:
    """`python run.py ARGS` started and not waited for, its standard output and error into
    tmp_path/command.log."""
    with open(tmp_path / "command.log", "w") as log:
        return subprocess.Popen([sys.executable, "run.py",
                                 *suite_args(tmp_path, *args, named=named)], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)


@dataclass
class Ended:
    """How a Hydra app run in this process ended: `exit`, the code of the SystemExit it raised (what
    the interpreter would print and exit with; None where it returned), and what it printed, its log
    lines included."""

    exit: str | int | None
    stdout: str


def hydra_app(script: Path, *args: str) -> Ended:
    """`python SCRIPT ARGS`, SCRIPT a Hydra app (run.py, or a test's own), run in this process: its
    `__main__` block, Hydra's command line, sweeper, launcher and callbacks as the interpreter runs
    them. What it leaves in the process is undone after: the logging Hydra configured (its handlers
    closed), Hydra's global state, sys.argv and the environment."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    argv, environ = sys.argv[:], dict(os.environ)
    exit = None
    with tempfile.TemporaryFile("w+") as out:
        try:
            sys.argv = [str(script), *args]
            # Hydra's console handler writes to the sys.stdout it finds
            with contextlib.redirect_stdout(out):
                runpy.run_path(str(script), run_name="__main__")
        except SystemExit as ended:
            exit = ended.code
        finally:
            for handler in root.handlers:
                if handler not in handlers:
                    handler.close()
            root.handlers[:] = handlers
            root.setLevel(level)
            sys.argv = argv
            os.environ.clear()
            os.environ.update(environ)
            GlobalHydra.instance().clear()
        out.seek(0)
        return Ended(exit, out.read())


def suite_in_process(tmp_path: Path, *args: str) -> Ended:
    """`python run.py ARGS` (suite_args) run in this process (hydra_app)."""
    return hydra_app(ROOT / "run.py", *suite_args(tmp_path, *args))


def records(tmp_path: Path) -> list[dict]:
    """The records a suite command run with `suite_args(tmp_path, ...)`, or jobs run with
    `run_job(tmp_path, ...)`, wrote, in file order."""
    return [json.loads(p.read_text())
            for p in sorted((tmp_path / "results" / "records").glob("*.json"))]


# --- a random-weight transformers CLIP model ---------------------------------------------------

def write_hf_clip(folder: Path, seed: int = 0) -> Path:
    """A small random-weight transformers CLIPModel (28-px images, 7-px patches, two layers per
    tower, 32-d embeddings) saved into `folder` with CLIP's own tokenizer and an image processor
    sized to it, as `save_pretrained` writes a hub model. The tokenizer's vocab.json and merges.txt
    are built from the BPE merges open_clip ships, as CLIP's tokenizer builds its encoder
    (open_clip's SimpleTokenizer): the 256 byte symbols, each again with the end-of-word mark, one
    token per merge, then the start and end of text."""
    import torch
    from open_clip.tokenizer import bytes_to_unicode, default_bpe
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    merges = gzip.open(default_bpe()).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    symbols = list(bytes_to_unicode().values())
    vocab = [*symbols, *(s + "</w>" for s in symbols), *(m.replace(" ", "") for m in merges),
             "<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    (folder / "merges.txt").write_text("\n".join(["#version: 0.2", *merges]) + "\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    tower = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 2}
    config = CLIPConfig(text_config=tower, projection_dim=32,
                        vision_config={**tower, "image_size": 28, "patch_size": 7})
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(folder)
    images = CLIPImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder


# --- datasets in their published layouts, in miniature --------------------------------------------

# The split-file datasets' real layouts (CoOp's DATASETS.md; the baseline's for Stanford Dogs):
# folder under the data root, split file, image folder, and for three classes, as the split file
# names them, where their images lie under the image folder ({} is an image number).
SPLIT_LAYOUTS = {
    "caltech101": ("caltech-101", "split_zhou_Caltech101.json", "101_ObjectCategories",
                   {"face": "Faces/image_{:04d}.jpg", "euphonium": "euphonium/image_{:04d}.jpg",
                    "water_lilly": "water_lilly/image_{:04d}.jpg"}),
    "oxford_flowers": ("oxford_flowers", "split_zhou_OxfordFlowers.json", "jpg",
                       {"pink primrose": "image_{:05d}.jpg", "gazania": "image_{:05d}.jpg",
                        "trumpet creeper": "image_{:05d}.jpg"}),
    "stanford_cars": ("stanford_cars", "split_zhou_StanfordCars.json", ".",
                      {"2000 AM General Hummer SUV": "cars_train/{:05d}.jpg",
                       "2009 Spyker C8 Coupe": "cars_test/{:05d}.jpg",
                       "2012 smart fortwo Convertible": "cars_test/{:05d}.jpg"}),
    "stanford_dogs": ("stanford_dogs", "split_alexey_stanford_dogs.json", "Images",
                      {"Pekinese": "n02086079-Pekinese/n02086079_{}.jpg",
                       "toy poodle": "n02113624-toy_poodle/n02113624_{}.jpg",
                       "African hunting dog": "n02116738-African_hunting_dog/n02116738_{}.jpg"}),
}
SPLIT_SIZES = {"train": 3, "val": 2, "test": 4}


def dataset(name: str, data_dir: Path):
    """The dataset config `name` as a job instantiates it, with its data root at `data_dir`."""
    return instantiate(compose(f"dataset={name}", f"data_dir={data_dir}").dataset)


def write_jpeg(path: Path, grey: int) -> None:
    """A 5x4 image of one grey level, so that a loaded image tells which file it came from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (5, 4), (grey, grey, grey)).save(path, format="JPEG", quality=95)


def write_image_folder(root: Path, images: dict[str, list[int]], flat: bool = False) -> Path:
    """A folder dataset: {class folder: grey levels}, one JPEG per level, in train/ and test/ alike,
    or `flat`ly in root/<class>/ alone."""
    for split in [""] if flat else ["train", "test"]:
        for folder, greys in images.items():
            for grey in greys:
                write_jpeg(root / split / folder / f"{grey:03d}.jpg", grey)
    return root


def write_split_dataset(data_dir: Path, name: str, labels=None) -> dict[str, list[tuple[str, int]]]:
    """The dataset in its real layout under `data_dir`, three classes, SPLIT_SIZES images; the split
    file numbers each class as the config does unless `labels` says otherwise. Returns per split the
    (config class name, grey level) of each image, in the split file's order."""
    folder, split_file, image_dir, classes = SPLIT_LAYOUTS[name]
    classnames = list(dataset(name, data_dir).classnames)
    split, expected, number = {}, {}, 0
    for part, size in SPLIT_SIZES.items():
        for i in range(size):
            written, pattern = list(classes.items())[i % len(classes)]
            number += 1
            path, grey, classname = pattern.format(number), 20 * number, written.replace("_", " ")
            write_jpeg(data_dir / folder / image_dir / path, grey)
            label = classnames.index(classname) if labels is None else labels
            split.setdefault(part, []).append([path, label, written])
            expected.setdefault(part, []).append((classname, grey))
    (data_dir / folder / split_file).write_text(json.dumps(split))
    return expected
