"""The planted session-cache bug (tests/probe/test_consistency.py), without side effects:
``probe_stale_worker`` installs it in a worker process, the memory-backend test with
``monkeypatch``.

The bug: a worker serves its *own* copy of a session whenever it holds one, whatever version
the request names and whatever state the pool sends with it. That is how 0.1.0's workers went
wrong (docs/design.md, Pool, "Sessions: one truth"): a session that moved to another worker --
because its worker crashed, was busy, or a call failed there -- and came back found the old
copy, ran on it, and the reply wrote that older state back.
"""

from __future__ import annotations

import msgspec

from chaospool._worker.sessions import SessionCache, SessionCopy

__all__ = ("StaleSessionCache",)


class StaleSessionCache(SessionCache):
    """Trusts any copy it holds (the planted bug); otherwise behaves as the real cache."""

    def lookup(self, session: str, version: int, state: msgspec.Raw) -> SessionCopy | None:
        held = self._copies.get(session)
        if held is None:
            return super().lookup(session, version, state)
        held.state.touched = set()
        self._copies.move_to_end(session)
        return held
