"""Which reporters write where: ``--report NAME=PATH`` and its shorthands, checked up front.

``--journal PATH``, ``--html PATH`` and ``--junit PATH`` are ``--report journal=PATH`` and so
on. A name no reporter has is an error before anything starts (exit 2, with a did-you-mean).
See docs/reports.md.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from chaospool.hookspecs import Reporter

__all__ = ("Output", "bind", "parse_output", "unknown_names", "with_stem")


@dataclass(frozen=True)
class Output:
    """One requested output: a reporter's name and the path it writes (``-`` = stdout)."""

    name: str
    path: str


def parse_output(spec: str) -> Output:
    """``NAME=PATH`` -> Output; ``ValueError`` with the expected form otherwise."""
    name, sep, path = spec.partition("=")
    if not sep or not name.strip() or not path:
        raise ValueError(f"expected NAME=PATH (e.g. html=report.html), got {spec!r}")
    return Output(name.strip(), path)


def unknown_names(outputs: Iterable[Output], reporters: Mapping[str, Reporter]) -> list[str]:
    """One message per output whose reporter does not exist, naming the close ones."""
    messages = []
    for out in outputs:
        if out.name in reporters:
            continue
        close = difflib.get_close_matches(out.name, list(reporters), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        known = ", ".join(sorted(reporters))
        messages.append(f"--report {out.name}={out.path}: no reporter named {out.name!r}{hint}; "
                        f"known: {known}")
    return messages


def bind(
    outputs: Iterable[Output], reporters: Mapping[str, Reporter]
) -> list[tuple[Reporter, str]]:
    """The (reporter, path) pairs to call; every name must exist (see :func:`unknown_names`)."""
    return [(reporters[out.name], out.path) for out in outputs]


def with_stem(out: Output, stem: str) -> Output:
    """The output of one of several experiments: ``report.html`` -> ``report.cascade.html``."""
    if out.path == "-":
        return out
    p = Path(out.path)
    return Output(out.name, str(p.with_name(f"{p.stem}.{stem}{p.suffix}")))
