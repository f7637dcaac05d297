#!/usr/bin/env bash
# syncqd-http
# The key policy (issue 13, sync_track's third argument, both engines): a
# table whose integer key the database assigns is given keys by the hub by
# default ('auto'), but one tracked with keys 'natural' keeps the app's
# keys: two laptops that both write row 1 write the same record, last
# writer wins, and no node renames anything. The hub still keeps its
# sequence ahead of the keys that arrive, so its own app never collides.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_keys_natural

hub "CREATE TABLE setting (id serial PRIMARY KEY, v text);
	CREATE TABLE machine (id serial PRIMARY KEY, name text);
	SELECT sync_track('setting', 'immediate', 'natural'); SELECT sync_track('machine');" >/dev/null
expect_eq "the hub's policies" "$(hub "SELECT table_name, keys FROM sync_tables ORDER BY 1")" "machine|auto
setting|natural"
a=$SYNCQ_TMP/a.db
b=$SYNCQ_TMP/b.db
for f in "$a" "$b"; do
	cli "$f" "CREATE TABLE setting (id INTEGER PRIMARY KEY, v TEXT);
		CREATE TABLE machine (id INTEGER PRIMARY KEY, name TEXT);
		SELECT sync_track('setting', 'immediate', 'natural'); SELECT sync_track('machine');" >/dev/null
	sync "$f"
done
expect_eq "a's policies" "$(plain "$a" "SELECT table_name, keys FROM syncq_tracked ORDER BY 1")" "machine|auto
setting|natural"

note "a and b both write setting 1 and machine 1 offline, b last"
plain "$a" "INSERT INTO setting VALUES (1, 'from a'); INSERT INTO machine VALUES (1, 'press of a')"
sleep 0.01
plain "$b" "INSERT INTO setting VALUES (1, 'from b'); INSERT INTO machine VALUES (1, 'lathe of b')"
sync "$a"; sync "$b"; sync "$a"
expect_eq "the hub's settings: one record, the last writer's" "$(hub "SELECT id, v FROM setting")" "1|from b"
expect_eq "the hub's machines: two records" "$(hub "SELECT string_agg(name, ',' ORDER BY id) FROM machine")" "press of a,lathe of b"
expect_eq "settings renamed on the hub" "$(hub "SELECT count(*) FROM sync_key_renames WHERE table_name = 'setting'")" "0"
same_rows setting "id, v" "$a" "$b"
same_rows machine "id, name" "$a" "$b"

note "the hub's app inserts a setting: its sequence is ahead of the synced key"
expect_eq "the hub's new setting" "$(hub "INSERT INTO setting (v) VALUES ('from the hub') RETURNING id")" "2"
sync "$a"
expect_eq "a's settings" "$(plain "$a" "SELECT group_concat(id || '=' || v, ',') FROM (SELECT * FROM setting ORDER BY id)")" "1=from b,2=from the hub"
echo ok
