#!/usr/bin/env bash
# meta_version.sh — one version everywhere. pg_ext/syncq.control's
# default_version is the version; META.json, the built install script,
# common/syncq_contract.h (SYNCQ_VERSION), SELECT syncq_version() in both
# engines, `syncqd --version`, the status JSON of syncqd's control API and
# of `syncqd serve` ("version"), debian/changelog and the man page syncqd(1)
# all say the same.
. "$SYNCQ_ROOT/tests/lib/daemontest.sh"
cd "$SYNCQ_ROOT"
ctl=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" pg_ext/syncq.control)
[ -n "$ctl" ] || fail "no default_version in pg_ext/syncq.control"
for v in $(grep -o '"version" *: *"[0-9][^"]*"' META.json | grep -v '1.0.0' | sed 's/.*"\([^"]*\)"$/\1/'); do
	[ "$v" = "$ctl" ] || fail "META.json version $v != syncq.control $ctl"
done
grep -q "\"sql/syncq--$ctl.sql\"" META.json || fail "META.json does not name sql/syncq--$ctl.sql"
[ -f "sql/syncq--$ctl.sql" ] || fail "sql/syncq--$ctl.sql was not built"
head -n 3 "sql/syncq--$ctl.sql" | grep -q '^\\echo Use "CREATE EXTENSION syncq"' ||
	fail "install script lacks the \\echo guard"
expect_eq "SYNCQ_VERSION in common/syncq_contract.h" \
	"$(sed -n 's/^#define SYNCQ_VERSION[[:space:]]*"\([^"]*\)".*/\1/p' common/syncq_contract.h)" "$ctl"
expect_eq "debian/changelog" "$(dpkg-parsechangelog -l debian/changelog -S Version)" "$ctl"
grep -q "^\.TH SYNCQD 1 .* \"syncq $ctl\"" docs/syncqd.1 || fail "docs/syncqd.1 is not of syncq $ctl: $(grep '^\.TH' docs/syncqd.1)"

# the engines
new_hub meta_version
expect_eq "PostgreSQL: SELECT syncq_version()" "$(hub "SELECT syncq_version()")" "$ctl"
expect_eq "SQLite: SELECT syncq_version()" "$(cli :memory: "SELECT syncq_version();")" "$ctl"

# syncqd
expect_eq "syncqd --version" "$("$SYNCQD" --version)" "syncqd $ctl"
hub "CREATE TABLE t (id integer PRIMARY KEY); SELECT sync_track('t')" >/dev/null
C=$SYNCQ_TMP/c.db
cli "$C" "CREATE TABLE t (id INTEGER PRIMARY KEY); SELECT sync_track('t');" >/dev/null
PORT=$(free_port)
start_daemon "$C" --control "127.0.0.1:$PORT"
json_version() { python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])'; }
expect_eq "syncqd's GET /api/sync/status" "$(curl -sf "http://127.0.0.1:$PORT/api/sync/status" | json_version)" "$ctl"
stop_daemon
start_serve
expect_eq "serve's GET /api/sync/status" \
	"$(curl -sf -u "$AMRS_ADMIN_USERNAME:$AMRS_ADMIN_PASSWORD" "$ONLINE/api/sync/status" | json_version)" "$ctl"
echo "version $ctl agrees"
