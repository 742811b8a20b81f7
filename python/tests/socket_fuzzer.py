"""Hostile and careless viewers of a bridged run, for test_socket_fuzz.py: `python socket_fuzzer.py SOCKET SEED`
sends over 10,000 messages from several clients at once (deep nesting, invalid UTF-8, lone surrogates, wrong types,
huge and partial lines, floods of commands and status requests, a client that never reads, clients that vanish
mid-line) and prints {"messages": N} when done."""
import json
import random
import select
import socket
import sys
import threading
import time

PATH = sys.argv[1]
SEED = int(sys.argv[2])
sent = {"messages": 0}
lock = threading.Lock()


def count(n):
    with lock:
        sent["messages"] += n


def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(PATH)
    return s


def drain(sock, stop):
    """Reads whatever the run answers until `stop`, without touching the socket's timeout (the sender's)."""
    while not stop.is_set():
        ready, _, _ = select.select([sock], [], [], 0.1)
        if ready:
            try:
                if not sock.recv(65536):
                    return
            except OSError:
                return


def hostile_lines(rng, n):
    nest = b"[" * 5000 + b"]" * 5000
    kinds = [
        lambda: b"not json at all",
        lambda: nest,
        lambda: b'{"a":' * 2000 + b"1" + b"}" * 2000,
        lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))).replace(b"\n", b""),
        lambda: b"\xff\xfe\xc3\x28",
        lambda: b'{"type":"command","id":1,"text":"\\ud800\\udc00\\ud800"}',
        lambda: b'{"type":"command","id":"\\udc80","text":"ckpt"}',
        lambda: b'{"type":"command","id":[1],"text":"lr 1"}',
        lambda: b'{"type":"command","id":99999999999999999999999,"text":"lr 1"}',
        lambda: b'{"type":"command","id":1,"text":{"nested":true}}',
        lambda: b'{"type":"command","id":1,"text":NaN}',
        lambda: b'{"type":{"x":1},"text":"ckpt"}',
        lambda: b'{"type":"command","id":1,"text":"' + b"x" * 5000 + b'"}',
        lambda: b"[1,2,3]",
        lambda: b'"just a string"',
        lambda: b"1e999999",
        lambda: b'{"type":"command","id":1,"text":"lr 1e39"}',
        lambda: b'{"type":"command","id":1,"text":"sched exp:gamma=1e300"}',
        lambda: b'{"type":"command","id":1,"text":"lr *1e300"}',
        lambda: b'{"type":"command","id":1,"text":"rm -rf /"}',
        lambda: b'{"type":"launch","text":"x"}',
        lambda: b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00\x8c\x01a\x94.",
    ]
    return [rng.choice(kinds)() for _ in range(n)]


def hostile(seed, n, chunked):
    rng = random.Random(seed)
    s, stop = connect(), threading.Event()
    reader = threading.Thread(target=drain, args=(s, stop))
    reader.start()
    lines = hostile_lines(rng, n)
    try:
        if chunked:  # cut at random places, as a slow network delivers them
            data = b"\n".join(lines) + b"\n"
            i = 0
            while i < len(data):
                j = i + rng.randrange(1, 4096)
                s.sendall(data[i:j])
                i = j
        else:
            for k in range(0, n, 100):
                s.sendall(b"\n".join(lines[k:k + 100]) + b"\n")
    except OSError:
        pass  # a line over the limit closes this connection: that is the answer
    count(n)
    stop.set()
    reader.join()
    s.close()


def never_reads(n):
    s = connect()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        for _ in range(0, n, 50):
            s.sendall(b'{"type":"status"}\n' * 50)
    except OSError:
        pass  # dropped once 1 MiB waits for it
    count(n)
    s.close()


def commands(seed, n):
    rng = random.Random(seed)
    texts = ["lr *1", "lr hold", "lr release", "ckpt", "eval", "warmup 3", "sched cosine:T_max=500", "lr nohead 1",
             "fork lr=1e-3,1e-4 steps=10", "lr *2", "lr /2", "step", "resume", "lr *1", "lr *1"]
    lines = [json.dumps({"type": "command", "id": i, "text": rng.choice(texts)}).encode() for i in range(n)]
    s, stop = connect(), threading.Event()
    reader = threading.Thread(target=drain, args=(s, stop))
    reader.start()
    for k in range(0, n, 50):
        s.sendall(b"\n".join(lines[k:k + 50]) + b"\n")
    count(n)
    time.sleep(1.0)
    stop.set()
    reader.join()
    s.close()


def vanishing(n):
    for i in range(n):
        s = connect()
        s.sendall(b'{"type":"command","id":1,"text":"lr 1' if i % 2 else b'{"type":"comm')
        s.close()
    count(n)


def oversized(n):
    for _ in range(n):
        s = connect()
        try:
            s.sendall(b'{"type":"command","id":1,"text":"' + b"a" * 70000 + b'"}\n')
        except OSError:
            pass
        s.close()
    count(n)


def main():
    import faulthandler
    faulthandler.dump_traceback_later(15, exit=True)
    senders = [threading.Thread(target=f, args=a) for f, a in (
        (hostile, (SEED, 3000, False)), (hostile, (SEED + 1, 3000, True)), (never_reads, (2000,)),
        (commands, (SEED + 2, 2500)), (vanishing, (300,)), (oversized, (20,)))]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    print(json.dumps(sent))


if __name__ == "__main__":
    main()
