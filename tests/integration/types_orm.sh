#!/usr/bin/env bash
# syncqd-asan
# Values exactly as apps read them: one SQLAlchemy model (tests/orm/types_orm.py)
# on the hub (psycopg2) and on two SQLite clients (Python's sqlite3), tracked
# there with the sqlalchemy forms. Every node writes rows of every type, then
# changes another node's rows; after syncqd ran, every node reads every row
# through the ORM as the typed value that was written (datetimes, Decimals,
# dicts, floats with +-inf, bytes, UUIDs, timedeltas, lists; a generated
# column computed by each node). Range queries and ORDER BY on timestamps
# around the DST changes give the same rows in the same order everywhere. A
# client's uuid key in upper case is the hub's row, not a second one.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub types_orm
PY=/usr/bin/python3
ORM=$SYNCQ_ROOT/tests/orm/types_orm.py
HUBURL="postgresql+psycopg2://postgres@/types_orm?host=$PGHOST&port=$PGPORT"
A=$SYNCQ_TMP/a.db
B=$SYNCQ_TMP/b.db
orm() { "$PY" "$ORM" "$@" || fail "types_orm.py $*"; }

note "the same model on the hub and two clients"
orm schema "$HUBURL"
hub "SELECT sync_track('kinds'); SELECT sync_track('stamps'); SELECT sync_track('tags');" >/dev/null
for f in "$A" "$B"; do
	orm schema "sqlite:///$f"
	cli "$f" "SELECT sync_track('kinds', 'immediate', NULL, 'sqlalchemy');
		SELECT sync_track('stamps', 'immediate', NULL, 'sqlalchemy');
		SELECT sync_track('tags', 'immediate', NULL, 'sqlalchemy');" >/dev/null
	sync "$f"
done

note "every node writes its rows; after the syncs every node reads them all back"
orm write hub "$HUBURL"
orm write a "sqlite:///$A"
orm write b "sqlite:///$B"
sync "$A"; sync "$B"; sync "$A"
orm check 1 "$HUBURL" "sqlite:///$A" "sqlite:///$B"

note "every node changes another node's rows"
orm update hub "$HUBURL"
orm update a "sqlite:///$A"
orm update b "sqlite:///$B"
sync "$A"; sync "$B"; sync "$A"
orm check 2 "$HUBURL" "sqlite:///$A" "sqlite:///$B"
expect_eq "nothing set aside on the hub" "$(hub "SELECT count(*) FROM sync_errors")" "0"
for f in "$A" "$B"; do
	expect_eq "nothing set aside on $(basename "$f")" "$(plain "$f" "SELECT count(*) FROM sync_errors")" "0"
done

note "one form per column on the clients: whatever node wrote the row"
for f in "$A" "$B"; do
	expect_eq "timestamps of $(basename "$f")" "$(plain "$f" "SELECT count(*) FROM kinds
		WHERE at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]'")" "0"
	expect_eq "+-Infinity as REAL on $(basename "$f")" \
		"$(plain "$f" "SELECT group_concat(DISTINCT typeof(ratio)) FROM kinds WHERE abs(ratio) > 1e308")" "real"
done

note "range queries and ORDER BY around the DST changes: the same rows, the same order"
orm dst-write hub "$HUBURL"
orm dst-write a "sqlite:///$A"
sync "$A"; sync "$B"; sync "$A"
orm dst-check "$HUBURL" "sqlite:///$A" "sqlite:///$B"

note "a uuid key spelt in upper case on a client is the hub's row"
orm tag-write "sqlite:///$A"
sync "$A"
orm tag-check "from the client" "$HUBURL"
hub "UPDATE tags SET label = 'edited on the hub'" >/dev/null
sync "$A"
sync "$B"
orm tag-check "edited on the hub" "sqlite:///$A" "sqlite:///$B"
echo "ok"
