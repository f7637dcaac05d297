#!/usr/bin/env bash
# SQLite capture seen from connections that never load syncq: the real
# sqlite3 shell without .load, and a C program on the stock libsqlite3
# (plain and under ASan+UBSan).  One connection that loads the extension
# tracks the tables; every write after that comes from plain connections,
# in separate processes.  Then what a connection that loaded syncq adds:
# txid per transaction and the wake-up file.
set -euo pipefail
: "${SYNCQ_ROOT:?}" "${SYNCQ_SQLITE_EXT:?}" "${SYNCQ_TMP:?}"
EXT_ASAN=${SYNCQ_SQLITE_EXT_ASAN:-}
BUILD=${SYNCQ_BUILD:-$SYNCQ_TMP}/tools
mkdir -p "$BUILD"
DB=$SYNCQ_TMP/app.db
WAKE=$DB-syncq-wake

ext()   { sqlite3 -init /dev/null -bail "$DB" ".load $SYNCQ_SQLITE_EXT" "$@"; }
plain() { sqlite3 -init /dev/null -bail "$DB" "$@"; }
check() {			# check NAME EXPECTED ACTUAL
	if [ "$2" != "$3" ]; then
		echo "FAIL: $1"
		diff -u <(printf '%s\n' "$2") <(printf '%s\n' "$3") || true
		exit 1
	fi
	echo "ok: $1"
}
# The queue after seq $1, with what varies shown as checks, once the rows
# are read into it (sync_fill(), as syncqd does before it ships).
queue_after() {
	ext "SELECT sync_fill();" >/dev/null
	plain "SELECT seq - $1, table_name, op, pk, coalesce(row_data, '-'), priority,
	  CASE WHEN txid IS NULL THEN 'no-txid' ELSE 'txid' END,
	  CASE WHEN origin = (SELECT node_id FROM syncq_state) THEN 'this-node' ELSE origin END,
	  changed_at GLOB '20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'
	  FROM sync_queue WHERE seq > $1 ORDER BY seq"
}
last_seq() { plain "SELECT coalesce(max(seq), 0) FROM sync_queue"; }

TABLES='
CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, price REAL, data BLOB, n);
CREATE TABLE "Order ""Lines"" ☃"("order" TEXT, "línea" INTEGER, "qty""x" REAL,
  note TEXT, PRIMARY KEY("order", "línea")) WITHOUT ROWID;
CREATE TABLE audit_log(id TEXT PRIMARY KEY, at TEXT, body TEXT);'
TRACK="SELECT sync_track('item'), sync_track('Order \"Lines\" ☃'), sync_track('audit_log', 'batched');"

fresh_db() {
	rm -f "$DB" "$DB-wal" "$DB-shm" "$WAKE"
	ext "PRAGMA journal_mode=WAL;" "$TABLES" "$TRACK" >/dev/null
}

# --- the sqlite3 shell without .load ------------------------------------------
fresh_db
check "plain connection has no syncq functions" "no such function: sync_node_id" \
	"$(plain "SELECT sync_node_id()" 2>&1 | grep -o 'no such function: sync_node_id' || true)"
base=$(last_seq)
plain "INSERT INTO item VALUES(1, 'plain', 0.1, x'00ff10', NULL);"
plain "INSERT INTO item VALUES(9007199254740993, 'naïve ☃ \"q\"', 2.5, NULL, 9223372036854775807);"
plain "INSERT INTO item VALUES(-5, 'reals', 1e-7, 0.30000000000000004, -1.5e300);"
plain "BEGIN; UPDATE item SET name = 'renamed', n = -9223372036854775808 WHERE id = 1;
       UPDATE item SET id = 2 WHERE id = 1; COMMIT;"
