#!/usr/bin/env bash
# time_cross_engine.sh — SQLite's time functions (syncq's own zone engine)
# must agree with PostgreSQL's built-in AT TIME ZONE on every instant.
#
# For eight zones, the instants are every transition 1970..2099 (as listed
# by tests/tools/tzlist) at 0, +-1 s and +-1 h, plus 10,000 random instants
# (fixed seed) in [1970-01-01, 2100-01-01) and 1,000 more with microseconds.
# Every (instant, zone) pair is compared on wall time with offset, date and
# UTC offset.  PostgreSQL is the oracle through its built-in functions only
# (to_timestamp, AT TIME ZONE, to_char), never syncq's own.
#
# Then, with TZDIR pointing at an empty directory (built-in New York rules),
# eastern_date, utc_to_eastern and zone_* 'America/New_York' on the same
# instants.  Last, every hour 1970..2099 in which PostgreSQL's offset
# changes must hold a transition listed by tzlist, and tzlist must list no
# more than those, so the transition list, and with it the instants tested
# above, misses nothing.
#
# Environment (from tests/run): PGHOST PGPORT PGUSER PGDATABASE,
# SYNCQ_SQLITE_EXT, SYNCQ_ROOT, SYNCQ_TMP, SYNCQ_BUILD.
set -euo pipefail

: "${SYNCQ_SQLITE_EXT:?}" "${SYNCQ_ROOT:?}" "${SYNCQ_TMP:?}" "${SYNCQ_BUILD:?}"
ZONES="America/New_York America/Chicago America/Los_Angeles Europe/London
Australia/Sydney Asia/Kolkata America/St_Johns Pacific/Chatham"
LO=0                    # 1970-01-01T00:00:00Z
HI=4102444800           # 2100-01-01T00:00:00Z
T=$SYNCQ_TMP/time_cross_engine
mkdir -p "$T" "$T/empty-zoneinfo" "$SYNCQ_BUILD"
export LC_ALL=C
unset TZDIR             # the system zoneinfo, which PostgreSQL reads too
PSQL=(psql -X -q -v ON_ERROR_STOP=1)
failed=0

# --- the transition lister ----------------------------------------------------
TZLIST=$SYNCQ_BUILD/tzlist
${CC:-cc} -std=c11 -Wall -Wextra -Werror -O2 -I "$SYNCQ_ROOT/common" -o "$TZLIST" \
	"$SYNCQ_ROOT/tests/tools/tzlist.c" "$SYNCQ_ROOT/common/tz.c" -lsqlite3

# --- the instants -------------------------------------------------------------
for z in $ZONES; do
	"$TZLIST" "$z" 1970 2099 | sed "s|^|$z |"
done >"$T/transitions.txt"
awk -v lo=$LO -v hi=$HI '{
	split("0 1 -1 3600 -3600", d, " ")
	for (i = 1; i <= 5; i++) { t = $2 + d[i]; if (t >= lo && t < hi) printf "%.0f\n", t }
}' "$T/transitions.txt" >"$T/instants.raw"
# A 32-bit linear congruential generator, exact in awk's doubles.
awk -v lo=$LO -v hi=$HI 'BEGIN {
	s = 20250724
	while (n < 11000) {
		s = (1664525 * s + 1013904223) % 4294967296
		if (s < lo || s >= hi) continue
		n++
		if (n <= 10000) { printf "%.0f\n", s; continue }
		f = (1664525 * s + 1013904223) % 4294967296
		printf "%.0f.%06d\n", s, f % 1000000
	}
}' >>"$T/instants.raw"
sort -u "$T/instants.raw" >"$T/instants.txt"
printf '%s\n' $ZONES >"$T/zones.txt"
echo "# $(wc -l <"$T/transitions.txt") transitions, $(wc -l <"$T/instants.txt") instants, $(wc -l <"$T/zones.txt") zones"

# --- compare two files of KEY|fields lines ------------------------------------
compare() {				# compare LABEL SQLITE_FILE PG_FILE
	local label=$1 a=$2 b=$3 n bad
	sort -o "$a" "$a"
	sort -o "$b" "$b"
	n=$(wc -l <"$b")
	diff "$a" "$b" >"$a.diff" || true
	bad=$(grep -c '^>' "$a.diff" || true)
	echo "$label: $n comparisons, $bad mismatches"
	if [ "$n" -eq 0 ] || [ "$(wc -l <"$a")" -ne "$n" ] || [ "$bad" -ne 0 ]; then
		echo "first mismatches (< SQLite, > PostgreSQL):"
		grep -m 20 '^[<>]' "$a.diff" || true
		failed=1
	fi
}

# PostgreSQL's offset of instant ts in zone z as +HH:MM[:SS], and the rest of
# the wall time as ISO text; the oracle uses nothing but built-in functions.
PG_WALL="to_char(ts AT TIME ZONE z, 'YYYY-MM-DD\"T\"HH24:MI:SS')
	|| coalesce('.' || nullif(rtrim(to_char(ts AT TIME ZONE z, 'US'), '0'), ''), '')
	|| CASE WHEN off < 0 THEN '-' ELSE '+' END
	|| lpad((abs(off) / 3600)::text, 2, '0') || ':' || lpad((abs(off) / 60 % 60)::text, 2, '0')
	|| CASE WHEN abs(off) % 60 <> 0 THEN ':' || lpad((abs(off) % 60)::text, 2, '0') ELSE '' END"
