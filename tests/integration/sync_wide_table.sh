#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# Wide tracked tables both ways: one of 300 columns (integer, text, double)
# and one of 1600, PostgreSQL's most (smallint and text, to fit a heap page;
# SQLite's own limit, SQLITE_MAX_COLUMN, is 2000 by default). Rows are
# inserted, updated (some values to NULL, some back) and deleted on the hub
# and on a client; after each sync every value of every row is compared
# with what was written, on the hub, the client and a second client that
# starts from the hub. Each row carries more than 256 columns and more than
# SQLite's 127 function arguments (json_object() of the row).
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_wide_table

# gen MODE TABLE NCOLS [ID V]: for table TABLE of NCOLS columns (id and
# c1..c<NCOLS-1>): MODE pg / lite: its CREATE TABLE; insert: the INSERT of
# row ID at version V; set: the UPDATE of row ID to version V; out: row ID
# at version V as SELECT * prints it. A value is NULL when (i + V) % 11 == 0
# and V > 0, so each version nulls some columns and fills others again.
gen() {
	awk -v mode="$1" -v t="$2" -v n="$3" -v id="${4:-0}" -v v="${5:-0}" '
	function kind(i) {
		if (n > 1000) return i % 8 == 0 ? "t" : "s";
		return i % 3 == 1 ? "i" : (i % 3 == 2 ? "t" : "d");
	}
	function text(i) {
		return (i % 50 == 2 ? "ü'\''" : "") "r" id "c" i "v" v;
	}
	function val(i, sql,   k, s) {
		if (v > 0 && (i + v) % 11 == 0) return sql ? "NULL" : "";
		k = kind(i);
		if (k == "t") {
			s = text(i);
			if (sql) { gsub(/'\''/, "'\'''\''", s); s = "'\''" s "'\''"; }
			return s;
		}
		if (k == "d") return id * 10 + i + v + 0.5;
		return (id * 37 + i * 3 + v * 101) % 30000;
	}
	BEGIN {
		pgtype["i"] = "integer"; pgtype["s"] = "smallint"; pgtype["t"] = "text";
		pgtype["d"] = "double precision";
		ltype["i"] = "INTEGER"; ltype["s"] = "INTEGER"; ltype["t"] = "TEXT"; ltype["d"] = "REAL";
		if (mode == "pg" || mode == "lite") {
			s = "CREATE TABLE " t " (id " (mode == "pg" ? "bigint" : "INTEGER") " PRIMARY KEY";
			for (i = 1; i < n; i++)
				s = s ", c" i " " (mode == "pg" ? pgtype[kind(i)] : ltype[kind(i)]);
			print s ");";
		} else if (mode == "insert") {
			s = "INSERT INTO " t " VALUES (" id;
			for (i = 1; i < n; i++) s = s ", " val(i, 1);
			print s ");";
		} else if (mode == "set") {
			s = "UPDATE " t " SET ";
			for (i = 1; i < n; i++) s = s (i > 1 ? ", " : "") "c" i " = " val(i, 1);
			print s " WHERE id = " id ";";
		} else {
			s = id;
			for (i = 1; i < n; i++) s = s "|" val(i, 0);
			print s;
		}
	}'
}

# want TABLE NCOLS ID:V...: the rows as SELECT * ORDER BY id prints them.
want() {
	local t=$1 n=$2 r
	shift 2
	for r in "$@"; do gen out "$t" "$n" "${r%:*}" "${r#*:}"; done
}

# check WHAT TABLE NCOLS ID:V...: the hub and client A each hold exactly
# these rows.
check() {
	local what=$1 t=$2 n=$3 w
	shift 3
	w=$(want "$t" "$n" "$@")
	expect_eq "$what: $t on the hub" "$(hub "SELECT * FROM $t ORDER BY id")" "$w"
	expect_eq "$what: $t on client a" "$(plain "$A" "SELECT * FROM $t ORDER BY id")" "$w"
}

A=$SYNCQ_TMP/a.db
B=$SYNCQ_TMP/b.db
hub "$(gen pg w300 300) $(gen pg w1600 1600)
	SELECT sync_track('w300'); SELECT sync_track('w1600');" >/dev/null
expect_eq "columns on the hub" "$(hub "SELECT count(*) FROM pg_attribute
	WHERE attrelid IN ('w300'::regclass, 'w1600'::regclass) AND attnum > 0")" "1900"
lite_ddl="$(gen lite w300 300) $(gen lite w1600 1600)"
cli "$A" "$lite_ddl" "SELECT sync_track('w300');" "SELECT sync_track('w1600');" >/dev/null
expect_eq "columns the client's repair remembers" "$(plain "$A" "SELECT table_name,
	json_array_length(columns), columns ->> '\$[299][0]' FROM syncq_tracked ORDER BY 1")" \
	"w1600|1600|c299
w300|300|c299"
sync "$A"

