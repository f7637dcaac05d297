#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# Generated columns are never shipped, whichever side generates them: a first
# sync of tables with a generated column on the hub, on the client, or on
# both, into a client that was empty and into one whose hub rows already
# exist; then changes both ways. Each node computes its own; a plain column
# on one side keeps its own values.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub types_generated
A=$SYNCQ_TMP/a.db
B=$SYNCQ_TMP/b.db

# both: generated on both sides; hub_gen: on the hub only; cli_gen: on the
# client only (virtual there)
hub "CREATE TABLE both_gen (id integer PRIMARY KEY, qty integer, price numeric(10,2),
		total numeric GENERATED ALWAYS AS (qty * price) STORED, note text);
	CREATE TABLE hub_gen (id integer PRIMARY KEY, qty integer,
		twice integer GENERATED ALWAYS AS (qty * 2) STORED);
	CREATE TABLE cli_gen (id integer PRIMARY KEY, qty integer, twice integer);
	SELECT sync_track('both_gen'); SELECT sync_track('hub_gen'); SELECT sync_track('cli_gen');
	INSERT INTO both_gen (id, qty, price, note) VALUES (1, 3, 1.25, 'hub'), (2, NULL, 2, 'no qty');
	INSERT INTO hub_gen (id, qty) VALUES (1, 21);
	INSERT INTO cli_gen VALUES (1, 5, 500);" >/dev/null
ddl="CREATE TABLE both_gen (id INTEGER PRIMARY KEY, qty INTEGER, price NUMERIC,
		total NUMERIC GENERATED ALWAYS AS (qty * price) STORED, note TEXT);
	CREATE TABLE hub_gen (id INTEGER PRIMARY KEY, qty INTEGER, twice INTEGER);
	CREATE TABLE cli_gen (id INTEGER PRIMARY KEY, qty INTEGER,
		twice INTEGER GENERATED ALWAYS AS (qty * 2) VIRTUAL);
	SELECT sync_track('both_gen'); SELECT sync_track('hub_gen'); SELECT sync_track('cli_gen');"

note "first sync of an empty client"
cli "$A" "$ddl" >/dev/null
sync "$A"
expect_eq "generated on both sides" "$(plain "$A" "SELECT id, qty, price, total, note FROM both_gen ORDER BY id")" \
	"1|3|1.25|3.75|hub
2||2||no qty"
expect_eq "generated on the hub only: not shipped" "$(plain "$A" "SELECT id, qty, twice IS NULL FROM hub_gen")" "1|21|1"
expect_eq "generated on the client only: computed there" "$(plain "$A" "SELECT id, qty, twice FROM cli_gen")" "1|5|10"

note "changes both ways"
plain "$A" "INSERT INTO both_gen (id, qty, price, note) VALUES (3, 4, 0.5, 'client');
	UPDATE both_gen SET qty = 10 WHERE id = 1;
	INSERT INTO hub_gen VALUES (2, 7, 999);
	INSERT INTO cli_gen (id, qty) VALUES (2, 8);"
sync "$A"
expect_eq "hub: generated on both sides" "$(hub "SELECT id, qty, total FROM both_gen ORDER BY id")" \
	"1|10|12.50
2||
3|4|2.00"
expect_eq "hub: its own generated column, not the client's plain value" \
	"$(hub "SELECT id, qty, twice FROM hub_gen ORDER BY id")" "1|21|42
2|7|14"
expect_eq "hub: the client's generated column is not shipped" \
	"$(hub "SELECT id, qty, twice FROM cli_gen ORDER BY id")" "1|5|500
2|8|"
expect_eq "nothing set aside on the hub" "$(hub "SELECT count(*) FROM sync_errors")" "0"
hub "UPDATE both_gen SET price = 3 WHERE id = 3; UPDATE hub_gen SET qty = 1 WHERE id = 2;
	UPDATE cli_gen SET qty = 6, twice = 600 WHERE id = 1" >/dev/null
sync "$A"
expect_eq "client: generated on both sides" "$(plain "$A" "SELECT id, total FROM both_gen ORDER BY id")" \
	"1|12.5
2|
3|12"
expect_eq "client: the hub's generated column is not shipped" \
	"$(plain "$A" "SELECT id, qty, twice FROM hub_gen ORDER BY id")" "1|21|
2|1|999"
expect_eq "client: its own generated column" "$(plain "$A" "SELECT id, qty, twice FROM cli_gen ORDER BY id")" \
	"1|6|12
2|8|16"
expect_eq "nothing set aside on the client" "$(plain "$A" "SELECT count(*) FROM sync_errors")" "0"

note "first sync of a second client, after all that"
cli "$B" "$ddl" >/dev/null
sync "$B"
expect_eq "second client" "$(plain "$B" "SELECT id, qty, total, note FROM both_gen ORDER BY id;
	SELECT id, qty, twice IS NULL FROM hub_gen ORDER BY id; SELECT id, qty, twice FROM cli_gen ORDER BY id")" \
	"1|10|12.5|hub
2|||no qty
3|4|12|client
1|21|1
2|1|1
1|6|12
2|8|16"
echo "ok"
