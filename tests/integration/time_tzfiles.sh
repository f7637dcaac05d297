#!/usr/bin/env bash
# time_tzfiles.sh — syncq's zone engine (common/tz.c) on every kind of
# zone file, through tests/tools/tzlist built with ASan + UBSan:
#
#   * slim TZif files (zic -b slim) and version-1 files read the same as the
#     system's fat files;
#   * the built-in America/New_York equals the system file at every
#     transition of years 1..9999;
#   * names are looked up ignoring case, as PostgreSQL does;
#   * empty, truncated, corrupt, leap-second files, directories and FIFOs
#     are errors, never a crash or a hang; bad names never reach the disk.
#
# Environment (from tests/run): SYNCQ_ROOT, SYNCQ_TMP, SYNCQ_BUILD.
set -euo pipefail

: "${SYNCQ_ROOT:?}" "${SYNCQ_TMP:?}" "${SYNCQ_BUILD:?}"
SYS=/usr/share/zoneinfo
T=$SYNCQ_TMP/time_tzfiles
rm -rf "$T"
mkdir -p "$T/empty" "$T/bad/Bad" "$T/slim" "$T/v1/America" "$SYNCQ_BUILD"
export LC_ALL=C
unset TZDIR
failed=0
checks=0

# tzlist under ASan + UBSan for everything but the bulk comparison of all
# zones, which uses the plain build (sanitizer start-up is slow).
SRC=("$SYNCQ_ROOT/tests/tools/tzlist.c" "$SYNCQ_ROOT/common/tz.c")
TZLIST_PLAIN=$SYNCQ_BUILD/tzlist
${CC:-cc} -std=c11 -Wall -Wextra -Werror -O2 -I "$SYNCQ_ROOT/common" -o "$TZLIST_PLAIN" "${SRC[@]}" -lsqlite3
TZLIST=$SYNCQ_BUILD/tzlist-asan
if ! ${CC:-cc} -std=c11 -Wall -Wextra -Werror -O1 -g -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined -I "$SYNCQ_ROOT/common" -o "$TZLIST" "${SRC[@]}" -lsqlite3 2>/dev/null; then
	echo "# no sanitizers here: plain build only"
	TZLIST=$TZLIST_PLAIN
fi
export ASAN_OPTIONS=detect_leaks=1:exitcode=86 UBSAN_OPTIONS=halt_on_error=1:exitcode=87

fail() { echo "FAIL: $*"; failed=1; }

# same LABEL DIR_A DIR_B ZONE FROM TO: tzlist -v agrees under both TZDIRs
same() {
	checks=$((checks + 1))
	if ! TZDIR=$2 "$TZLIST" -v "$4" "$5" "$6" >"$T/a.txt" 2>&1 ||
		! TZDIR=$3 "$TZLIST" -v "$4" "$5" "$6" >"$T/b.txt" 2>&1; then
		fail "$1: tzlist failed: $(cat "$T/a.txt" "$T/b.txt" | head -n 3)"
	elif ! cmp -s "$T/a.txt" "$T/b.txt"; then
		fail "$1: $4 differs in $5..$6"
		diff "$T/a.txt" "$T/b.txt" | head -n 6
	fi
}

# refused LABEL DIR ZONE MESSAGE: tzlist exits 1 naming the problem
refused() {
	local rc=0
	checks=$((checks + 1))
	TZDIR=$2 timeout 10 "$TZLIST" "$3" 1970 2099 >"$T/out.txt" 2>&1 || rc=$?
	if [ "$rc" -ne 1 ] || ! grep -q "$4" "$T/out.txt"; then
		fail "$1: exit $rc, expected 1 and \"$4\": $(head -c 300 "$T/out.txt")"
	fi
}

be32() { od -An -tu4 --endian=big -j "$2" -N 4 "$1" | tr -d ' '; }
poke() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

