"""The one exception type for bad user input, and the checks every job runs on its config before anything else."""
import math
from collections.abc import Collection, Iterator


class UserError(ValueError):
    """Bad input a user can fix; the message says what is wrong and how to fix it."""


class MissingFiles(UserError):
    """Data or weights that are not on this machine; the message says where they go and where to get them."""


def find_user_error(exc: BaseException | None) -> UserError | None:
    """The UserError behind `exc`, if any: Hydra wraps errors raised in `_target_` calls."""
    while exc is not None:
        if isinstance(exc, UserError):
            return exc
        exc = exc.__cause__ or exc.__context__  # OmegaConf wraps a resolver's error as the context
    return None


def one_line(exc: BaseException) -> str:
    """What went wrong, on one line: the UserError behind `exc` if there is one, else its type and message."""
    error = find_user_error(exc)
    text = str(error) if error is not None else f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())


def check_values(config: dict, skip: Collection[str] = ()) -> None:
    """Refuse values that no setting takes, whatever the method: NaN anywhere (every comparison with NaN is false,
    so range checks let it through), a number in quotes (a string where a number belongs; list items stay strings,
    since class names may be digits), and a seed that is not a whole number in numpy's range. Top-level keys in
    `skip` (paths, names) are not looked at."""
    checked = leaves({key: value for key, value in config.items() if key not in skip})
    for key, value, in_list in sorted(checked, key=lambda leaf: leaf[0].count(".")):  # alpha before method.alpha
        if isinstance(value, float) and math.isnan(value):
            raise UserError(f"{key}=nan is not a number: give it a value")
        if isinstance(value, str) and not in_list and is_number(value):
            raise UserError(f"{key}={value!r} is a number in quotes: write {key}={value.strip()} for the number")
    seed = config.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:  # the seeds numpy takes
        raise UserError(f"seed must be a whole number from 0 to 2**32 - 1, got {seed!r}: e.g. seed=0")


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


def some(names, shown: int = 10) -> str:
    """A list of names for an error line: the first `shown`, then how many more (ImageNet's 1,000 would fill a
    screen)."""
    names = list(names)
    more = f", … and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(repr(name) for name in names[:shown]) + more
