#!/usr/bin/python3
"""latency.py FILE HUB-CONNINFO TABLE FIRST-ID N [OUT]: how long an app's
insert into a client file takes to reach the hub through a running syncqd.

Inserts rows FIRST-ID .. FIRST-ID+N-1 (id, note) into TABLE of the SQLite
FILE one at a time, as an app does (plain sqlite3), and after each one polls
the hub (psycopg2, every 2 ms, 30 s at most) until the row is there. Prints
one line: "n=N median=… max=… (ms)", and the latencies one per line to OUT
if given. Exits 1 if a row does not arrive in 30 s."""
import sqlite3
import statistics
import sys
import time

import psycopg2

path, conninfo, table, first, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
out = sys.argv[6] if len(sys.argv) > 6 else None
hub = psycopg2.connect(conninfo)
hub.autocommit = True
cur = hub.cursor()
app = sqlite3.connect(path, timeout=10)
lat = []
for i in range(first, first + n):
    t0 = time.monotonic()
    app.execute("INSERT INTO %s (id, note) VALUES (?, ?)" % table, (i, "latency probe"))
    app.commit()
    while True:
        cur.execute("SELECT 1 FROM %s WHERE id = %%s" % table, (i,))
        if cur.fetchone():
            break
        if time.monotonic() - t0 > 30:
            print("row %d did not reach the hub in 30 s" % i)
            sys.exit(1)
        time.sleep(0.002)
    lat.append((time.monotonic() - t0) * 1000)
    time.sleep(0.05)
if out:
    with open(out, "w") as f:
        f.write("".join("%.1f\n" % x for x in lat))
print("n=%d median=%.1f max=%.1f (ms)" % (len(lat), statistics.median(lat), max(lat)))
