"""``Mailbox``: completions from Ray's threads reach the event loop exactly once, in order per
thread, with fewer wake-ups than completions when they bunch up (seeded random mixes)."""

from __future__ import annotations

import queue
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest

from chaospool._ray.backend import Mailbox

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

_STOP = object()


def _loop(posted: queue.Queue[Any]) -> threading.Thread:
    """A stand-in event loop: runs what was posted, one at a time, until _STOP."""
    def run() -> None:
        while (fn := posted.get(timeout=30)) is not _STOP:
            fn()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("seed", range(25))
def test_every_completion_arrives_once_in_order(seed: int) -> None:
    rng = random.Random(seed)
    producers, per = rng.randint(1, 4), rng.randint(1, 400)
    posted: queue.Queue[Any] = queue.Queue()
    wakeups = []

    def post(fn: Callable[[], None]) -> None:
        wakeups.append(1)
        posted.put(fn)

    box, seen = Mailbox(post), []
    loop = _loop(posted)

    def produce(p: int) -> None:
        for i in range(per):
            box.put(seen.append, (p, i))
            if rng.random() < 0.05:
                threading.Event().wait(0)  # a yield, to vary the interleaving

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    posted.put(_STOP)
    loop.join(30)
    assert sorted(seen) == [(p, i) for p in range(producers) for i in range(per)]
    for p in range(producers):
        assert [i for q, i in seen if q == p] == list(range(per))
    assert 1 <= len(wakeups) <= producers * per


def test_a_closed_loop_is_not_an_error() -> None:
    def post(fn: Callable[[], None]) -> None:
        raise RuntimeError("Event loop is closed")

    box = Mailbox(post)
    box.put(print, "never delivered")  # Ray's thread must not die of it
    box.put(print, "nor this")


def test_completions_behind_a_raising_callback_still_run() -> None:
    posted: list[Callable[[], None]] = []
    box, seen = Mailbox(posted.append), []

    def boom(value: Any) -> None:
        raise ValueError(value)

    box.put(boom, 1)
    box.put(seen.append, 2)
    with pytest.raises(ValueError, match="1"):
        posted.pop(0)()  # the loop reports the callback's error
    assert seen == []
    posted.pop(0)()  # rescheduled at once, without waiting for another completion
    assert seen == [2]
    assert posted == []
