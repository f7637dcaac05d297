#!/usr/bin/env bash
# syncqd-asan
# Rows written locally and rows that came from the hub, in one SQLite column
# (the default forms): the app writes with Python's sqlite3 adapters and with
# SQLite's own datetime() and CURRENT_TIMESTAMP, the hub's rows arrive in the
# same form, so comparisons, range queries and ORDER BY on the client give
# the rows and the order the hub gives, around both DST changes, whole
# seconds and fractions alike; Python's converters read every row.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub types_mixed
A=$SYNCQ_TMP/a.db
B=$SYNCQ_TMP/b.db
PY=/usr/bin/python3

hub "CREATE TABLE visit (id integer PRIMARY KEY, at timestamptz NOT NULL, at_naive timestamp NOT NULL,
		day date, clock time); SELECT sync_track('visit');" >/dev/null
for f in "$A" "$B"; do
	cli "$f" "CREATE TABLE visit (id INTEGER PRIMARY KEY, at TIMESTAMP NOT NULL, at_naive TIMESTAMP NOT NULL,
		day DATE, clock TEXT); SELECT sync_track('visit');" >/dev/null
	sync "$f"
done

# The instants: around 2025-03-09 07:00 UTC and 2025-11-02 06:00 UTC, the
# DST changes of America/New_York; even ids are written on the hub, odd ids
# by the app on client A.
cat >"$SYNCQ_TMP/instants.py" <<'PY'
import datetime as dt
EDGES = [dt.datetime(2025, 3, 9, 7), dt.datetime(2025, 11, 2, 6)]
OFFS = [-3600, -1, -0.5, -0.000001, 0, 0.000001, 0.5, 1, 1.25, 3600]
INSTANTS = {}
for e in EDGES:
    for o in OFFS:
        INSTANTS[len(INSTANTS) + 1] = e + dt.timedelta(seconds=o)
PY
"$PY" - "$SYNCQ_TMP" <<'PY' | psql -X -q -v ON_ERROR_STOP=1 -d "$HUB" >/dev/null
import sys
sys.path.insert(0, sys.argv[1])
from instants import INSTANTS
for k, v in INSTANTS.items():
    if k % 2 == 0:
        print("INSERT INTO visit VALUES (%d, '%s+00', '%s', '%s', '%s');"
              % (k, v.isoformat(" "), v.isoformat(" "), v.date(), v.time()))
PY
"$PY" - "$SYNCQ_TMP" "$A" <<'PY'
import sqlite3, sys
sys.path.insert(0, sys.argv[1])
from instants import INSTANTS
# the app, with Python's stock adapters (datetime -> isoformat(" "))
db = sqlite3.connect(sys.argv[2])
for k, v in INSTANTS.items():
    if k % 2 == 1:
        db.execute("INSERT INTO visit VALUES (?, ?, ?, ?, ?)", (k, v, v, v.date(), v.time().isoformat()))
# and SQLite's own functions
db.execute("INSERT INTO visit VALUES (101, datetime('2025-03-09 07:00:00'), CURRENT_TIMESTAMP, date('now'), time('now'))")
db.commit()
PY
sync "$A"
sync "$B"
sync "$A"

note "every row in one form on every client"
for f in "$A" "$B"; do
	expect_eq "forms on $(basename "$f")" "$(plain "$f" "SELECT count(*) FROM visit WHERE
		at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]'
		AND at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]'")" "0"
done

note "ORDER BY, ranges and equality: the hub's rows in the hub's order"
# (a bound is written as the app's adapter writes a datetime: in the form)
queries() {	# queries HUB|FILE: the same questions, as each engine is asked them
	local q
	for q in "ORDER BY at, id" "ORDER BY at_naive DESC, id" \
		"WHERE at >= '2025-03-09 07:00:00' AND at < '2025-03-09 07:00:01' ORDER BY at" \
		"WHERE at > '2025-03-09 06:59:59.999999' ORDER BY at LIMIT 4" \
		"WHERE at BETWEEN '2025-11-02 05:59:59.500000' AND '2025-11-02 06:00:00.500000' ORDER BY at" \
		"WHERE at = '2025-11-02 06:00:00' OR at_naive = '2025-03-09 07:00:01.250000'" \
		"WHERE at < '2025-11-02 06:00:00' AND at >= '2025-11-02 05:00:00' ORDER BY at DESC"; do
		if [ "$1" = hub ]; then
			hub "SELECT string_agg(id::text, ' ') FROM (SELECT id FROM visit $q) s"
		else
			plain "$1" "SELECT group_concat(id, ' ') FROM (SELECT id FROM visit $q) s"
		fi
	done
}
want=$(queries hub)
for f in "$A" "$B"; do
	expect_eq "queries on $(basename "$f")" "$(queries "$f")" "$want"
done

note "Python's sqlite3 converters read every row as the hub's instant"
got=$("$PY" - "$A" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], detect_types=sqlite3.PARSE_DECLTYPES)
for k, at, naive in db.execute("SELECT id, at, at_naive FROM visit WHERE id < 100 ORDER BY id"):
    print(k, at.isoformat(" "), naive.isoformat(" "))
PY
)
expect_eq "typed on the client" "$got" \
	"$(hub "SELECT id || ' ' || to_char(at, 'YYYY-MM-DD HH24:MI:SS') || CASE WHEN extract(microseconds FROM at)::int % 1000000 <> 0
		THEN to_char(at, '.US') ELSE '' END || ' ' || to_char(at_naive, 'YYYY-MM-DD HH24:MI:SS') ||
		CASE WHEN extract(microseconds FROM at_naive)::int % 1000000 <> 0 THEN to_char(at_naive, '.US') ELSE '' END
		FROM visit WHERE id < 100 ORDER BY id")"
echo "ok"
