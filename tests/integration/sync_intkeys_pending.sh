#!/usr/bin/env bash
# Keys the hub assigns (issue 13), on the client: a hub change that meets
# this node's own new row under the same integer key, not yet acknowledged
# by the hub (its upload failed, and syncqd downloaded anyway; or the row was
# made between a sync's upload and its download), is another record. It
# waits in the client's sync_errors until the next upload has told whether
# the hub gave the local row a new key; it never overwrites the local row
# (whose content would then be shipped as the hub's), nor is it dropped as
# a conflict. Over HTTP: serve's --max-body refuses the upload alone.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_intkeys_pending

hub "CREATE TABLE machines (id serial PRIMARY KEY, name text NOT NULL);
	SELECT sync_track('machines');" >/dev/null
start_serve
A=$SYNCQ_TMP/a.db
B=$SYNCQ_TMP/b.db
for f in "$A" "$B"; do
	cli "$f" "CREATE TABLE machines (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
		SELECT sync_track('machines');" >/dev/null
	sync "$f"
done

note "B makes machine 1; A's machine 1 (made later) reaches the hub first"
plain "$B" "INSERT INTO machines (id, name) VALUES (1, 'b1' || hex(zeroblob(800)))"
sleep 0.01
plain "$A" "INSERT INTO machines (id, name) VALUES (1, 'a1')"
sync "$A"

note "B's upload is refused (serve --max-body 1024), its download goes on"
start_serve --max-body 1024
"$SYNCQD" --sqlite "$B" --online "$ONLINE" --once 2>>"$SYNCQ_TMP/syncqd.log" &&
	fail "syncqd --once succeeded though its upload was refused"
grep -q "upload failed, downloading anyway" "$SYNCQ_TMP/syncqd.log" || fail "the upload was not refused"
expect_eq "B's own machine 1 kept" "$(plain "$B" "SELECT id || '=' || substr(name, 1, 2) || length(name) FROM machines")" "1=b11602"
expect_eq "A's machine waits on B" \
	"$(plain "$B" "SELECT pk FROM sync_errors WHERE error LIKE '%own new record%'")" '{"id":1}'

note "B's next sync: its machine gets a new key, then A's applies"
start_serve
sync "$B"
expect_eq "B holds both machines" "$(plain "$B" "SELECT group_concat(id || '=' || substr(name, 1, 2), ',') FROM (SELECT * FROM machines ORDER BY id)")" "1=a1,2=b1"
expect_eq "the hub holds both" "$(hub "SELECT string_agg(id || '=' || substr(name, 1, 2), ',' ORDER BY id) FROM machines")" "1=a1,2=b1"
expect_eq "nothing set aside, no conflict on B" "$(plain "$B" "SELECT (SELECT count(*) FROM sync_errors) || ' ' || (SELECT count(*) FROM sync_conflicts)")" "0 0"
sync "$A"
same_rows machines "id, name" "$A" "$B"
note "ok"
