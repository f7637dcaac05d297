#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# The app's own values, once the hub has them, in the form a download writes
# (client/respell.c): an app on client A writes instants with a 'T' and an
# offset, as Unix seconds and with nine fractional digits, a uuid in upper
# case, 'Infinity' as text, a time without seconds; after the sync A holds
# each in the form client B received it in, nothing more is queued, and the
# hub read each right. A value the file refuses in that form (a CHECK of the
# app's) keeps the app's spelling, with a warning; a key takes the hub's
# spelling by the hub's correction (a delete of the app's, the row under the
# hub's).
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub types_respell
A=$SYNCQ_TMP/a.db
B=$SYNCQ_TMP/b.db

hub "CREATE TABLE stamp (id integer PRIMARY KEY, at timestamptz, naive timestamp, u uuid,
		ratio double precision, clock time);
	CREATE TABLE tag (id uuid PRIMARY KEY, at timestamptz);
	SELECT sync_track('stamp'); SELECT sync_track('tag');" >/dev/null
for f in "$A" "$B"; do
	# (on A only, the app's CHECK wants row 5's instant written with a 'T')
	check=""
	[ "$f" != "$A" ] || check="CHECK (id <> 5 OR at GLOB '*T*')"
	cli "$f" "CREATE TABLE stamp (id INTEGER PRIMARY KEY,
			at TIMESTAMP $check, naive TIMESTAMP, u TEXT, ratio REAL, clock TEXT);
		CREATE TABLE tag (id TEXT PRIMARY KEY, at TIMESTAMP);
		SELECT sync_track('stamp'); SELECT sync_track('tag');" >/dev/null
	sync "$f"
done

plain "$A" "INSERT INTO stamp VALUES
	(1, '2025-03-09T01:59:59.25-05:00', '2025-11-02T01:30:00-04:00', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'Infinity', '07:30'),
	(2, 1741503600, 1741503600.5, '{b1ffcd00-1111-2222-3333-444455556666}', '-Infinity', '23:59:59.5'),
	(3, '2025-03-09 07:00:00.123456789Z', '2025-03-09 07:00:00', NULL, 'NaN', '12:00:00'),
	(4, '2025-03-09 07:00:00', '2025-03-09 07:00:00.000001', 'c2ffcd00-1111-2222-3333-444455556666', 1.5, NULL),
	(5, '2025-03-09T02:00:00Z', NULL, NULL, NULL, NULL);
	INSERT INTO tag VALUES ('D3FFCD00-1111-2222-3333-444455556666', '2025-03-09T03:00:00+01:00');"
sync "$A"
sync "$B"

rows() { plain "$1" "SELECT id, typeof(at), at, naive, u, typeof(ratio), ratio, clock FROM stamp ORDER BY id"; }
note "client A holds its own values as client B received them"
expect_eq "client B" "$(rows "$B")" "1|text|2025-03-09 06:59:59.250000|2025-11-02 05:30:00|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|real|Inf|07:30:00
2|text|2025-03-09 07:00:00|2025-03-09 07:00:00.500000|b1ffcd00-1111-2222-3333-444455556666|real|-Inf|23:59:59.500000
3|text|2025-03-09 07:00:00.123457|2025-03-09 07:00:00||text|NaN|12:00:00
4|text|2025-03-09 07:00:00|2025-03-09 07:00:00.000001|c2ffcd00-1111-2222-3333-444455556666|real|1.5|
5|text|2025-03-09 02:00:00|||null||"
expect_eq "client A" "$(rows "$A" | sed 5d)" "$(rows "$B" | sed 5d)"
expect_eq "client A, the row its CHECK keeps" "$(rows "$A" | sed -n 5p)" "5|text|2025-03-09T02:00:00Z|||null||"
grep -q "column \"at\" of table \"stamp\" keeps the app's spelling" "$SYNCQ_TMP/syncqd.log" ||
	fail "no warning for the value the CHECK refused"
expect_eq "a key takes the hub's spelling, one row" \
	"$(plain "$A" "SELECT id, at FROM tag")" "d3ffcd00-1111-2222-3333-444455556666|2025-03-09 02:00:00"
expect_eq "nothing queued by the respelling" "$(pending "$A")" "0"

note "the hub read every value"
expect_eq "on the hub" "$(hub "SET TIME ZONE 'UTC'; SELECT id, at, naive, u, ratio, clock FROM stamp ORDER BY id")" \
	"1|2025-03-09 06:59:59.25+00|2025-11-02 05:30:00|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|Infinity|07:30:00
2|2025-03-09 07:00:00+00|2025-03-09 07:00:00.5|b1ffcd00-1111-2222-3333-444455556666|-Infinity|23:59:59.5
3|2025-03-09 07:00:00.123457+00|2025-03-09 07:00:00||NaN|12:00:00
4|2025-03-09 07:00:00+00|2025-03-09 07:00:00.000001|c2ffcd00-1111-2222-3333-444455556666|1.5|
5|2025-03-09 02:00:00+00||||"

note "the next sync ships nothing and changes nothing"
before=$(rows "$A")
sync "$A"
expect_eq "rows of A" "$(rows "$A")" "$before"
expect_eq "nothing set aside" "$(hub "SELECT count(*) FROM sync_errors")|$(plain "$A" "SELECT count(*) FROM sync_errors")" "0|0"
echo "ok"
