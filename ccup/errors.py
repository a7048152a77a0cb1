"""The one exception type for bad user input, the checks every job runs on its config before
anything else, and the one line of a command line that never became a job."""
import difflib
import inspect
import math
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob
from hydra.errors import MissingConfigException, OverrideParseException
from hydra.utils import _locate
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError


class UserError(ValueError):
    """Bad input a user can fix; the message says what is wrong and how to fix it.

    Raised in a DataLoader worker (an image that cannot be read), it reaches the job rebuilt by
    torch from the worker's traceback as text (torch.utils.data's ExceptionWrapper calls the class
    with that text): the message is then taken back out of the traceback's last entry, so that the
    job still ends with the one line."""

    def __init__(self, *args):
        if len(args) == 1 and isinstance(args[0], str) and "\nOriginal Traceback" in args[0]:
            raised = f"{type(self).__module__}.{type(self).__qualname__}: "
            text = args[0]
            args = (text[text.rfind(raised) + len(raised):].strip(),) if raised in text else args
        super().__init__(*args)


class MissingFiles(UserError):
    """Data or weights that are not on this machine; the message says where they go and where to get
    them."""


def find_user_error(exc: BaseException | None) -> UserError | None:
    """The UserError behind `exc`, if any: Hydra wraps errors raised in `_target_` calls."""
    while exc is not None:
        if isinstance(exc, UserError):
            return exc
        exc = exc.__cause__ or exc.__context__  # OmegaConf wraps a resolver's error as the context
    return None


def one_line(exc: BaseException) -> str:
    """What went wrong, on one line: the UserError behind `exc` if there is one, else its type and
    message."""
    error = find_user_error(exc)
    text = (str(error) if error is not None else f"{type(exc).__name__}: {exc}" if str(exc)
            else type(exc).__name__)
    return " ".join(text.split())


def check_values(config: dict, skip: Collection[str] = ()) -> None:
    """Refuse values that no setting takes, whatever the method: NaN anywhere (every comparison with
    NaN is false, so range checks let it through), a number in quotes (a string where a number
    belongs; list items stay strings, since class names may be digits), and a seed that is not a
    whole number in numpy's range. Top-level keys in `skip` (paths, names) are not looked at."""
    checked = leaves({key: value for key, value in config.items() if key not in skip})
    # alpha before method.alpha
    for key, value, in_list in sorted(checked, key=lambda leaf: leaf[0].count(".")):
        if isinstance(value, float) and math.isnan(value):
            raise UserError(f"{key}=nan is not a number: give it a value")
        if isinstance(value, str) and not in_list and is_number(value):
            raise UserError(f"{key}={value!r} is a number in quotes: write {key}={value.strip()} "
                            "for the number")
    seed = config.get("seed")
    # the seeds numpy takes
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise UserError(f"seed must be a whole number from 0 to 2**32 - 1, got {seed!r}: "
                        "e.g. seed=0")


def leaves(node, key: str = "", in_list: bool = False) -> Iterator[tuple[str, object, bool]]:
    """(dotted key, value, whether it is a list item) for every scalar of a nested config."""
    if isinstance(node, dict):
        for name, value in node.items():
            yield from leaves(value, f"{key}.{name}" if key else str(name))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from leaves(value, f"{key}[{index}]", in_list=True)
    else:
        yield key, node, in_list


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def listed(names, shown: int = 10) -> str:
    """A list of names for an error line: the first `shown`, then how many more (ImageNet's 1,000
    would fill a screen)."""
    names = list(names)
    more = f", … and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(repr(name) for name in names[:shown]) + more


def composition_error(exc: Exception) -> str:
    """The `error:` line for a command line that Hydra cannot compose into a config: an option a
    config group does not have, with the options it has; a key a config does not have, with the keys
    it has; an override Hydra cannot parse."""
    if isinstance(exc, MissingConfigException) and exc.options and exc.missing_cfg_file:
        group, _, option = exc.missing_cfg_file.rpartition("/")
        options = ", ".join(exc.options)
        return (f"error: {group}={option}: no such option; {closest(option, exc.options)}{group} "
                f"has {options}")
    if isinstance(exc, OverrideParseException):
        return f"error: cannot read the override {exc.override!r}: " + " ".join(str(exc).split())
    cause = exc.__cause__
    parent = getattr(cause, "parent_node", None)
    if (isinstance(cause, ConfigAttributeError | ConfigKeyError) and parent is not None
            and cause.full_key):
        keys = [str(key) for key in parent.keys() if key != "hydra"]
        where = cause.full_key.rpartition(".")[0] or "the config"
        if cause.full_key == "model.pretrained" and parent.get("_target_") == "ccup.tiny.load_tiny":
            return f"error: {TINY_CHECKPOINT}"
        known = (f"error: {cause.full_key}: no such key; {closest(str(cause.key), keys)}{where} "
                 f"has {', '.join(keys)}")
        if not takes(parent.get("_target_"), str(cause.key)):
            return f"{known} ({parent['_target_']} takes no {cause.key!r})"
        return f"{known} (+{cause.full_key}=... adds a key)"
    return "error: " + " ".join(str(exc).split())


