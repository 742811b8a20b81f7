"""`python3 -m lrtop relay SOCKET`: copies bytes between stdin/stdout and a run's Unix socket.

`lrtop attach HOST:RUN` runs it on the remote, over the SSH connection it already has, where the server refuses to
forward a Unix socket (`AllowStreamLocalForwarding no`): ssh carries the relay's stdin and stdout, the relay carries
them to the run's socket. It is a pipe and nothing more (the bridge protocol goes through untouched, its limits
enforced at both ends), it imports nothing but the standard library (never torch: it must start in milliseconds on a
login or GPU node), and it exits when either side closes: the viewer quit (stdin at its end) or the run went away.
"""
from __future__ import annotations

import os
import select
import socket
import sys

CHUNK = 65536
USAGE = "usage: python3 -m lrtop relay SOCKET   (copies stdin/stdout to and from a run's Unix socket)"


def relay(path: str, stdin: int = 0, stdout: int = 1) -> None:
    """Connects to `path` and copies both ways until the socket closes, or stdin ends and the socket has said all
    it will say. Raises OSError when the socket cannot be reached."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        watched = [sock.fileno(), stdin]
        while watched:
            readable, _, _ = select.select(watched, [], [])
            if sock.fileno() in readable:
                data = sock.recv(CHUNK)
                if not data:
                    return  # the run closed the connection (it ended, or it dropped this viewer)
                _write_all(stdout, data)
            if stdin in readable:
                data = os.read(stdin, CHUNK)
                if data:
                    sock.sendall(data)
                else:
                    # The viewer is gone: say so to the run (it drops the half line, if any) and stop.
                    sock.shutdown(socket.SHUT_WR)
                    return
    finally:
        sock.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0].startswith("-"):
        sys.stderr.write(USAGE + "\n")
        return 2
    path = argv[0]
    try:
        relay(path)
    except FileNotFoundError:
        sys.stderr.write(f"lrtop relay: {path}: no such socket (the run has ended, or this is not its socket)\n")
        return 1
    except ConnectionRefusedError:
        sys.stderr.write(f"lrtop relay: {path}: connection refused (no process listens on it: the run has ended)\n")
        return 1
    except BrokenPipeError:
        return 0  # the viewer's side went away mid-write: nothing left to relay
    except OSError as e:
        sys.stderr.write(f"lrtop relay: {path}: {e.strerror or e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
