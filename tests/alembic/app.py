"""app.py KIND TARGET FIRST_ID STOP_FILE OUT_JSON: the app, writing on one
node while the schema migrates under it.

KIND is sqlite (TARGET a file, opened with the stock sqlite3 module: syncq
is never loaded) or pg (TARGET a libpq conninfo).  Until STOP_FILE exists it
inserts a row every few ms with every column the table has at that moment
(ids FIRST_ID, FIRST_ID+1, ...), and every third row updates an earlier one
of its own.  A write that the schema moved under (a column gone, a table
being rebuilt) is tried again with the columns of now.  When it stops it
writes OUT_JSON: each row's values as last committed, by the columns' final
names (qty is quantity; note goes away).
"""
import json
import os
import sqlite3
import sys
import time

kind, target, first, stop_file, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]

if kind == "sqlite":
    db = sqlite3.connect(target, timeout=10, isolation_level=None)
    param = "?"

    def columns():
        return [r[1] for r in db.execute("PRAGMA table_info(items)")]

    def run(sql, args):
        db.execute(sql, args)
else:
    import psycopg2
    db = psycopg2.connect(target)
    db.autocommit = True
    param = "%s"

    def columns():
        with db.cursor() as c:
            c.execute("SELECT column_name FROM information_schema.columns"
                      " WHERE table_name = 'items' ORDER BY ordinal_position")
            return [r[0] for r in c.fetchall()]

    def run(sql, args):
        with db.cursor() as c:
            c.execute(sql, args)


def value(col, rid, gen):
    if col in ("qty", "quantity"):
        return rid * 10 + gen
    return "%s%d.%d" % (col[0], rid, gen)


CANON = {"qty": "quantity"}
rows = {}
i = 0
tries = 0
parent, deadline = os.getppid(), time.monotonic() + 300
while not os.path.exists(stop_file):
    if os.getppid() != parent or time.monotonic() > deadline:
        sys.exit("app.py: the test is gone; stopping")   # never left behind
    rid = first + i
    if i % 3 == 2:
        rid, gen = first + i - 2, 1          # update an earlier row
    else:
        gen = 0
    try:
        cols = columns()
        if gen == 0:
            sql = "INSERT INTO items (%s) VALUES (%s)" % (
                ", ".join(cols), ", ".join([param] * len(cols)))
            args = [rid if c == "id" else value(c, rid, gen) for c in cols]
        else:
            sets = [c for c in cols if c != "id"]
            sql = "UPDATE items SET %s WHERE id = %s" % (
                ", ".join("%s = %s" % (c, param) for c in sets), param)
            args = [value(c, rid, gen) for c in sets] + [rid]
        run(sql, args)
    except Exception as e:                   # the schema moved: again
        tries += 1
        if tries > 2000:
            raise
        time.sleep(0.005)
        continue
    row = rows.setdefault(rid, {})
    for c in cols:
        if c != "id":
            row[CANON.get(c, c)] = value(c, rid, gen)
    i += 1
    time.sleep(0.01)

with open(out, "w") as f:
    json.dump({"writes": i, "retries": tries, "rows": rows}, f)
