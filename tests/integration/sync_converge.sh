#!/usr/bin/env bash
# syncqd-asan
# syncqd-http
# Three clients and the hub edit the same rows offline (updates, deletes,
# inserts); after syncing in several random orders all four hold identical
# rows, and the overruled changes are logged in sync_conflicts.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
new_hub sync_converge
RANDOM=${SYNCQ_SEED:-4242}

hub "CREATE TABLE kv (id integer PRIMARY KEY, v text, n integer);
	SELECT sync_track('kv');
	INSERT INTO kv SELECT i, 'hub' || i, i FROM generate_series(1, 40) i;" >/dev/null
clients=()
for c in a b c; do
	f=$SYNCQ_TMP/$c.db
	cli "$f" "CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT, n INTEGER); SELECT sync_track('kv');" >/dev/null
	sync "$f"
	clients+=("$f")
done

edit_client() {		# edit_client FILE TAG
	plain "$1" "
	UPDATE kv SET v = '$2' || abs(random() % 1000), n = n + 1 WHERE id IN (SELECT id FROM kv ORDER BY random() LIMIT 8);
	DELETE FROM kv WHERE id IN (SELECT id FROM kv ORDER BY random() LIMIT 2);
	INSERT INTO kv VALUES (41 + abs(random() % 8), '$2-new', 0)
	  ON CONFLICT(id) DO UPDATE SET v = excluded.v, n = kv.n + 100;
	UPDATE kv SET v = '$2-hot' WHERE id = 1;"
}
edit_hub() {
	hub "
	UPDATE kv SET v = 'H' || (random() * 1000)::int, n = n + 1 WHERE id IN (SELECT id FROM kv ORDER BY random() LIMIT 8);
	DELETE FROM kv WHERE id IN (SELECT id FROM kv ORDER BY random() LIMIT 2);
	INSERT INTO kv VALUES (41 + (random() * 7)::int, 'H-new', 0)
	  ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v, n = kv.n + 100;
	UPDATE kv SET v = 'H-hot' WHERE id = 1;" >/dev/null
}
# shuffled SEED: the clients in a random order (the seed comes from the
# parent shell: $RANDOM does not advance inside a command substitution)
shuffled() { printf '%s\n' "${clients[@]}" | awk -v s="$1" 'BEGIN{srand(s)} {print rand() "\t" $0}' | sort | cut -f2; }

for round in 1 2 3 4; do
	for f in "${clients[@]}"; do edit_client "$f" "$(basename "$f" .db)$round"; done
	edit_hub
	order=$(shuffled $RANDOM)
	note "round $round: sync order $(echo "$order" | xargs -n1 basename | tr '\n' ' ')"
	# some clients sync twice, some once, in a random order
	for f in $order; do sync "$f"; done
	for f in $(shuffled $RANDOM | head -n 2); do sync "$f"; done
done
note "final: every client syncs after all others have uploaded"
for f in "${clients[@]}"; do sync "$f"; done
for f in "${clients[@]}"; do sync "$f"; done

want=$(hub "SELECT id, v, n FROM kv ORDER BY id")
for f in "${clients[@]}"; do
	expect_eq "rows of $(basename "$f")" "$(plain "$f" "SELECT id, v, n FROM kv ORDER BY id")" "$want"
	expect_eq "pending on $(basename "$f")" "$(pending "$f")" "0"
done
conflicts=$(hub "SELECT count(*) FROM sync_conflicts")
for f in "${clients[@]}"; do
	conflicts=$((conflicts + $(plain "$f" "SELECT count(*) FROM sync_conflicts")))
done
[ "$conflicts" -gt 0 ] || fail "no conflict was logged"
note "$(echo "$want" | wc -l) rows identical on 4 nodes; $conflicts overruled changes logged"
echo ok