# A checkpoint for the embedded model, with or without `+`: what to write instead.
TINY_CHECKPOINT = ("model.pretrained: the embedded model (model=tiny) is trained by its recipe and "
                   "loads no checkpoint; load one with an open_clip model config: "
                   "model=vit_b32_openai model.name=ccup-tiny-p7 model.pretrained=PATH (or another "
                   "architecture's name)")


# Keys beside a `_target_` that the suite reads, not the callable: a method's role is the report's
# (ccup.roles), set aside when the method is built (ccup.method.build).
NOT_ARGUMENTS = ("method.role",)


def check_keywords(config: dict, skip: Collection[str] = (), key: str = "") -> None:
    """Refuse a key that the callable its config node instantiates (`_target_`) does not take,
    before anything is built: a key added with `+` (`+model.pretrained=x.pt`) would otherwise end
    the job in Hydra's traceback of the call. Top-level keys in `skip` are not looked at; keys
    starting with `_` are Hydra's own.

    Raises:
        UserError: naming the key, the callable and what it takes.
    """
    target = config.get("_target_")
    for name, value in config.items():
        if key == "" and name in skip:
            continue
        dotted = f"{key}.{name}" if key else str(name)
        hydras = str(name).startswith("_")
        if dotted in NOT_ARGUMENTS:
            continue
        if isinstance(target, str) and not hydras and not takes(target, str(name)):
            if dotted == "model.pretrained" and target == "ccup.tiny.load_tiny":
                raise UserError(TINY_CHECKPOINT)
            taken = [p for p in inspect.signature(_locate(target)).parameters if p != "self"]
            raise UserError(f"{dotted}: {target} takes no {name!r}; {closest(str(name), taken)}it "
                            f"takes {', '.join(taken)}: remove the key or name one it takes")
        if isinstance(value, dict):
            check_keywords(value, key=dotted)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    check_keywords(item, key=f"{dotted}[{index}]")


def check_group_choices(args: Sequence[str], conf: Path) -> None:
    """Refuse, before Hydra composes, two choices of a config group that Hydra would not refuse in
    one line: an option that is not a name (`forget=5`: Hydra reads a number and raises a
    TypeError), and several options for a group that takes one (`forget=[sandal,bag]`: Hydra merges
    the two files, and only bag is forgotten).

    Args:
        args: the command line's arguments; flags and what is not an override are left to Hydra.
        conf: the config folder, whose subfolders are the groups and whose config.yaml names the
            groups that take a list (`eval: [...]`).

    Raises:
        UserError: naming the group's options and what to write instead.
    """
    defaults = OmegaConf.load(conf / "config.yaml").defaults
    takes_lists = {group for entry in defaults if isinstance(entry, DictConfig)
                   for group, choice in entry.items() if isinstance(choice, ListConfig)}
    try:
        overrides = OverridesParser.create().parse_overrides(
            [a for a in args if "=" in a and a[0] != "-"])
    except OverrideParseException:
        return  # Hydra says what it cannot read
    for override in overrides:
        group = override.key_or_group
        if not (conf / group).is_dir():
            continue
        text = override.input_line.split("=", 1)[1]
        # glob(*): the group's own file names, read from the folder by Hydra
        if isinstance(override.value(), Glob):
            continue
        sweep = override.sweep_iterator() if override.is_sweep_override() else [override.value()]
        for choice in sweep:
            names = choice if isinstance(choice, list) else [choice]
            classes = ",".join(name if isinstance(name, str) else f"'{name}'" for name in names)
            hint = (f"; to forget classes by name: forget.classes=[{classes}]" if group == "forget"
                    else "")
            if not all(isinstance(name, str) for name in names):
                options = sorted(path.stem for path in (conf / group).glob("*.yaml"))
                raise UserError(f"{group}={text}: an option of {group} is the name of a file "
                                f"in conf/{group}/, not a number ({group} has "
                                f"{listed(options)}){hint}")
            if len(names) > 1 and group not in takes_lists:
                raise UserError(f"{group}={text}: {group} takes one option (the files of several "
                                "would be merged, the last one's settings winning): sweep them "
                                f"with -m {group}={','.join(names)}{hint}")


def takes(target: str | None, key: str) -> bool:
    """Whether the callable a config instantiates takes `key` (True where the config instantiates
    nothing, or the callable cannot be found or read): only then does adding the key make sense."""
    if not isinstance(target, str):
        return True
    try:
        parameters = inspect.signature(_locate(target)).parameters
    except (ImportError, ValueError, TypeError):
        return True
    return key in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def closest(name: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    return f"did you mean {close[0]!r}? " if close else ""
