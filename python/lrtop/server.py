"""The control socket (docs/bridge.md, protocol v1): a Unix domain socket in a 0700 directory, mode 0600, JSON lines
both ways. A service thread waits on the socket: it greets new clients, reads their lines (refusing malformed ones at
once), sends the status every 0.5 s and flushes the log, so a viewer is answered and kept informed even when one step
takes minutes. Commands it reads wait in a queue; the training loop takes them in `poll()` at a step boundary, so
they apply there: per step, the loop pays one poll(2) with a zero timeout over the listener and the viewers'
sockets (about a microsecond), and takes the lock only when something is there, so a line sent before a boundary
applies at that boundary. Nothing read here is
ever evaluated or unpickled: a line is JSON, an object, of a known type, with a bounded `text`; anything else is
refused with an error line.
"""
from __future__ import annotations

import collections
import errno
import json
import os
import secrets
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

from ._version import PROTOCOL

MAX_LINE = 65536
MAX_TEXT = 4096
# A viewer that does not read has this much output queued at most before it is dropped.
MAX_PENDING_OUTPUT = 1 << 20
STATUS_INTERVAL = 0.5


def socket_dir() -> str:
    base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    return os.path.join(base, f"lrtop-{os.getuid()}")


def _secure_dir(path: str) -> None:
    """Creates the 0700 directory, or checks an existing one is ours and private."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    import stat as _stat
    if not _stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise RuntimeError(f"lrtop: {path} is not a directory owned by you; remove it or set XDG_RUNTIME_DIR")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


@dataclass
class Request:
    """A command line a client sent: `reply(obj)` answers that client (if it is still there)."""
    id: object
    text: str
    client: "_Client"


class _Client:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.fd = sock.fileno()  # kept: a closed socket's fileno() is -1, and the poller unregisters by number
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.closed = False

    def send(self, obj: dict) -> None:
        if self.closed:
            return
        self.outbox += (json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n").encode()
        if len(self.outbox) > MAX_PENDING_OUTPUT:
            self.close()  # a viewer that does not read is dropped rather than blocking the training loop
            return
        self.pump()

    def pump(self) -> None:
        while self.outbox and not self.closed:
            try:
                n = self.sock.send(self.outbox)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.close()
                return
            del self.outbox[:n]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass


class ControlServer:
    """Listens for `lrtop attach` clients; `poll()` returns the well-formed command requests read since last time."""

    def __init__(self, hello: dict, status: Callable[[], dict], on_malformed: Callable[[str], None],
                 on_tick: Optional[Callable[[], None]] = None):
        self.hello = hello
        self.on_tick = on_tick
        self.status = status
        self.on_malformed = on_malformed
        directory = socket_dir()
        _secure_dir(directory)
        self.path = os.path.join(directory, f"{os.getpid()}-{secrets.token_hex(4)}.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.listener.bind(self.path)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self.listener.listen(8)
        self.listener.setblocking(False)
        self.clients: list[_Client] = []
        # The loop's per-step look: one poll(2) with a zero timeout over the listener and the viewers (about a
        # microsecond); registered and unregistered under the lock, polled by the loop alone.
        self._poller = select.poll()
        self._poller.register(self.listener.fileno(), select.POLLIN)
        # Well-formed command lines read by either thread, waiting for the loop's next step boundary.
        self._requests: collections.deque[Request] = collections.deque()
        self._last_status = 0.0
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._service = threading.Thread(target=self._serve, name="lrtop-socket", daemon=True)
        self._service.start()

    def _serve(self) -> None:
        """Off the training loop: waits on the socket (and at most 0.1 s), greets new clients, reads their lines
        (answering malformed ones at once), flushes queued output, sends the periodic status and runs `on_tick`
        (the log's flush). It never applies a command: those wait in `_requests` for the loop's step boundary."""
        while not self._closing.is_set():
            with self._lock:
                socks = [self.listener] + [c.sock for c in self.clients if not c.closed]
            try:
                readable, _, _ = select.select(socks + [self._wake_r], [], [], 0.1)
            except (OSError, ValueError):  # a client closed by the loop meanwhile: look again
                readable = []
            if self._closing.is_set():
                return
            if self.on_tick is not None:
                try:
                    self.on_tick()
                except Exception:
                    pass
            with self._lock:
                if self._closing.is_set():
                    return
                try:
                    if self._wake_r in readable:
                        try:
                            os.read(self._wake_r, 64)
                        except BlockingIOError:
                            pass
                    if self.listener in readable:
                        self._accept()
                    self._read_ready([s for s in readable if s is not self.listener and s is not self._wake_r])
                    for c in self.clients:
                        c.pump()
                    if self.clients and time.monotonic() - self._last_status >= STATUS_INTERVAL:
                        self.broadcast(self.status())
                    self._drop_closed()
                except Exception:  # a status read mid-update, a closed socket: the next round retries
                    pass

    @property
    def has_clients(self) -> bool:
        return bool(self.clients)

    def poll(self) -> list[Request]:
        """The command lines read since the last call: one non-blocking poll(2) over the listener and the viewers'
        sockets, and only when something is there (a newcomer, a line) the lock, accept and read; so a line sent
        before this step boundary applies at it."""
        if not self._poller.poll(0) and not self._requests:
            return []
        with self._lock:
            try:
                readable, _, _ = select.select([self.listener] + [c.sock for c in self.clients], [], [], 0)
            except (OSError, ValueError):
                readable = []
            if self.listener in readable:
                self._accept()
            self._read_ready(readable)
            self._drop_closed()
            requests = list(self._requests)
            self._requests.clear()
            return requests

    def _read_ready(self, readable: list) -> None:
        if readable:
            by_sock = {c.sock: c for c in self.clients}
            for s in readable:
                client = by_sock.get(s)
                if client is not None:
                    self._read(client, self._requests)

    def broadcast(self, obj: dict) -> None:
        with self._lock:
            if obj.get("type") == "status":
                self._last_status = time.monotonic()
            for c in self.clients:
                c.send(obj)
            self._drop_closed()

    def send(self, client: "_Client", obj: dict) -> None:
        with self._lock:
            client.send(obj)

    def close(self) -> None:
        self._closing.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        with self._lock:
            self._close()
        self._service.join(timeout=2)
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _close(self) -> None:
        for c in self.clients:
            c.pump()
            c.close()
        self.clients.clear()
        try:
            self.listener.close()
        finally:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    # internals

    def _drop_closed(self) -> None:
        if any(c.closed for c in self.clients):
            for c in self.clients:
                if c.closed:
                    try:
                        self._poller.unregister(c.fd)
                    except (KeyError, ValueError):
                        pass
            self.clients = [c for c in self.clients if not c.closed]

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ECONNABORTED):
                    return
                raise
            sock.setblocking(False)
            client = _Client(sock)
            self.clients.append(client)
            self._poller.register(client.fd, select.POLLIN)
            client.send(self.hello)
            client.send(self.status())

    def _read(self, client: _Client, requests) -> None:
        while not client.closed:
            try:
                chunk = client.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                client.close()
                break
            if not chunk:
                # Gone, perhaps mid-line: whatever half line it left is dropped, the run is untouched.
                client.close()
                break
            client.inbox += chunk
            while True:
                nl = client.inbox.find(b"\n")
                if nl < 0:
                    break
                line = bytes(client.inbox[:nl])
                del client.inbox[:nl + 1]
                if len(line) > MAX_LINE:
                    self._refuse(client, f"line of {len(line)} bytes is over the {MAX_LINE}-byte limit; "
                                         "closing this connection", close=True)
                    return
                self._handle_line(client, line, requests)
            if len(client.inbox) > MAX_LINE:
                self._refuse(client, f"line over the {MAX_LINE}-byte limit; closing this connection", close=True)
                return

    def _refuse(self, client: _Client, error: str, close: bool = False) -> None:
        client.send({"type": "error", "error": error})
        client.pump()
        self.on_malformed(error)
        if close:
            client.close()

    def _handle_line(self, client: _Client, raw: bytes, requests) -> None:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw.strip():
            return
        try:
            msg = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as e:
            self._refuse(client, f"malformed message (not JSON: {str(e)[:120]}); send one JSON object per line")
            return
        if not isinstance(msg, dict):
            self._refuse(client, "malformed message (not a JSON object); send {\"type\":\"command\",...}")
            return
        kind = msg.get("type")
        if kind == "hello":
            return
        if kind == "status":
            client.send(self.status())
            return
        if kind != "command":
            self._refuse(client, f"unknown message type {json.dumps(kind)[:60]} (expected hello or command)")
            return
        text = msg.get("text")
        ident = msg.get("id")
        if ident is not None and not (isinstance(ident, (int, str)) and not isinstance(ident, bool)):
            self._refuse(client, "malformed command: 'id' must be an integer or a string")
            return
        if isinstance(ident, str) and len(ident) > 64:
            self._refuse(client, "malformed command: 'id' is longer than 64 characters")
            return
        if not isinstance(text, str):
            self._refuse(client, "malformed command: 'text' is missing or not a string")
            return
        if len(text) > MAX_TEXT or "\n" in text or "\r" in text or "\x00" in text:
            self._refuse(client, f"malformed command: 'text' must be one line of at most {MAX_TEXT} characters")
            return
        requests.append(Request(ident, text, client))


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed")
