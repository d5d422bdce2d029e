"""psutil's view of one local worker process: what ``Measured`` links answer with."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil


class ProcessInfo:
    """RSS and status of process ``pid``; the ``psutil.Process`` is made on first use (an
    incarnation nobody measures costs nothing) and kept (its creation reads /proc)."""

    __slots__ = ("_pid", "_proc")

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._proc: psutil.Process | None = None

    def _process(self) -> psutil.Process | None:
        if self._proc is None and self._pid > 0:
            import psutil  # lazily: the pool imports without it until something measures

            try:
                self._proc = psutil.Process(self._pid)
            except psutil.Error:
                return None
        return self._proc

    def rss(self) -> int | None:
        proc = self._process()
        try:
            return None if proc is None else int(proc.memory_info().rss)
        except Exception:  # gone, a zombie, no permission: not measurable now
            return None

    def status(self) -> str | None:
        proc = self._process()
        try:
            return None if proc is None else str(proc.status())
        except Exception:  # as in rss
            return None
