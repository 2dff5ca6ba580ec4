"""Close names for a name that matched nothing, and the one-line error that offers them.

Names are compared normalised (lowercase, letters and digits only), so ``llama3.1-8b``, ``Llama_3.1_8B``
and ``llama-3.1-8b`` are the same name. The first tier that finds anything wins: the same normalised name,
names that start with it (``h100`` -> h100-sxm, h100-pcie, h100-nvl), names that contain it, names it
contains (``h100-sxm5`` -> h100-sxm), then difflib's close matches. Only difflib is imported: the CLI's
cold start pays for this module on every run.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

MAX_SUGGESTIONS = 5


def normalise(name: str) -> str:
    """Lowercase letters and digits only: separators and punctuation do not tell names apart."""
    return "".join(ch for ch in name.casefold() if ch.isalnum())


def close_names(name: str, choices: Iterable[str], limit: int = MAX_SUGGESTIONS) -> list[str]:
    """Up to `limit` of `choices` that `name` was probably meant to be, best first; [] when none is close."""
    key = normalise(name)
    norm = {c: normalise(c) for c in dict.fromkeys(choices)}
    if not key or not norm:
        return []
    tiers = (
        [c for c, n in norm.items() if n == key],
        [c for c, n in norm.items() if n.startswith(key)],
        [c for c, n in norm.items() if len(key) >= 3 and key in n],
        sorted((c for c, n in norm.items() if len(n) >= 4 and n in key), key=lambda c: -len(norm[c])),
    )
    for tier in tiers:
        if 0 < len(tier) <= limit:
            return tier
    by_norm: dict[str, str] = {}
    for c, n in norm.items():
        by_norm.setdefault(n, c)
    close = difflib.get_close_matches(key, list(by_norm), n=limit, cutoff=0.6)
    order = list(by_norm)  # equally close names keep the order they were given in
    close.sort(key=lambda n: (-difflib.SequenceMatcher(None, key, n).ratio(), order.index(n)))
    return [by_norm[n] for n in close]


def did_you_mean(names: Sequence[str]) -> str:
    """'did you mean a, b or c?' ('' for no names)."""
    if not names:
        return ""
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return f"did you mean {listed}?"


def not_found(subject: str, problem: str, name: str, choices: Sequence[str], listing: str | None = None,
              noun: str = "names", first: Sequence[str] = ()) -> str:
    """One line: ``<subject>: <problem>; did you mean a or b? (<listing> lists all N)``.

    `listing` is the command that lists every choice; without one (a short list) the choices themselves are
    named instead (``(<noun>: a, b, c)``). With nothing close, the listing stands alone after the problem.
    `first`: suggestions found another way, offered before the close names."""
    where = f"{listing} lists all {len(choices)}" if listing else f"{noun}: {', '.join(choices) or '(none)'}"
    guess = did_you_mean(list(dict.fromkeys([*first, *close_names(name, choices)]))[:MAX_SUGGESTIONS])
    return f"{subject}: {problem}; {guess} ({where})" if guess else f"{subject}: {problem}; {where}"