PG_DATE="to_char(ts AT TIME ZONE z, 'YYYY-MM-DD')"
PG_ROWS="(SELECT k, z, ts, extract(epoch FROM (ts AT TIME ZONE z) - (ts AT TIME ZONE 'UTC'))::int AS off
	FROM (SELECT k, to_timestamp(k::float8) AS ts FROM cross_instants) i, cross_zones) r"
# psql's \copy takes one line
PG_WALL=$(tr '\n\t' '  ' <<<"$PG_WALL")
PG_ROWS=$(tr '\n\t' '  ' <<<"$PG_ROWS")

"${PSQL[@]}" <<SQL
CREATE TEMP TABLE cross_instants(k text);
CREATE TEMP TABLE cross_zones(z text);
\copy cross_instants FROM '$T/instants.txt'
\copy cross_zones FROM '$T/zones.txt'
\copy (SELECT k || '|' || z || '|' || $PG_WALL || '|' || $PG_DATE || '|' || off FROM $PG_ROWS) TO '$T/pg_zones.txt'
\copy (SELECT k || '|' || $PG_WALL || '|' || $PG_DATE || '|' || $PG_WALL || '|' || $PG_DATE FROM $PG_ROWS WHERE z = 'America/New_York') TO '$T/pg_ny.txt'
SQL

# --- SQLite, system zoneinfo --------------------------------------------------
# k is the instant as written; x the same as a number (NUMERIC affinity).
SQLITE_LOAD=".load $SYNCQ_SQLITE_EXT
CREATE TABLE i(k TEXT, x NUMERIC);
CREATE TABLE z(z TEXT);
.import $T/instants2.txt i
.import $T/zones.txt z"
awk '{ print $1 "|" $1 }' "$T/instants.txt" >"$T/instants2.txt"
sqlite3 :memory: <<SQL
$SQLITE_LOAD
.output $T/sqlite_zones.txt
WITH r AS (SELECT k, z, zone_time(x, z) AS t, zone_date(x, z) AS d FROM i, z),
s AS (SELECT *, substr(t, 20) AS tail FROM r),
o AS (SELECT *, substr(tail, max(instr(tail, '+'), instr(tail, '-'))) AS o FROM s)
SELECT k || '|' || z || '|' || t || '|' || d || '|'
       || ((CASE substr(o, 1, 1) WHEN '-' THEN -1 ELSE 1 END)
           * (substr(o, 2, 2) * 3600 + substr(o, 5, 2) * 60 + coalesce(nullif(substr(o, 8, 2), ''), 0)))
  FROM o;
SQL
compare "zones, system zoneinfo" "$T/sqlite_zones.txt" "$T/pg_zones.txt"

# --- SQLite, no zoneinfo: built-in America/New_York ---------------------------
TZDIR=$T/empty-zoneinfo sqlite3 :memory: <<SQL
$SQLITE_LOAD
.output $T/sqlite_ny.txt
SELECT k || '|' || utc_to_eastern(x) || '|' || eastern_date(x) || '|'
       || zone_time(x, 'America/New_York') || '|' || zone_date(x, 'America/New_York')
  FROM i;
SQL
compare "America/New_York, no zoneinfo" "$T/sqlite_ny.txt" "$T/pg_ny.txt"

# --- no transition missed: every hour where PostgreSQL's offset changes -------
# An hour h is listed when the offset at h differs from the offset at h - 1 h;
# tzlist must then have a transition in (h - 1 h, h].
"${PSQL[@]}" -At <<SQL >"$T/pg_change_hours.txt"
SELECT z || ' ' || extract(epoch FROM t)::bigint
  FROM (SELECT z, t, off, lag(off) OVER (PARTITION BY z ORDER BY t) AS prev
          FROM (SELECT z, t, extract(epoch FROM (t AT TIME ZONE z) - (t AT TIME ZONE 'UTC')) AS off
                  FROM unnest(string_to_array('$(echo $ZONES)', ' ')) AS z,
                       generate_series(to_timestamp($LO), to_timestamp($HI - 3600), interval '1 hour') AS t) o) c
 WHERE off <> prev;
SQL
TZDIR=$T/empty-zoneinfo "$TZLIST" America/New_York 1970 2099 | sed 's|^|builtin-ny |' >>"$T/transitions.txt"
check_hours() {				# check_hours LABEL ZONE_IN_PG ZONE_IN_TRANSITIONS
	local missing total listed
	total=$(awk -v z="$2" '$1 == z' "$T/pg_change_hours.txt" | wc -l)
	missing=$(awk -v z="$2" -v w="$3" '
		FNR == NR { if ($1 == w) have[sprintf("%.0f", $2 % 3600 ? $2 - $2 % 3600 + 3600 : $2)] = 1; next }
		$1 == z && !($2 in have) { n++; if (n <= 10) print "  missing: the hour ending " $2 > "/dev/stderr" }
		END { print n + 0 }' "$T/transitions.txt" "$T/pg_change_hours.txt")
	listed=$(awk -v w="$3" '$1 == w' "$T/transitions.txt" | wc -l)
	echo "$1: $total hours with an offset change, $missing of them without a listed transition, $listed listed"
	if [ "$missing" -ne 0 ] || [ "$listed" -ne "$total" ]; then failed=1; fi
}
for z in $ZONES; do
	check_hours "transitions $z" "$z" "$z"
done
check_hours "transitions America/New_York, built-in" America/New_York builtin-ny

if [ "$failed" -ne 0 ]; then
	echo "FAILED"
	exit 1
fi
echo "all agree"