note "inserts on both sides, one sync"
for t in w300:300 w1600:1600; do
	hub "$(gen insert "${t%:*}" "${t#*:}" 1 0) $(gen insert "${t%:*}" "${t#*:}" 2 0)" >/dev/null
	plain "$A" "$(gen insert "${t%:*}" "${t#*:}" 11 0) $(gen insert "${t%:*}" "${t#*:}" 12 0)"
done
sync "$A"
check "inserts" w300 300 1:0 2:0 11:0 12:0
check "inserts" w1600 1600 1:0 2:0 11:0 12:0

note "updates on both sides (values to NULL and back), one sync"
for t in w300:300 w1600:1600; do
	hub "$(gen set "${t%:*}" "${t#*:}" 1 1) $(gen set "${t%:*}" "${t#*:}" 11 2)" >/dev/null
	plain "$A" "$(gen set "${t%:*}" "${t#*:}" 2 3) $(gen set "${t%:*}" "${t#*:}" 12 4)"
done
sync "$A"
check "updates" w300 300 1:1 2:3 11:2 12:4
check "updates" w1600 1600 1:1 2:3 11:2 12:4
for t in w300:300 w1600:1600; do
	plain "$A" "$(gen set "${t%:*}" "${t#*:}" 2 5)"
done
sync "$A"
check "a second update from the client" w300 300 1:1 2:5 11:2 12:4
check "a second update from the client" w1600 1600 1:1 2:5 11:2 12:4

note "deletes on both sides, one sync"
for t in w300 w1600; do
	hub "DELETE FROM $t WHERE id = 11" >/dev/null
	plain "$A" "DELETE FROM $t WHERE id = 1"
done
sync "$A"
check "deletes" w300 300 2:5 12:4
check "deletes" w1600 1600 2:5 12:4

note "a new client's first sync, then a change from it"
cli "$B" "$lite_ddl" "SELECT sync_track('w300');" "SELECT sync_track('w1600');" >/dev/null
sync "$B"
for t in w300:300 w1600:1600; do
	expect_eq "first sync: ${t%:*} on client b" "$(plain "$B" "SELECT * FROM ${t%:*} ORDER BY id")" \
		"$(want "${t%:*}" "${t#*:}" 2:5 12:4)"
	plain "$B" "$(gen insert "${t%:*}" "${t#*:}" 21 6)"
done
sync "$B"
sync "$A"
check "relayed through the hub" w300 300 2:5 12:4 21:6
check "relayed through the hub" w1600 1600 2:5 12:4 21:6

note "a foreign key of 65 columns on the client holds a child until its parent"
ks=$(seq -s, -f 'k%g' 65)
hub "CREATE TABLE wmom (id bigint PRIMARY KEY, $(seq -s, -f 'k%g integer' 65));
	CREATE TABLE wkid (id bigint PRIMARY KEY, $(seq -s, -f 'k%g integer' 65));
	SELECT sync_track('wmom'); SELECT sync_track('wkid');" >/dev/null
cli "$A" "CREATE TABLE wmom (id INTEGER PRIMARY KEY, $(seq -s, -f 'k%g INTEGER' 65), UNIQUE ($ks));
	CREATE TABLE wkid (id INTEGER PRIMARY KEY, $(seq -s, -f 'k%g INTEGER' 65),
		FOREIGN KEY ($ks) REFERENCES wmom ($ks));" \
	"SELECT sync_track('wmom');" "SELECT sync_track('wkid');" >/dev/null
hub "INSERT INTO wkid VALUES (1, $(seq -s, 101 165))" >/dev/null
sync "$A"
expect_eq "the child waits on a" "$(plain "$A" "SELECT count(*) FROM wkid")" "0"
last_log | grep -q "down 1 rows, 0 applied, 0 overruled; set aside 0 up, 1 down;" ||
	fail "the set-aside child counted otherwise: $(last_log)"
why=$(plain "$A" "SELECT table_name || ' ' || error FROM sync_errors")
[[ "$why" == 'wkid "wkid" {"id":1}: its (k1, k2, '*', k65) (101, 102, '*', 165) is not in "wmom" here'* ]] ||
	fail "the child of a 65-column key is not set aside for its parent: $why"
hub "INSERT INTO wmom VALUES (7, $(seq -s, 101 165))" >/dev/null
sync "$A"	# the parent
sync "$A"	# the child, tried again before the download
last_log | grep -q "set-aside changes through now 0 up, 1 down" || fail "the child's retry not counted: $(last_log)"
expect_eq "the child with its parent on a" "$(plain "$A" "SELECT id, k1, k65 FROM wkid")" "1|101|165"

expect_eq "nothing set aside" "$(set_aside "$A" "$B")" ""
expect_eq "nothing pending on a" "$(pending "$A")" "0"
expect_eq "nothing pending on b" "$(pending "$B")" "0"
echo "ok"
