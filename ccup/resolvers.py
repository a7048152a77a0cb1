"""Config resolvers: forget sets drawn at random, validation and test forget classes, a folder
dataset's classes, and prompt templates from open_clip or a file, resolved when a job's config is,
so that its record holds the classes and templates it used; a forget set joined into one word."""
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig, OmegaConf

from ccup.classnames import folder_classes
from ccup.errors import UserError


def random_classes(classnames: Sequence[str], k: int, draw: int) -> list[str]:
    """`k` distinct class names drawn with the seed `draw`: the same classes for the same draw on
    every machine."""
    if not 0 < k < len(classnames):
        raise UserError(f"forget.k={k}: draw between 1 and {len(classnames) - 1} of the "
                        f"{len(classnames)} classes")
    return random.Random(draw).sample(list(classnames), k)


def forget_set(classes: Sequence[str], sizes: Sequence[int], index: int) -> list[str]:
    """The `index`-th of a benchmark's forget sets of `classes` (a dataset's test forget classes):
    each class alone in their order, then, for each of `sizes`, that many classes drawn with
    Python's random.Random(position among the sizes) and kept apart from the sets before it (drawn
    again with the next seed where one repeats): the multi-class scenario, by a rule fixed before
    any result is read."""
    sets = [[name] for name in classes]
    seed = 0
    for size in sizes:
        if not 1 < size < len(classes):
            raise UserError("forget.sizes: a multi-class forget set takes 2 to "
                            f"{len(classes) - 1} of the {len(classes)} classes, got {size}")
        while (drawn := sorted(random.Random(seed).sample(list(classes), size),
                               key=list(classes).index)) in sets:
            seed += 1
        sets.append(drawn)
        seed += 1
    if not 0 <= index < len(sets):
        raise UserError(f"forget.index={index}: the forget sets are numbered 0 to {len(sets) - 1} "
                        f"({len(classes)} classes alone, then sets of {list(sizes)})")
    return sets[index]


def protocol_classes(dataset: str, protocol: Sequence[str] | None,
                     index: int | None = None) -> list[str]:
    """A dataset's published protocol forget classes (`protocol_forget`), all or the one at `index`,
    as a list."""
    if not protocol:
        raise UserError(f"dataset={dataset} has no published protocol forget classes "
                        "(protocol_forget), so forget=protocol_* has nothing to pick: name the "
                        "classes, forget.classes=[...], or use a dataset that has them "
                        "(caltech101, oxford_flowers, stanford_cars, stanford_dogs, ...)")
    return list(protocol) if index is None else [protocol[index]]