# --- built-in America/New_York against the system file -------------------------
same "built-in" "$T/empty" "" America/New_York 1 9999
same "built-in alias" "$T/empty" "" US/Eastern 1 9999
refused "no zoneinfo" "$T/empty" Europe/London "unknown time zone"

# --- names ---------------------------------------------------------------------
same "case" "" "" america/new_york 1 2200
same "case" "" "" EUROPE/LONDON 1 2200
TZDIR= "$TZLIST" -v America/New_York 1 2200 >"$T/c1.txt"
TZDIR= "$TZLIST" -v america/new_york 1 2200 >"$T/c2.txt"
checks=$((checks + 1))
cmp -s "$T/c1.txt" "$T/c2.txt" || fail "case: america/new_york differs"
for name in ../../etc/passwd /etc/passwd America/../Europe/London America//New_York \
	America/ "New York" zone.tab 'a;b' '$HOME'; do
	refused "name $name" "" "$name" "invalid time zone name"
done
refused "directory" "" America "unknown time zone"
refused "no such zone" "" Mars/Olympus "unknown time zone"
mkfifo "$T/bad/Bad/Fifo"
refused "fifo" "$T/bad" Bad/Fifo "cannot read time zone file"

# --- slim files ------------------------------------------------------------------
if command -v zic >/dev/null && [ -r "$SYS/tzdata.zi" ]; then
	zic -b slim -d "$T/slim" "$SYS/tzdata.zi"
	for z in America/New_York America/Chicago America/Los_Angeles Europe/London \
		Australia/Sydney Asia/Kolkata America/St_Johns Pacific/Chatham \
		America/Nuuk Europe/Lisbon Europe/Dublin Africa/Casablanca America/Sao_Paulo; do
		same "slim" "$T/slim" "" "$z" 1 9999
	done
	n=0
	asan=$TZLIST
	TZLIST=$TZLIST_PLAIN
	for z in $(sed -n 's/^Z \([^ ]*\) .*/\1/p' "$SYS/tzdata.zi"); do
		same "slim" "$T/slim" "" "$z" 1 2037
		n=$((n + 1))
	done
	TZLIST=$asan
	echo "# slim files: $n zones"
else
	echo "# no zic or tzdata.zi: slim files not checked"
fi

# --- version-1 files: the first header and its 32-bit block only -----------------
v1() {					# v1 SRC DEST: a TZif version 1 copy of SRC
	local h=(0 0 0 0 0 0) i size
	for i in 0 1 2 3 4 5; do h[$i]=$(be32 "$1" $((20 + 4 * i))); done
	# isutcnt isstdcnt leapcnt timecnt typecnt charcnt
	size=$((44 + h[3] * 5 + h[4] * 6 + h[5] + h[2] * 8 + h[1] + h[0]))
	head -c "$size" "$1" >"$2"
	poke "$2" 4 '\000'
}
v1 "$SYS/America/New_York" "$T/v1/America/New_York"
v1 "$SYS/Pacific/Chatham" "$T/v1/Pacific_Chatham"
mkdir -p "$T/v1/Pacific" && mv "$T/v1/Pacific_Chatham" "$T/v1/Pacific/Chatham"
same "v1" "$T/v1" "" America/New_York 1902 2037
same "v1" "$T/v1" "" Pacific/Chatham 1902 2037

