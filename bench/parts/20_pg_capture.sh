#!/usr/bin/env bash
# bench/parts/20_pg_capture.sh — what capture costs in PostgreSQL.
#
# Four tables of one shape (id bigint PK, qty int, name text, price numeric,
# at timestamptz), side by side in one run:
#   bare      no capture
#   C         sync_track(): our C trigger, priority immediate (NOTIFY once per transaction)
#   PL/pgSQL  the same capture as a PL/pgSQL row trigger: to_jsonb(NEW) into
#             the same sync_queue, pg_notify per row
#   floor     the app writes its row and the queue row itself, in one
#             statement (a data-modifying CTE), and does not even NOTIFY
#             (so the floor is the stricter one: our trigger does)
# 100,000-row INSERT ... SELECT, UPDATE and DELETE, median of 7 (rows/s);
# then single-row INSERT transactions from 2 pgbench clients with
# synchronous_commit=off (tps, median of 3 interleaved runs of 5 s).
#
# bench/run gives PGHOST/PGPORT/PGUSER (a throwaway cluster with syncq
# installed), PG_BINDIR and SYNCQ_TMP.
set -euo pipefail

DB=syncq_bench_capture
ROWS=${SYNCQ_BENCH_ROWS:-100000}
RUNS=${SYNCQ_BENCH_RUNS:-7}
PGBENCH_SECONDS=${SYNCQ_BENCH_SECONDS:-5}
PGBENCH_ROUNDS=${SYNCQ_BENCH_ROUNDS:-3}
TMP=${SYNCQ_TMP:-$(mktemp -d)}
BIN=${PG_BINDIR:-$(pg_config --bindir)}
VARIANTS="bare c plpgsql floor"

export PGOPTIONS="-c client_min_messages=warning"
psql_db() { "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

"$BIN/psql" -X -q -v ON_ERROR_STOP=1 -d postgres \
	-c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null

psql_db >/dev/null <<'SQL'
CREATE EXTENSION syncq;
SELECT sync_node_id();
CREATE TABLE t_bare (id bigint PRIMARY KEY, qty int, name text, price numeric(12,2), at timestamptz);
CREATE TABLE t_c (LIKE t_bare INCLUDING ALL);
CREATE TABLE t_plpgsql (LIKE t_bare INCLUDING ALL);
CREATE TABLE t_floor (LIKE t_bare INCLUDING ALL);
SELECT sync_track('t_c', 'immediate');

CREATE FUNCTION plpgsql_capture() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		INSERT INTO sync_queue (txid, table_schema, table_name, op, pk, row_data, changed_at, origin, priority)
		VALUES (pg_current_xact_id(), TG_TABLE_SCHEMA, TG_TABLE_NAME, 'D',
				jsonb_build_object('id', OLD.id), NULL, clock_timestamp(), sync_node_id(), 'immediate');
	ELSE
		INSERT INTO sync_queue (txid, table_schema, table_name, op, pk, row_data, changed_at, origin, priority)
		VALUES (pg_current_xact_id(), TG_TABLE_SCHEMA, TG_TABLE_NAME, left(TG_OP, 1),
				jsonb_build_object('id', NEW.id), to_jsonb(NEW), clock_timestamp(), sync_node_id(), 'immediate');
	END IF;
	PERFORM pg_notify('sync_queue', 'change');
	RETURN NULL;
END $$;
CREATE TRIGGER plpgsql_capture AFTER INSERT OR UPDATE OR DELETE ON t_plpgsql
	FOR EACH ROW EXECUTE FUNCTION plpgsql_capture();
SQL
NODE=$(psql_db -At -c "SELECT sync_node_id()")

# The statements of one variant: insert, update, delete.
stmt() {					# stmt VARIANT OP
	local v=$1 op=$2 src
	src="SELECT g, g % 100, 'item ' || g, g * 0.25, timestamptz '2025-01-01' + g * interval '1 s' FROM generate_series(1, $ROWS) g"
	if [ "$v" != floor ]; then
		case $op in
		insert) echo "INSERT INTO t_$v $src;" ;;
		update) echo "UPDATE t_$v SET qty = qty + 1;" ;;
		delete) echo "DELETE FROM t_$v;" ;;
		esac
		return
	fi
	local q="INSERT INTO sync_queue (txid, table_schema, table_name, op, pk, row_data, changed_at, origin, priority)"
	local tail="clock_timestamp(), '$NODE', 'immediate'"
	case $op in
	insert) echo "WITH w AS (INSERT INTO t_floor $src RETURNING *) $q SELECT pg_current_xact_id(), 'public', 't_floor', 'I', json_build_object('id', w.id), to_json(w), $tail FROM w;" ;;
	update) echo "WITH w AS (UPDATE t_floor SET qty = qty + 1 RETURNING *) $q SELECT pg_current_xact_id(), 'public', 't_floor', 'U', json_build_object('id', w.id), to_json(w), $tail FROM w;" ;;
	delete) echo "WITH w AS (DELETE FROM t_floor RETURNING id) $q SELECT pg_current_xact_id(), 'public', 't_floor', 'D', json_build_object('id', w.id), NULL, $tail FROM w;" ;;
	esac
}

