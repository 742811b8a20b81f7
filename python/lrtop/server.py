"""The control socket (docs/bridge.md, protocol v1): a Unix domain socket in a 0700 directory, mode 0600, JSON lines
both ways. A service thread waits on the socket: it greets new clients, reads their lines (refusing malformed ones at
once), sends the status every 0.5 s and flushes the log, so a viewer is answered and kept informed even when one step
takes minutes. Commands it reads wait in a queue; the training loop takes them in `poll()` at a step boundary, so
they apply there: per step, the loop pays one poll(2) with a zero timeout over the listener and the viewers'
sockets (about a microsecond), and takes the lock only when something is there, so a line sent before a boundary
applies at that boundary.

Nothing a client sends can hurt the run: nothing read here is ever evaluated or unpickled (a line is JSON, an object,
of a known type, with a bounded `text` of valid Unicode); any exception one line raises is answered to that client
and logged, and the connection stays; the work one poll does is bounded (bytes read, lines handled, commands
queued), so a flood slows nobody but the flooder; a client that does not read is dropped at 1 MiB of output; poll(2),
not select(2), so a process with thousands of open files is served like any other.

Records, pushed (docs/bridge.md): a viewer that sends `{"type":"subscribe","from_line":N}` gets every log line from
line N on, as `{"type":"record","line":K,"record":<the line's JSON object>}`, and then each new one as the service
thread encodes it (every round, at most 50 ms apart while someone subscribes): the same bytes the file gets. Lines
no longer in memory are announced as `{"type":"gap","from_line":N,"to_line":M}`: the viewer reads them from the file.
"""
from __future__ import annotations

import collections
import errno
import json
import os
import re
import secrets
import select
import socket
import stat
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

from ._version import PROTOCOL
from .safefs import process_gone
from .stacks import stacks_message

MAX_LINE = 65536
MAX_TEXT = 4096
# A viewer that does not read has this much output queued at most before it is dropped.
MAX_PENDING_OUTPUT = 1 << 20
PUSH_AHEAD = MAX_PENDING_OUTPUT // 2
STATUS_INTERVAL = 0.5
# How long the service thread waits at most between rounds: a viewer that takes pushed records gets them this soon.
ROUND_WAIT_MS = 100
PUSH_ROUND_WAIT_MS = 50
# Bounds on one round of reading (the loop's poll or a service-thread round), so a flood never holds either long.
READ_BUDGET = 1 << 16
LINES_PER_ROUND = 64
# The loop's share at a boundary is smaller: the service thread reads the rest within milliseconds.
LOOP_READ_BUDGET = 1 << 15
LOOP_LINES = 32
# The loop waits this long at most for the service thread's round (bounded: a few milliseconds of reading): long
# enough that a line sent before a boundary applies at it, short enough that a stalled thread cannot stall a step.
LOOP_LOCK_WAIT = 0.25
# Commands read but not yet applied, at most; beyond, a command is refused at once (ack ok:false).
MAX_QUEUED_COMMANDS = 1024
# Refusals logged per connection; beyond, one event says the rest are answered but not logged.
LOGGED_REFUSALS = 20
_SOCKET_NAME = re.compile(r"^(\d+)-[0-9a-f]{8}\.sock$")
_warned_fallback = False


def socket_dir() -> str:
    base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    return os.path.join(base, f"lrtop-{os.getuid()}")


def _secure_dir(path: str) -> None:
    """Creates the 0700 directory, or checks an existing one is ours, a real folder, and private."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise PermissionError(f"{path} is not a folder owned by you")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def private_socket_dir(warn: Callable[[str], None]) -> tuple[str, bool]:
    """The folder for this run's socket and whether it is a fresh fallback (removed at close). Another local user who
    squats `/tmp/lrtop-<uid>` (a folder or a link of theirs) does not stop the run: it gets a fresh private folder
    instead, says so once per process, and the log's header names the socket so `lrtop attach RUN_DIR` finds it."""
    global _warned_fallback
    path = socket_dir()
    try:
        _secure_dir(path)
        return path, False
    except OSError as e:
        reason = e.strerror if e.strerror else str(e)
    base = os.path.dirname(path)
    try:
        fallback = tempfile.mkdtemp(prefix=f"lrtop-{os.getuid()}-", dir=base)
    except OSError:
        fallback = tempfile.mkdtemp(prefix=f"lrtop-{os.getuid()}-")
    if not _warned_fallback:
        _warned_fallback = True
        warn(f"lrtop: {path} cannot hold this run's socket ({reason}); using {fallback} instead "
             "(lrtop attach RUN_DIR finds it through the log's header; remove the squatted folder to go back)")
    return fallback, True


