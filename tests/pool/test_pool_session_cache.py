"""Session states: kept decoded in the worker, named by version, shipped as deltas.

The pool holds each session's state and its version; a worker holds copies by version and uses
one only for a request naming that version (docs/design.md, Pool, "Sessions"). These tests
drive one mechanism each on the memory backend, watching the frames the pool sends and gets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pool_test_workers
import pytest

from chaospool import CheckoutTimeout, CommandError, Pool
from chaospool._pool import sessions as pool_sessions
from chaospool._pool.memory import MemoryLink
from chaospool._wire import protocol as p
from chaospool._worker.sessions import SessionCopy, SessionDict

pytestmark = [pytest.mark.unit, pytest.mark.anyio, pytest.mark.timeout(30)]

SIGNATURE = {"inputs": ["q"], "outputs": ["a"]}
WORKER = "pool_test_workers"


@pytest.fixture(autouse=True)
def _release_hanging_handlers() -> Iterator[None]:
    pool_test_workers.RELEASE.clear()
    yield
    pool_test_workers.RELEASE.set()


def _link(pool: Pool, index: int) -> MemoryLink:
    w = pool._slots[index]
    assert w is not None
    assert isinstance(w.link, MemoryLink)
    return w.link


def _record_requests(pool: Pool, index: int = 0) -> list[p.Request]:
    """Record every Request the pool sends to worker ``index``."""
    sent: list[p.Request] = []
    link: Any = _link(pool, index)
    original = link.send_nowait

    def spy(msg: p.Message) -> bool:
        if isinstance(msg, p.Request):
            sent.append(msg)
        return bool(original(msg))

    link.send_nowait = spy
    return sent


def _record_answers(pool: Pool) -> list[p.Message]:
    """Record every answer the pool gets to a call on a session (a Reply or Failure, and a
    Miss): they all leave the plain calls' fast path through these two methods."""
    got: list[p.Message] = []
    requests: Any = pool._requests
    answered, missed = requests._answered, requests._missed

    def spy_answered(w: Any, call: Any, msg: p.Message) -> bool:
        got.append(msg)
        return bool(answered(w, call, msg))

    def spy_missed(w: Any, msg: p.Message) -> bool:
        got.append(msg)
        return bool(missed(w, msg))

    requests._answered, requests._missed = spy_answered, spy_missed
    return got


async def _programs(pool: Pool, session: str) -> list[str]:
    reply = await pool.execute("list_programs", session=session)
    return list(reply["programs"])


def _prefer(pool: Pool, session: str, index: int) -> None:
    """The next call of ``session`` goes to worker ``index`` (affinity, if it is idle)."""
    w = pool._slots[index]
    assert w is not None
    pool._affinity[session] = w


async def test_a_session_served_again_by_its_worker_travels_once() -> None:
    async with Pool("chaospool.workers.demo", size=1, backend="memory") as pool:
        sent = _record_requests(pool)
        await pool.execute("create_program", {"signature": SIGNATURE}, session="s")
        await pool.execute("create_program", {"signature": SIGNATURE}, session="s")
        assert await _programs(pool, "s") == ["prog-0", "prog-1"]
        assert all(r.state == p.NIL for r in sent)  # the state never travelled to the worker
        assert [r.version for r in sent] == [0, sent[0].id, sent[1].id]


