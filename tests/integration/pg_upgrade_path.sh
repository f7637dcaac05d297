#!/usr/bin/env bash
# pg_upgrade_path.sh — the PostgreSQL extension's upgrade path: a database
# made at every released version (sql/syncq--X.Y.Z.sql, committed and never
# edited) and brought up with ALTER EXTENSION syncq UPDATE holds exactly
# the objects of a fresh CREATE EXTENSION syncq at the current version:
# every member, definition, privilege, comment and config-dump setting.
# pg_dump --binary-upgrade writes the members out (a plain dump only names
# the extension); the OIDs and xids it pins are the only lines that may
# differ.
set -euo pipefail
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
cd "$SYNCQ_ROOT"

cur=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" pg_ext/syncq.control)
dump() {	# dump DB: the extension's members, OIDs left out
	pg_dump --binary-upgrade --schema-only --no-owner -d "host=$PGHOST port=$PGPORT user=postgres dbname=$1" |
		grep -v -E "binary_upgrade_set_next_|^-- |^SET |^SELECT pg_catalog.set_config|^\\\\(un)?restrict |^WHERE oid = '[0-9]+';\$|^\$" |
		sed -E "s/'\\{[0-9,]+\\}'/'{config tables}'/"
	# the config tables of pg_dump, by name rather than OID (in name order:
	# an upgrade script registers its new ones after the old ones)
	psql -X -At -d "$1" -c "SELECT string_agg(t::regclass::text || ' ' || quote_literal(c), ', ' ORDER BY t::regclass::text)
		FROM pg_extension, unnest(extconfig, extcondition) AS u(t, c) WHERE extname = 'syncq'"
}
fresh() {	# fresh DB [VERSION]
	psql -X -q -d postgres -c "SET client_min_messages = warning" \
		-c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null
	psql -X -q -v ON_ERROR_STOP=1 -d "$1" -c "CREATE EXTENSION syncq${2:+ VERSION '$2'}" >/dev/null
}

fresh up_fresh
dump up_fresh >"$SYNCQ_TMP/fresh.sql"
grep -q 'CREATE FUNCTION public.sync_track' "$SYNCQ_TMP/fresh.sql" ||
	fail "pg_dump --binary-upgrade did not write the extension's members"

n=0
for f in sql/syncq--[0-9]*.[0-9]*.[0-9]*.sql; do
	v=${f#sql/syncq--}; v=${v%.sql}
	[[ $v == *--* || $v == "$cur" ]] && continue	# an upgrade script; the current version
	n=$((n + 1))
	fresh up_from "$v"
	psql -X -q -v ON_ERROR_STOP=1 -d up_from -c "ALTER EXTENSION syncq UPDATE" >/dev/null
	got=$(psql -X -At -d up_from -c "SELECT extversion FROM pg_extension WHERE extname = 'syncq'")
	[ "$got" = "$cur" ] || fail "ALTER EXTENSION syncq UPDATE from $v ended at $got, not $cur"
	dump up_from >"$SYNCQ_TMP/from-$v.sql"
	if ! diff -u "$SYNCQ_TMP/fresh.sql" "$SYNCQ_TMP/from-$v.sql" >"$SYNCQ_TMP/from-$v.diff"; then
		head -n 60 "$SYNCQ_TMP/from-$v.diff"
		fail "$v upgraded to $cur differs from a fresh $cur (above: - fresh, + upgraded)"
	fi
	note "$v -> $cur: $(grep -c '' "$SYNCQ_TMP/fresh.sql") lines of definitions alike"
done
[ "$n" -gt 0 ] || note "no released version before $cur"
# a released script is never edited: the tag's text, byte for byte (past
# its first comment line)
if git rev-parse -q --verify 'v0.1.0^{commit}' >/dev/null 2>&1; then
	for f in $(git ls-tree --name-only v0.1.0 sql/src/ | sort); do git show "v0.1.0:$f"; done >"$SYNCQ_TMP/tag.sql"
	tail -n +3 sql/syncq--0.1.0.sql | cmp -s - "$SYNCQ_TMP/tag.sql" ||
		fail "sql/syncq--0.1.0.sql is not the SQL released as v0.1.0"
	note "sql/syncq--0.1.0.sql is v0.1.0's SQL"
else
	note "no tag v0.1.0 in this clone: the released text is not compared"
fi
echo "ok"
