#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# syncqd over libpq: a round trip of every type both ways (twice: the second
# sync changes nothing), a relay between two clients that never returns to
# its origin, a late-committing hub transaction, a cloned client file.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_basic

hub "CREATE TABLE typed (
	id bigint PRIMARY KEY, i integer, big bigint, num numeric(30,9), money numeric(10,2),
	f8 double precision, flag boolean, t text, ba bytea, ts timestamptz, d date,
	j jsonb, u uuid, s smallint, r real, vc varchar(10), tsn timestamp, tm time,
	iv interval, js json, nothing text);
	SELECT sync_track('typed');
	CREATE TABLE audit (id integer PRIMARY KEY, task text NOT NULL, done_on date);
	SELECT sync_track('audit');" >/dev/null

client_ddl="CREATE TABLE typed (id INTEGER PRIMARY KEY, i INTEGER, big INTEGER, num TEXT,
	money NUMERIC, f8 REAL, flag INTEGER, t TEXT, ba BLOB, ts TEXT, d TEXT, j TEXT, u TEXT,
	s INTEGER, r REAL, vc TEXT, tsn TEXT, tm TEXT, iv TEXT, js TEXT, \"nothing\" TEXT);
	CREATE TABLE audit (id INTEGER PRIMARY KEY, task TEXT NOT NULL, done_on TEXT);
	SELECT sync_track('typed'); SELECT sync_track('audit');"
A=$SYNCQ_TMP/a.db
B=$SYNCQ_TMP/b.db
cli "$A" "$client_ddl" >/dev/null
cli "$B" "$client_ddl" >/dev/null

note "first sync of two empty clients"
sync "$A"
sync "$B"

note "hub -> client: every type"
hub "INSERT INTO typed VALUES (1, -42, 9223372036854775807, 12345678901234567890.123456789, 1.50,
	0.1, true, E'caf\u00e9 \"q\" \\\\ \U0001F600', '\x00ff10'::bytea, '2025-07-24 00:30:00.123456+00',
	'2025-07-23', '{\"a\": [1, 2.50, null]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
	-32768, 1.5, 'short', '2025-07-24 00:30:00', '23:30:00', '1 day 02:00:00', '[1, \"x\"]', NULL)" >/dev/null
sync "$A"
got=$(plain "$A" "SELECT id, i, typeof(big), big, typeof(num), num, typeof(money), money, f8, flag, t,
	hex(ba), typeof(ba), ts, d, j, u, s, r, vc, tsn, tm, iv, js, typeof(\"nothing\") FROM typed")
want="1|-42|integer|9223372036854775807|text|12345678901234567890.123456789|real|1.5|0.1|1|café \"q\" \\ 😀|00FF10|blob|2025-07-24 00:30:00.123456|2025-07-23|{\"a\": [1, 2.50, null]}|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|-32768|1.5|short|2025-07-24 00:30:00|23:30:00|P1DT2H|[1, \"x\"]|null"
expect_eq "typed row on the client" "$got" "$want"

note "client -> hub: the same row changed on the client"
plain "$A" "UPDATE typed SET i = 7, big = -9223372036854775808, money = 2.25, flag = 0,
	t = 'ünïcode ✓', ba = x'deadbeef', ts = '2025-11-02T05:59:59.5Z', f8 = 1e300 WHERE id = 1"
sync "$A"
got=$(hub "SELECT i, big, money, flag, t, encode(ba, 'hex'), ts, f8, num FROM typed WHERE id = 1")
expect_eq "typed row on the hub" "$got" \
	"7|-9223372036854775808|2.25|f|ünïcode ✓|deadbeef|2025-11-02 05:59:59.5+00|1e+300|12345678901234567890.123456789"

note "every type back on the hub unchanged after the client's edit"
got=$(hub "SELECT j, u, s, r, vc, tsn, tm, iv, js::text, nothing IS NULL, d FROM typed WHERE id = 1")
expect_eq "untouched columns on the hub" "$got" \
	'{"a": [1, 2.50, null]}|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|-32768|1.5|short|2025-07-24 00:30:00|23:30:00|1 day 02:00:00|[1, "x"]|t|2025-07-23'

note "a second sync changes nothing"
before=$(hub "SELECT count(*) FROM sync_queue")
sync "$A"
last_log | grep -q "up 0 applied, 0 overruled, 0 already there; down 0 rows" ||
	fail "second sync was not empty: $(last_log)"
expect_eq "hub queue after an empty sync" "$(hub "SELECT count(*) FROM sync_queue")" "$before"
expect_eq "client pending after sync" "$(pending "$A")" "0"

note "relay: A's change reaches B through the hub, never back to A"
plain "$A" "INSERT INTO audit VALUES (10, 'check pump', '2025-07-23')"
sync "$A"
sync "$B"
expect_eq "relayed row on B" "$(plain "$B" "SELECT id, task, done_on FROM audit")" "10|check pump|2025-07-23"
expect_eq "B also has the typed row" "$(plain "$B" "SELECT i, hex(ba), flag FROM typed")" "7|DEADBEEF|0"
sync "$A"
last_log | grep -q "down 0 rows" || fail "A's own change came back to A: $(last_log)"
expect_eq "B has nothing to send back" "$(pending "$B")" "0"

note "a hub transaction that took its seq early but commits late"
fifo=$SYNCQ_TMP/late.fifo
mkfifo "$fifo"
psql -X -q -d "$HUB" <"$fifo" >/dev/null &
late=$!
exec 7>"$fifo"
echo "BEGIN; INSERT INTO audit VALUES (20, 'late', NULL);" >&7
sleep 0.5
hub "INSERT INTO audit VALUES (21, 'early', NULL)" >/dev/null
sync "$B"
expect_eq "B before the late commit" "$(plain "$B" "SELECT id FROM audit WHERE id >= 20")" "21"
echo "COMMIT;" >&7
exec 7>&-
wait "$late"
sync "$B"
expect_eq "B after the late commit" "$(plain "$B" "SELECT id FROM audit WHERE id >= 20 ORDER BY id" | tr '\n' ' ')" "20 21 "

note "a cloned client file is detected and refused"
cp "$A" "$SYNCQ_TMP/clone.db"
plain "$A" "INSERT INTO audit VALUES (30, 'from A', NULL)"
sync "$A"
plain "$SYNCQ_TMP/clone.db" "INSERT INTO audit VALUES (31, 'from the clone', NULL)"
if out=$("$SYNCQD" --sqlite "$SYNCQ_TMP/clone.db" --online "$ONLINE" --once 2>&1); then
	fail "the clone synced"
fi
echo "$out" | grep -q "already used by another copy of this database" || fail "unclear clone message: $out"
expect_eq "clone's change not on the hub" "$(hub "SELECT count(*) FROM audit WHERE id = 31")" "0"
expect_eq "clone's change still pending" "$(pending "$SYNCQ_TMP/clone.db")" "1"
"$SYNCQD" --sqlite "$SYNCQ_TMP/clone.db" --reidentify >/dev/null
sync "$SYNCQ_TMP/clone.db"
expect_eq "clone's change on the hub after --reidentify" "$(hub "SELECT task FROM audit WHERE id = 31")" "from the clone"
expect_eq "A's change kept" "$(hub "SELECT task FROM audit WHERE id = 30")" "from A"
expect_eq "clone has A's change after its first sync" "$(plain "$SYNCQ_TMP/clone.db" "SELECT task FROM audit WHERE id = 30")" "from A"
sync "$A"
expect_eq "A gets the clone's change" "$(plain "$A" "SELECT task FROM audit WHERE id = 31")" "from the clone"
echo "ok"
