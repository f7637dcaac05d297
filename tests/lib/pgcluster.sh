# tests/lib/pgcluster.sh — a throwaway PostgreSQL 15 cluster in a temp dir.
#
# Source it, then:
#   pgc_start DIR     initdb + start in DIR (as the postgres user when root),
#                     on a free TCP port of 127.0.0.1 and a unix socket in DIR;
#                     exports PGHOST PGPORT PGUSER PGDATABASE
#   pgc_stop DIR      fast shutdown (safe to call twice, and on failure)
#   pgc_restart DIR   restart with the same settings
# Extra postgresql.conf lines may be given in $PGC_CONF before pgc_start.

PG_BINDIR=${PG_BINDIR:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
# Debian's pg_config can be PostgreSQL 16's; the cluster must be 15.
[ -z "${SYNCQ_PG_BINDIR:-}" ] && [ -x /usr/lib/postgresql/15/bin/postgres ] && PG_BINDIR=/usr/lib/postgresql/15/bin
PG_BINDIR=${SYNCQ_PG_BINDIR:-$PG_BINDIR}

# Run a server program as the cluster owner: root may not run PostgreSQL.
pgc_as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pgc_port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pgc_start() {
	local dir=$1 port tries=0
	mkdir -p "$dir"
	[ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
	pgc_as_owner "$PG_BINDIR/initdb" -D "$dir/data" -A trust -U postgres \
		-E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 || {
		echo "pgcluster: initdb failed:" >&2; tail -n 20 "$dir/initdb.log" >&2; return 1; }
	{
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$dir'"
		echo "fsync = off"
		echo "max_connections = 200"
		echo "log_min_messages = warning"
		echo "timezone = 'UTC'"
		if [ -n "${PGC_CONF:-}" ]; then printf '%s\n' "$PGC_CONF"; fi
	} | pgc_as_owner tee -a "$dir/data/postgresql.conf" >/dev/null
	while :; do
		port=$((20000 + RANDOM % 30000))
		pgc_port_free "$port" || continue
		if pgc_as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
			-o "-p $port" -w -t 60 start >/dev/null 2>&1; then
			break
		fi
		tries=$((tries + 1))
		if [ "$tries" -ge 5 ]; then
			echo "pgcluster: could not start PostgreSQL:" >&2
			tail -n 20 "$dir/server.log" >&2
			return 1
		fi
	done
	echo "$port" >"$dir/port"
	export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=postgres
}

pgc_stop() {
	local dir=$1
	[ -f "$dir/data/postmaster.pid" ] || return 0
	pgc_as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

pgc_restart() {
	local dir=$1
	pgc_as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
		-o "-p $(cat "$dir/port")" -m fast -w -t 60 restart >/dev/null
}
