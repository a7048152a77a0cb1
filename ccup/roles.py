"""What the report reads a method's rows as: the `role` its config (conf/method/) declares, `method`
where it declares none. No code finds a role by a method's name."""
import functools
from pathlib import Path

from omegaconf import OmegaConf

from ccup.errors import UserError

ROLES = {
    "method": "an unlearning method",
    "oracle": "the gold standard: its records at alpha = 1 are what every gap is measured against",
    "reference": "a yardstick beside the methods (a second oracle, another oracle definition, the "
                 "blocklist)",
    "anchor": "the method every other row is paired with",
}
METHODS = Path(__file__).parents[1] / "conf" / "method"


def role_of(node) -> str:
    """A method config's role (ROLES), from its resolved or composed config; raises UserError for
    one the report does not know."""
    role = node.get("role", "method")
    if role not in ROLES:
        raise UserError(f"method.role={role!r}: a method's role is one of {', '.join(ROLES)}")
    return role


def record_role(record: dict) -> str:
    """A record's role: the one its resolved method config holds; for a record written before method
    configs declared roles, the one its method's config (its `method` choice) declares today."""
    method = record["config"]["method"]
    return role_of(method) if "role" in method else declared_role(record["choices"]["method"])


@functools.cache
def declared_role(option: str, folder: Path = METHODS) -> str:
    """The role conf/method/<option>.yaml declares, or inherits from the method config its defaults
    list starts from (`- retrain`, `- /method/ccup@_here_`); `method` where none does."""
    path = folder / f"{option}.yaml"
    node = OmegaConf.load(path) if path.exists() else OmegaConf.create()
    if "role" in node:
        return role_of(node)
    for entry in node.get("defaults", []):
        parent = (entry.split("@")[0].removeprefix("/method/") if isinstance(entry, str)
                  else "_self_")
        if parent != "_self_" and (folder / f"{parent}.yaml").exists():
            return declared_role(parent, folder)
    return "method"
