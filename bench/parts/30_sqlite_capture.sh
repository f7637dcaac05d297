#!/usr/bin/env bash
# SQLite capture: what sync_track() costs an app writing with its stock
# driver (bare table | tracked table | the floor), and how soon syncqd can
# see a committed change.  Both drivers are C (bench/sqlite_bench.c,
# bench/sqlite_wake.c) so that no shell overhead is timed.
#   env: SYNCQ_SQLITE_EXT (syncq.so), SYNCQ_TMP (scratch directory);
#        SYNCQ_BENCH_REPS (default 7)
set -euo pipefail
: "${SYNCQ_SQLITE_EXT:?}" "${SYNCQ_TMP:?}"
ROOT=${SYNCQ_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
CFLAGS="-std=c11 -Wall -Wextra -Werror -O2"
cc $CFLAGS -o "$SYNCQ_TMP/sqlite_bench" "$ROOT/bench/sqlite_bench.c" -lsqlite3
cc $CFLAGS -o "$SYNCQ_TMP/sqlite_wake" "$ROOT/bench/sqlite_wake.c" -lsqlite3
"$SYNCQ_TMP/sqlite_bench" --ext "$SYNCQ_SQLITE_EXT" --dir "$SYNCQ_TMP" \
	--reps "${SYNCQ_BENCH_REPS:-7}"
echo
"$SYNCQ_TMP/sqlite_wake" --ext "$SYNCQ_SQLITE_EXT" --dir "$SYNCQ_TMP" --n 200
