#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# docs/replication.md's type examples, run: each row of the table after the
# marker "type examples" is a hub table of one column of that type holding
# the hub value; after a sync the client (a column declared without a type,
# so SQLite keeps exactly what syncqd writes, in the row's form) reads the
# typeof and value the row gives; the client writes its value, and after a
# sync the hub reads the row's sixth column, and the client holds its own
# value as the last column says (client/respell.c), with nothing queued.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub types_table
DOC=$SYNCQ_ROOT/docs/replication.md
A=$SYNCQ_TMP/a.db

# the rows: hub type, hub value, form, client reads, client writes, hub reads,
# client holds
ROWS=$SYNCQ_TMP/rows.tsv
awk '/<!-- type examples/ { on = 1; next }
	on && /^\| `/ {
		n = split($0, c, / \| /)
		line = ""
		for (i = 1; i <= n; i++) {
			v = c[i]
			sub(/^\| /, "", v); sub(/ \|$/, "", v)
			sub(/^`/, "", v); sub(/`$/, "", v)
			line = line (i > 1 ? "\t" : "") v
		}
		print line
		next
	}
	on && !/^\|/ { exit }' "$DOC" >"$ROWS"
n=$(wc -l <"$ROWS")
[ "$n" -ge 30 ] || fail "docs/replication.md has only $n type examples"
awk -F'\t' 'NF != 7 { print "a type example without 7 cells: " $0; bad = 1 } END { exit bad }' "$ROWS" ||
	fail "malformed type examples"

note "$n examples from docs/replication.md"
{
	echo "CREATE TYPE mood AS ENUM ('calm', 'busy'); CREATE EXTENSION citext;"
	i=0
	while IFS=$'\t' read -r type value form reads writes back holds; do
		i=$((i + 1))
		echo "CREATE TABLE t$i (id integer PRIMARY KEY, v $type); SELECT sync_track('t$i');"
		echo "INSERT INTO t$i VALUES (1, $value);"
	done <"$ROWS"
} | psql -X -q -v ON_ERROR_STOP=1 -d "$HUB" >/dev/null
i=0
while IFS=$'\t' read -r type value form reads writes back holds; do
	i=$((i + 1))
	echo "CREATE TABLE t$i (id INTEGER PRIMARY KEY, v);"
	echo "SELECT sync_track('t$i', 'immediate', NULL, '$form');"
done <"$ROWS" | { printf '.load %s\n' "$SYNCQ_SQLITE_EXT"; cat; } | sqlite3 -bail "$A" >/dev/null
sync "$A"

shown() {	# shown FILE TABLE: typeof and value, as the table's fourth column
	plain "$1" "SELECT typeof(v) || ' ' || CASE typeof(v) WHEN 'blob' THEN 'x''' || hex(v) || ''''
		ELSE CAST(v AS TEXT) END FROM $2"
}

note "hub -> client"
i=0
while IFS=$'\t' read -r type value form reads writes back holds; do
	i=$((i + 1))
	expect_eq "$type $value ($form form) on the client" "$(shown "$A" "t$i")" "$reads"
done <"$ROWS"

note "client -> hub"
i=0
while IFS=$'\t' read -r type value form reads writes back holds; do
	i=$((i + 1))
	echo "UPDATE t$i SET v = $writes;"
done <"$ROWS" | sqlite3 -bail "$A"
sync "$A"
i=0
while IFS=$'\t' read -r type value form reads writes back holds; do
	i=$((i + 1))
	expect_eq "$type: the client's $writes on the hub" "$(hub "SELECT v::text FROM t$i")" "$back"
	expect_eq "$type: the client's $writes, held as the hub's would be" "$(shown "$A" "t$i")" "$holds"
done <"$ROWS"
expect_eq "nothing queued by the respelling" "$(pending "$A")" "0"
expect_eq "nothing set aside" "$(hub "SELECT count(*) FROM sync_errors")" "0"
echo "ok"
