"""The one exception type for bad user input: run.py prints its message as a single line."""


class UserError(ValueError):
    """Bad input a user can fix; the message says what is wrong and how to fix it."""


def find_user_error(exc: BaseException | None) -> UserError | None:
    """The UserError behind `exc`, if any: Hydra wraps errors raised in `_target_` calls."""
    while exc is not None:
        if isinstance(exc, UserError):
            return exc
        exc = exc.__cause__
    return None
