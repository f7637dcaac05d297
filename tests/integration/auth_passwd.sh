#!/usr/bin/env bash
# syncqd-asan
# The credentials of `syncqd serve` (replicator/auth.c, docs/auth.md):
# `syncqd passwd USER` makes a line that verifies (and a wrong password does
# not), on a pipe and on a terminal without echo; an empty or overlong
# password and a bad user name are refused; `syncqd passwd --check`; a
# malformed credentials file is an error naming the file and line and no
# secret; the file's mode; $AMRS_ADMIN_USERNAME/$AMRS_ADMIN_PASSWORD. Then
# auth_check itself, built with ASan + UBSan: headers of every bad shape, a
# cached pass, an unknown user costing a crypt, threads at once.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
unset AMRS_ADMIN_USERNAME AMRS_ADMIN_PASSWORD
T=$SYNCQ_TMP/auth
rm -rf "$T"
mkdir -p "$T"
# Every output of syncqd goes to ALL too, and every stderr to ERRS, to look
# for passwords in all and for hashes in the messages at the end.
ALL=$T/all-output
ERRS=$T/all-stderr
: >"$ALL"
: >"$ERRS"

# run NAME STDIN ARG...: syncqd with STDIN on a pipe; sets RC, OUT, ERR.
run() {
	local name=$1 input=$2
	shift 2
	RC=0
	printf '%s' "$input" | "$SYNCQD" "$@" >"$T/$name.out" 2>"$T/$name.err" || RC=$?
	OUT=$(cat "$T/$name.out")
	ERR=$(cat "$T/$name.err")
	cat "$T/$name.out" "$T/$name.err" >>"$ALL"
	cat "$T/$name.err" >>"$ERRS"
	if [ "$RC" -ge 86 ] || grep -q 'Sanitizer\|runtime error:' "$T/$name.err"; then
		cat "$T/$name.err" >&2
		fail "$name: syncqd failed under the sanitizers"
	fi
}
expect_rc() { [ "$RC" = "$2" ] || fail "$1: exit $RC, expected $2; stdout: $OUT; stderr: $ERR"; }
expect_err() { [[ $ERR == *"$2"* ]] || fail "$1: stderr lacks \"$2\": $ERR"; }
no_secret() {		# no_secret NAME SECRET...: not in this run's output
	local name=$1 s
	shift
	for s in "$@"; do
		if grep -qF -- "$s" "$T/$name.out" "$T/$name.err"; then
			fail "$name: a secret in the output: $OUT $ERR"
		fi
	done
}

note "passwd USER prints USER:HASH, a fresh salt each time"
run make1 $'pw-alice-1\n' passwd alice
expect_rc make1 0
[[ $OUT =~ ^alice:\$y\$[./A-Za-z0-9]+\$[./A-Za-z0-9]+\$[./A-Za-z0-9]+$ ]] || fail "not a yescrypt line: $OUT"
[ -z "$ERR" ] || fail "stderr on success: $ERR"
ALICE=$OUT
run make2 $'pw-alice-1\n' passwd alice
[ "$OUT" != "$ALICE" ] || fail "the same line twice: no fresh salt"
run make3 $'a b:c d #x\n' passwd bob
expect_rc make3 0
BOB=$OUT
run make4 $'pw-carol\n' passwd -- carol
expect_rc "passwd -- carol" 0
CAROL=$OUT

F=$T/clients
printf '# clients of serve\n\n%s\n   \n%s\r\n  %s  \n' "$ALICE" "$BOB" "$CAROL" >"$F"
chmod 600 "$F"

note "passwd --check: the line verifies, a wrong password does not"
run check_ok $'pw-alice-1\n' passwd --check "$F" alice
expect_rc "right password" 0
expect_eq "check output" "$OUT" "alice: accepted"
run check_nonl 'pw-alice-1' passwd --check "$F" alice
expect_rc "right password, no newline" 0
run check_2lines $'pw-alice-1\nmore\n' passwd --check "$F" alice
expect_rc "only the first line is the password" 0
run check_colon $'a b:c d #x\n' passwd --check "$F" bob
expect_rc "a password with ':', spaces and '#' (bob, a CRLF line)" 0
run check_carol $'pw-carol\n' passwd --check "$F" carol
expect_rc "carol (an indented line)" 0
for w in 'pw-alice-2' 'pw-alice-1 ' 'PW-ALICE-1' 'pw-alice-' 'pw-carol'; do
	run check_wrong "$w"$'\n' passwd --check "$F" alice
	expect_rc "wrong password \"$w\"" 1
	expect_err "wrong password" "alice is not accepted"
	[ -z "$OUT" ] || fail "stdout on a wrong password: $OUT"