plain "DELETE FROM item WHERE id = 9007199254740993;"
plain "INSERT INTO \"Order \"\"Lines\"\" ☃\" VALUES('A-1', 1, 2, 'x'), ('A-1', 2, NULL, NULL);"
plain "UPDATE \"Order \"\"Lines\"\" ☃\" SET \"línea\" = 3 WHERE \"línea\" = 2;"
plain "DELETE FROM \"Order \"\"Lines\"\" ☃\" WHERE \"order\" = 'A-1' AND \"línea\" = 1;"
plain "INSERT INTO audit_log VALUES('log-1', '2025-07-24T00:30:00Z', 'hello');"
plain "UPDATE audit_log SET body = NULL;"
check "every change from the plain shell queued exactly, in order (a change is read with its row as it is at the fill; a row gone since makes it a delete)" "$(cat <<'EOF'
1|item|D|{"id":1}|-|immediate|no-txid|this-node|1
2|item|D|{"id":9007199254740993}|-|immediate|no-txid|this-node|1
3|item|I|{"id":-5}|{"id":-5,"name":"reals","price":1.0e-07,"data":3.00000000000000044408e-01,"n":-1.5e+300}|immediate|no-txid|this-node|1
4|item|D|{"id":1}|-|immediate|no-txid|this-node|1
5|item|D|{"id":1}|-|immediate|no-txid|this-node|1
6|item|I|{"id":2}|{"id":2,"name":"renamed","price":0.1,"data":{"$hex":"00FF10"},"n":-9223372036854775808}|immediate|no-txid|this-node|1
7|item|D|{"id":9007199254740993}|-|immediate|no-txid|this-node|1
8|Order "Lines" ☃|D|{"order":"A-1","línea":1}|-|immediate|no-txid|this-node|1
9|Order "Lines" ☃|D|{"order":"A-1","línea":2}|-|immediate|no-txid|this-node|1
10|Order "Lines" ☃|D|{"order":"A-1","línea":2}|-|immediate|no-txid|this-node|1
11|Order "Lines" ☃|I|{"order":"A-1","línea":3}|{"order":"A-1","línea":3,"qty\"x":null,"note":null}|immediate|no-txid|this-node|1
12|Order "Lines" ☃|D|{"order":"A-1","línea":1}|-|immediate|no-txid|this-node|1
13|audit_log|I|{"id":"log-1"}|{"id":"log-1","at":"2025-07-24T00:30:00Z","body":null}|batched|no-txid|this-node|1
14|audit_log|U|{"id":"log-1"}|{"id":"log-1","at":"2025-07-24T00:30:00Z","body":null}|batched|no-txid|this-node|1
EOF
)" "$(queue_after "$base")"

# Pause and resume with plain SQL; the switch is seen by every connection.
base=$(last_seq)
plain "UPDATE syncq_state SET paused = 1;"
plain "INSERT INTO item VALUES(100, 'bulk import', NULL, NULL, NULL);"
plain "UPDATE syncq_state SET paused = 0;"
plain "INSERT INTO item VALUES(101, 'after the import', NULL, NULL, NULL);"
check "plain-SQL pause" \
	'1|item|I|{"id":101}|{"id":101,"name":"after the import","price":null,"data":null,"n":null}|immediate|no-txid|this-node|1' \
	"$(queue_after "$base")"

# How syncqd marks what it applies for another node: on its own connection,
# which loaded syncq, for one transaction; no other connection can see it.
base=$(last_seq)
ext "BEGIN; SELECT sync_apply_origin('7d444840-9dc0-11d1-b245-5ffdce74fad2');
     INSERT INTO item VALUES(200, 'from the hub', NULL, NULL, NULL); COMMIT;" >/dev/null
plain "INSERT INTO item VALUES(201, 'from the app', NULL, NULL, NULL);"
check "apply origin stays in syncqd's transaction" "$(printf '%s\n' \
	'1|item|I|{"id":200}|{"id":200,"name":"from the hub","price":null,"data":null,"n":null}|immediate|txid|7d444840-9dc0-11d1-b245-5ffdce74fad2|1' \
	'2|item|I|{"id":201}|{"id":201,"name":"from the app","price":null,"data":null,"n":null}|immediate|no-txid|this-node|1')" \
	"$(queue_after "$base")"
check "a plain UPDATE of the node id is refused (the triggers hold it)" \
	"change it with sync_reidentify(uuid)" \
	"$(plain "UPDATE syncq_state SET node_id = '1b4e28ba-2fa1-11d2-883f-0016d3cca427';" 2>&1 |
	   grep -o 'change it with sync_reidentify(uuid)' || true)"

# seq is never reused, even when a plain connection empties the queue.
newest=$(last_seq)
plain "DELETE FROM sync_queue;"
check "the newest row survives DELETE" "1|$newest" "$(plain "SELECT count(*), max(seq) FROM sync_queue")"
plain "INSERT INTO item VALUES(300, 'next', NULL, NULL, NULL);"
check "seq goes on after the purge" "$((newest + 1))" "$(last_seq)"

