#!/usr/bin/env bash
# syncqd-http
# A change the hub keeps refusing is not retried with every sync for ever
# (issue 11): after 10 tries over at least an hour it is stuck, said once
# in the log with the reason, and from then on tried once an hour; it goes
# through when the cause is gone. (The tries and their times are set in the
# hub's sync_errors, as an hour of syncs would have left them.)
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_hub_stuck
LOG=$SYNCQ_TMP/syncqd.log
[ "${SYNCQ_TRANSPORT:-}" = http ] && LOG=$SERVE_LOG

hub "CREATE TABLE item (id integer PRIMARY KEY, qty integer CONSTRAINT qty_ok CHECK (qty >= 0));
	SELECT sync_track('item')" >/dev/null
a=$SYNCQ_TMP/a.db
cli "$a" "CREATE TABLE item (id INTEGER PRIMARY KEY, qty INTEGER); SELECT sync_track('item')" >/dev/null
sync "$a"
plain "$a" "INSERT INTO item VALUES (1, -5)"
sync "$a"
tries() { hub "SELECT attempts FROM sync_errors"; }
stuck_lines() { grep -c 'is stuck' "$LOG" || true; }
# serve retries a node's set-aside changes at most every 2 s
again() { [ "${SYNCQ_TRANSPORT:-}" != http ] || sleep 2.1; sync "$a"; }
expect_eq "set aside once" "$(tries)" "1"
again
expect_eq "retried with the next sync" "$(tries)" "2"

note "nine tries over two hours: the tenth makes it stuck, said once"
hub "UPDATE sync_errors SET attempts = 9, first_failed = now() - interval '2 hours', last_failed = now() - interval '1 minute'"
again
expect_eq "tries" "$(tries)" "10"
expect_eq "stuck lines" "$(stuck_lines)" "1"
grep 'is stuck' "$LOG" | grep -q 'refused 10 times since .*, last: .*qty_ok' || fail "the stuck line: $(grep 'is stuck' "$LOG")"
again; again
expect_eq "not tried again within the hour" "$(tries)" "10"

note "an hour later: tried again, not said again"
hub "UPDATE sync_errors SET first_failed = now() - interval '3 hours', last_failed = now() - interval '61 minutes'"
again
expect_eq "tried after the hour" "$(tries)" "11"
expect_eq "stuck lines after" "$(stuck_lines)" "1"

note "ten tries within minutes are not stuck"
plain "$a" "INSERT INTO item VALUES (2, -1)"
sync "$a"
hub "UPDATE sync_errors SET attempts = 12, first_failed = now() - interval '5 minutes' WHERE pk->>'id' = '2'"
again
expect_eq "the young one, tried" "$(hub "SELECT attempts FROM sync_errors WHERE pk->>'id' = '2'")" "13"
expect_eq "stuck lines, young" "$(stuck_lines)" "1"

note "the cause gone: the stuck change goes through at its next try"
hub "ALTER TABLE item DROP CONSTRAINT qty_ok; UPDATE sync_errors SET last_failed = now() - interval '61 minutes'"
again
expect_eq "nothing set aside" "$(hub "SELECT count(*) FROM sync_errors")" "0"
expect_eq "the hub's rows" "$(hub "SELECT id, qty FROM item ORDER BY id")" "1|-5
2|-1"
echo ok
