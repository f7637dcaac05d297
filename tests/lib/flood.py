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

Prints one line of JSON with what it saw."""
import argparse
import base64
import collections
import json
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


if a.mode == "silent":
    r = silent(int(a.args[0]), float(a.args[1]))
elif a.mode == "guess":
    r = guess(int(a.args[0]), a.args[1])
else:
    raise SystemExit("unknown mode " + a.mode)
print(json.dumps(r, sort_keys=True))
