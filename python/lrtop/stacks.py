"""The Python stack of every thread, for a viewer's `S` (docs/bridge.md "Stacks"): gathered in-process from
`sys._current_frames()` by the socket's service thread, so it is answered while the main thread is stuck in a
collective, a data loader or a `time.sleep` (no ptrace, no root, nothing asked of the training loop).

The answer is one protocol line, which a viewer reads up to 64 KiB: at most `MAX_THREADS` threads of at most
`MAX_FRAMES` frames, each string cut to `MAX_STRING` characters, and the whole kept under `MAX_BYTES` by dropping the
outermost frames first (where a thread is stuck is its innermost frame) and then the last threads; a thread that
lost frames says how many (`omitted`), and the answer says how many threads it left out (`threads_omitted`).
"""
from __future__ import annotations

import json
import linecache
import sys
import threading
from types import FrameType
from typing import Optional

MAX_THREADS = 64
MAX_FRAMES = 100
MAX_STRING = 4096
# Under the protocol's 64 KiB line (BridgeProtocol.maxLineBytes), with room for the envelope.
MAX_BYTES = 60000
# A frame's source line as shown: longer lines are cut (the file and line number say where the rest is).
MAX_CODE = 240


def _cut(s: str, n: int = MAX_STRING) -> str:
    return s if len(s) <= n else s[:n - 1] + "…"


def _frames(frame: Optional[FrameType]) -> list[dict]:
    """The frames from the outermost to `frame` (traceback order), the innermost `MAX_FRAMES` of them."""
    chain: list[FrameType] = []
    while frame is not None and len(chain) < 10_000:  # a recursion of any depth is walked in bounded time
        chain.append(frame)
        frame = frame.f_back
    out = []
    for f in reversed(chain[:MAX_FRAMES]):
        code = f.f_code
        line = f.f_lineno or 0
        try:
            text = linecache.getline(code.co_filename, line).strip()
        except Exception:  # a loader that raises, a file that cannot be decoded: the frame without its source
            text = ""
        out.append({"file": _cut(code.co_filename), "line": line, "function": _cut(code.co_name),
                    "code": _cut(text, MAX_CODE)})
    return out


def _depth(frame: Optional[FrameType]) -> int:
    n = 0
    while frame is not None and n < 10_000:
        n += 1
        frame = frame.f_back
    return n


def thread_stacks(skip_current: bool = True) -> tuple[list[dict], int]:
    """Every thread's stack (the main thread first, then by name), within the bounds above, and the number of
    threads left out. `skip_current`: the thread asking (the service thread answering) is left out: its own stack
    says nothing about the run."""
    frames = sys._current_frames()
    names = {t.ident: t for t in threading.enumerate()}
    main = threading.main_thread().ident
    me = threading.get_ident()
    idents = [i for i in frames if not (skip_current and i == me)]
    idents.sort(key=lambda i: (i != main, names[i].name if i in names else "", i))
    threads: list[dict] = []
    budget = MAX_BYTES - 200
    for ident in idents[:MAX_THREADS]:
        top = frames[ident]
        thread = names.get(ident)
        entry: dict = {"name": _cut(thread.name if thread is not None else f"thread {ident}", 256),
                       "ident": ident, "main": ident == main}
        if thread is not None and thread.daemon:
            entry["daemon"] = True
        stack = _frames(top)
        omitted = _depth(top) - len(stack)
        size = len(json.dumps(entry)) + 40
        sizes = [len(json.dumps(f)) + 1 for f in stack]  # as sent: ASCII with escapes
        # Outermost frames go first when the answer would be too long: the innermost say where the thread is.
        while stack and size + sum(sizes) > budget:
            stack.pop(0)
            sizes.pop(0)
            omitted += 1
        if size + sum(sizes) > budget:
            break
        budget -= size + sum(sizes)
        entry["frames"] = stack
        if omitted:
            entry["omitted"] = omitted
        threads.append(entry)
    del frames  # the frames hold the threads' locals alive: not beyond this answer
    return threads, len(idents) - len(threads)


def stacks_message(ident: object, rank: int) -> dict:
    """The answer to `{"type":"stacks","id":N}`."""
    threads, left_out = thread_stacks()
    msg: dict = {"type": "stacks", "id": ident, "rank": rank, "threads": threads}
    if left_out:
        msg["threads_omitted"] = left_out
    return msg
