#!/usr/bin/python3
"""forge.py NODE ACK_SEQ ACK_DIGEST < CHANGES: an upload body for POST
/api/sync/data (protocol 2, docs/http.md), as a client user could write it
by hand.

CHANGES is a JSON array of {"table", "op", "pk", "row", "ver_us"}, pk and
row as JSON objects (row null or left out for a delete). seq numbers follow
ACK_SEQ; origin is NODE. The body goes to stdout."""
import json
import sys

node, ack_seq, ack_digest = sys.argv[1], int(sys.argv[2]), sys.argv[3]
changes = []
for n, c in enumerate(json.load(sys.stdin), start=1):
    changes.append({
        "seq": ack_seq + n,
        "table": c["table"],
        "op": c["op"],
        "pk": c["pk"],
        "row": c.get("row"),
        "ver_us": c.get("ver_us", 1753300000000000),
        "origin": node,
        "immediate": True,
    })
json.dump({"v": 2, "op": "upload", "node_id": node, "ack_seq": ack_seq,
           "ack_digest": ack_digest, "changes": changes}, sys.stdout,
          separators=(",", ":"), ensure_ascii=False)
