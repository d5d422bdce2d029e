"""The pool tier runs on every event loop anyio supports: asyncio, asyncio with uvloop, trio,
so that a loop-specific assumption (uvloop's transports are not ``asyncio.Transport``) cannot
come back. The rest of the suite stays on plain asyncio (tests/conftest.py) to keep CI short.
"""

from __future__ import annotations

from typing import Any

import pytest

EVENT_LOOPS = [
    pytest.param("asyncio", id="asyncio"),
    pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    pytest.param("trio", id="trio"),
]


@pytest.fixture(params=EVENT_LOOPS)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param
