#!/usr/bin/env bash
# deb_packages.sh — `make deb` builds postgresql-15-syncq and syncqd; they
# are lintian clean of errors, install on this machine with apt-get, work
# from the installed paths (CREATE EXTENSION syncq in a throwaway cluster
# from the package's files, syncqd --help/--version from /usr/bin, the
# SQLite extension from /usr/lib/syncq, the unit passes systemd-analyze
# verify, the man page matches --help), make the system user syncq, and
# remove cleanly: remove leaves only the conffile, purge leaves nothing of
# the packages (the user syncq stays, as Debian policy says).
#
# It installs packages, so it must run as root (as CI does, on a fresh
# Debian 12) and leaves the machine as it found it: files of `make install`
# that the packages overwrite are put back, the user is removed again if
# this test made it.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
. "$SYNCQ_ROOT/tests/lib/pgcluster.sh"
cd "$SYNCQ_ROOT"
[ "$(id -u)" -eq 0 ] || fail "deb_packages.sh installs Debian packages and must run as root (make check passes as root on a fresh Debian 12); running as $(id -un)"
PKGS="postgresql-15-syncq syncqd"
for p in $PKGS; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ -z "$st" ] || [ "$st" = not-installed ] ||
		fail "$p is already on this machine ($st); this test installs and purges it: apt-get purge $p first"
done
ver=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" pg_ext/syncq.control)

# 1. build, lint
D=$SYNCQ_TMP/deb
make -s deb DEBDIR="$D" >"$SYNCQ_TMP/build.log" 2>&1 || { tail -n 30 "$SYNCQ_TMP/build.log"; fail "make deb"; }
debs=()
for p in $PKGS; do
	f=$D/${p}_${ver}_$(dpkg --print-architecture).deb
	[ -f "$f" ] || fail "make deb made no $f: $(ls "$D")"
	debs+=("$f")
