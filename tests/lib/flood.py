#!/usr/bin/python3
"""flood.py MODE HOST PORT [ARG]...: an attacker of `syncqd serve`, from the
loopback address given by --from (127.0.0.2 by default: serve tells
addresses apart, and the clients under test connect from 127.0.0.1).
Every socket has a timeout: nothing here waits for ever.

  silent N HOLD     open N TCP connections and send nothing; after 1 s count
                    how many serve took and how many it closed at once; then
                    wait up to HOLD s and count how many serve has closed
  guess N USER      N hellos one after another as USER with wrong
                    passwords (over TLS with --cafile): count the answers by
                    status, and the Retry-After of the first 429
  slow KIND N GAP HOLD  (after HOST PORT, as the others)
                    N connections that each send one byte every GAP s, so
                    never silent for long (slowloris), KIND being
                      handshake  a TLS ClientHello, over plain TCP
                      headers    over TLS, a request's headers
                      body       over TLS, a request's whole headers (with
                                 USER and $FLOOD_PASSWORD, --user), then its
                                 body of 1 MB
                    and say after how many seconds serve closed each (null:
                    still open after HOLD s)

Prints one line of JSON with what it saw."""
import argparse
import base64
import collections
import json
import os
import socket
import ssl
import time

p = argparse.ArgumentParser()
p.add_argument("mode")
p.add_argument("host")
p.add_argument("port", type=int)
p.add_argument("args", nargs="*")
p.add_argument("--from", dest="src", default="127.0.0.2")
p.add_argument("--cafile")
p.add_argument("--user")
a = p.parse_args()


def tcp():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((a.src, 0))
    s.settimeout(5)
    s.connect((a.host, a.port))
    return s


def closed(s, wait):
    """Did serve close (or reset) s within wait seconds?"""
    s.settimeout(wait)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def silent(n, hold):
    socks, refused = [], 0
    for _ in range(n):
        try:
            socks.append(tcp())
        except OSError:
            refused += 1
    time.sleep(1)
    open_ = []
    for s in socks:
        if closed(s, 0.01):
            refused += 1
            s.close()
        else:
            open_.append(s)
    taken = len(open_)
    t0 = time.monotonic()
    while open_ and time.monotonic() - t0 < hold:
        time.sleep(0.5)
        still = []
        for s in open_:
            if closed(s, 0.001):
                s.close()
            else:
                still.append(s)
        open_ = still
    for s in open_:
        s.close()
    return {"opened": n, "taken": taken, "refused": refused,
            "still_open": len(open_), "waited": round(time.monotonic() - t0, 1)}


def guess(n, user):
    ctx = ssl.create_default_context(cafile=a.cafile)
    ctx.check_hostname = False
    seen = collections.Counter()
    retry_after = None
    body = b'{"v":2,"op":"hello","node_id":"7a7a7a7a-0000-4000-8000-00000000000f"}'
    for i in range(n):
        cred = base64.b64encode(("%s:wrong guess %d" % (user, i)).encode()).decode()
        try:
            s = ctx.wrap_socket(tcp(), server_hostname="localhost")
            s.sendall(("POST /api/sync/data HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic %s\r\n"
                       "Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                       % (cred, len(body))).encode() + body)
            reply = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
            s.close()
            status = reply.split(b" ", 2)[1].decode() if reply.startswith(b"HTTP/") else "none"
            if status == "429" and retry_after is None:
                for line in reply.split(b"\r\n"):
                    if line.lower().startswith(b"retry-after:"):
                        retry_after = int(line.split(b":", 1)[1])
        except OSError as e:
            status = "error: %s" % e.__class__.__name__
        seen[status] += 1
    return {"answers": dict(seen), "retry_after": retry_after}


def slow_data(kind):
    if kind == "handshake":
        # a TLS record header and ClientHello start, then zeros: never whole
        return b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 4096
    if kind == "headers":
        return (b"POST /api/sync/data HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
                + b"a" * 4096)
    return b" " * (1 << 20)


def is_closed(s):
    """Has serve ended s? (s is non-blocking)"""
    try:
        return s.recv(4096) == b""
    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return False
    except OSError:
        return True


def slow(kind, n, gap, hold):
    ctx = ssl.create_default_context(cafile=a.cafile)
    ctx.check_hostname = False
    data = slow_data(kind)
    socks, t_open = [], []
    for _ in range(n):
        s = tcp()
        if kind != "handshake":
            s = ctx.wrap_socket(s, server_hostname="localhost")
        if kind == "body":
            cred = base64.b64encode(("%s:%s" % (a.user, os.environ["FLOOD_PASSWORD"])).encode()).decode()
            s.sendall(("POST /api/sync/data HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic %s\r\n"
                       "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                       % (cred, len(data))).encode())
        s.setblocking(False)
        socks.append(s)
        t_open.append(time.monotonic())
    closed_after = [None] * n
    pos, next_send = 0, time.monotonic()
    t0 = time.monotonic()
    while time.monotonic() - t0 < hold and None in closed_after:
        now = time.monotonic()
        send = now >= next_send
        for i, s in enumerate(socks):
            if closed_after[i] is not None:
                continue
            gone = is_closed(s)
            if not gone and send:
                try:
                    gone = s.send(data[pos:pos + 1]) != 1
                except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    pass
                except OSError:
                    gone = True
            if gone:
                closed_after[i] = round(now - t_open[i], 1)
                s.close()
        if send:
            pos += 1
            next_send += gap
        time.sleep(0.2)
    for i, s in enumerate(socks):
        if closed_after[i] is None:
            s.close()
    done = [c for c in closed_after if c is not None]
    return {"kind": kind, "opened": n, "closed": len(done), "still_open": n - len(done),
            "first": min(done) if done else None, "last": max(done) if done else None}


if a.mode == "silent":
    r = silent(int(a.args[0]), float(a.args[1]))
elif a.mode == "guess":
    r = guess(int(a.args[0]), a.args[1])
elif a.mode == "slow":
    r = slow(a.args[0], int(a.args[1]), float(a.args[2]), float(a.args[3]))
else:
    raise SystemExit("unknown mode " + a.mode)
print(json.dumps(r, sort_keys=True))
