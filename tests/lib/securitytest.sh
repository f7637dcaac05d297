# tests/lib/securitytest.sh — helpers for the attack tests
# (tests/integration/attack_*.sh; docs/security.md). Sources daemontest.sh.
#
#   make_pki                  a private CA and a certificate for localhost and
#                             127.0.0.1 in $PKI (openssl, no network)
#   make_creds                $CREDS: a credentials file of two users, site-a
#                             and site-b (serve_tls makes it if there is none)
#   serve_tls [ARG]...        syncqd serve over HTTPS with $CREDS (besides the
#                             admin of $AMRS_ADMIN_*); sets ONLINE, URL and
#                             SYNCQD_ARGS
#   as_a CMD... / as_b CMD... CMD with site-a's or site-b's credentials
#   post WHO FILE [CURL-ARG]...  POST FILE to /api/sync/data as WHO (admin, a, b,
#                             none, USER:PASSWORD); sets CODE, the reply in $T/reply
#   forge NODE < CHANGES      an upload body of NODE at its current position on
#                             the hub, of the changes given as JSON (forge.py)
#   hub_sum QUERY-PART...     md5 of rows of the hub, one SELECT per argument
#   serve_alive WHAT          serve still runs and answers a good hello
#   serve_stop                SIGTERM; fails on an exit code or a sanitizer report
. "$SYNCQ_ROOT/tests/lib/daemontest.sh"
command -v openssl >/dev/null || fail "no openssl: install the Debian package openssl"

# Debian's python3: it has psycopg2, and starts fast
PY=/usr/bin/python3
T=$SYNCQ_TMP/t
PKI=$SYNCQ_TMP/pki
rm -rf "$T" "$PKI"
mkdir -p "$T" "$PKI"
PW_A='pw-site-a: Tr0ub4dor&3'
PW_B='pw-site-b: correct horse'

make_pki() {
	{
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$PKI/ca.key" -out "$PKI/ca.pem" -days 2 -subj "/O=syncq tests/CN=ca" \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
			printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
				"keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$PKI/server.ext" &&
			openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
				-keyout "$PKI/server.key" -out "$PKI/server.csr" -subj "/O=syncq tests/CN=localhost" &&
			openssl x509 -req -in "$PKI/server.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" \
				-set_serial "0x$(openssl rand -hex 8)" -days 2 -extfile "$PKI/server.ext" -out "$PKI/server.pem"
	} >"$PKI/openssl.log" 2>&1 || { cat "$PKI/openssl.log" >&2; fail "openssl: the test certificates"; }
	chmod 600 "$PKI/server.key" "$PKI/ca.key"
}

CREDS=$T/credentials
make_creds() {
	printf '%s\n' "$PW_A" | "$SYNCQD" passwd site-a >"$CREDS"
	printf '%s\n' "$PW_B" | "$SYNCQD" passwd site-b >>"$CREDS"
	chmod 600 "$CREDS"
}

serve_tls() {
	[ -e "$PKI/server.pem" ] || make_pki
	[ -e "$CREDS" ] || make_creds
	start_serve --tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key" --credentials "$CREDS" "$@"
	URL=$ONLINE/api/sync/data
	export SYNCQD_ARGS="--cacert $PKI/ca.pem"
}

as_a() { AMRS_ADMIN_USERNAME=site-a AMRS_ADMIN_PASSWORD=$PW_A "$@"; }
as_b() { AMRS_ADMIN_USERNAME=site-b AMRS_ADMIN_PASSWORD=$PW_B "$@"; }

post() {
	local who=$1 file=$2 auth=()
	shift 2
	case $who in
		admin) auth=(-u "$AMRS_ADMIN_USERNAME:$AMRS_ADMIN_PASSWORD") ;;
		a) auth=(-u "site-a:$PW_A") ;;
		b) auth=(-u "site-b:$PW_B") ;;
		none) ;;
		*) auth=(-u "$who") ;;
	esac
	: >"$T/reply"
	CODE=$(curl -sS --max-time 60 --cacert "$PKI/ca.pem" -o "$T/reply" -w '%{http_code}' "${auth[@]}" \
		-H 'Content-Type: application/json' --data-binary @"$file" "$@" "$URL" 2>"$T/curl.err") ||
		CODE="curl failed: $(cat "$T/curl.err")"
}

forge() {
	local pos
	pos=$(hub "SELECT coalesce((SELECT up_seq || ' ' || up_digest FROM sync_clients WHERE node_id = '$1'), '0 0')")
	"$PY" "$SYNCQ_ROOT/tests/lib/forge.py" "$1" $pos
}

hub_sum() {
	local q="" part
	for part; do q="$q${q:+ UNION ALL }$part"; done
	hub "SELECT md5(coalesce(string_agg(x, E'\n' ORDER BY x), '')) FROM ($q) s(x)"
}

serve_alive() {
	kill -0 "$SERVE_PID" 2>/dev/null || { tail -n 30 "$SERVE_LOG" >&2; fail "serve died after $1"; }
	printf '{"v":2,"op":"hello","node_id":"%s"}' "${NODE_A:?}" >"$T/hello"
	post a "$T/hello"
	[ "$CODE" = 200 ] || fail "after $1, a good hello got $CODE: $(head -c 300 "$T/reply")"
}

serve_stop() {
	local rc=0
	kill -TERM "$SERVE_PID"
	wait "$SERVE_PID" || rc=$?
	SERVE_PID=
	grep -A 30 'Sanitizer\|runtime error:' "$SERVE_LOG" >&2 && fail "serve: a sanitizer report (see above)"
	[ "$rc" -eq 0 ] || { tail -n 20 "$SERVE_LOG" >&2; fail "serve exited $rc on SIGTERM"; }
}
