"""A worker's copies of session states: decoded once, changed in place, shipped as deltas.

Why (docs/design.md, Pool, "Sessions"): shipping and decoding a session's whole state on every
change makes each change cost as much as the state is big. A worker therefore keeps each state
it serves *decoded*, together with the bytes it last encoded for every top-level key. A
handler's ``ctx.session`` is a ``SessionDict``, which notes the top-level keys the handler
reached; after the handler only those are encoded again and compared, and the reply carries
the keys whose bytes changed and the keys that are gone. A change then costs what the handler
touched, not what the session holds.

Every copy carries the *version* the pool gave that state; the worker uses a copy only for a
request naming that very version, so it can never serve an older state than the pool's.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import msgspec

from chaospool._wire import protocol as p

__all__ = ("SessionCache", "SessionCopy", "SessionDict")


class SessionDict(dict[Any, Any]):
    """A session's state as a handler sees it: a dict noting the top-level keys it reached.

    Every way a value can leave the dict through its methods counts (``d[k]``, ``get``,
    ``setdefault``, ``pop``, ``popitem``; ``values()``, ``items()``, ``copy()`` and ``|``
    count every key), because a nested value reached that way may be changed in place: its
    key is encoded again after the handler. Iterating the keys, ``in`` and ``len`` do not
    count. ``__iter__`` is overridden only so that ``dict(d)`` and ``{**d}`` take the slow
    path through ``__getitem__`` instead of copying the storage unseen.
    """

    __slots__ = ("touched",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        dict.__init__(self, *args, **kwargs)
        self.touched: set[Any] = set()

    def _touch_all(self) -> None:
        self.touched.update(dict.keys(self))

    def __getitem__(self, key: Any) -> Any:
        self.touched.add(key)
        return dict.__getitem__(self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.touched.add(key)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        self.touched.add(key)
        dict.__delitem__(self, key)

    def __iter__(self) -> Iterator[Any]:
        return dict.__iter__(self)

    def get(self, key: Any, default: Any = None) -> Any:
        self.touched.add(key)
        return dict.get(self, key, default)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self.touched.add(key)
        return dict.setdefault(self, key, default)

    def pop(self, key: Any, *default: Any) -> Any:
        self.touched.add(key)
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[Any, Any]:
        key, value = dict.popitem(self)
        self.touched.add(key)
        return key, value

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def clear(self) -> None:
        self._touch_all()
        dict.clear(self)

    def values(self) -> Any:
        self._touch_all()
        return dict.values(self)

    def items(self) -> Any:
        self._touch_all()
        return dict.items(self)

    def copy(self) -> dict[Any, Any]:
        self._touch_all()
        return dict.copy(self)

    def __or__(self, other: Any) -> Any:
        self._touch_all()
        return dict.__or__(self, other)

    def __ror__(self, other: Any) -> Any:
        self._touch_all()
        return dict.__ror__(self, other)

    def __ior__(self, other: Any) -> SessionDict:
        self.update(other)
        return self


class SessionCopy:
    """One session's state in this worker: decoded, the bytes of each key, its version."""

    __slots__ = ("encoded", "state", "version")

    def __init__(self, version: int, encoded: dict[Any, msgspec.Raw]) -> None:
        self.version = version
        self.encoded = encoded
        self.state = SessionDict({k: p.decode_value(v) for k, v in encoded.items()})

    @classmethod
    def from_wire(cls, version: int, raw: msgspec.Raw) -> SessionCopy:
        """The whole state as the pool sent it (values detached from the request's buffer)."""
        return cls(version, {k: v.copy() for k, v in p.decode_state(raw).items()})

    def delta(self) -> tuple[dict[Any, msgspec.Raw], list[Any]]:
        """The top-level keys the handler changed (new bytes) and deleted; TypeError and
        friends propagate for a value that cannot be encoded."""
        state, encoded = self.state, self.encoded
        touched, state.touched = state.touched, set()
        changed: dict[Any, msgspec.Raw] = {}
        deleted: list[Any] = []
        for key in touched:
            if dict.__contains__(state, key):
                data = p.encode_value(dict.__getitem__(state, key))
                if encoded.get(key) != data:
                    changed[key] = encoded[key] = data
            elif encoded.pop(key, None) is not None:
                deleted.append(key)
        return changed, deleted


class SessionCache:
    """The session copies this worker keeps, least recently used dropped beyond ``capacity``.

    The pool mirrors this cache (same bound, same order of use), so it usually knows what a
    worker holds; when it guesses wrong the worker answers ``Miss`` and gets the state.
    """

    def __init__(self, capacity: int | None = None) -> None:
        self.capacity = p.SESSION_CACHE if capacity is None else capacity
        self._copies: OrderedDict[str, SessionCopy] = OrderedDict()

    def __len__(self) -> int:
        return len(self._copies)

    def lookup(self, session: str, version: int, state: msgspec.Raw) -> SessionCopy | None:
        """The copy a request names: sent with it, the empty state (version 0), or the one
        this worker holds at exactly that version. None: a miss (the pool sends the state)."""
        copies = self._copies
        if state != p.NIL:
            copy = SessionCopy.from_wire(version, state)
        elif version == 0:
            copy = SessionCopy(0, {})
        else:
            held = copies.get(session)
            if held is None or held.version != version:
                return None
            copy = held
            copy.state.touched = set()
        copies[session] = copy
        copies.move_to_end(session)
        if len(copies) > self.capacity:
            copies.popitem(last=False)
        return copy

    def drop(self, session: str) -> None:
        self._copies.pop(session, None)