async def test_evicted_sessions_travel_again_and_stay_correct(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(p, "SESSION_CACHE", 2)
    async with Pool("chaospool.workers.demo", size=1, backend="memory") as pool:
        sent = _record_requests(pool)
        for round_ in range(3):
            for session in ("a", "b", "c"):  # three sessions, room for two
                await pool.execute("create_program", {"signature": SIGNATURE}, session=session)
                assert len(await _programs(pool, session)) == round_ + 1
        assert any(r.state != p.NIL for r in sent)  # evicted states travelled again
        w = pool._slots[0]
        assert w is not None
        assert len(w.cached) <= 2
        assert len(_link(pool, 0).core.sessions) <= 2


async def test_a_session_moving_between_workers_keeps_its_latest_state() -> None:
    async with Pool("chaospool.workers.demo", size=2, backend="memory") as pool:
        await pool.execute("create_program", {"signature": SIGNATURE}, session="s")
        first = pool._affinity["s"].index
        _prefer(pool, "s", 1 - first)  # the other worker serves it next
        await pool.execute("create_program", {"signature": SIGNATURE}, session="s")
        _prefer(pool, "s", first)  # back to a worker whose copy is now an older version
        assert await _programs(pool, "s") == ["prog-0", "prog-1"]


async def test_an_unknown_command_on_a_session_never_desynchronises_it() -> None:
    # 0.1.0: the worker that refused the command was believed to hold the session's state;
    # every later call of the session there failed with SessionCacheMiss
    async with Pool(WORKER, size=2, backend="memory", health_check=False) as pool:
        assert await pool.execute("incr", session="s") == 1
        other = 1 - pool._affinity["s"].index
        _prefer(pool, "s", other)
        with pytest.raises(CommandError, match="UnknownCommand"):
            await pool.execute("no_such_command", session="s")
        for expected in (2, 3):
            _prefer(pool, "s", other)
            assert await pool.execute("incr", session="s") == expected
        assert pool.session_state("s") == {"n": 3}


async def test_a_reply_its_caller_gave_up_on_is_discarded_and_never_read() -> None:
    # 0.1.0: the worker kept the abandoned call's state while the pool kept the old one; a
    # read there saw the discarded change, a read elsewhere the old state: reads went back
    async with Pool(WORKER, size=2, backend="memory", health_check=False) as pool:
        assert await pool.execute("incr", session="s") == 1
        first = pool._affinity["s"].index
        answered = anyio.Event()
        pool.subscribe(lambda e: answered.set() if e.kind == "late_reply" else None)
        with anyio.move_on_after(0.01):
            await pool.execute("incr", {"delay": 0.2}, session="s")
        assert pool.session_state("s") == {"n": 1}
        with anyio.fail_after(5):
            await answered.wait()  # its worker answered late (n = 2) and is checked in
        _prefer(pool, "s", first)
        assert await pool.execute("read", session="s") == 1
        _prefer(pool, "s", 1 - first)
        assert await pool.execute("read", session="s") == 1
        assert await pool.execute("incr", session="s") == 2


async def test_a_handler_that_raises_changes_nothing_even_in_its_worker() -> None:
    async with Pool(WORKER, size=1, backend="memory", health_check=False) as pool:
        assert await pool.execute("incr", session="s") == 1
        with pytest.raises(CommandError, match="changed my mind"):
            await pool.execute("incr_then_raise", session="s")
        assert await pool.execute("read", session="s") == 1
        assert await pool.execute("incr", session="s") == 2


async def test_a_worker_missing_the_state_gets_it_and_the_call_proceeds() -> None:
    async with Pool(WORKER, size=1, backend="memory", health_check=False) as pool:
        assert await pool.execute("incr", session="s") == 1
        _link(pool, 0).core.sessions.drop("s")  # the pool still believes the worker holds it
        answers = _record_answers(pool)
        assert await pool.execute("incr", session="s") == 2
        assert [type(m) for m in answers] == [p.Miss, p.Reply]
        assert pool.stats().errors == 0


async def test_calls_of_one_session_take_turns_so_no_increment_is_lost() -> None:
    # 0.1.0: concurrent calls of one session ran on different workers; the last reply won
    async with Pool(WORKER, size=4, backend="memory", health_check=False) as pool:
        results: list[int] = []

        async def bump() -> None:
            results.append(await pool.execute("incr", {"delay": 0.002}, session="s"))

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(bump)
        assert sorted(results) == list(range(1, 21))
        assert pool.session_state("s") == {"n": 20}
        assert not pool._sessions.turns  # no session holds a turn any more


async def test_a_call_waiting_for_its_turn_times_out_like_a_queued_one() -> None:
    async with Pool(WORKER, size=2, backend="memory", health_check=False,
                    checkout_timeout=0.05) as pool:
        holding = anyio.Event()

        async def hold() -> None:
            holding.set()
            await pool.execute("hang", {"duration": 5.0}, session="s")

        async with anyio.create_task_group() as tg:
            tg.start_soon(hold)
            await holding.wait()
            with pytest.raises(CheckoutTimeout) as info:
                await pool.execute("read", session="s")
            assert "one at a time" in str(info.value)
            pool_test_workers.RELEASE.set()
        assert await pool.execute("read", session="s") == 0


async def test_a_change_ships_only_the_keys_it_changed() -> None:
    async with Pool(WORKER, size=1, backend="memory", health_check=False) as pool:
        await pool.execute("fill", {"entries": 1000}, session="s")
        answers = _record_answers(pool)
        sent = _record_requests(pool)
        await pool.execute("set_entry", {"key": "k7", "value": "new"}, session="s")
        await pool.execute("drop_entry", {"key": "k8"}, session="s")
        reply, dropped = (m for m in answers if isinstance(m, p.Reply))
        assert isinstance(reply, p.Reply)
        assert isinstance(dropped, p.Reply)
        assert list(reply.changed or ()) == ["k7"]
        assert dropped.changed is None
        assert dropped.deleted == ["k8"]
        assert all(r.state == p.NIL for r in sent)
        state = pool.session_state("s")
        assert len(state) == 999
        assert state["k7"] == "new"
        assert "k8" not in state


async def test_a_session_that_would_outgrow_a_frame_is_refused_and_the_worker_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(p, "MAX_FRAME", p.FRAME_HEADROOM + 10_000)
    async with Pool(WORKER, size=1, backend="memory", health_check=False) as pool:
        await pool.execute("grow", {"key": "a", "size": 6000}, session="s")
        pid = pool.workers[0].pid
        with pytest.raises(CommandError, match="SessionTooLarge"):
            await pool.execute("grow", {"key": "b", "size": 6000}, session="s")
        assert set(pool.session_state("s")) == {"a"}
        assert await pool.execute("read_entry", {"key": "b"}, session="s") is None
        assert pool.workers[0].pid == pid
        assert pool.stats().restarts == 0


async def test_per_session_records_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_sessions, "AFFINITY_MAX", 50)
    async with Pool(WORKER, size=2, backend="memory", health_check=False) as pool:
        for i in range(400):
            assert await pool.execute("read", session=f"one-off-{i}") == 0
        assert len(pool._affinity) <= 50
        assert sum(len(w.sessions) for w in pool._slots if w is not None) <= 50
        assert not pool._sessions.records  # empty states need no record
        assert not pool._sessions.turns
        assert all(len(w.cached) <= p.SESSION_CACHE for w in pool._slots if w is not None)


