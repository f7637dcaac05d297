#!/usr/bin/env bash
# The version is kept in pg_ext/syncq.control; META.json and the built
# install script must agree with it.
set -euo pipefail
cd "$SYNCQ_ROOT"
ctl=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" pg_ext/syncq.control)
[ -n "$ctl" ] || { echo "no default_version in pg_ext/syncq.control"; exit 1; }
for v in $(grep -o '"version" *: *"[0-9][^"]*"' META.json | grep -v '1.0.0' | sed 's/.*"\([^"]*\)"$/\1/'); do
	[ "$v" = "$ctl" ] || { echo "META.json version $v != syncq.control $ctl"; exit 1; }
done
grep -q "\"sql/syncq--$ctl.sql\"" META.json || { echo "META.json does not name sql/syncq--$ctl.sql"; exit 1; }
[ -f "sql/syncq--$ctl.sql" ] || { echo "sql/syncq--$ctl.sql was not built"; exit 1; }
head -n 3 "sql/syncq--$ctl.sql" | grep -q '^\\echo Use "CREATE EXTENSION syncq"' ||
	{ echo "install script lacks the \\echo guard"; exit 1; }
echo "version $ctl agrees"
