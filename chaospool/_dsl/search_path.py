"""Where an experiment's worker module and module-name plugins are imported from, and for how long
that is on ``sys.path`` (docs/dsl.md, "Where pool.worker and plugins are found").

An experiment's *search directories* are its own directory -- only when it holds the top-level
module or package of ``pool.worker`` or of a plugin given by module name, so that it never
shadows an installed package it does not hold -- then each ``pythonpath:`` entry, resolved
against the experiment's directory. They go first on ``sys.path`` only while they are needed:
validation, a plugin's import, a run (the pool's workers inherit the parent's ``sys.path`` when
they start). A long-lived process (pytest, a notebook calling ``chaospool.run`` again and again)
must not collect every experiment directory it ever saw: 0.2 left each one on ``sys.path``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from chaospool._dsl.model import Experiment

__all__ = ("experiment_dirs", "module_dir", "module_dirs", "on_sys_path", "search_dirs")


def module_dir(spec: str, base_dir: Path) -> Path | None:
    """``base_dir`` if it holds the top-level module or package of ``spec``, else None."""
    top = spec.partition(":")[0].partition(".")[0]
    if not top:
        return None
    for candidate in (base_dir / f"{top}.py", base_dir / top):
        if candidate.is_file() or candidate.is_dir():
            return base_dir
    return None


def module_dirs(spec: str, base_dir: Path | str | None) -> tuple[str, ...]:
    """``(base_dir,)`` resolved when it holds ``spec``'s top-level module, else ``()``."""
    if base_dir is None:
        return ()
    found = module_dir(spec, Path(base_dir))
    return () if found is None else (str(found.resolve()),)


def _is_module_name(spec: str) -> bool:
    """A module name (``pkg.mod``, or ``pkg.mod:obj`` for a worker), not a ``.py`` path."""
    module = spec.partition(":")[0]
    return not module.endswith(".py") and all(p.isidentifier() for p in module.split("."))


def search_dirs(base_dir: str, worker: str | None, plugins: Iterable[str],
                pythonpath: Iterable[str]) -> tuple[str, ...]:
    """The search directories, in order, each once (absolute)."""
    specs = [s for s in (worker, *plugins) if isinstance(s, str) and _is_module_name(s)]
    own = [d for spec in specs for d in module_dirs(spec, base_dir)]
    listed = [os.path.normpath(os.path.join(base_dir, os.path.expanduser(entry)))
              for entry in pythonpath]
    return tuple(dict.fromkeys([*own, *listed]))


def experiment_dirs(experiment: Experiment) -> tuple[str, ...]:
    """:func:`search_dirs` of a validated experiment."""
    return search_dirs(experiment.base_dir, experiment.pool.worker, experiment.plugins,
                       experiment.pythonpath)


@contextmanager
def on_sys_path(dirs: Sequence[str]) -> Iterator[None]:
    """Put ``dirs`` first on ``sys.path`` for the block, then take out exactly what was added.

    Each is inserted even when ``sys.path`` already has it (it must come first) and removed once
    afterwards, so an entry that was there before stays, where it was.
    """
    added = list(dict.fromkeys(dirs))
    sys.path[0:0] = added
    try:
        yield
    finally:
        for entry in added:
            if entry in sys.path:
                sys.path.remove(entry)  # the first occurrence: the one inserted above
