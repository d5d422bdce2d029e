"""Shared by the Ray tests: the pool's Ray settings (the session's one local cluster)."""

from __future__ import annotations

RAY = {"address": "local", "nodes": 3}

from typing import Any  # noqa: E402 - below the constant other modules import


def assert_adds_up(journal: dict[str, Any]) -> None:
    """The same bookkeeping identities as for the process backend (tests/engine)."""
    m = journal["metrics"]
    assert m["total"] == m["succeeded"] + m["errors"]
    assert sum(m["errors_by_kind"].values()) == m["errors"]
    assert m["recovered"] <= m["succeeded"]
    outcomes = m.get("outcomes")
    if outcomes is not None:
        assert sum(outcomes.values()) == m["total"]
    phases = journal["phases"]
    for key in ("total", "succeeded", "errors", "recovered"):
        assert sum(phases[p][key] for p in ("before", "during", "after")) == m[key], key
    assert sum(b["succeeded"] for b in journal["timeline"]) == m["succeeded"]
    assert sum(b["errors"] for b in journal["timeline"]) == m["errors"]
    for fault in journal["faults"]:
        assert fault["error"] is None, (fault["name"], fault["error"])
        assert fault["effect"], f"{fault['name']} left no evidence"
        assert fault["reverted_at"] >= fault["injected_at"]


async def until(predicate: Any, timeout: float = 30.0) -> None:  # noqa: ASYNC109 - a bound
    """Poll ``predicate()`` until true, bounded (psutil states have no event to wait on)."""
    import anyio

    with anyio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110 - a process state, not an event
            await anyio.sleep(0.01)
