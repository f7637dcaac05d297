#!/usr/bin/env bash
# syncqd serve with 50 clients at once (issue 15), beside one client, on one
# hub behind one serve: first one client uploads CLIENTS * PER rows alone;
# then 50 clients upload PER rows each, all at once (syncqd --once each),
# and then download what the others uploaded. The upload of the 50 is timed
# on the hub: from the start of the round until the hub holds every row
# (one connection polls every 50 ms, on the hub: a psql started per poll
# took seconds to connect with 50 clients busy), since each client's --once
# also downloads what the others have uploaded by then. Beside it, the CPU
# each side spent meanwhile (all of them share the 2 cores): the hub's
# backends that serve uses, serve, and the 50 clients (their whole --once,
# downloads included).
set -euo pipefail
. "$SYNCQ_ROOT/bench/lib/sync.sh"
CLIENTS=${SYNCQ_BENCH_CLIENTS:-50}
PER=${SYNCQ_BENCH_PER:-2000}
T=$SYNCQ_TMP
export AMRS_ADMIN_USERNAME=bench AMRS_ADMIN_PASSWORD=bench-pw
psql -X -q -d postgres -c "CREATE DATABASE bench_many"
HUB="host=$PGHOST port=$PGPORT user=postgres dbname=bench_many"
hub() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$HUB" -c "$1"; }
hub "CREATE EXTENSION syncq;
	CREATE TABLE one (id text PRIMARY KEY, v integer); SELECT sync_track('one');
	CREATE TABLE many (id text PRIMARY KEY, v integer); SELECT sync_track('many');" >/dev/null
"$SYNCQD" serve --postgres "$HUB" --listen 127.0.0.1:0 --pool 8 2>"$T/serve.log" &
SERVE=$!
trap 'kill $SERVE 2>/dev/null || true' EXIT
for i in $(seq 200); do grep -q 'listening on' "$T/serve.log" && break; sleep 0.05; done
URL=http://127.0.0.1:$(sed -nE 's/.*listening on [^ ]*:([0-9]+) .*/\1/p' "$T/serve.log")
ddl="CREATE TABLE one (id TEXT PRIMARY KEY, v INTEGER); SELECT sync_track('one');
	CREATE TABLE many (id TEXT PRIMARY KEY, v INTEGER); SELECT sync_track('many');"
rows_up=$((CLIENTS * PER))

# one client alone: the same rows, the same table shape
printf '.load %s\n%s\n' "$SYNCQ_SQLITE_EXT" "$ddl" | sqlite3 "$T/one.db" >/dev/null
timed "$T/one.db" "$URL" >/dev/null
sqlite3 "$T/one.db" "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < $rows_up)
	INSERT INTO one SELECT 'one-' || x, x FROM s;"
one_up=$(timed "$T/one.db" "$URL")
[ "$(hub "SELECT count(*) FROM one")" = "$rows_up" ] || { echo "one client: upload incomplete"; exit 1; }

for i in $(seq "$CLIENTS"); do
	f=$T/m$i.db
	printf '.load %s\n%s\n' "$SYNCQ_SQLITE_EXT" "$ddl" | sqlite3 "$f" >/dev/null
	"$SYNCQD" --sqlite "$f" --online "$URL" --once 2>>"$T/syncqd.log"
	sqlite3 "$f" "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < $PER)
		INSERT INTO many SELECT '$i-' || x, x FROM s;"
