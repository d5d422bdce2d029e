"""A worker keeps the session states it served: a session served there again travels once.

The pool mirrors each worker's (bounded) cache, so what a worker is told it holds it holds;
correctness is checked through the demo's session-backed commands, the traffic through the
requests the pool sends.
"""

from __future__ import annotations

from typing import Any

import pytest

from chaospool import Pool
from chaospool._pool import requests as request_path
from chaospool._wire import protocol as p

pytestmark = [pytest.mark.unit, pytest.mark.anyio]

SIGNATURE = {"inputs": ["q"], "outputs": ["a"]}


def _record_requests(pool: Pool) -> list[p.Request]:
    """Record every Request the pool sends to its (single) worker."""
    sent: list[p.Request] = []
    link: Any = pool._slots[0].link  # type: ignore[union-attr]
    original = link.send_nowait

    def spy(msg: p.Message) -> bool:
        if isinstance(msg, p.Request):
            sent.append(msg)
        return bool(original(msg))

    link.send_nowait = spy
    return sent


async def _programs(pool: Pool, session: str) -> list[str]:
    reply = await pool.execute("list_programs", session=session)
    return list(reply["programs"])


@pytest.mark.timeout(30)
async def test_a_session_served_again_by_its_worker_travels_once() -> None:
    async with Pool("chaospool.workers.demo", size=1, backend="memory") as pool:
        sent = _record_requests(pool)
        await pool.execute("create_program", {"signature": SIGNATURE}, session="s")
        await pool.execute("create_program", {"signature": SIGNATURE}, session="s")
        assert await _programs(pool, "s") == ["prog-0", "prog-1"]
        assert [r.cached for r in sent] == [False, True, True]
        assert all(r.session == p.NIL for r in sent[1:])  # the state did not travel again


@pytest.mark.timeout(30)
async def test_evicted_sessions_travel_again_and_stay_correct(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(request_path, "SESSION_CACHE", 2)
    async with Pool("chaospool.workers.demo", size=1, backend="memory") as pool:
        sent = _record_requests(pool)
        for round_ in range(3):
            for session in ("a", "b", "c"):  # three sessions, room for two
                await pool.execute("create_program", {"signature": SIGNATURE}, session=session)
                assert len(await _programs(pool, session)) == round_ + 1
        assert any(r.evict for r in sent)
        assert not any(r.cached and r.session_id in (r.evict or ()) for r in sent)
        assert len(pool._slots[0].cached) <= 2  # type: ignore[union-attr]


@pytest.mark.timeout(30)
async def test_a_session_moving_between_workers_keeps_its_latest_state() -> None:
    async with Pool("chaospool.workers.demo", size=2, backend="memory") as pool:
        w0, w1 = pool._slots[0], pool._slots[1]
        assert w0 is not None
        assert w1 is not None
        await pool.execute("create_program", {"signature": SIGNATURE}, session="s")
        first = pool._affinity["s"]
        # the other worker serves the session next (as when the first one is busy)
        other = w1 if first is w0 else w0
        pool._affinity["s"] = other
        await pool.execute("create_program", {"signature": SIGNATURE}, session="s")
        pool._affinity["s"] = first  # back to a worker whose cached copy is now stale
        assert await _programs(pool, "s") == ["prog-0", "prog-1"]
