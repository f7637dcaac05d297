#!/usr/bin/env bash
# Keys the app sets (issue 13), on the client: a hub change that meets this
# node's own new row under the same key, not yet acknowledged by the hub
# (its upload failed, and syncqd downloaded anyway), is another record. It
# waits in the client's sync_errors until the next upload, which the hub
# sets aside (the hub's record came first); the node then holds the hub's
# record, and its own row waits in the hub's sync_errors, its content
# whole (and in its own sync_errors). Without the wait the hub's change
# would overwrite the local row, and its content, never read yet, would be
# lost. Over HTTP: serve's --max-body refuses the upload alone.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_keys_create_pending

hub "CREATE TABLE tool (code text PRIMARY KEY, name text NOT NULL);
	SELECT sync_track('tool');" >/dev/null
start_serve
A=$SYNCQ_TMP/a.db
B=$SYNCQ_TMP/b.db
for f in "$A" "$B"; do
	cli "$f" "CREATE TABLE tool (code TEXT PRIMARY KEY, name TEXT NOT NULL);
		SELECT sync_track('tool');" >/dev/null
	sync "$f"
done

note "B makes tool T1; A's tool T1 (made later) reaches the hub first"
plain "$B" "INSERT INTO tool VALUES ('T1', 'b1' || hex(zeroblob(800)))"
sleep 0.01
plain "$A" "INSERT INTO tool VALUES ('T1', 'a1')"
sync "$A"

note "B's upload is refused (serve --max-body 1024), its download goes on"
start_serve --max-body 1024
"$SYNCQD" --sqlite "$B" --online "$ONLINE" --once 2>>"$SYNCQ_TMP/syncqd.log" &&
	fail "syncqd --once succeeded though its upload was refused"
grep -q "upload failed, downloading anyway" "$SYNCQ_TMP/syncqd.log" || fail "the upload was not refused"
expect_eq "B's own tool T1 kept" "$(plain "$B" "SELECT code || '=' || substr(name, 1, 2) || length(name) FROM tool")" "T1=b11602"
expect_eq "A's tool waits on B" \
	"$(plain "$B" "SELECT pk FROM sync_errors WHERE error LIKE '%own new record%'")" '{"code":"T1"}'

note "B's next sync: its tool is set aside on the hub, and B holds A's"
start_serve
sync "$B"
expect_eq "B holds A's tool" "$(plain "$B" "SELECT code || '=' || name FROM tool")" "T1=a1"
expect_eq "the hub holds A's" "$(hub "SELECT code || '=' || name FROM tool")" "T1=a1"
expect_eq "B's tool, whole, in the hub's sync_errors" \
	"$(hub "SELECT op, substr(row_data->>'name', 1, 2) || length(row_data->>'name') FROM sync_errors")" "I|b11602"
expect_eq "nothing of the hub's waits on B, no conflict" \
	"$(plain "$B" "SELECT (SELECT count(*) FROM sync_errors WHERE hub_seq > 0) || ' ' || (SELECT count(*) FROM sync_conflicts)")" "0 0"
expect_eq "B's own tool, whole, in B's own sync_errors too (sync_keys_loser.sh)" \
	"$(plain "$B" "SELECT op || '|' || substr(json_extract(row_data, '$.name'), 1, 2) || length(json_extract(row_data, '$.name')) FROM sync_errors WHERE hub_seq < 0")" "I|b11602"
sync "$A"
expect_eq "A's tool" "$(plain "$A" "SELECT code || '=' || name FROM tool")" "T1=a1"
note "ok"
