"""The one exception type the CLI turns into a one-line message and exit code 2."""


class CostsimError(ValueError):
    """Invalid user input: the message names the field and the fix, in one line."""
