"""Class names as a job's config gives them, checked before any model or image is loaded: a folder
dataset's classes, read from its folders, and forget sets, which name classes of the dataset."""
import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path

from ccup.errors import MissingFiles, UserError, listed


def split_folder(root: str, split: str) -> tuple[Path, bool]:
    """Where a folder dataset keeps `split`: `root/<split>` when the root holds train/ and test/,
    else the root itself (flat: its class folders hold both splits)."""
    base = Path(root)
    if not base.is_dir():
        raise MissingFiles(f"dataset.root={root}: no such folder; a folder dataset reads "
                           f"{root}/train/<class>/* and {root}/test/<class>/*, or {root}/<class>/*")
    present = [name for name in ("train", "test") if (base / name).is_dir()]
    if len(present) == 1:
        raise UserError(f"{base} has {present[0]}/ but no "
                        f"{({'train', 'test'} - set(present)).pop()}/: give both splits, or put "
                        "the class folders directly under the root to have them split")
    return (base / split, False) if present else (base, True)


def class_folders(path: Path) -> list[str]:
    """The class folders under `path`, in sorted order (hidden ones skipped)."""
    return sorted(entry.name for entry in path.iterdir()
                  if entry.is_dir() and not entry.name.startswith("."))


def folder_classes(root: str, names: Mapping[str, str] | None) -> list[str]:
    """A folder dataset's class names: its train split's class folders in sorted order, each as
    `names` maps it."""
    names = names or {}
    folders = class_folders(split_folder(root, "train")[0])
    unused = sorted(set(names) - set(folders))
    if unused:
        raise UserError(f"dataset.names maps {listed(unused)}, which {root} has no class folder "
                        f"for: its class folders are {listed(folders)}")
    return [names.get(folder, folder) for folder in folders]


def by_class_name(classes, names: Mapping[str, str] | None):
    """Forget classes as class names: one given by its folder (a key of a folder dataset's `names`)
    becomes the class name it maps to. Anything else, malformed lists included, passes as it is, for
    the forget set's own checks."""
    if isinstance(classes, str) or not names:
        return classes
    return [names.get(name, name) if isinstance(name, str) else name for name in classes]


def check_forget_set(forget: Sequence[str], classnames: Sequence[str]) -> None:
    """Forget sets name classes of the dataset: at least one, each once, and not all of them."""
    if isinstance(forget, str) or not all(isinstance(name, str) for name in forget):
        raise UserError(f"forget.classes must be a list of class names, got {forget!r}: write e.g. "
                        "forget.classes=[sandal], and quote names that look like numbers, "
                        "forget.classes=['5']")
    if len(forget) == 0:
        raise UserError("the forget set is empty: name at least one class, e.g. "
                        "forget.classes=[sandal]")
    for name in forget:
        if name not in classnames:
            close = difflib.get_close_matches(name, classnames, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UserError(f"unknown forget class {name!r}: {hint}the dataset's classes are "
                            f"{listed(classnames)} (dataset.classnames)")
    if len(set(forget)) < len(forget):
        raise UserError(f"a forget class is given twice in {list(forget)}: name each class once")
    if set(forget) == set(classnames):
        raise UserError("cannot forget every class: nothing would be left to retain or to "
                        "classify as")
