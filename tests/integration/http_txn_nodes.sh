#!/usr/bin/env bash
# syncqd-asan
# One hub transaction ends at a different place for each node (docs/http.md,
# The download): an upload's transaction holds the rows relayed to the
# other nodes, the corrections queued for the uploader alone and the rows
# the hub's triggers wrote, for all. serve remembers where a transaction
# that goes on past a page ends, per hub connection and per node; with one
# hub connection (--pool 1), the uploader's download and the other nodes'
# go through the same memory, one after the other. Each app,
# sampled all along, sees none of the transaction or all of what its node
# gets of it.
# U uploads 40,000 new rows of t in one transaction. On the hub a BEFORE
# trigger changes v of the first 15,000 (a correction for U each) and an
# AFTER trigger writes a row of audit for each of them (the hub's own, for
# all). So U gets 30,000 rows of the transaction (two pages), all among
# its first 15,000 rows of t; V gets 55,000 (three pages), and where the
# transaction ends for U lies inside V's second page: had V's download
# taken U's end, V would commit the transaction's first 40,000 rows at the
# end of that page. W then downloads it and two more of U's transactions
# in one go. Always over HTTP (whatever SYNCQ_TRANSPORT).
. "$SYNCQ_ROOT/tests/lib/synctest.sh"

N=40000
H=15000
new_hub http_txn_nodes
start_serve --pool 1
hub "CREATE TABLE t (id integer PRIMARY KEY, v text NOT NULL);
	CREATE TABLE audit (id integer PRIMARY KEY, v text NOT NULL);
	CREATE FUNCTION mark() RETURNS trigger LANGUAGE plpgsql AS \$\$
		BEGIN NEW.v := 'hub ' || NEW.v; RETURN NEW; END \$\$;
	CREATE FUNCTION note() RETURNS trigger LANGUAGE plpgsql AS \$\$
		BEGIN INSERT INTO audit VALUES (NEW.id, NEW.v); RETURN NULL; END \$\$;
	CREATE TRIGGER mark BEFORE INSERT ON t FOR EACH ROW WHEN (NEW.id <= $H) EXECUTE FUNCTION mark();
	CREATE TRIGGER note AFTER INSERT ON t FOR EACH ROW WHEN (NEW.id <= $H) EXECUTE FUNCTION note();
	SELECT sync_track('t'); SELECT sync_track('audit');" >/dev/null
U=$SYNCQ_TMP/u.db
V=$SYNCQ_TMP/v.db
W=$SYNCQ_TMP/w.db
for f in "$U" "$V" "$W"; do
	cli "$f" "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL); SELECT sync_track('t');
		CREATE TABLE audit (id INTEGER PRIMARY KEY, v TEXT NOT NULL); SELECT sync_track('audit');" >/dev/null
	sync "$f"
done
cli "$U" "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < $N)
	INSERT INTO t SELECT x, 'v ' || x FROM s;" >/dev/null

# what an app on the file sees of the transaction: rows of t the hub
# changed, rows of audit, rows of t
seen_sql="SELECT (SELECT count(*) FROM t WHERE v LIKE 'hub %') || ' ' || (SELECT count(*) FROM audit)
	|| ' ' || (SELECT count(*) FROM t)"

note "U uploads $N rows in one transaction and downloads its part of it"
download_sampled "$U" "$ONLINE" "$seen_sql" "0 0 $N|$H $H $N"
expect_eq "U's rows" "$(plain "$U" "$seen_sql")" "$H $H $N"
expect_eq "the transaction on the hub: t, corrections for U, audit" \
	"$(hub "SELECT count(DISTINCT txid), count(*) FILTER (WHERE table_name = 't' AND for_node IS NULL),
		count(*) FILTER (WHERE for_node IS NOT NULL), count(*) FILTER (WHERE table_name = 'audit')
		FROM sync_queue WHERE sync_xid_value(txid) >= (SELECT min(sync_xid_value(txid)) FROM sync_queue WHERE table_name = 't')")" \
	"1|$N|$H|$H"
expect_eq "it ends for U before it ends for the others" \
	"$(hub "SELECT max(seq) FILTER (WHERE for_node IS NOT NULL OR table_name = 'audit')
		< max(seq) FILTER (WHERE for_node IS NULL AND table_name = 't' AND (pk->>'id')::int > $H)
		FROM sync_queue")" "t"
pages=$(grep -cE 'serve: (snapshot|changes): [0-9]+ bytes' "$SYNCQ_TMP/u.log" || true)
note "  U's download: $pages pages"

note "V downloads after U, through the same hub connection"
download_sampled "$V" "$ONLINE" "$seen_sql" "0 0 0|$H $H $N"
pages=$(grep -cE 'serve: (snapshot|changes): [0-9]+ bytes' "$SYNCQ_TMP/v.log" || true)
[ "$pages" -ge 3 ] || fail "V's 55,000 rows came in $pages page(s), not in pages of 20,000"
note "  V's download: $pages pages"

note "U writes twice more; W then downloads all three of U's transactions"
cli "$U" "UPDATE t SET v = v || ' again' WHERE id > $N - 5" >/dev/null
sync "$U"
cli "$U" "WITH RECURSIVE s(x) AS (SELECT $N + 1 UNION ALL SELECT x + 1 FROM s WHERE x < $N + $N)
	INSERT INTO t SELECT x, 'v ' || x FROM s;" >/dev/null
sync "$U"
download_sampled "$W" "$ONLINE" "SELECT (SELECT count(*) FROM audit) || ' ' || (SELECT count(*) FROM t)" \
	"0 0|$H $N|$H $((N + N))"
sync "$V"
sync "$U"
for f in "$U" "$V" "$W"; do
	expect_eq "$(basename "$f")'s rows" \
		"$(plain "$f" "SELECT count(*) || ' ' || sum(id) || ' ' || sum(length(v)) FROM t") $(plain "$f" "SELECT count(*) FROM audit")" \
		"$(hub "SELECT count(*) || ' ' || sum(id) || ' ' || sum(length(v)) FROM t") $H"
done
expect_eq "nothing set aside" "$(set_aside "$U" "$V" "$W")" ""
echo ok
