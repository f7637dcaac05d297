"""check.py HUB_CONNINFO A.db B.db OUT_JSON...: every node holds every row
each app wrote, with every value it last wrote (by the final column names),
and the three nodes hold the same rows."""
import json
import sqlite3
import sys

import psycopg2

hub, files, outs = sys.argv[1], sys.argv[2:4], sys.argv[4:]
COLS = "id, name, quantity, color"


def norm(rows):
    return [tuple(None if v is None else str(v) for v in r) for r in rows]


h = psycopg2.connect(hub)
with h.cursor() as c:
    c.execute("SELECT %s FROM items ORDER BY id" % COLS)
    nodes = {"hub": norm(c.fetchall())}
for f in files:
    nodes[f] = norm(sqlite3.connect(f).execute("SELECT %s FROM items ORDER BY id" % COLS).fetchall())

bad = []
for name, rows in nodes.items():
    if rows != nodes["hub"]:
        bad.append("%s holds other rows than the hub (%d vs %d rows)" % (name, len(rows), len(nodes["hub"])))
    byid = {int(r[0]): r for r in rows}
    total = 0
    for out in outs:
        app = json.load(open(out))
        for rid, want in app["rows"].items():
            total += 1
            got = byid.get(int(rid))
            if got is None:
                bad.append("%s: row %s is missing" % (name, rid))
                continue
            for i, col in ((1, "name"), (2, "quantity"), (3, "color")):
                if col in want and got[i] != str(want[col]):
                    bad.append("%s: row %s %s is %r, the app wrote %r" % (name, rid, col, got[i], want[col]))
    if len(bad) > 20:
        break
for line in bad[:20]:
    print("FAIL:", line)
if bad:
    sys.exit(1)
print("# every node holds all %d rows the apps wrote, with every value" % total)
