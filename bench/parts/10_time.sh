#!/usr/bin/env bash
# The time vocabulary over 1,000,000 rows: our eastern_date(x) against the
# engines' own built-ins on the same rows, median of 5 runs each.
set -euo pipefail
N=1000000
RUNS=5

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# --- SQLite -------------------------------------------------------------------
db=$SYNCQ_TMP/time.db
sqlite3 "$db" <<SQL
CREATE TABLE t(x TEXT);
WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < $N - 1)
INSERT INTO t SELECT strftime('%Y-%m-%dT%H:%M:%SZ', 1700000000 + i * 37, 'unixepoch') FROM c;
SQL
sqlite_time() {		# seconds for one full scan with expression $1
	local i
	for i in $(seq $RUNS); do
		printf '.load %s\n.timer on\nSELECT count(%s) FROM t;\n' "$SYNCQ_SQLITE_EXT" "$1" |
			sqlite3 "$db" | sed -n 's/^Run Time: real \([0-9.]*\).*/\1/p'
	done | median
}
s_builtin=$(sqlite_time 'date(x)')
s_ours=$(sqlite_time 'eastern_date(x)')
s_zone=$(sqlite_time "zone_date(x, 'Europe/London')")

# --- PostgreSQL ---------------------------------------------------------------
export PGDATABASE=bench_time
psql -X -q -d postgres -c "CREATE DATABASE bench_time"
psql -X -q <<SQL
CREATE EXTENSION syncq;
CREATE TABLE t AS SELECT to_timestamp(1700000000 + i * 37) AS x FROM generate_series(0, $N - 1) AS i;
VACUUM ANALYZE t;
SQL
pg_time() {
	local i
	for i in $(seq $RUNS); do
		printf 'SET max_parallel_workers_per_gather = 0;\n\\timing on\nSELECT count(%s) FROM t;\n' "$1" |
			psql -X -q | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | awk '{printf "%.3f\n", $1 / 1000}'
	done | median
}
p_builtin=$(pg_time "(x AT TIME ZONE 'America/New_York')::date")
p_ours=$(pg_time 'eastern_date(x)')
p_zone=$(pg_time "zone_date(x, 'Europe/London')")

rate() { awk -v n=$N -v s="$1" 'BEGIN { printf "%.2fM rows/s", n / s / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
echo "### Time vocabulary: 1,000,000 rows, one scan (median of $RUNS)"
echo
echo "| engine | built-in | s | syncq | s | time ratio (syncq / built-in) |"
echo "|---|---|---|---|---|---|"
echo "| SQLite | \`date(x)\` | $s_builtin | \`eastern_date(x)\` | $s_ours | $(ratio "$s_ours" "$s_builtin") |"
echo "| SQLite | \`date(x)\` | $s_builtin | \`zone_date(x, 'Europe/London')\` | $s_zone | $(ratio "$s_zone" "$s_builtin") |"
echo "| PostgreSQL | \`(x AT TIME ZONE 'America/New_York')::date\` | $p_builtin | \`eastern_date(x)\` | $p_ours | $(ratio "$p_ours" "$p_builtin") |"
echo "| PostgreSQL | \`(x AT TIME ZONE 'America/New_York')::date\` | $p_builtin | \`zone_date(x, 'Europe/London')\` | $p_zone | $(ratio "$p_zone" "$p_builtin") |"
echo
echo "Throughput: SQLite eastern_date $(rate "$s_ours"), PostgreSQL eastern_date $(rate "$p_ours")."