done
# CPU seconds a process has used so far (0 once it is gone)
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# the CPU seconds of serve's hub backends (application_name syncqd) now
hub_cpu() {
	local t=0 p
	for p in $(hub "SELECT pid FROM pg_stat_activity WHERE application_name = 'syncqd'"); do
		t=$(awk -v a="$t" -v b="$(cpu_of "$p")" 'BEGIN { printf "%.2f", a + b }')
	done
	echo "$t"
}
# the children's CPU seconds (user + system) in what `times` wrote to FILE
children_cpu() { awk 'NR == 2 { gsub(/[ms]/, " "); print $1 * 60 + $2 + $3 * 60 + $4 }' "$1"; }
# round [POLL]: every client's syncqd --once at once; the seconds until all
# ended, and with POLL, first the seconds until the hub held every row, and
# the CPU seconds the hub's backends, serve and the clients used
round() {
	local start pids=() up="" w hub0 serve0 full=$T/full_at i h s
	hub0=$(hub_cpu)
	serve0=$(cpu_of "$SERVE")
	times >"$T/times.0"		# (here: round runs in a subshell of its own)
	start=$(now)
	for i in $(seq "$CLIENTS"); do
		"$SYNCQD" --sqlite "$T/m$i.db" --online "$URL" --once 2>>"$T/syncqd.log" &
		pids+=($!)
	done
	if [ -n "${1:-}" ]; then
		rm -f "$full"
		{ hub "DO \$\$ BEGIN WHILE (SELECT count(*) FROM many) < $rows_up LOOP PERFORM pg_sleep(0.05); END LOOP; END \$\$" &&
			echo "$(elapsed "$start") $(hub_cpu) $(cpu_of "$SERVE")" >"$full"; } &
		w=$!
	fi
	for p in "${pids[@]}"; do wait "$p" || { tail -n 3 "$T/syncqd.log" >&2; return 1; }; done
	if [ -n "${1:-}" ]; then
		for i in $(seq 100); do kill -0 "$w" 2>/dev/null || break; sleep 0.05; done
		pkill -P "$w" 2>/dev/null || true
		kill "$w" 2>/dev/null && { echo "50 clients: every --once ended before the hub had every row" >&2; return 1; }
		wait "$w" || true
		read -r up h s <"$full"
		up="$up $(awk -v a="$h" -v b="$hub0" 'BEGIN { printf "%.2f", a - b }') $(awk -v a="$s" -v b="$serve0" 'BEGIN { printf "%.2f", a - b }') "
		times >"$T/times.1"
		up="$up$(awk -v a="$(children_cpu "$T/times.1")" -v b="$(children_cpu "$T/times.0")" 'BEGIN { printf "%.2f", a - b }') "
	fi
	echo "$up$(elapsed "$start")"
}
read -r many_up hub_s serve_s kids_s many_up_all < <(round poll)	# every client uploads its rows (and downloads what is there)
[ "$(hub "SELECT count(*) FROM many")" = "$rows_up" ] || { echo "50 clients: upload incomplete"; exit 1; }
many_down=$(round)		# every client downloads what the others uploaded
got=$(sqlite3 "$T/m1.db" "SELECT count(*) FROM many")
[ "$got" = "$rows_up" ] || { echo "50 clients: client 1 has $got rows, not $rows_up"; exit 1; }

echo "### syncqd serve: $CLIENTS clients at once beside one client (one hub, one serve, --pool 8)"
echo
echo "| work | rows | s | rows/s | aim |"
echo "|---|---|---|---|---|"
echo "| one client uploads $rows_up rows | $rows_up | $one_up | $(rate $rows_up "$one_up") | |"
echo "| $CLIENTS clients upload $PER rows each, at once (until the hub holds all) | $rows_up | $many_up | $(rate $rows_up "$many_up") | >= 20,000 rows/s |"
echo "| ... $CLIENTS clients / one client (rows/s) | | | $(ratio "$one_up" "$many_up") | >= 1.5x |"
echo "| ... until every --once ended (each also downloads what is there) | $rows_up | $many_up_all | $(rate $rows_up "$many_up_all") | |"
echo "| ... CPU until the hub held all: serve's hub backends (uploads, and the downloads meanwhile) | $rows_up | $hub_s | $(rate $rows_up "$hub_s") per CPU-s | |"
echo "| ... CPU until the hub held all: serve | $rows_up | $serve_s | $(rate $rows_up "$serve_s") per CPU-s | |"
echo "| ... CPU of the $CLIENTS clients, each whole --once (downloads included) | $rows_up | $kids_s | | |"
echo "| each downloads the other $((CLIENTS - 1)) clients' rows | $((rows_up * (CLIENTS - 1))) | $many_down | $(rate $((rows_up * (CLIENTS - 1))) "$many_down") | |"
