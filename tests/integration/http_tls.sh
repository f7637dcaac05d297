#!/usr/bin/env bash
# syncqd-asan
# `syncqd serve` over HTTPS (--tls-cert/--tls-key) and the client's
# verification of it (link_http.c): a private CA and a server certificate
# for localhost and 127.0.0.1 made here with openssl (no network). A client
# given the CA (--cacert) syncs both ways. The same client is refused, with
# a certificate error in its log and nothing changed on either side, when
# given another CA, when given none (the system's CAs), and when serve shows
# a certificate of the right CA for another host name; a plain http://
# request (curl, and syncqd) to the TLS port gets no answer. serve keeps
# serving through all of it, logs no key, and stops cleanly (under ASan:
# without a leak or a sanitizer report).
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
command -v openssl >/dev/null || fail "no openssl: install the Debian package openssl"
new_hub http_tls
P=$SYNCQ_TMP/pki
rm -rf "$P"
mkdir -p "$P"

note "a private CA, a server certificate for localhost and 127.0.0.1, another CA"
# ca NAME: a self-signed CA, NAME.pem and NAME.key
ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$P/$1.key" -out "$P/$1.pem" -days 2 -subj "/O=syncq tests/CN=$1" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		>"$P/openssl.log" 2>&1 || { cat "$P/openssl.log" >&2; fail "openssl: the CA $1"; }
}
# leaf NAME CA SAN: a server certificate NAME.pem (key NAME.key) signed by CA
leaf() {
	printf '%s\n' "subjectAltName=$3" "basicConstraints=critical,CA:FALSE" \
		"keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$P/$1.ext"
	{
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$P/$1.key" -out "$P/$1.csr" -subj "/O=syncq tests/CN=${3#DNS:}" &&
			openssl x509 -req -in "$P/$1.csr" -CA "$P/$2.pem" -CAkey "$P/$2.key" \
				-set_serial "0x$(openssl rand -hex 8)" -days 2 -extfile "$P/$1.ext" -out "$P/$1.pem"
	} >"$P/openssl.log" 2>&1 || { cat "$P/openssl.log" >&2; fail "openssl: the certificate $1"; }
	chmod 600 "$P/$1.key"
}
ca ca
ca other-ca
leaf server ca "DNS:localhost,IP:127.0.0.1"
leaf elsewhere ca "DNS:sync.example.org"
openssl verify -CAfile "$P/ca.pem" "$P/server.pem" >/dev/null || fail "the server certificate does not verify"
! openssl verify -CAfile "$P/other-ca.pem" "$P/server.pem" >/dev/null 2>&1 ||
	fail "the server certificate verifies against the other CA"

hub "CREATE TABLE audit (id integer PRIMARY KEY, task text NOT NULL, done_on date);
	SELECT sync_track('audit');
	INSERT INTO audit VALUES (1, 'from the hub', '2025-07-23');" >/dev/null
# a private key others may read: serve does not start (as PostgreSQL's ssl_key_file)
cp "$P/server.key" "$P/loose.key"
chmod 644 "$P/loose.key"
rc=0
"$SYNCQD" serve --postgres "$HUB" --listen 127.0.0.1:0 --tls-cert "$P/server.pem" --tls-key "$P/loose.key" \
	>"$P/loose.out" 2>&1 || rc=$?
expect_eq "serve with a key of mode 0644" "$rc" 1
grep -q 'TLS: the private key ".*loose.key" may be read or changed by other users (mode 0644)' "$P/loose.out" ||
	fail "serve with a key of mode 0644 said: $(cat "$P/loose.out")"
start_serve --tls-cert "$P/server.pem" --tls-key "$P/server.key"
[[ $ONLINE == https://localhost:* ]] || fail "start_serve gave $ONLINE for a TLS serve"
PORT=${ONLINE##*:}
grep -q "serve listening on .*(HTTPS)" "$SERVE_LOG" || fail "serve does not say it serves HTTPS"

A=$SYNCQ_TMP/a.db
B=$SYNCQ_TMP/b.db
rm -f "$A" "$A"-* "$B" "$B"-*
for f in "$A" "$B"; do
	cli "$f" "CREATE TABLE audit (id INTEGER PRIMARY KEY, task TEXT NOT NULL, done_on TEXT);
		SELECT sync_track('audit');" >/dev/null
done

# tls_sync FILE [ARG]...: syncqd --once against ONLINE; exit status in RC,
# its log lines of this run in LAST.
LOG=$SYNCQ_TMP/syncqd.log
touch "$LOG"
tls_sync() {
	local f=$1 n
	shift
	n=$(wc -l <"$LOG" 2>/dev/null || echo 0)
	RC=0
	"$SYNCQD" --sqlite "$f" --online "$ONLINE" --once "$@" 2>>"$LOG" || RC=$?
	LAST=$(tail -n +$((n + 1)) "$LOG")
	if [ "$RC" -ge 86 ] || grep -q 'Sanitizer\|runtime error:' <<<"$LAST"; then
		echo "$LAST" >&2
		fail "syncqd failed under the sanitizers"
	fi
}
# The hub's replication state and data, and a client's, as checksums.
hub_state() {
	hub "SELECT md5(string_agg(x, E'\n' ORDER BY x)) FROM (
		SELECT 'queue ' || q::text FROM sync_queue q
		UNION ALL SELECT 'client ' || c::text FROM sync_clients c
		UNION ALL SELECT 'version ' || v::text FROM sync_versions v
		UNION ALL SELECT 'error ' || e::text FROM sync_errors e
		UNION ALL SELECT 'bound ' || n::text FROM sync_http_nodes n
		UNION ALL SELECT 'audit ' || a::text FROM audit a) s(x)"
}
cli_state() {
	local state="SELECT 'state ' || key || '=' || value FROM syncqd_state"
	[ -n "$(plain "$1" "SELECT 1 FROM sqlite_master WHERE name = 'syncqd_state'")" ] || state="SELECT NULL WHERE 0"
	plain "$1" "SELECT group_concat(x, char(10)) FROM (
		SELECT 'row ' || id || ' ' || task AS x FROM audit
		UNION ALL $state
		UNION ALL SELECT 'queue ' || seq FROM sync_queue ORDER BY 1)"
}
# alive WHAT: serve still answers over HTTPS, as host ALIVE_NAME (default
# localhost: the certificate's name).
alive() {
	kill -0 "$SERVE_PID" 2>/dev/null || { tail -n 30 "$SERVE_LOG" >&2; fail "serve died after $1"; }
	local code name=${ALIVE_NAME:-localhost} port=${ONLINE##*:}
	code=$(curl -sS --max-time 30 --cacert "$P/ca.pem" --resolve "$name:$port:127.0.0.1" -o /dev/null \
		-w '%{http_code}' -u "$AMRS_ADMIN_USERNAME:$AMRS_ADMIN_PASSWORD" \
		"https://$name:$port/api/sync/status") || code="no answer"
	[ "$code" = 200 ] || fail "after $1, GET /api/sync/status over HTTPS got $code"
}
# stop_serve: SIGTERM; serve must exit 0, with no sanitizer report.
stop_serve() {
	local rc=0
	kill -TERM "$SERVE_PID"
	wait "$SERVE_PID" || rc=$?
	SERVE_PID=
	grep -A 30 'Sanitizer\|runtime error:' "$SERVE_LOG" >&2 && fail "serve: a sanitizer report (see above)"
	[ "$rc" -eq 0 ] || { tail -n 20 "$SERVE_LOG" >&2; fail "serve exited $rc on SIGTERM"; }
}

note "a client with --cacert ca.pem syncs both ways"
tls_sync "$A" --cacert "$P/ca.pem"
[ "$RC" -eq 0 ] || fail "syncqd with the right CA failed: $LAST"
expect_eq "the hub's row on A" "$(plain "$A" "SELECT id, task FROM audit")" "1|from the hub"
plain "$A" "INSERT INTO audit VALUES (2, 'from A over https', '2025-07-24')"
hub "INSERT INTO audit VALUES (3, 'from the hub again', NULL)" >/dev/null
tls_sync "$A" --cacert "$P/ca.pem"
[ "$RC" -eq 0 ] || fail "the second sync with the right CA failed: $LAST"
expect_eq "A's row on the hub" "$(hub "SELECT task FROM audit WHERE id = 2")" "from A over https"
expect_eq "the hub's second row on A" "$(plain "$A" "SELECT task FROM audit WHERE id = 3")" "from the hub again"
expect_eq "A has nothing pending" "$(pending "$A")" 0
alive "the syncs"

# refused NAME FILE [ARG]...: syncqd on FILE fails with a certificate error
# in its log, and changes nothing on the hub or on FILE.
refused() {
	local name=$1 f=$2 hub_before cli_before
	shift 2
	hub_before=$(hub_state)
	cli_before=$(cli_state "$f")
	tls_sync "$f" "$@"
	[ "$RC" -ne 0 ] || fail "$name: syncqd succeeded"
	grep -qi 'certificate\|SSL' <<<"$LAST" || fail "$name: no certificate error in syncqd's log: $LAST"
	expect_eq "$name: the hub" "$(hub_state)" "$hub_before"
	expect_eq "$name: the client" "$(cli_state "$f")" "$cli_before"
	alive "$name"
	note "$name: refused: $(grep -i -m1 'certificate\|SSL' <<<"$LAST" | cut -c1-200)"
}
plain "$A" "INSERT INTO audit VALUES (4, 'pending on A', NULL)"
hub "INSERT INTO audit VALUES (5, 'pending on the hub', NULL)" >/dev/null
refused "another CA" "$A" --cacert "$P/other-ca.pem"
refused "another CA, a new client" "$B" --cacert "$P/other-ca.pem"
refused "no --cacert (the system's CAs)" "$A"
refused "no --cacert, a new client" "$B"
expect_eq "A's change still pending" "$(pending "$A")" 1
expect_eq "B never reached the hub" "$(hub "SELECT count(*) FROM sync_clients")" 1

note "curl agrees"
code=$(curl -sS --max-time 30 --cacert "$P/ca.pem" -o /dev/null -w '%{http_code}' \
	-u "$AMRS_ADMIN_USERNAME:$AMRS_ADMIN_PASSWORD" "https://127.0.0.1:$PORT/api/sync/status") || code="no answer"
expect_eq "curl over https://127.0.0.1 with the CA" "$code" 200
for args in "--cacert $P/other-ca.pem" "--capath /nonexistent" ""; do
	# shellcheck disable=SC2086
	if curl -sS --max-time 30 $args -o /dev/null -u "$AMRS_ADMIN_USERNAME:$AMRS_ADMIN_PASSWORD" \
		"$ONLINE/api/sync/status" 2>"$SYNCQ_TMP/curl.err"; then
		fail "curl ${args:-(system CAs)} was not refused"
	fi
	grep -qi 'certificate' "$SYNCQ_TMP/curl.err" || fail "curl ${args:-(system CAs)}: $(cat "$SYNCQ_TMP/curl.err")"
done

note "a plain http:// request to the TLS port gets no answer"
hub_before=$(hub_state)
if code=$(curl -sS --max-time 30 -o "$SYNCQ_TMP/plain.out" -w '%{http_code}' \
	-u "$AMRS_ADMIN_USERNAME:$AMRS_ADMIN_PASSWORD" -H 'Content-Type: application/json' \
	--data-binary "{\"v\":1,\"op\":\"hello\",\"node_id\":\"$(plain "$A" "SELECT node_id FROM syncq_state")\"}" \
	"http://127.0.0.1:$PORT/api/sync/data" 2>"$SYNCQ_TMP/curl.err"); then
	fail "plain http:// to the TLS port answered $code: $(head -c 200 "$SYNCQ_TMP/plain.out")"
fi
note "curl http://: $(cat "$SYNCQ_TMP/curl.err")"
expect_eq "plain http: the hub" "$(hub_state)" "$hub_before"
cli_before=$(cli_state "$A")
ONLINE_TLS=$ONLINE
ONLINE=http://localhost:$PORT
tls_sync "$A"
ONLINE=$ONLINE_TLS
[ "$RC" -ne 0 ] || fail "syncqd over plain http:// to the TLS port succeeded"
expect_eq "plain http: the hub after syncqd" "$(hub_state)" "$hub_before"
expect_eq "plain http: the client" "$(cli_state "$A")" "$cli_before"
note "syncqd http://: $(tail -n 1 <<<"$LAST" | cut -c1-200)"
alive "plain http://"

note "a certificate of the right CA for another host name is refused"
stop_serve
start_serve --tls-cert "$P/elsewhere.pem" --tls-key "$P/elsewhere.key"
ALIVE_NAME=sync.example.org
refused "a certificate for sync.example.org" "$A" --cacert "$P/ca.pem"
ALIVE_NAME=
stop_serve

note "back to the right certificate: A's pending change crosses, the hub's comes down"
start_serve --tls-cert "$P/server.pem" --tls-key "$P/server.key"
tls_sync "$A" --cacert "$P/ca.pem"
[ "$RC" -eq 0 ] || fail "syncqd with the right CA failed after the refusals: $LAST"
expect_eq "the hub" "$(hub "SELECT id, task FROM audit ORDER BY id")" "1|from the hub
2|from A over https
3|from the hub again
4|pending on A
5|pending on the hub"
expect_eq "A" "$(plain "$A" "SELECT id, task FROM audit ORDER BY id")" "$(hub "SELECT id, task FROM audit ORDER BY id")"
tls_sync "$B" --cacert "$P/ca.pem"
[ "$RC" -eq 0 ] || fail "B with the right CA failed: $LAST"
expect_eq "B, first sync" "$(plain "$B" "SELECT id, task FROM audit ORDER BY id")" "$(hub "SELECT id, task FROM audit ORDER BY id")"

note "serve stops cleanly and logs no key"
stop_serve
for key in "$P/server.key" "$P/elsewhere.key"; do
	while read -r line; do
		[[ $line == -----* ]] && continue
		! grep -qF -- "$line" "$SERVE_LOG" "$LOG" || fail "a line of $(basename "$key") is in a log"
	done <"$key"
done
! grep -qF -- "$AMRS_ADMIN_PASSWORD" "$SERVE_LOG" "$LOG" || fail "the admin password is in a log"
echo "http_tls: ok"
