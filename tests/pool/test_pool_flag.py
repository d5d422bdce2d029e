"""The request path's flag on every loop: seeded random mixes of set / wait / timed wait /
cancelled wait, against a model (once set, every wait returns True at once; before that a
timed wait returns False; a cancelled wait leaves the flag usable)."""

from __future__ import annotations

import random

import anyio
import anyio.lowlevel
import pytest

from chaospool._pool.flag import AnyioFlag, Flag, asyncio_loop, flag_factory
from chaospool._pool.worker import Call

pytestmark = [pytest.mark.unit, pytest.mark.anyio, pytest.mark.timeout(30)]


def _call_as_flag() -> Call:
    """A request's Call, which is its own flag on asyncio -- made with its caller's future,
    as the request path makes it -- and defers to a Flag elsewhere."""
    loop = asyncio_loop()
    if loop is None:
        return Call("ping", AnyioFlag())
    return Call("ping", None, fut=loop.create_future())


async def _cancelled_wait(flag: Flag | Call) -> None:
    with anyio.CancelScope() as scope:
        scope.cancel()
        await flag.wait()


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("kind", ["flag", "call"])
async def test_flag_behaves_like_its_model_in_random_mixes(seed: int, kind: str) -> None:
    rng = random.Random(seed)
    flag: Flag | Call = flag_factory(asyncio_loop())() if kind == "flag" else _call_as_flag()
    model = False
    for _ in range(30):
        op = rng.choice(("set", "timed", "cancelled", "is_set", "wait_set"))
        if op == "set":
            flag.set()
            model = True
        elif op == "timed":
            assert await flag.wait(0.001 if not model else 5.0) is model
        elif op == "cancelled":
            await _cancelled_wait(flag)
        elif op == "is_set":
            assert flag.is_set() is model
        elif model:  # an untimed wait on a set flag returns at once
            assert await flag.wait() is True
        else:  # ... and on an unset one, when another task sets it
            async with anyio.create_task_group() as tg:
                tg.start_soon(_set_soon, flag)
                assert await flag.wait() is True
            model = True


async def _set_soon(flag: Flag | Call) -> None:
    await anyio.lowlevel.checkpoint()
    flag.set()