done
run check_unknown $'pw-alice-1\n' passwd --check "$F" mallory
expect_rc "unknown user" 1

note "refused: empty and overlong passwords, bad user names, bad arguments"
for input in $'\n' '' $'\nsecond line\n'; do
	run empty "$input" passwd dave
	expect_rc "empty password" 1
	expect_err "empty password" "empty password refused"
	[ -z "$OUT" ] || fail "a line for an empty password: $OUT"
	run empty_check "$input" passwd --check "$F" alice
	expect_rc "empty password, --check" 2
done
long=$(printf 'x%.0s' $(seq 511))
run long511 "$long"$'\n' passwd dave
expect_rc "511 bytes" 0
run long512 "${long}y"$'\n' passwd dave
expect_rc "512 bytes" 1
expect_err "512 bytes" "longer than 511 bytes"
for u in 'a:b' '' '#x' 'a b' $'a\tb' "$(printf 'u%.0s' $(seq 256))"; do
	run baduser $'pw\n' passwd "$u"
	expect_rc "user \"$u\"" 2
	expect_err "user \"$u\"" "not a valid user name"
done
run u255 $'pw\n' passwd "$(printf 'u%.0s' $(seq 255))"
expect_rc "a 255-byte user name" 0
for args in "" "a b" "--check" "--check $F" "--check $F a b" "-x alice" "--bogus"; do
	# shellcheck disable=SC2086
	run usage $'pw\n' passwd $args
	expect_rc "passwd $args" 2
	expect_err "passwd $args" "Usage:"
done
run help '' passwd --help
expect_rc "passwd --help" 0
[[ $OUT == *"syncqd passwd --check FILE USER"* ]] || fail "help: $OUT"

note "a terminal: prompts, no echo, the password asked twice"
cat >"$T/on_terminal.py" <<'EOF'
import os, pty, select, sys, time
syncqd, user, first, second = sys.argv[1:5]
pid, fd = pty.fork()
if pid == 0:
    os.execv(syncqd, [syncqd, "passwd", user])
out = b""
def read_until(token):
    global out
    end = time.time() + 20
    while token is None or token not in out:
        left = end - time.time()
        r = select.select([fd], [], [], max(left, 0))[0] if left > 0 else []
        if not r:
            sys.exit("timed out waiting for %r; got %r" % (token, out))
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            if token is None:
                return
            sys.exit("end of output waiting for %r; got %r" % (token, out))
        out += data
read_until(b"Password for " + user.encode() + b": ")
os.write(fd, first.encode() + b"\n")
read_until(b"Again: ")
os.write(fd, second.encode() + b"\n")
read_until(None)
status = os.waitpid(pid, 0)[1]
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
EOF
RC=0
python3 "$T/on_terminal.py" "$SYNCQD" erin 'tty-secret-1' 'tty-secret-1' >"$T/tty.out" 2>&1 || RC=$?
OUT=$(tr -d '\r' <"$T/tty.out")
cat "$T/tty.out" >>"$ALL"
[ "$RC" = 0 ] || fail "passwd on a terminal: exit $RC: $OUT"
grep -q 'tty-secret' "$T/tty.out" && fail "the password was echoed: $OUT"
ERIN=$(grep '^erin:' <<<"$OUT") || fail "no line from passwd on a terminal: $OUT"
printf '%s\n' "$ERIN" >"$T/erin"
chmod 600 "$T/erin"
run tty_check $'tty-secret-1\n' passwd --check "$T/erin" erin
expect_rc "the terminal's line verifies" 0
RC=0
python3 "$T/on_terminal.py" "$SYNCQD" erin 'tty-secret-1' 'tty-secret-2' >"$T/tty2.out" 2>&1 || RC=$?
cat "$T/tty2.out" >>"$ALL"
[ "$RC" = 1 ] || fail "two different passwords on a terminal: exit $RC: $(cat "$T/tty2.out")"
grep -q 'the two passwords differ' "$T/tty2.out" || fail "no word of the difference: $(cat "$T/tty2.out")"
grep -q '^erin:' "$T/tty2.out" && fail "a line although the passwords differ"

