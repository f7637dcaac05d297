#!/usr/bin/env bash
# syncqd-http
# The randomized convergence checker (issue 11; tests/tools/converge.py): a
# hub and three clients, machines and parts (foreign keys with CASCADE and
# SET NULL, a hub trigger writing updated_at, numeric, uuid and json
# columns), random inserts, updates, deletes and key changes on random
# nodes, each client's writes (and its syncqd) under a random clock offset
# (faketime: +-1 s, +-1 h, +1 year), syncs in random order, syncqd killed
# with SIGKILL at random moments. After quiescence every node holds the
# same rows and every client change is applied, in the final state, or in
# sync_conflicts/sync_errors. It prints its seed; SYNCQ_SEED=N replays it.
# SYNCQ_CONVERGE_SECONDS sets how long the random rounds run (make soak).
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_converge_random
args=(--hub "$HUB" --online "$ONLINE" --syncqd "$SYNCQD" --ext "$SYNCQ_SQLITE_EXT"
	--dir "$SYNCQ_TMP" --seconds "${SYNCQ_CONVERGE_SECONDS:-40}")
[ -n "${SYNCQ_SEED:-}" ] && args+=(--seed "$SYNCQ_SEED")
/usr/bin/python3 "$SYNCQ_ROOT/tests/tools/converge.py" "${args[@]}" || fail "the nodes did not converge (see the seed above)"
echo ok