# -- the worker's tracking of what a handler changed ------------------------------------------
def _copy(state: dict[str, Any]) -> SessionCopy:
    return SessionCopy.from_wire(1, p.encode_value(state))


def test_a_nested_value_reached_through_the_dict_counts_as_changed() -> None:
    copy = _copy({"programs": {"a": 1}, "other": [1]})
    copy.state.get("programs")["b"] = 2  # type: ignore[index]
    changed, deleted = copy.delta()
    assert {k: p.decode_value(v) for k, v in changed.items()} == {"programs": {"a": 1, "b": 2}}
    assert deleted == []


def test_reading_without_changing_ships_nothing() -> None:
    copy = _copy({"a": {"x": 1}, "b": 2})
    assert sorted(copy.state) == ["a", "b"]
    assert dict(copy.state)["a"] == {"x": 1}
    list(copy.state.items())
    assert copy.delta() == ({}, [])


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(c=3),
        lambda d: d.__delitem__("a"),
        lambda d: d.pop("a"),
        lambda d: d.popitem(),
        lambda d: d.setdefault("c", []).append(1),
        lambda d: d.clear(),
        lambda d: [v.append(9) for v in d.values() if isinstance(v, list)],
        lambda d: [v.append(9) for _, v in d.items() if isinstance(v, list)],
        lambda d: dict(d)["b"].append(9),
        lambda d: {**d}["b"].append(9),
        lambda d: d.copy()["b"].append(9),
        lambda d: d.__ior__({"z": 1}),
    ],
)
def test_every_way_to_change_a_session_is_shipped(change: Any) -> None:
    before = {"a": 1, "b": [1]}
    copy = _copy(before)
    change(copy.state)
    expected = dict(copy.state.items())
    changed, deleted = copy.delta()
    after = {k: v for k, v in before.items() if k not in deleted}
    after.update({k: p.decode_value(v) for k, v in changed.items()})
    assert after == expected


def test_a_session_dict_is_a_dict() -> None:
    d = SessionDict(a=1)
    assert isinstance(d, dict)
    assert p.decode_value(p.encode_value(d)) == {"a": 1}
    assert d == {"a": 1}


async def test_a_demo_session_keeps_its_most_recent_programs() -> None:
    from chaospool.workers.demo import MAX_PROGRAMS

    async with Pool("chaospool.workers.demo", size=1, backend="memory") as pool:
        made = [(await pool.execute("create_program", {"signature": SIGNATURE},
                                    session="s"))["program_id"]
                for _ in range(MAX_PROGRAMS + 5)]
        assert len(set(made)) == len(made)  # ids are never reused
        assert await _programs(pool, "s") == sorted(made[5:])
        with pytest.raises(CommandError, match="no program"):
            await pool.execute("execute", {"program_id": made[0], "inputs": {}}, session="s")
        reply = await pool.execute("execute", {"program_id": made[-1], "inputs": {"q": 1}},
                                   session="s")
        assert reply == {"outputs": {"a": "a(q=1)"}}