note "malformed credentials files: the file and line, never the secret"
HASH=${ALICE#alice:}
# bad NAME LINE-NO WANT SECRET LINE...: a file of LINEs is refused with
# "FILE:LINE-NO: ...WANT..." and no SECRET in the output
bad() {
	local name=$1 line=$2 want=$3 secret=$4 f=$T/$1
	shift 4
	printf '%s\n' "$@" >"$f"
	chmod 600 "$f"
	run "$name" $'pw-alice-1\n' passwd --check "$f" alice
	expect_rc "$name" 2
	expect_err "$name" "$f:$line: "
	expect_err "$name" "$want"
	no_secret "$name" "$secret"
	[ -z "$OUT" ] || fail "$name: stdout: $OUT"
}
bad no_colon 3 "no ':'" 'hunter2-secret' '# a comment' "$ALICE" 'hunter2-secret'
bad bad_user 2 "not a valid user name" 'my secret' "$ALICE" 'my secret:$y$j9T$abc$def'
bad bad_user2 2 "not a valid user name" 'pw-x' "$ALICE" ':pw-x'
bad not_hash 2 'user "dave": not a crypt(3) hash' 'plaintext-s3cret' "$ALICE" 'dave:plaintext-s3cret'
bad cut_hash 2 'user "dave": not a crypt(3) hash' "${HASH%\$*}" "$ALICE" "dave:${HASH%\$*}"
bad cut_hash2 2 'user "dave": not a crypt(3) hash' "${HASH%\$*}" "$ALICE" "dave:${HASH%\$*}\$"
bad odd_hash 1 'user "dave": not a crypt(3) hash' 'zz$abcdefgh' 'dave:$zz$abcdefgh$ijklmnop'
bad legacy 2 'user "dave": a weak legacy hash' '$1$saltsalt$' "$ALICE" 'dave:$1$saltsalt$qjJbZ8Dd1nXUi7wqgWUSi/'
bad des 2 'user "dave": not a crypt(3) hash' 'abJnggxhB/yWI' "$ALICE" 'dave:abJnggxhB/yWI'
bad dup 5 'user "alice" again (first on line 2)' "$HASH" '' "$ALICE" "$BOB" '# again:' "$ALICE"
bad long_line 2 "line longer than 1024 bytes" 'xxxxxxxx' "$ALICE" "dave:\$y\$$(printf 'x%.0s' $(seq 1100))"
printf '%s\n\0\n' "$ALICE" >"$T/nul"
chmod 600 "$T/nul"
run nul $'pw-alice-1\n' passwd --check "$T/nul" alice
expect_rc "a NUL byte" 2
expect_err "a NUL byte" "$T/nul:2: a NUL byte"

note "no credentials at all; a missing file; the file's mode"
printf '# nobody yet\n\n' >"$T/none"
chmod 600 "$T/none"
run none $'pw\n' passwd --check "$T/none" alice
expect_rc "no credentials" 2
expect_err "no credentials" "no credentials in it"
run missing $'pw\n' passwd --check "$T/missing" alice
expect_rc "a missing file" 2
expect_err "a missing file" "credentials file $T/missing: No such file"
run dir $'pw\n' passwd --check "$T" alice
expect_rc "a directory" 2
expect_err "a directory" "not a regular file"
for mode in 620 602 666; do
	chmod "$mode" "$F"
	run "mode$mode" $'pw-alice-1\n' passwd --check "$F" alice
	expect_rc "mode $mode" 2
	expect_err "mode $mode" "writable by"
done
chmod 644 "$F"
run mode644 $'pw-alice-1\n' passwd --check "$F" alice
expect_rc "mode 644" 0
expect_err "mode 644" "readable by everyone"
chmod 640 "$F"
run mode640 $'pw-alice-1\n' passwd --check "$F" alice
expect_rc "mode 640" 0
expect_err "mode 640" "readable by its group"
chmod 600 "$F"
run mode600 $'pw-alice-1\n' passwd --check "$F" alice
[ -z "$ERR" ] || fail "a warning for mode 600: $ERR"

note "the admin of \$AMRS_ADMIN_USERNAME/\$AMRS_ADMIN_PASSWORD"
export AMRS_ADMIN_USERNAME=boss AMRS_ADMIN_PASSWORD='adm1n pass:word'
run admin_ok $'adm1n pass:word\n' passwd --check "$F" boss
expect_rc "the admin" 0
[[ $OUT == "boss: accepted (the admin"* ]] || fail "the admin: $OUT"
run admin_wrong $'adm1n pass:word2\n' passwd --check "$F" boss
expect_rc "the admin, wrong password" 1
run admin_alice $'pw-alice-1\n' passwd --check "$F" alice
expect_rc "a client beside the admin" 0
run admin_alice_pw $'adm1n pass:word\n' passwd --check "$F" alice
expect_rc "the admin's password for a client" 1
run admin_none $'adm1n pass:word\n' passwd --check "$T/none" boss
expect_rc "the admin alone, with an empty file" 0
printf '%s\n%s\n' "$ALICE" "boss:$HASH" >"$T/boss"
chmod 600 "$T/boss"
run admin_dup $'pw-alice-1\n' passwd --check "$T/boss" alice
expect_rc "the admin in the file too" 2
expect_err "the admin in the file too" "$T/boss:2: user \"boss\" is also \$AMRS_ADMIN_USERNAME"
AMRS_ADMIN_PASSWORD='' run admin_nopw $'pw\n' passwd --check "$F" alice
expect_rc "a user without a password" 2
expect_err "a user without a password" "\$AMRS_ADMIN_USERNAME is set but \$AMRS_ADMIN_PASSWORD is not"
AMRS_ADMIN_USERNAME='' run admin_nouser $'pw\n' passwd --check "$F" alice
expect_rc "a password without a user" 2
AMRS_ADMIN_USERNAME='a:b' run admin_baduser $'pw\n' passwd --check "$F" alice
expect_rc "a bad admin name" 2
expect_err "a bad admin name" "\$AMRS_ADMIN_USERNAME is not a valid user name"
unset AMRS_ADMIN_USERNAME AMRS_ADMIN_PASSWORD

note "no password in any output, no hash in any message"
for s in pw-alice-1 'a b:c d' pw-carol tty-secret adm1n; do
	grep -qF -- "$s" "$ALL" && fail "\"$s\" in syncqd's output"
done
for s in "$HASH" "${BOB#bob:}" "${CAROL#carol:}" "${ERIN#erin:}"; do
	grep -qF -- "$s" "$ERRS" && fail "\"$s\" in syncqd's messages"
done

note "auth_check itself, under ASan + UBSan"
cat >"$T/unit.c" <<'EOF'
#include "base/base.h"
#include "base/buf.h"
#include "base/encode.h"
#include "http/auth.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int	failures;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL line %d: ", __LINE__); \
	fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static char *
basic(const char *prefix, const char *cred, size_t n)
{
	Buf			b = {0};

	buf_puts(&b, prefix);
	buf_base64(&b, (const unsigned char *) cred, n);
	return b.p;
}

static const Auth *A;

/* check HEADER: true/false, with user and admin */
static bool
chk(const char *h, char *user, bool *admin)
{
	char		u[AUTH_USER_MAX + 1] = "untouched";
	bool		adm = false,
				ok = auth_check(A, h, u, sizeof(u), &adm);

	if (user)
		strcpy(user, u);
	if (admin)
		*admin = adm;
	if (!ok && strcmp(u, "untouched") != 0)
	{
		failures++;
		fprintf(stderr, "FAIL: user filled on a refusal\n");
	}
	return ok;
}

static bool
cred(const char *c)
{
	char	   *h = basic("Basic ", c, strlen(c));
	bool		ok = chk(h, NULL, NULL);

	free(h);
	return ok;
}

static double
secs(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

static int
cmpd(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

static double
median_time(const char *c)
{
	double		t[5];

	for (int i = 0; i < 5; i++)
	{
		double		s = secs();

		CHECK(!cred(c), "%s passed", c);
		t[i] = secs() - s;
	}
	qsort(t, 5, sizeof(double), cmpd);
	return t[2];
}

static void *
worker(void *arg)
{
	long		k = (long) arg;

	for (int i = 0; i < 12; i++)
	{
		switch ((i + k) % 4)
		{
			case 0:
				CHECK(cred("alice:pw-alice-1"), "thread: alice");
				break;
			case 1:
				CHECK(cred("bob:a b:c d #x"), "thread: bob");
				break;
			case 2:
				CHECK(!cred("alice:pw-alice-2"), "thread: alice, wrong");
				break;
			default:
				CHECK(cred("boss:adm1n"), "thread: boss");
				break;
		}
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	char		err[1024],
				user[AUTH_USER_MAX + 1],
				big[AUTH_HEADER_MAX + 64];
	bool		admin;
	Auth	   *a;
	char	   *h;

	(void) argc;
	setenv("AMRS_ADMIN_USERNAME", "boss", 1);
	setenv("AMRS_ADMIN_PASSWORD", "adm1n", 1);
	a = auth_load(argv[1], err, sizeof(err));
	if (a == NULL)
	{
		fprintf(stderr, "auth_load: %s\n", err);
		return 1;
	}
	A = a;
	CHECK(auth_count(a) == 4, "count %d", auth_count(a));

	/* right credentials, twice (the second from the cache) */
	for (int i = 0; i < 2; i++)
	{
		h = basic("Basic ", "alice:pw-alice-1", 16);
		CHECK(chk(h, user, &admin) && strcmp(user, "alice") == 0 && !admin, "alice: %s", user);
		free(h);
	}
	h = basic("Basic ", "boss:adm1n", 10);
	CHECK(chk(h, user, &admin) && strcmp(user, "boss") == 0 && admin, "boss");
	CHECK(auth_check(a, h, user, sizeof(user), NULL), "admin NULL");
	CHECK(!auth_check(a, h, user, 4, &admin), "boss does not fit 4 bytes");
	CHECK(auth_check(a, h, user, 5, &admin) && strcmp(user, "boss") == 0, "boss fits 5 bytes");
	CHECK(!auth_check(NULL, h, user, sizeof(user), &admin), "NULL Auth");
	CHECK(!auth_check(a, h, NULL, 0, &admin), "NULL user");
	free(h);
	CHECK(cred("bob:a b:c d #x"), "bob, a password with ':'");
	CHECK(cred("carol:pw-carol"), "carol");

	/* the scheme and the spacing */
	h = basic("basic ", "alice:pw-alice-1", 16);
	CHECK(chk(h, NULL, NULL), "lower-case scheme");
	free(h);
	h = basic(" BASIC \t ", "alice:pw-alice-1", 16);
	h = realloc(h, strlen(h) + 3);
	strcat(h, " \t");
	CHECK(chk(h, NULL, NULL), "spaces around");
	free(h);
	h = basic("Basic", "alice:pw-alice-1", 16);
	CHECK(!chk(h, NULL, NULL), "no space after Basic");
	free(h);
	h = basic("Bearer ", "alice:pw-alice-1", 16);
	CHECK(!chk(h, NULL, NULL), "Bearer");
	free(h);
	h = basic("Basic ", "alice:pw-alice-1", 16);
	h[strlen(h) - 1] = '!';
	CHECK(!chk(h, NULL, NULL), "bad base64");
	free(h);
	/* refusals */
	CHECK(!chk(NULL, NULL, NULL), "no header");
	CHECK(!chk("", NULL, NULL), "empty header");
	CHECK(!chk("Basic", NULL, NULL), "Basic alone");
	CHECK(!chk("Basic ", NULL, NULL), "Basic and a space");
	CHECK(!chk("Basic ====", NULL, NULL), "padding alone");
	CHECK(!chk("Basic YWxpY2U6cHctYWxpY2UtMQ==x", NULL, NULL), "after padding");
	CHECK(!chk("Basic YWxp Y2U6cHctYWxpY2UtMQ==", NULL, NULL), "a space inside");
	CHECK(!cred("alice:pw-alice-2"), "wrong password");
	CHECK(!cred("alice:pw-alice-1 "), "a space more");
	CHECK(!cred("alice:pw-alice-"), "a byte less");
	CHECK(!cred("alice:"), "empty password");
	CHECK(!cred(":pw-alice-1"), "empty user");
	CHECK(!cred("alicepw-alice-1"), "no colon");
	CHECK(!cred("alice"), "user alone");
	CHECK(!cred("Alice:pw-alice-1"), "user names are case-sensitive");
	CHECK(!cred("alic:pw-alice-1"), "a prefix of a user");
	CHECK(!cred("alicea:pw-alice-1"), "a longer user");
	CHECK(!cred("mallory:pw-alice-1"), "unknown user");
	CHECK(!cred("boss:pw-alice-1"), "a client's password for the admin");
	CHECK(!cred("alice:adm1n"), "the admin's password for a client");
	{
		static const char nul[] = "alice:pw-alice-1\0x";

		h = basic("Basic ", nul, sizeof(nul) - 1);
		CHECK(!chk(h, NULL, NULL), "a NUL byte");
		free(h);
		h = basic("Basic ", "ali\0ce:pw-alice-1", 17);
		CHECK(!chk(h, NULL, NULL), "a NUL byte in the user");
		free(h);
	}
	/* over the header limit, even though what is in it would pass */
	h = basic("Basic ", "alice:pw-alice-1", 16);
	memset(big, ' ', sizeof(big));
	memcpy(big, h, strlen(h));
	big[AUTH_HEADER_MAX] = '\0';
	CHECK(chk(big, NULL, NULL), "trailing spaces up to the limit");
	big[AUTH_HEADER_MAX] = ' ';
	big[AUTH_HEADER_MAX + 1] = '\0';
	CHECK(!chk(big, NULL, NULL), "a header over the limit");
	free(h);
	{
		char		longpw[600];

		memset(longpw, 'x', sizeof(longpw));
		memcpy(longpw, "alice:", 6);
		longpw[sizeof(longpw) - 1] = '\0';
		CHECK(!cred(longpw), "a password over 511 bytes");
	}

	/* an unknown user costs a crypt too (the cached right password would not) */
	{
		double		wrong = median_time("alice:pw-alice-2"),
					unknown = median_time("mallory:pw-alice-2");

		fprintf(stderr, "# median check: wrong password %.2f ms, unknown user %.2f ms\n",
				wrong * 1e3, unknown * 1e3);
		CHECK(unknown > wrong * 0.3 && unknown < wrong * 3, "unknown %.4f s, wrong %.4f s", unknown, wrong);
	}

	/* threads at once */
	{
		pthread_t	t[8];

		for (long i = 0; i < 8; i++)
			pthread_create(&t[i], NULL, worker, (void *) i);
		for (int i = 0; i < 8; i++)
			pthread_join(t[i], NULL);
	}

	auth_free(a);
	unsetenv("AMRS_ADMIN_PASSWORD");
	CHECK(auth_load(NULL, err, sizeof(err)) == NULL && strstr(err, "is set but") != NULL, "%s", err);
	unsetenv("AMRS_ADMIN_USERNAME");
	CHECK(auth_load(NULL, err, sizeof(err)) == NULL && strstr(err, "no credentials") != NULL, "%s", err);
	setenv("AMRS_ADMIN_USERNAME", "boss", 1);
	setenv("AMRS_ADMIN_PASSWORD", "adm1n", 1);
	a = auth_load(NULL, err, sizeof(err));
	CHECK(a != NULL && auth_count(a) == 1, "the admin alone: %s", err);
	A = a;
	CHECK(cred("boss:adm1n"), "the admin alone");
	CHECK(!cred("alice:pw-alice-1"), "alice without the file");
	auth_free(a);
	auth_free(NULL);
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	else
		printf("auth unit: ok\n");
	return failures ? 1 : 0;
}
EOF
R=$SYNCQ_ROOT/replicator
${CC:-cc} -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -pthread -O1 -g \
	-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
	-I"$R" -I"$SYNCQ_ROOT/common" -I"$(pg_config --includedir)" -o "$T/unit" \
	"$T/unit.c" "$R/http/auth.c" "$R"/base/*.c -lcrypt -lpthread -lm \
	>"$T/unit.build" 2>&1 || { cat "$T/unit.build" >&2; fail "the unit check does not build"; }
printf '%s\n%s\n%s\n' "$ALICE" "$BOB" "$CAROL" >"$T/unit-clients"
chmod 600 "$T/unit-clients"
RC=0
ASAN_OPTIONS=detect_leaks=1:exitcode=86 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=87 \
	"$T/unit" "$T/unit-clients" >"$T/unit.out" 2>&1 || RC=$?
cat "$T/unit.out"
[ "$RC" = 0 ] || fail "the unit check: exit $RC"
grep -q 'Sanitizer\|runtime error:' "$T/unit.out" && fail "the unit check under the sanitizers"
note "all good"