def remove_stale_sockets(directory: str) -> list[str]:
    """Removes sockets of runs whose process is gone (killed before it could remove its socket)."""
    removed: list[str] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        m = _SOCKET_NAME.match(name)
        if m is None or int(m.group(1)) == os.getpid() or not process_gone(int(m.group(1))):
            continue
        path = os.path.join(directory, name)
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)
                removed.append(path)
        except OSError:
            pass
    return removed


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
        self.refusals = 0
        # The next log line to push to this viewer; None: it has not subscribed.
        self.next_line: Optional[int] = None

    def send(self, obj: dict) -> None:
        self.send_bytes((json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n").encode())

    def send_bytes(self, data: bytes) -> None:
        if self.closed:
            return
        self.outbox += data
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


class RecordSource(Protocol):
    """The run log as the server pushes it (`RunLogWriter`): its encoded lines by number."""

    def lines_from(self, first: int) -> tuple[int, list[bytes]]: ...

    def line_count(self) -> int: ...


class ControlServer:
    """Listens for `lrtop attach` clients; `poll()` returns the well-formed command requests read since last time.
    With `records` (the run log), viewers may subscribe to its records, pushed as they are made. Every server answers
    `stacks` from its service thread, as the process `rank`. With `refuse_commands` (a DDP rank other than 0: its
    commands go to the job), every command is answered at once with `ack ok:false` and that error, and none is
    queued."""

    def __init__(self, hello: dict, status: Callable[[], dict], on_malformed: Callable[[str], None],
                 on_tick: Optional[Callable[[], None]] = None, warn: Optional[Callable[[str], None]] = None,
                 records: Optional[RecordSource] = None, rank: int = 0, refuse_commands: Optional[str] = None):
        self.records = records
        self.rank = rank
        self.refuse_commands = refuse_commands
        # `records` in the greeting: this server pushes log records to viewers that subscribe.
        self.hello = {**hello, "records": True} if records is not None else hello
        self.on_tick = on_tick
        self.status = status
        self.on_malformed = on_malformed
        self.warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))
        directory, self._own_directory = private_socket_dir(self.warn)
        self.directory = directory
        remove_stale_sockets(directory)
        self.path = os.path.join(directory, f"{os.getpid()}-{secrets.token_hex(4)}.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            old = os.umask(0o177)
            try:
                self.listener.bind(self.path)
            finally:
                os.umask(old)
            os.chmod(self.path, 0o600)
            self.listener.listen(8)
            self.listener.setblocking(False)
        except OSError:
            self.listener.close()
            self._remove_directory()
            raise
        self.clients: list[_Client] = []
        self._by_fd: dict[int, _Client] = {}
        self._turn = 0
        # The loop's per-step look: one poll(2) with a zero timeout over the listener and the viewers (about a
        # microsecond); the service thread waits on a poller of its own. Both are (un)registered under the lock.
        self._poller = select.poll()
        self._service_poller = select.poll()
        for p in (self._poller, self._service_poller):
            p.register(self.listener.fileno(), select.POLLIN)
        # Well-formed command lines read by either thread, waiting for the loop's next step boundary.
        self._requests: collections.deque[Request] = collections.deque()
        # What the loop sends (answers, statuses) while the service thread holds the lock: sent by the next holder.
        self._outgoing: collections.deque = collections.deque()
        self._last_status = 0.0
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._service_poller.register(self._wake_r, select.POLLIN)
        self._service = threading.Thread(target=self._serve, name="lrtop-socket", daemon=True)
        self._service.start()

    def _serve(self) -> None:
        """Off the training loop: waits on the socket (and at most 0.1 s), greets new clients, reads their lines
        (answering malformed ones at once), flushes queued output, sends the periodic status and runs `on_tick`
        (the log's flush). It never applies a command: those wait in `_requests` for the loop's step boundary.
        An error never makes it spin: it waits out the rest of its 0.1 s and tries again."""
        listener_fd = self.listener.fileno()
        while not self._closing.is_set():
            started = time.monotonic()
            try:
                events = self._service_poller.poll(PUSH_ROUND_WAIT_MS if self._subscribed() else ROUND_WAIT_MS)
            except OSError:
                events = []
                time.sleep(0.1)
            if self._closing.is_set():
                return
            if self.on_tick is not None:
                try:
                    self.on_tick()
                except Exception:
                    pass
            ready = {fd for fd, _ in events}
            if self._wake_r in ready:
                try:
                    os.read(self._wake_r, 64)
                except OSError:
                    pass
            try:
                with self._lock:
                    if self._closing.is_set():
                        return
                    self._send_outgoing()
                    if listener_fd in ready:
                        self._accept()
                    self._read_ready(ready)
                    self._push_records()
                    for c in self.clients:
                        c.pump()
                    if self.clients and time.monotonic() - self._last_status >= STATUS_INTERVAL:
                        self._outgoing.append((None, self.status()))
                        self._send_outgoing()
                    self._drop_closed()
            except Exception:  # a status read mid-update, a closed socket: the next round retries
                if time.monotonic() - started < 0.05:
                    time.sleep(0.05)

    @property
    def has_clients(self) -> bool:
        return bool(self.clients)

    def poll(self, room: int = MAX_QUEUED_COMMANDS) -> list[Request]:
        """The command lines read since the last call (at most `room`): one non-blocking poll(2) over the listener and
        the viewers' sockets, and only when something is there (a newcomer, a line) the lock, accept and a bounded read; so a
        line sent before this step boundary applies at it. The loop waits at most `LOOP_LOCK_WAIT` for the lock:
        when the service thread holds it longer (a machine too busy to run it), what it reads applies a boundary
        later."""
        try:
            events = self._poller.poll(0)
        except OSError:
            events = []
        if not events and not self._requests:
            return []  # the common case, once per step: nothing there
        if events and self._lock.acquire(timeout=LOOP_LOCK_WAIT):
            try:
                self._send_outgoing()
                ready = {fd for fd, _ in events}
                if self.listener.fileno() in ready:
                    self._accept()
                self._read_ready(ready, [LOOP_READ_BUDGET, LOOP_LINES])
                self._drop_closed()
            except Exception:
                pass  # the service thread's next round deals with it; the loop goes on
            finally:
                self._lock.release()
        requests: list[Request] = []
        pop = self._requests.popleft
        try:
            while len(requests) < room:  # the rest stays here (counting towards the refusal limit)
                requests.append(pop())
        except IndexError:
            pass
        return requests

    def _read_ready(self, ready: set, budget: Optional[list] = None) -> None:
        """Reads the clients with data (and lines already waiting in their inboxes), within one round's budget
        (bytes, lines)."""
        budget = budget or [READ_BUDGET, LINES_PER_ROUND]
        waiting = [c for c in self.clients if c.fd in ready or c.inbox.find(b"\n") >= 0]
        if not waiting:
            return
        # Each waiting client gets an equal share, the first one in turn, so a flooder never starves the others.
        self._turn = (self._turn + 1) % len(waiting)
        share = [max(4096, budget[0] // len(waiting)), max(2, budget[1] // len(waiting))]
        for client in waiting[self._turn:] + waiting[:self._turn]:
            if budget[0] <= 0 or budget[1] <= 0:
                return
            mine = [min(share[0], budget[0]), min(share[1], budget[1])]
            before = list(mine)
            self._read(client, mine)
            budget[0] -= before[0] - mine[0]
            budget[1] -= before[1] - mine[1]

    def broadcast(self, obj: dict) -> None:
        """Sends `obj` to every viewer (now, or by the service thread when it holds the lock: never a wait)."""
        self._queue_out(None, obj)

    def send(self, client: "_Client", obj: dict) -> None:
        """Sends `obj` to one viewer, in order with everything sent before (never a wait, as `broadcast`)."""
        self._queue_out(client, obj)

    def _queue_out(self, client: Optional["_Client"], obj: dict) -> None:
        self._outgoing.append((client, obj))
        if self._lock.acquire(blocking=False):
            try:
                self._send_outgoing()
            finally:
                self._lock.release()
        else:
            self._wake()

    def _send_outgoing(self) -> None:
        """Under the lock: what the loop sent while the lock was taken, in order."""
        pop = self._outgoing.popleft
        sent_to_all = False
        try:
            while True:
                client, obj = pop()
                if client is None:
                    if obj.get("type") == "status":
                        self._last_status = time.monotonic()
                    for c in self.clients:
                        c.send(obj)
                    sent_to_all = True
                else:
                    client.send(obj)
        except IndexError:
            pass
        if sent_to_all:
            self._drop_closed()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def close(self) -> None:
        self._closing.set()
        self._wake()
        with self._lock:
            self._send_outgoing()
            try:
                self._push_records()  # the last records (the end record, when the log has it) before the sockets close
            except Exception:
                pass
            self._close()
        if self._service is not threading.current_thread():
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
        self._by_fd.clear()
        try:
            self.listener.close()
        finally:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self._remove_directory()

    def _remove_directory(self) -> None:
        if self._own_directory:
            try:
                os.rmdir(self.directory)
            except OSError:
                pass

    # internals

    def _subscribed(self) -> bool:
        return any(c.next_line is not None for c in self.clients)

    def _push_records(self) -> None:
        """Under the lock: sends each subscribed viewer the log lines it has not had (encoding what the loop queued:
        the same bytes go to the file), or a gap for those that are only in the file now."""
        records = self.records
        if records is None:
            return
        viewers = [c for c in self.clients if c.next_line is not None and not c.closed]
        if not viewers:
            return
        start, lines = records.lines_from(min(c.next_line or 0 for c in viewers))
        end = start + len(lines)
        framed: dict[int, bytes] = {}
        for c in viewers:
            line = c.next_line
            assert line is not None
            if line < start:
                c.send({"type": "gap", "from_line": line, "to_line": start})
                line = start
            # A viewer that reads slowly is sent no more than this ahead (the rest follows as it reads, or from the
            # file after a gap), so pushing never drops it; one that does not read at all is dropped as before.
            while line < end and not c.closed and len(c.outbox) < PUSH_AHEAD:
                data = framed.get(line)
                if data is None:
                    data = framed[line] = _record_message(line, lines[line - start])
                c.send_bytes(data)
                line += 1
            c.next_line = line

    def _drop_closed(self) -> None:
        if any(c.closed for c in self.clients):
            for c in self.clients:
                # A closed client's descriptor number may belong to a newer client already (the kernel reuses the
                # lowest free number): only the client that still owns the number unregisters it.
                if c.closed and self._by_fd.get(c.fd) is c:
                    del self._by_fd[c.fd]
                    for p in (self._poller, self._service_poller):
                        try:
                            p.unregister(c.fd)
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
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ECONNABORTED, errno.ENOBUFS, errno.ENOMEM):
                    return
                raise
            sock.setblocking(False)
            client = _Client(sock)
            self.clients.append(client)
            self._by_fd[client.fd] = client
            for p in (self._poller, self._service_poller):
                p.register(client.fd, select.POLLIN)
            client.send(self.hello)
            client.send(self.status())

    def _read(self, client: _Client, budget: list) -> None:
        """Reads what `client` sent and handles its whole lines, within `budget` (bytes, lines). Unread data waits in
        the socket (the sender is slowed, no one else) and unhandled lines in the inbox, for the next round."""
        while not client.closed and budget[1] > 0:
            nl = client.inbox.find(b"\n")
            if nl >= 0:
                line = bytes(client.inbox[:nl])
                del client.inbox[:nl + 1]
                budget[1] -= 1
                if len(line) > MAX_LINE:
                    self._refuse(client, f"line of {len(line)} bytes is over the {MAX_LINE}-byte limit; "
                                         "closing this connection", close=True)
                    return
                try:
                    self._handle_line(client, line)
                except Exception as e:  # any line, however hostile: an answer to its sender, never the run's end
                    self._refuse(client, f"malformed message ({type(e).__name__}: {str(e)[:120]})")
                continue
            if len(client.inbox) > MAX_LINE:
                self._refuse(client, f"line over the {MAX_LINE}-byte limit; closing this connection", close=True)
                return
            if budget[0] <= 0:
                return
            try:
                chunk = client.sock.recv(min(65536, budget[0]))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                client.close()
                return
            if not chunk:
                # Gone, perhaps mid-line: whatever half line it left is dropped, the run is untouched.
                client.close()
                return
            budget[0] -= len(chunk)
            client.inbox += chunk

    def _refuse(self, client: _Client, error: str, close: bool = False) -> None:
        client.send({"type": "error", "error": error})
        client.pump()
        client.refusals += 1
        if client.refusals <= LOGGED_REFUSALS:
            self.on_malformed(error)
        elif client.refusals == LOGGED_REFUSALS + 1:
            self.on_malformed(f"{error} (and more from this connection: each is answered, no more are logged)")
        if close:
            client.close()

    def _handle_line(self, client: _Client, raw: bytes) -> None:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw.strip():
            return
        try:
            msg = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            if isinstance(e, RecursionError):
                e = ValueError("nested too deeply")
            self._refuse(client, f"malformed message (not JSON: {str(e)[:120]}); send one JSON object per line")
            return
        if not isinstance(msg, dict):
            self._refuse(client, "malformed message (not a JSON object); send {\"type\":\"command\",...}")
            return
        kind = msg.get("type")
        if kind == "hello":
            return
        if kind == "subscribe" and self.records is not None:
            self._subscribe(client, msg.get("from_line"))
            return
        if kind == "status":
            client.send(self.status())
            return
        if kind not in ("command", "stacks"):
            shown = json.dumps(kind)[:60] if isinstance(kind, (str, int, float, bool, type(None))) else \
                f"of type {type(kind).__name__}"
            self._refuse(client, f"unknown message type {shown} (expected hello, status, subscribe, stacks or "
                                 "command)")
            return
        ident = msg.get("id")
        problem = _id_problem(ident)
        if problem is not None:
            self._refuse(client, f"malformed {kind}: {problem}")
            return
        if kind == "stacks":
            # Here, on the service thread (or the loop's poll): never waits for the loop, which may be the stuck one.
            client.send(stacks_message(ident, self.rank))
            return
        if self.refuse_commands is not None:
            client.send({"type": "ack", "id": ident, "ok": False, "error": self.refuse_commands})
            return
        text = msg.get("text")
        if not isinstance(text, str):
            self._refuse(client, "malformed command: 'text' is missing or not a string")
            return
        if len(text) > MAX_TEXT or "\n" in text or "\r" in text or "\x00" in text:
            self._refuse(client, f"malformed command: 'text' must be one line of at most {MAX_TEXT} characters")
            return
        if not _valid_unicode(text):
            self._refuse(client, "malformed command: 'text' is not valid Unicode (a lone surrogate escape); "
                                 "send the command as UTF-8 text")
            return
        if len(self._requests) >= MAX_QUEUED_COMMANDS:
            client.send({"type": "ack", "id": ident, "ok": False,
                         "error": f"the run has {MAX_QUEUED_COMMANDS} commands waiting for its next step boundary; "
                                  "send this one again once they are applied"})
            return
        self._requests.append(Request(ident, text, client))


    def _subscribe(self, client: _Client, first: object) -> None:
        assert self.records is not None
        count = self.records.line_count()
        if not isinstance(first, int) or isinstance(first, bool) or not 0 <= first <= count:
            self._refuse(client, f"malformed subscribe: 'from_line' must be a line number from 0 to {count} (the "
                                 "number of complete lines read from the log)")
            return
        client.next_line = first
        self._push_records()


def _record_message(line: int, data: bytes) -> bytes:
    """A log line as the viewer gets it: its JSON object, byte for byte, as the last member. A line too long for one
    protocol message is announced as a gap of one line (the viewer reads it from the file)."""
    if len(data) + 48 > MAX_LINE:
        return b'{"type":"gap","from_line":%d,"to_line":%d}\n' % (line, line + 1)
    return b'{"type":"record","line":%d,"record":%s}\n' % (line, data[:-1])


def _id_problem(ident: object) -> Optional[str]:
    """Why a message's `id` is not one (None: it is, or there is none)."""
    if ident is not None and not (isinstance(ident, (int, str)) and not isinstance(ident, bool)):
        return "'id' must be an integer or a string"
    if isinstance(ident, str) and (len(ident) > 64 or not _valid_unicode(ident)):
        return "'id' must be a string of at most 64 characters of valid Unicode"
    if isinstance(ident, int) and not -(2 ** 63) <= ident < 2 ** 63:
        return "'id' must fit in 64 bits"
    return None


def _valid_unicode(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed")
