#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# Integer keys as the hub spells them (hub/apply.c, read_keys): the key of
# a change of a table keyed by one smallint, integer or bigint column is
# taken as sent when PostgreSQL writes it back the same; every other key is
# read by the hub (sync_normalize_keys), which refuses a value out of the
# column's range, or one its domain refuses, naming it. Checked: keys at
# the ends of each range apply and are stored as the capture writes them
# (so a later hub change of the row meets the same version row); keys one
# past the ends, and a domain's refused key (insert and delete), are set
# aside on the hub with the type's own message, and hold up nothing.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_keys_integer

hub "CREATE TABLE s (id smallint PRIMARY KEY, v text);  SELECT sync_track('s');
	CREATE TABLE i (id integer PRIMARY KEY, v text);   SELECT sync_track('i');
	CREATE TABLE b (id bigint PRIMARY KEY, v text);    SELECT sync_track('b');
	CREATE DOMAIN pos AS integer CHECK (VALUE > 0);
	CREATE TABLE d (id pos PRIMARY KEY, v text);       SELECT sync_track('d');" >/dev/null
C=$SYNCQ_TMP/c.db
cli "$C" "CREATE TABLE s (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('s');
	CREATE TABLE i (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('i');
	CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('b');
	CREATE TABLE d (id INTEGER PRIMARY KEY, v TEXT); SELECT sync_track('d');" >/dev/null
sync "$C"

cli "$C" "INSERT INTO s VALUES (-32768, 'lo'), (32767, 'hi'), (0, 'zero'), (32768, 'past'), (-32769, 'past');
	INSERT INTO i VALUES (-2147483648, 'lo'), (2147483647, 'hi'), (2147483648, 'past');
	INSERT INTO b VALUES (-9223372036854775808, 'lo'), (9223372036854775807, 'hi'), (9007199254740993, 'odd');
	INSERT INTO d VALUES (7, 'ok'), (-5, 'refused');" >/dev/null
sync "$C"
cli "$C" "DELETE FROM d WHERE id = -5" >/dev/null
sync "$C"

expect_eq "smallint rows on the hub" "$(hub "SELECT string_agg(id || '=' || v, ' ' ORDER BY id) FROM s")" \
	"-32768=lo 0=zero 32767=hi"
expect_eq "integer rows on the hub" "$(hub "SELECT string_agg(id || '=' || v, ' ' ORDER BY id) FROM i")" \
	"-2147483648=lo 2147483647=hi"
expect_eq "bigint rows on the hub" "$(hub "SELECT string_agg(id || '=' || v, ' ' ORDER BY id) FROM b")" \
	"-9223372036854775808=lo 9007199254740993=odd 9223372036854775807=hi"
expect_eq "domain rows on the hub" "$(hub "SELECT string_agg(id || '=' || v, ' ' ORDER BY id) FROM d")" "7=ok"
# the version rows are spelt as the capture spells a key
expect_eq "version keys" "$(hub "SELECT string_agg(table_name || pk, ' ' ORDER BY table_name, pk)
	FROM sync_versions WHERE table_name IN ('s', 'b') AND pk LIKE '%7}'")" \
	'b{"id":9223372036854775807} s{"id":32767}'
hub "UPDATE s SET v = 'hub' WHERE id = 32767; UPDATE b SET v = 'hub' WHERE id = 9007199254740993" >/dev/null
sync "$C"
expect_eq "the hub's updates on the client" \
	"$(plain "$C" "SELECT (SELECT v FROM s WHERE id = 32767) || ' ' || (SELECT v FROM b WHERE id = 9007199254740993)")" "hub hub"
expect_eq "one version row per hub row" "$(hub "SELECT count(*) FROM sync_versions WHERE table_name IN ('s', 'i', 'b', 'd')")" \
	"$(hub "SELECT (SELECT count(*) FROM s) + (SELECT count(*) FROM i) + (SELECT count(*) FROM b) + (SELECT count(*) FROM d)")"

# what the hub set aside, each with the type's own message
refused=$(hub "SELECT table_name || ' ' || op || ' ' || pk::text || ': ' || error FROM sync_errors ORDER BY table_name, op, pk::text")
note "set aside on the hub:"
echo "$refused" | sed 's/^/#   /'
expect_eq "changes set aside" "$(echo "$refused" | wc -l)" 5
for want in 's I {"id":32768}: .*value "32768" is out of range for type smallint' \
	's I {"id":-32769}: .*value "-32769" is out of range for type smallint' \
	'i I {"id":2147483648}: .*value "2147483648" is out of range for type integer' \
	'd I {"id":-5}: .*violates check constraint "pos_check"' \
	'd D {"id":-5}: .*violates check constraint "pos_check"'; do
	echo "$refused" | grep -q -- "^$want" || fail "not set aside as expected: $want"
done
expect_eq "nothing else waits" "$(pending "$C")" 0
note "integer keys: taken as sent where the hub spells them alike; the rest refused by the hub"