# ALTER TABLE ADD, DROP and RENAME COLUMN from a plain connection on a
# tracked table, writes in between, and no repair at all: the triggers name
# only the key, so SQLite lets the column go, and every change is read with
# the row's values as the table has them (201 is the newest row kept by the
# purge above, already read).
base=$(last_seq)
plain "ALTER TABLE item ADD COLUMN colour TEXT;"
plain "INSERT INTO item VALUES(400, 'between', NULL, NULL, NULL, 'red');"
plain "UPDATE item SET colour = 'blue' WHERE id = 300;"
plain "ALTER TABLE item DROP COLUMN data;"
plain "ALTER TABLE item RENAME COLUMN n TO num;"
plain "INSERT INTO item VALUES(401, 'after', NULL, 7, 'green');"
check "nothing written around ALTER TABLE is lost, none of it is queued again" "$(cat <<'EOF'
1|item|I|{"id":400}|{"id":400,"name":"between","price":null,"num":null,"colour":"red"}|immediate|no-txid|this-node|1
2|item|U|{"id":300}|{"id":300,"name":"next","price":null,"num":null,"colour":"blue"}|immediate|no-txid|this-node|1
3|item|I|{"id":401}|{"id":401,"name":"after","price":null,"num":7,"colour":"green"}|immediate|no-txid|this-node|1
EOF
)" "$(queue_after "$base")"
check "the repair queues nothing and records the columns that went" "0|0|item|data||item|n|num" \
	"$(ext "SELECT sync_repair();" "SELECT count(*) - 3 FROM sync_queue WHERE seq > $base;" \
	       "SELECT table_name, column_name, renamed_to FROM syncq_columns_gone ORDER BY 2;" | tr '\n' '|' | sed 's/|$//')"
check "a plain connection gets no error from any of it" "0" "$(plain "SELECT count(*) FROM item WHERE id = 0;")"

# --- a connection that loaded syncq: txid and the wake-up file -------------------
wake_checks() {			# wake_checks LOAD_EXT [PRELOAD]
	local so=$1 pre=${2:-}
	w() { LD_PRELOAD=$pre sqlite3 -init /dev/null -bail "$DB" ".load $so" "$@"; }
	fresh_db
	base=$(last_seq)
	rm -f "$WAKE"
	w "BEGIN; INSERT INTO item(id) VALUES(1); INSERT INTO item(id) VALUES(2); COMMIT;" \
	  "INSERT INTO item(id) VALUES(3);"
	[ -s "$WAKE" ] || { echo "FAIL: no wake file after an immediate commit"; exit 1; }
	grep -qx '[0-9]\{13\}' "$WAKE" || { echo "FAIL: wake file holds $(cat "$WAKE")"; exit 1; }
	check "txid groups each transaction ($so)" "2,1" \
		"$(plain "SELECT group_concat(n) FROM (SELECT count(*) AS n, min(seq) AS s
		          FROM sync_queue WHERE seq > $base AND txid IS NOT NULL GROUP BY txid ORDER BY s)")"
	rm -f "$WAKE"
	w "INSERT INTO audit_log VALUES('b', NULL, NULL);" \
	  "BEGIN; INSERT INTO item(id) VALUES(4); ROLLBACK;" \
	  "SELECT sync_pause(); INSERT INTO item(id) VALUES(5); SELECT sync_resume();" >/dev/null
	[ ! -e "$WAKE" ] || { echo "FAIL: woke for batched, rolled back or paused work"; exit 1; }
	echo "ok: no wake-up for batched, rolled-back or paused changes"
	check "sync_trigger() wakes at once" "1" "$(w "SELECT sync_trigger();")"
	[ -s "$WAKE" ] || { echo "FAIL: sync_trigger() wrote no wake file"; exit 1; }
}
wake_checks "$SYNCQ_SQLITE_EXT"
if [ -n "$EXT_ASAN" ] && [ -f "$EXT_ASAN" ]; then
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:exitcode=86}
	wake_checks "$EXT_ASAN" "$(${CC:-cc} -print-file-name=libasan.so)"
fi

# --- a C program on the stock library ----------------------------------------
SRC=$SYNCQ_ROOT/tests/tools/sqlite_capture_plain.c
cc -std=c11 -Wall -Wextra -Werror -O2 -o "$BUILD/sqlite_capture_plain" "$SRC" -lsqlite3
cc -std=c11 -Wall -Wextra -Werror -O1 -g -fsanitize=address,undefined \
	-fno-omit-frame-pointer -fno-sanitize-recover=undefined \
	-o "$BUILD/sqlite_capture_plain_asan" "$SRC" -lsqlite3
for prog in sqlite_capture_plain sqlite_capture_plain_asan; do
	fresh_db
	ASAN_OPTIONS=detect_leaks=1 "$BUILD/$prog" "$DB"
done
echo "all sqlite capture checks passed"
