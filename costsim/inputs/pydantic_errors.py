"""Turn a pydantic ValidationError into one line that names the field and what is wrong."""

from __future__ import annotations

from pydantic import ValidationError


def one_line(err: ValidationError, where: str) -> str:
    first = err.errors()[0]
    # a union adds its member to the path (max_batch.`function-after[...]`, max_batch.literal['auto']): not a field
    loc = ".".join(str(x) for x in first.get("loc", ()) if x != "__root__" and "[" not in str(x))
    msg = first.get("msg", "invalid value").removeprefix("Value error, ")
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    field = f"field '{loc}' " if loc else ""
    return f"{where}: {field}{msg}{more}"
