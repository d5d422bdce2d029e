"""An explored or shrunk schedule as an ordinary experiment: a mapping to run, a YAML to write.

The written file is the source experiment with ``method:`` replaced by the schedule's steps,
``duration`` by the schedule's run, ``seed`` by the run's seed, and ``explore:`` removed -- so
``chaospool run FILE`` runs exactly that schedule, wherever it is written: plugin paths and
``pythonpath:`` entries are rewritten relative to the file, and the source's own directory is
added to ``pythonpath:`` when the worker module or a module-name plugin lives there (it is found
beside the source experiment, docs/dsl.md), so the file finds them as the source did.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chaospool._dsl import units
from chaospool._dsl.model import Experiment
from chaospool._dsl.search_path import search_dirs
from chaospool._explore.steps import Candidate, to_yaml
from chaospool.fault import Fault

__all__ = ("Base", "base_of")

_ORDER = ("version", "title", "description", "seed", "duration", "plugins", "pythonpath", "pool",
          "load", "steady_state", "method")


@dataclass(frozen=True)
class Base:
    """The source experiment's own text, minus what a schedule replaces."""

    raw: Mapping[str, Any]
    path: str | None
    base_dir: str
    # the source's directory when the worker or a module-name plugin is imported from it
    own_dirs: tuple[str, ...] = ()

    def mapping(self, candidate: Candidate, seed: int,
                registry: Mapping[str, type[Fault]]) -> dict[str, Any]:
        """The experiment that runs ``candidate`` with ``seed`` (plugin paths as in the source)."""
        doc = {k: copy.deepcopy(v) for k, v in self.raw.items() if k not in ("explore", "method")}
        doc["seed"] = seed
        doc["duration"] = units.print_duration(candidate.duration)
        doc["method"] = [to_yaml(step, registry.get(step.fault)) for step in candidate.steps]
        return _ordered(doc)

    def text(self, candidate: Candidate, seed: int, registry: Mapping[str, type[Fault]],
             *, comments: Iterable[str] = (), out_dir: str | None = None) -> str:
        """The YAML of :meth:`mapping` with ``# comments`` on top; plugin paths made relative
        to ``out_dir`` (where the file goes), else absolute."""
        doc = self.mapping(candidate, seed, registry)
        if "plugins" in doc:
            doc["plugins"] = [self._plugin_path(p, out_dir) for p in doc["plugins"]]
        pythonpath = self._pythonpath(out_dir)
        if pythonpath or "pythonpath" in doc:
            doc = _ordered({**doc, "pythonpath": pythonpath})
        head = "".join(f"# {line}\n" if line else "#\n" for line in comments)
        return head + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100,
                                   default_flow_style=None)

    def _plugin_path(self, spec: Any, out_dir: str | None) -> Any:
        if not isinstance(spec, str) or not spec.endswith(".py") or os.path.isabs(spec):
            return spec  # a module name, or already absolute
        return self._relocated(spec, out_dir)

    def _relocated(self, path: str, out_dir: str | None) -> str:
        """``path`` (relative to the source) relative to ``out_dir``, else absolute -- also
        when the two share nothing but the root (``../../work/x`` says less than ``/work/x``)."""
        full = os.path.normpath(os.path.join(self.base_dir, os.path.expanduser(path)))
        if out_dir is None:
            return full
        there = os.path.abspath(out_dir)
        if os.path.commonpath([full, there]) == os.path.abspath(os.sep):
            return full
        return os.path.relpath(full, there)

    def _pythonpath(self, out_dir: str | None) -> list[str]:
        """The written file's ``pythonpath:``: the source's own directory when it holds what the
        source imports from there (unless the file goes beside the source), then the source's
        entries, each relative to where the file goes."""
        same = out_dir is not None and os.path.realpath(out_dir) == os.path.realpath(self.base_dir)
        entries = [] if same else [self._relocated(d, out_dir) for d in self.own_dirs]
        listed = self.raw.get("pythonpath") or []
        entries += [self._relocated(p, out_dir) for p in listed if isinstance(p, str)]
        return list(dict.fromkeys(entries))


def _ordered(doc: Mapping[str, Any]) -> dict[str, Any]:
    ordered = {k: doc[k] for k in _ORDER if k in doc}
    return {**ordered, **{k: v for k, v in doc.items() if k not in ordered}}


def base_of(source: Any, experiment: Experiment) -> Base:
    """The Base of a path or mapping source (already validated into ``experiment``)."""
    if isinstance(source, Mapping):
        raw: Any = source
    else:
        raw = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    own = search_dirs(experiment.base_dir, experiment.pool.worker, experiment.plugins, ())
    return Base(dict(raw), experiment.path, experiment.base_dir, own)
