"""What a handler's ``ctx`` carries from call to call (docs/internal-api.md): a session's state
stays, a call without a session starts from an empty scratch -- the worker reuses one plain
``Context``, so this is what would break if its scratch were not emptied -- and a backend whose
links cannot take pre-encoded frames (``SendsFrames`` is optional) serves all the same."""

from __future__ import annotations

import random
from typing import Any

import anyio
import pytest

from chaospool._pool.memory import MemoryBackend
from chaospool.pool import Pool

pytestmark = [pytest.mark.integration, pytest.mark.anyio, pytest.mark.timeout(60)]

WORKER = "pool_test_workers"


@pytest.mark.parametrize("backend", ["memory", "process"])
@pytest.mark.parametrize("seed", [1, 2])
async def test_a_call_without_a_session_starts_from_an_empty_scratch(
    backend: str, seed: int
) -> None:
    rng = random.Random(seed)
    async with Pool(WORKER, size=1, backend=backend, health_check=False) as pool:
        calls: dict[str, int] = {}  # session -> calls made on it
        for _ in range(40):
            session = rng.choice([None, "a", "b"])
            seen = await pool.execute("scratch", session=session)
            if session is None:
                assert seen == []
            else:  # a session's state is kept: one key more per call
                assert seen == sorted(f"k{i}" for i in range(calls.get(session, 0)))
                calls[session] = calls.get(session, 0) + 1


class _NoFrames:
    """A link without the optional ``frame_writer``: everything else is the memory link's."""

    def __init__(self, link: Any) -> None:
        self._link = link

    def __getattr__(self, name: str) -> Any:
        if name == "frame_writer":
            raise AttributeError(name)
        return getattr(self._link, name)


class _NoFramesBackend(MemoryBackend):
    async def spawn(self, index: int) -> Any:
        return _NoFrames(await super().spawn(index))


async def test_a_backend_without_pre_encoded_frames_serves_every_kind_of_call() -> None:
    async with Pool(WORKER, size=2, backend=_NoFramesBackend(WORKER),
                    health_check=False) as pool:
        assert all(w.send_frame is None for w in pool._state.slots if w is not None)
        assert await pool.execute("echo", {"x": 1}) == {"x": 1}
        assert await pool.execute("scratch", session="s") == []
        assert await pool.execute("scratch", session="s") == ["k0"]
        assert sorted(await _many(pool, 20)) == ["pong"] * 20  # queued, handed over at check-in


async def _many(pool: Pool, n: int) -> list[Any]:
    out: list[Any] = []

    async def one() -> None:
        out.append(await pool.execute("ping"))

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return out