done
lintian --pedantic "$D"/*.changes >"$SYNCQ_TMP/lintian.log" 2>&1 || true
grep -v 'running with root privileges' "$SYNCQ_TMP/lintian.log" | sed 's/^/# lintian: /'
! grep -q '^E: ' "$SYNCQ_TMP/lintian.log" || fail "lintian reports errors"
grep -q "^[EWIP]: \|^N: " "$SYNCQ_TMP/lintian.log" || [ ! -s "$SYNCQ_TMP/lintian.log" ] ||
	grep -q 'running with root' "$SYNCQ_TMP/lintian.log" || { cat "$SYNCQ_TMP/lintian.log"; fail "lintian did not run"; }

# 2. what the packages will overwrite: files nobody owns (make install's)
# are kept aside and put back at the end; a file of another package is a
# conflict
BACKUP=$SYNCQ_TMP/backup
mkdir -p "$BACKUP"
user_before=$(getent passwd syncq || true)
for f in "${debs[@]}"; do dpkg-deb -c "$f"; done | awk '$1 !~ /^d/ { print substr($6, 2) }' | sort -u >"$SYNCQ_TMP/files"
for f in "${debs[@]}"; do dpkg-deb -c "$f"; done | awk '$1 ~ /^d/ { d = substr($6, 2); sub("/$", "", d); if (d != "") print d }' |
	sort -u | while read -r d; do if [ -d "$d" ]; then echo "$d"; fi; done >"$SYNCQ_TMP/dirs_before"
while read -r f; do
	[ -e "$f" ] || [ -L "$f" ] || continue
	if owner=$(dpkg -S "$f" 2>/dev/null); then fail "$f belongs to ${owner%%:*} already"; fi
	mkdir -p "$BACKUP$(dirname "$f")"
	cp -a "$f" "$BACKUP$f"
	echo "$f" >>"$SYNCQ_TMP/saved"
done <"$SYNCQ_TMP/files"
note "$(wc -l <"$SYNCQ_TMP/files") files in the packages; $(wc -l <"$SYNCQ_TMP/saved" 2>/dev/null || echo 0) of them there before, owned by no package (make install's), kept aside"

CLUSTER=
restore() {
	local rc=$?
	[ -n "$CLUSTER" ] && pgc_stop "$CLUSTER"
	for p in $PKGS; do
		st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
		if [ -n "$st" ] && [ "$st" != not-installed ]; then
			DEBIAN_FRONTEND=noninteractive dpkg --purge "$p" >/dev/null 2>&1 || true
		fi
	done
	if [ -f "$SYNCQ_TMP/saved" ]; then
		while read -r f; do
			[ -e "$f" ] || { mkdir -p "$(dirname "$f")"; cp -a "$BACKUP$f" "$f"; }
		done <"$SYNCQ_TMP/saved"
	fi
	if [ -z "$user_before" ] && getent passwd syncq >/dev/null; then
		userdel syncq 2>/dev/null || true
		getent group syncq >/dev/null && groupdel syncq 2>/dev/null || true
	fi
	exit "$rc"
}
trap restore EXIT

# 3. install
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=120 --no-install-recommends "${debs[@]}" >"$SYNCQ_TMP/install.log" 2>&1 ||
	{ tail -n 20 "$SYNCQ_TMP/install.log"; fail "apt-get install of the packages"; }
for p in $PKGS; do
	expect_eq "$p installed" "$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$p")" "installed $ver"
done
for f in /usr/lib/postgresql/15/lib/syncq.so /usr/share/postgresql/15/extension/syncq.control \
	/usr/share/postgresql/15/extension/syncq--$ver.sql; do
	expect_eq "owner of $f" "$(dpkg -S "$f" | cut -d: -f1)" postgresql-15-syncq
done
for f in sql/syncq--*.sql; do
	[ -f "/usr/share/postgresql/15/extension/$(basename "$f")" ] || fail "the package lacks $(basename "$f")"
done
for f in /usr/bin/syncqd /usr/lib/syncq/syncq.so /lib/systemd/system/syncqd.service /etc/syncq/syncqd.env \
	/usr/share/man/man1/syncqd.1.gz /usr/share/doc/syncqd/copyright /usr/share/doc/syncqd/changelog.gz; do
	expect_eq "owner of $f" "$(dpkg -S "$f" | cut -d: -f1)" syncqd
done
getent passwd syncq | grep -q ':/var/lib/syncq:' || fail "no system user syncq with home /var/lib/syncq: $(getent passwd syncq)"
[ "$(id -u syncq)" -lt 1000 ] || fail "syncq is not a system user: uid $(id -u syncq)"
expect_eq "owner of /var/lib/syncq" "$(stat -c %U:%G /var/lib/syncq)" syncq:syncq
note "installed: $(dpkg-query -W -f='${Package} ${Version}, ' $PKGS); user $(id syncq)"

# 4. works from the installed paths
expect_eq "/usr/bin/syncqd --version" "$(/usr/bin/syncqd --version)" "syncqd $ver"
/usr/bin/syncqd --help >"$SYNCQ_TMP/help" || fail "/usr/bin/syncqd --help"
grep -q '^Usage:' "$SYNCQ_TMP/help" || fail "syncqd --help: $(cat "$SYNCQ_TMP/help")"
expect_eq "SQLite .load /usr/lib/syncq/syncq" \
	"$(sqlite3 :memory: '.load /usr/lib/syncq/syncq' "SELECT syncq_version(), eastern_date('2025-07-24T03:30:00Z');")" "$ver|2025-07-23"
CLUSTER=$SYNCQ_TMP/pg
pgc_start "$CLUSTER" || fail "a throwaway cluster"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE EXTENSION syncq" >/dev/null || fail "CREATE EXTENSION syncq from the package"
expect_eq "CREATE EXTENSION syncq, then syncq_version()" \
	"$(psql -X -At -d postgres -c "SELECT syncq_version(), (SELECT probin FROM pg_proc WHERE proname = 'sync_track')")" "$ver|\$libdir/syncq"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE TABLE t (id int PRIMARY KEY); SELECT sync_track('t'); INSERT INTO t VALUES (1)" >/dev/null
expect_eq "a change captured by the package's syncq.so" "$(psql -X -At -d postgres -c "SELECT op || pk::text FROM sync_queue")" 'I{"id":1}'
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE old" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d old -c "CREATE EXTENSION syncq VERSION '0.1.0'" \
	-c "ALTER EXTENSION syncq UPDATE" >/dev/null || fail "CREATE EXTENSION syncq VERSION '0.1.0' and ALTER EXTENSION syncq UPDATE from the package"
pgc_stop "$CLUSTER"; CLUSTER=
# the unit, as installed
systemd-analyze verify /lib/systemd/system/syncqd.service >"$SYNCQ_TMP/verify.log" 2>&1 ||
	{ cat "$SYNCQ_TMP/verify.log"; fail "systemd-analyze verify syncqd.service"; }
[ ! -s "$SYNCQ_TMP/verify.log" ] || { cat "$SYNCQ_TMP/verify.log"; fail "systemd-analyze verify has something to say"; }
grep -q '^User=syncq$' /lib/systemd/system/syncqd.service || fail "the unit does not run as syncq"
grep -q '^ExecStart=/usr/bin/syncqd ' /lib/systemd/system/syncqd.service || fail "the unit does not start /usr/bin/syncqd"
# the man page: every option of --help is in it, and every option in it is in a --help
man -w syncqd >/dev/null || fail "man syncqd finds no page"
MANWIDTH=200 man syncqd 2>/dev/null | grep -oE -- '--[a-z][a-z-]*' | sort -u >"$SYNCQ_TMP/man.opts"
{ /usr/bin/syncqd --help; /usr/bin/syncqd serve --help; /usr/bin/syncqd passwd --help; } 2>&1 |
	grep -oE -- '--[a-z][a-z-]*' | sort -u >"$SYNCQ_TMP/help.opts"
diff -u "$SYNCQ_TMP/help.opts" "$SYNCQ_TMP/man.opts" || fail "syncqd(1) and syncqd --help name different options (above: - --help, + man page)"
grep -q "syncq $ver" <(zcat /usr/share/man/man1/syncqd.1.gz) || fail "syncqd(1) is not of syncq $ver"
note "/usr/bin/syncqd, /usr/lib/syncq/syncq, CREATE EXTENSION, the unit and syncqd(1) ($(wc -l <"$SYNCQ_TMP/help.opts") options) work"

# 5. remove, then purge
dpkg -L $PKGS | grep -vx "/\." | sort -u >"$SYNCQ_TMP/listed"
conffiles=$(dpkg-query -W -f='${Conffiles}\n' $PKGS | awk 'NF { print $1 }')
expect_eq "conffiles" "$conffiles" /etc/syncq/syncqd.env
DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq -o DPkg::Lock::Timeout=120 $PKGS >"$SYNCQ_TMP/remove.log" 2>&1 || { cat "$SYNCQ_TMP/remove.log"; fail "apt-get remove"; }
left=$(while read -r f; do
	[ -d "$f" ] && continue
	[ "$f" = /etc/syncq/syncqd.env ] && continue
	if [ -e "$f" ] || [ -L "$f" ]; then echo "$f"; fi
done <"$SYNCQ_TMP/listed")
[ -z "$left" ] || fail "apt-get remove left: $left"
[ -f /etc/syncq/syncqd.env ] || fail "apt-get remove took the conffile (only purge may)"
# dpkg, not apt-get: a package without conffiles is gone after remove, and
# apt knows no archive that has it
DEBIAN_FRONTEND=noninteractive dpkg --purge $PKGS >"$SYNCQ_TMP/purge.log" 2>&1 || { cat "$SYNCQ_TMP/purge.log"; fail "dpkg --purge"; }
# every path of the packages is gone, but for directories that were there
# before the install (/usr/bin, ...)
left=$(while read -r f; do
	{ [ -e "$f" ] || [ -L "$f" ]; } || continue
	[ -d "$f" ] && grep -qxF "$f" "$SYNCQ_TMP/dirs_before" && continue
	echo "$f"
done <"$SYNCQ_TMP/listed")
[ -z "$left" ] || fail "dpkg --purge left: $left"
for p in $PKGS; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ -z "$st" ] || [ "$st" = not-installed ] || fail "$p is $st after purge"
done
getent passwd syncq >/dev/null || fail "purge removed the user syncq (Debian policy: a system user stays)"
note "removed (the conffile stayed) and purged: nothing of $(wc -l <"$SYNCQ_TMP/listed") paths left but shared directories; the user syncq stays"
echo ok