# --- broken files ----------------------------------------------------------------
NY=$SYS/America/New_York
SIZE=$(stat -c %s "$NY")
bad() {					# bad NAME: $T/bad/Bad/NAME must be refused
	refused "corrupt $1" "$T/bad" "Bad/$1" "invalid or unsupported time zone file"
}
: >"$T/bad/Bad/Empty"; bad Empty
printf 'TZif' >"$T/bad/Bad/Magic"; bad Magic
cp "$NY" "$T/bad/Bad/NotTZif"; poke "$T/bad/Bad/NotTZif" 0 'X'; bad NotTZif
cp "$NY" "$T/bad/Bad/Version"; poke "$T/bad/Bad/Version" 4 '1'; bad Version
cp "$NY" "$T/bad/Bad/TimeCnt"; poke "$T/bad/Bad/TimeCnt" 32 '\377\377\377\377'; bad TimeCnt
cp "$NY" "$T/bad/Bad/TypeCnt0"; poke "$T/bad/Bad/TypeCnt0" 36 '\000\000\000\000'; bad TypeCnt0
cp "$NY" "$T/bad/Bad/CharCnt"; poke "$T/bad/Bad/CharCnt" 40 '\177\000\000\000'; bad CharCnt
# the second (64-bit) header and block
H2=$((44 + $(be32 "$NY" 32) * 5 + $(be32 "$NY" 36) * 6 + $(be32 "$NY" 40) + $(be32 "$NY" 28) * 8 + $(be32 "$NY" 24) + $(be32 "$NY" 20)))
NT=$(be32 "$NY" $((H2 + 32)))
cp "$NY" "$T/bad/Bad/Magic2"; poke "$T/bad/Bad/Magic2" "$H2" 'X'; bad Magic2
cp "$NY" "$T/bad/Bad/Order"; poke "$T/bad/Bad/Order" $((H2 + 44 + 8)) '\177'; bad Order
cp "$NY" "$T/bad/Bad/TypeIdx"; poke "$T/bad/Bad/TypeIdx" $((H2 + 44 + NT * 8 + 3)) '\377'; bad TypeIdx
cp "$NY" "$T/bad/Bad/IsDst"; poke "$T/bad/Bad/IsDst" $((H2 + 44 + NT * 9 + 4)) '\007'; bad IsDst
cp "$NY" "$T/bad/Bad/UtOff"; poke "$T/bad/Bad/UtOff" $((H2 + 44 + NT * 9)) '\177'; bad UtOff
cp "$NY" "$T/bad/Bad/IsUtCnt"; poke "$T/bad/Bad/IsUtCnt" $((H2 + 20)) '\000\000\000\003'; bad IsUtCnt
head -c $((SIZE - 1)) "$NY" >"$T/bad/Bad/NoNewline"; bad NoNewline
{ head -c $((SIZE - $(tail -n 1 "$NY" | wc -c))) "$NY"; printf 'EST5EDT,M3.2.0,M13.1.0\n'; } >"$T/bad/Bad/Footer"; bad Footer
{ head -c $((SIZE - $(tail -n 1 "$NY" | wc -c))) "$NY"; printf 'EST5EDT,M3.2.0\n'; } >"$T/bad/Bad/Footer2"; bad Footer2
{ head -c $((SIZE - $(tail -n 1 "$NY" | wc -c))) "$NY"; printf 'E5\n'; } >"$T/bad/Bad/Footer3"; bad Footer3
{ head -c $((SIZE - $(tail -n 1 "$NY" | wc -c))) "$NY"; printf 'EST5EDT,M3.2.0/168,M11.1.0\n'; } >"$T/bad/Bad/Footer4"; bad Footer4
if [ -r "$SYS/right/America/New_York" ]; then
	cp "$SYS/right/America/New_York" "$T/bad/Bad/LeapSeconds"; bad LeapSeconds
fi
# every truncation of a small file, and many of a large one
UTC=$SYS/Etc/UTC
for ((n = 1; n < $(stat -c %s "$UTC"); n++)); do
	head -c "$n" "$UTC" >"$T/bad/Bad/Cut"; bad Cut
done
for ((n = 1; n < SIZE; n += 97)); do
	head -c "$n" "$NY" >"$T/bad/Bad/Cut"; bad Cut
done
# a footer the 64-bit data does not reach: header counts promise more data
cp "$NY" "$T/bad/Bad/Long"; poke "$T/bad/Bad/Long" $((H2 + 32)) '\000\001\000\000'; bad Long

echo "# $checks checks"
if [ "$failed" -ne 0 ]; then
	echo "FAILED"
	exit 1
fi
echo "all passed"