def validation_classes(classnames: Sequence[str], exclude: Sequence[str],
                       kinds: Mapping[str, Sequence[str]] | None = None, k: int = 3) -> list[str]:
    """The forget classes a search tunes on, by a rule fixed before any result is read: the classes
    outside `exclude` (the published protocol forget classes) in the order of numpy's default_rng(0)
    permutation, `k` of them, or half of them where there are fewer than 2k, so that at least as
    many are left to report; where the dataset groups its classes into `kinds` (Fashion-MNIST's
    tops, bottoms, footwear, bags), one of each kind first, in that order, so that the classes tuned
    on stand for the classes reported, not three of one kind."""
    # numpy and open_clip wait for the configs that ask: composing a config stays cheap
    import numpy as np

    candidates = [name for name in classnames if name not in set(exclude)]
    ordered = [candidates[i] for i in np.random.default_rng(0).permutation(len(candidates))]
    kind_of = {name: kind for kind, names in (kinds or {}).items() for name in names}
    first_of_kind = [name for i, name in enumerate(ordered)
                     if kind_of.get(name, name) not in {kind_of.get(n, n) for n in ordered[:i]}]
    ordered = first_of_kind + [name for name in ordered if name not in first_of_kind]
    return ordered[:min(k, len(candidates) // 2)]


def other_classes(classnames: Sequence[str], taken: Sequence[str]) -> list[str]:
    """The classes not in `taken`, in the dataset's order: the test forget classes beside the
    validation ones."""
    return [name for name in classnames if name not in set(taken)]


def open_clip_templates(name: str) -> list[str]:
    """A template list that open_clip ships (OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES)
    as format strings."""
    import open_clip.zero_shot_metadata

    return [template("{}") for template in getattr(open_clip.zero_shot_metadata, name)]


def read_templates(path: str) -> list[str]:
    """Templates from a text file, one per line with `{}` where the class name goes; blank and `#`
    lines skipped."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"no template file at {file.resolve()}: pass prompts=file "
                        "dataset.templates_file=PATH")
    templates = [line.strip() for line in file.read_text().splitlines() if line.strip()
                 and not line.startswith("#")]
    if not templates or not all("{}" in template for template in templates):
        raise UserError(f"{file}: write one template per line, each with {{}} where the class "
                        "name goes")
    return templates


def joined(classes: Sequence[str]) -> str:
    """A forget set as one word, as reports name it: `sandal+sneaker+ankle boot`."""
    # a class given as a number is refused by the forget set's check, by name
    return "+".join(map(str, classes))


# Overrides a W&B run's name leaves out: those its name already says (method=, alpha=, the forget
# set, the seed), and where results go (ccup.record's NOT_IDENTITY); a method's own settings
# (method.lam=100) stay.
UNNAMED = ("alpha", "seed", "forget", "logger", "results_dir", "cache_dir", "data_dir", "sweep",
           "rerun", "hydra")


def other_overrides() -> str:
    """The job's command-line overrides but UNNAMED ones and its method, after a space: with the
    method, alpha, forget set and seed, what tells a W&B run from the other runs of its sweep
    (`method.lam=100 prompts=file`)."""
    def key(override: str) -> str:
        return override.split("=", 1)[0].lstrip("+~")

    overrides = [o for o in HydraConfig.get().overrides.task
                 if key(o) != "method" and key(o).split(".")[0].split("/")[0] not in UNNAMED]
    return "".join(f" {override}" for override in overrides)


def run_group(sweep: str, *, _root_: DictConfig) -> str:
    """A W&B run's group, never the time it started: the sweep's name where one is given
    (`sweep=NAME`, or by an experiment or a search), else the experiment's (`experiment=leakage`),
    else `<method>-<dataset>` (`ccup-fashion_mnist`), for one-off runs and unnamed sweeps alike."""
    if not OmegaConf.is_interpolation(_root_, "sweep"):  # the default is the time: `${now:...}`
        return sweep
    choices = HydraConfig.get().runtime.choices
    if choices.get("experiment") is not None:
        return choices.experiment
    return f"{choices.method}-{choices.dataset}"


def every_option(group: str, *excluded: str) -> str:
    """Every option of a config group but `excluded`, as one override value `[a,b]`: a sweep that
    runs every evaluation takes its list from the folder (every folder of the search path) as
    `glob(*)` takes a sweep's."""
    # set up by a running Hydra app: its search path, not CONF alone
    from hydra.core.global_hydra import GlobalHydra

    options = GlobalHydra.instance().config_loader().get_group_options(group)
    return f"[{','.join(option for option in options if option not in excluded)}]"


def sweep_over(group: str, *subgroups: str) -> str:
    """Every option of a config group and of its `subgroups` (folders within it, named by their path
    from the config folder), as one sweep axis `a,b,tuned/c`: an experiment's list of methods read
    from the folder, so that a new method joins it without an edit."""
    from hydra.core.global_hydra import GlobalHydra

    loader = GlobalHydra.instance().config_loader()
    options = [f"{sub.removeprefix(group).strip('/')}/{option}".lstrip("/")
               for sub in (group, *subgroups) for option in loader.get_group_options(sub)]
    return ",".join(options)


def sweep_over_but(group: str, *excluded: str) -> str:
    """Every option of a config group but `excluded`, as one sweep axis `a,b,c`."""
    return ",".join(option for option in sweep_over(group).split(",") if option not in excluded)


def as_node(resolver: Callable[..., list]) -> Callable[..., ListConfig]:
    """A resolver whose list comes back as a config node: OmegaConf.resolve, which instantiate
    calls, cannot put a plain list where an interpolation was."""
    return lambda *args: OmegaConf.create(resolver(*args))


OmegaConf.register_new_resolver("random_classes", as_node(random_classes), replace=True)
OmegaConf.register_new_resolver("forget_set", as_node(forget_set), replace=True)
OmegaConf.register_new_resolver("joined", joined, replace=True)
OmegaConf.register_new_resolver("protocol_classes", as_node(protocol_classes), replace=True)
OmegaConf.register_new_resolver("validation_classes", as_node(validation_classes), replace=True)
OmegaConf.register_new_resolver("other_classes", as_node(other_classes), replace=True)
OmegaConf.register_new_resolver("folder_classes", as_node(folder_classes), replace=True)
OmegaConf.register_new_resolver("open_clip_templates", as_node(open_clip_templates), replace=True)
OmegaConf.register_new_resolver("read_templates", as_node(read_templates), replace=True)
OmegaConf.register_new_resolver("other_overrides", other_overrides, replace=True)
OmegaConf.register_new_resolver("run_group", run_group, replace=True)
OmegaConf.register_new_resolver("every_option", every_option, replace=True)
OmegaConf.register_new_resolver("sweep_over", sweep_over, replace=True)
OmegaConf.register_new_resolver("sweep_over_but", sweep_over_but, replace=True)
