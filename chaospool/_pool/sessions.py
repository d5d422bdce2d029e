"""The pool's sessions: one authoritative state each, versions, turns and affinity.

One truth (docs/design.md, Pool, "Sessions"):

* the pool holds each session's state (top-level key -> encoded value) and its *version*;
  versions come from the pool's request-id counter, so one version names one content;
* a request names the version it runs on; a worker uses its own copy only at exactly that
  version (else it answers ``Miss`` and the pool sends the state): a handler always sees the
  pool's current state, whatever happened to earlier calls;
* calls of one session run one at a time (its *turn*); a call whose caller gave up passes the
  turn at once and its reply is discarded -- so at most one call that can still change a
  session is in flight, and every change is applied to the state it was computed from.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator
from typing import Any

import msgspec

from chaospool._pool.worker import Call, Worker
from chaospool._wire import protocol as p

__all__ = ("AFFINITY_MAX", "SessionRecord", "Sessions")

# Sessions whose last worker the pool remembers (a preference, not state): least recently used
# forgotten beyond it, so an API user with a new session id per call keeps a flat memory.
AFFINITY_MAX = 65_536


class SessionRecord:
    """A session's authoritative state: top-level key -> encoded value, its size and version."""

    __slots__ = ("size", "values", "version")

    def __init__(self) -> None:
        self.version = 0  # 0: the empty state, which every worker can make up without help
        self.values: dict[Any, msgspec.Raw] = {}
        self.size = 0  # bytes of the encoded keys and values: what the whole state weighs

    def decoded(self) -> dict[Any, Any]:
        return {k: p.decode_value(v) for k, v in self.values.items()}


def _key_size(key: Any) -> int:
    return len(p.encode_value(key))


class Sessions:
    """Records, turns and affinity of every session; ``ids`` is the pool's id counter."""

    def __init__(self, ids: Iterator[int]) -> None:
        self.records: dict[str, SessionRecord] = {}
        self.affinity: OrderedDict[str, Worker] = OrderedDict()
        # session -> calls waiting for their turn; a key is present while one call holds it
        # (an empty tuple until a second call arrives: most turns are never contended)
        self.turns: dict[str, deque[Call] | tuple[()]] = {}
        self._ids = ids

    def state(self, session: str) -> dict[Any, Any] | None:
        record = self.records.get(session)
        return None if record is None else record.decoded()

    def size(self, session: str) -> int:
        record = self.records.get(session)
        return 0 if record is None else record.size

    # -- turns ----------------------------------------------------------------------------
    def take_turn(self, call: Call) -> bool:
        """True if ``call`` holds its session's turn now; False: it waits in line."""
        session = call.session
        assert session is not None
        line = self.turns.get(session)
        if line is None:
            self.turns[session] = ()
            call.has_turn = True
            return True
        if not line:
            line = self.turns[session] = deque()
        line.append(call)
        return False

    def waiting(self, session: str) -> int:
        line = self.turns.get(session)
        return 0 if line is None else len(line)

    def next_turn(self, session: str) -> Call | None:
        """The turn passes to the next call in line (returned), or the session is idle."""
        line = self.turns.get(session)
        if not line:
            self.turns.pop(session, None)
            return None
        assert isinstance(line, deque)
        call = line.popleft()
        call.has_turn = True
        return call

    def leave_line(self, call: Call) -> bool:
        """``call`` stops waiting for its turn; False if it was not in line."""
        line = self.turns.get(call.session) if call.session is not None else None
        if not line or call not in line:
            return False
        assert isinstance(line, deque)
        line.remove(call)
        return True

    # -- what travels ---------------------------------------------------------------------
    def request(self, w: Worker, call: Call, rid: int) -> p.Request:
        """The request for ``call`` on ``w``: the session's version, and its whole state
        unless ``w`` is known to hold that version."""
        session = call.session
        assert session is not None
        record = self.records.get(session)
        version = 0 if record is None else record.version
        call.version = version
        cached = w.cached
        state = p.NIL
        if version and cached.get(session) != version:
            assert record is not None
            state = p.encode_value(record.values)  # Raw values are copied, not re-encoded
        cached[session] = version
        cached.move_to_end(session)
        if len(cached) > p.SESSION_CACHE:
            cached.popitem(last=False)
        return p.Request(rid, call.command or "", call.raw, session, version, state)

    def forget(self, w: Worker, session: str) -> None:
        """``w`` may not hold the session's current state (a failure, a discarded reply)."""
        w.cached.pop(session, None)

    def adopt(self, w: Worker, call: Call, reply: p.Reply) -> p.Failure | None:
        """Apply the session changes of ``call``'s reply; a Failure (nothing applied) when the
        state would no longer fit in a frame."""
        session = call.session
        assert session is not None
        if reply.changed is not None or reply.deleted is not None:
            failure = self._apply(w, call, reply)
            if failure is not None:
                return failure
        self.prefer(session, w)
        return None

    def _apply(self, w: Worker, call: Call, reply: p.Reply) -> p.Failure | None:
        session = call.session
        assert session is not None
        record = self.records.get(session) or SessionRecord()
        changed, deleted = reply.changed or {}, reply.deleted or []
        values = record.values
        size = record.size
        for key in (*changed, *deleted):
            old = values.get(key)
            if old is not None:
                size -= _key_size(key) + len(old)
        size += sum(_key_size(k) + len(v) for k, v in changed.items())
        if size > p.payload_limit():
            self.forget(w, session)
            return p.Failure(reply.id, "SessionTooLarge", (
                f"{call.command!r} would grow session {session!r} to {size} bytes; a session's "
                f"state must fit in one frame ({p.payload_limit()} bytes): change not applied"))
        for key, value in changed.items():
            values[key] = value.copy()  # detached: the reply's buffer is not kept alive
        for key in deleted:
            values.pop(key, None)
        record.size = size
        self._new_version(w, call, record)
        return None

    def _new_version(self, w: Worker, call: Call, record: SessionRecord) -> None:
        session = call.session
        assert session is not None
        if record.version == call.version:
            # the change was made to the current state: the worker's copy *is* the new state,
            # and it took the request id as its version
            record.version = call.rid
            w.cached[session] = call.rid
        else:  # defensive (turns make it impossible): a merge nobody holds
            record.version = next(self._ids)
            self.forget(w, session)
        if record.values:
            self.records[session] = record
        else:  # empty again: version 0, which needs no record
            self.records.pop(session, None)

    # -- affinity -------------------------------------------------------------------------
    def prefer(self, session: str, w: Worker) -> None:
        """``w`` served ``session`` last: its next call goes there if ``w`` is idle."""
        affinity = self.affinity
        old = affinity.get(session)
        if old is not w:
            if old is not None:
                old.sessions.discard(session)
            w.sessions.add(session)
            affinity[session] = w
        affinity.move_to_end(session)
        if len(affinity) > AFFINITY_MAX:
            gone, last = affinity.popitem(last=False)
            last.sessions.discard(gone)

    def drop_worker(self, w: Worker) -> None:
        """``w`` is going: no call of its sessions may prefer it any more."""
        affinity = self.affinity
        for session in w.sessions:
            if affinity.get(session) is w:
                del affinity[session]
        w.sessions.clear()