# One psql session per run: every variant's insert, update and delete, each
# its own transaction, timed by psql; the queue emptied between variants.
: >"$TMP/times"
for run in $(seq "$RUNS"); do
	{
		echo "SET syncq.capture = off;"
		echo "TRUNCATE t_bare, t_c, t_plpgsql, t_floor, sync_queue;"
		echo "RESET syncq.capture;"
		echo "CHECKPOINT;"
		for v in $VARIANTS; do
			for op in insert update delete; do
				echo "\\echo T $v $op"
				echo "\\timing on"
				stmt "$v" "$op"
				echo "\\timing off"
			done
			echo "TRUNCATE sync_queue;"
			echo "VACUUM t_$v;"
		done
	} >"$TMP/run.sql"
	psql_db -f "$TMP/run.sql" 2>&1 | awk '
		/^T / { v = $2; op = $3; next }
		/^Time: / && v != "" { print v, op, $2; v = "" }' >>"$TMP/times"
done

# rows/s of the median time of VARIANT OP
rate() {
	awk -v v="$1" -v op="$2" -v rows="$ROWS" '$1 == v && $2 == op { print $3 }' "$TMP/times" |
		sort -n | awk -v rows="$ROWS" '{ t[NR] = $1 } END { m = t[int((NR + 1) / 2)]; printf "%d", rows / (m / 1000) }'
}
human() { awk -v n="$1" 'BEGIN { if (n >= 1e6) printf "%.2fM", n / 1e6; else printf "%dk", n / 1000 + 0.5 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

echo "### PostgreSQL capture: ${ROWS} rows in one statement (rows/s, median of $RUNS)"
echo
echo "| 100k rows, one statement | bare | C trigger (ours) | PL/pgSQL trigger | floor (CTE) | ours/floor | ours/PL/pgSQL |"
echo "|---|---|---|---|---|---|---|"
for op in insert update delete; do
	b=$(rate bare $op); c=$(rate c $op); p=$(rate plpgsql $op); f=$(rate floor $op)
	echo "| ${op^^} | $(human "$b") | $(human "$c") | $(human "$p") | $(human "$f") | $(ratio "$c" "$f") | $(ratio "$c" "$p") |"
done

# --- single-row transactions, 2 pgbench clients -----------------------------
psql_db -c "SET syncq.capture = off" -c "TRUNCATE t_bare, t_c, t_plpgsql, t_floor, sync_queue" >/dev/null
for v in $VARIANTS; do
	if [ "$v" = floor ]; then
		cat >"$TMP/pgbench_$v.sql" <<SQL
\\set id random(1, 9000000000000000000)
WITH w AS (INSERT INTO t_floor VALUES (:id, 1, 'item', 9.75, now()) RETURNING *) INSERT INTO sync_queue (txid, table_schema, table_name, op, pk, row_data, changed_at, origin, priority) SELECT pg_current_xact_id(), 'public', 't_floor', 'I', json_build_object('id', w.id), to_json(w), clock_timestamp(), '$NODE', 'immediate' FROM w;
SQL
	else
		cat >"$TMP/pgbench_$v.sql" <<SQL
\\set id random(1, 9000000000000000000)
INSERT INTO t_$v VALUES (:id, 1, 'item', 9.75, now());
SQL
	fi
done
# Interleaved rounds, the median of each variant.
: >"$TMP/tps"
for round in $(seq "$PGBENCH_ROUNDS"); do
	for v in $VARIANTS; do
		PGOPTIONS="$PGOPTIONS -c synchronous_commit=off" "$BIN/pgbench" -n -M prepared -c 2 -j 2 \
			-T "$PGBENCH_SECONDS" -f "$TMP/pgbench_$v.sql" "$DB" 2>&1 |
			awk -v v="$v" '/^tps = / { printf "%s %d\n", v, $3 }' >>"$TMP/tps"
	done
done
declare -A TPS
for v in $VARIANTS; do
	TPS[$v]=$(awk -v v="$v" '$1 == v { print $2 }' "$TMP/tps" | sort -n |
		awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }')
done
echo
echo "### PostgreSQL capture: single-row INSERT transactions, 2 pgbench clients, synchronous_commit=off (tps, median of $PGBENCH_ROUNDS runs of ${PGBENCH_SECONDS} s)"
echo
echo "| single-row INSERT | bare | C trigger (ours) | PL/pgSQL trigger | floor (CTE) | ours/floor | ours/PL/pgSQL |"
echo "|---|---|---|---|---|---|---|"
echo "| tps | $(human "${TPS[bare]}") | $(human "${TPS[c]}") | $(human "${TPS[plpgsql]}") | $(human "${TPS[floor]}") | $(ratio "${TPS[c]}" "${TPS[floor]}") | $(ratio "${TPS[c]}" "${TPS[plpgsql]}") |"

"$BIN/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null
