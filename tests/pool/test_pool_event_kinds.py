"""``pool.subscribe(callback, kinds)``: each subscriber sees exactly the kinds it asked for,
under random mixes of subscriptions, unsubscriptions and emits."""

from __future__ import annotations

import random
from typing import Any

import pytest

from chaospool._pool.events import EVENT_KINDS, EventBus, PoolEvent

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("seed", range(20))
def test_subscribers_get_exactly_the_kinds_they_asked_for(seed: int) -> None:
    rng = random.Random(seed)
    bus = EventBus()
    live: dict[int, tuple[frozenset[str] | None, object]] = {}
    seen: dict[int, list[str]] = {}
    expected: dict[int, list[str]] = {}
    callbacks: dict[int, Any] = {}
    owner: dict[int, int] = {}  # subscription -> the list its callback appends to
    for step in range(300):
        action = rng.random()
        if action < 0.15:
            kinds = None if rng.random() < 0.3 else frozenset(rng.sample(EVENT_KINDS, 3))
            seen[step], expected[step] = [], []
            # one callback per list, and some subscribed twice (with other kinds): each
            # unsubscribe must end its own subscription only
            twin = rng.choice(sorted(live)) if live and rng.random() < 0.3 else None
            got = seen[step]
            callback = callbacks[twin] if twin is not None else (
                lambda ev, got=got: got.append(ev.kind))
            callbacks[step] = callback
            live[step] = (kinds, bus.subscribe(callback, kinds))
            owner[step] = owner[twin] if twin is not None else step
        elif action < 0.25 and live:
            key = rng.choice(sorted(live))
            live.pop(key)[1]()  # type: ignore[operator]
        else:
            kind = rng.choice(EVENT_KINDS)
            bus.emit(kind, 0, 1)
            for key, (kinds, _) in live.items():
                if kinds is None or kind in kinds:
                    expected[owner[key]].append(kind)
    assert seen == expected


def test_an_event_nobody_wants_is_not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    original = PoolEvent.__init__

    def counting(self: PoolEvent, kind: str, *args: object) -> None:
        built.append(kind)
        original(self, kind, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(PoolEvent, "__init__", counting)
    bus = EventBus()
    bus.subscribe(lambda ev: None, ("restart",))
    for _ in range(100):
        bus.emit("checkout", 0, 1)
        bus.emit("checkin", 0, 1)
    bus.emit("restart", 0, 2)
    assert built == ["restart"]


def test_an_unknown_kind_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown pool event kind.*'chekout'.*checkout"):
        EventBus().subscribe(lambda ev: None, ("chekout",))
