"""A worker module that, imported by the fork server, first writes garbage on the fork
server's own socket to the pool (a malformed message the pool must log and skip)."""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import Any

from chaospool.worker import Context, command


def _noise() -> None:
    if len(sys.argv) > 1 and sys.argv[0].endswith("zygote.py"):
        fd = json.loads(sys.argv[1])["fd"]
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, fileno=os.dup(fd))
        sock.send(b"\xc1 this is not msgpack")
        sock.close()


_noise()


@command
def ping(args: Any, ctx: Context) -> str:
    return "pong"
