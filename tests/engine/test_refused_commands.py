"""A run whose worker lacks a command of the mix stops before any load, with a clear message
(validation catches this first; an experiment loaded without the worker check reaches here)."""

from __future__ import annotations

import anyio
import pytest

from chaospool._engine.session import load_with_plugins, run_loaded


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_mix_the_worker_cannot_serve_stops_the_run_before_any_load() -> None:
    loaded = load_with_plugins({
        "version": 1, "duration": "30s",
        "pool": {"worker": "chaospool.workers.demo", "size": 1},
        "load": {"mix": [{"command": "pingg"}, {"command": "echo"}]},
    })

    async def main() -> dict[str, object]:
        return (await run_loaded(loaded)).to_dict()

    journal = anyio.run(main)
    assert journal["status"] == "failed"
    assert journal["metrics"]["total"] == 0  # not 30 s of refused calls
    error = str(journal["error"])
    assert "has no command 'pingg' named in load.mix" in error
    assert "echo" in error  # what it has instead
