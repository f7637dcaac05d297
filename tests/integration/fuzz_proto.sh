#!/usr/bin/env bash
# The decoder of POST /api/sync/data (replicator/link/proto.c) and, for
# every upload it accepts, the hub's value encoding (replicator/hub/apply.c:
# the JSON arrays json_populate_recordset reads) under libFuzzer, ASan and
# UBSan (tests/fuzz/fuzz_proto.c and fuzz_hub.c, built with clang by `make
# fuzz` into this test's own directory). First every input of
# tests/fuzz/regress/ (bodies that once broke the decoder, and the json
# injections of issue 18, which broke the hub's encoding) runs once; then
# 60 s of fuzzing from the seed corpus tests/fuzz/corpus/ (a valid request
# of every op, uploads to the fuzz's hub tables with json values and keys)
# with the dictionary tests/fuzz/proto.dict. Any crash, sanitizer report,
# leak, broken promise (fuzz_proto.c's and fuzz_hub.c's checks), timeout or
# out-of-memory fails the test, with the input that did it kept in
# $SYNCQ_TMP. Prints how many inputs ran, and libFuzzer's seed: replay a
# run with SYNCQ_FUZZ_SEED=N.
. "$SYNCQ_ROOT/tests/lib/synctest.sh"

FUZZ=$SYNCQ_TMP/build/fuzz_proto
WORKCORPUS=$SYNCQ_TMP/corpus
SECONDS_TO_RUN=${SYNCQ_FUZZ_SECONDS:-60}
SEED=${SYNCQ_FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
SEED=$((SEED % 2147483647 + 1))
rm -rf "$SYNCQ_TMP/build" "$WORKCORPUS" "$SYNCQ_TMP"/crash-* "$SYNCQ_TMP"/leak-* \
	"$SYNCQ_TMP"/timeout-* "$SYNCQ_TMP"/oom-*
mkdir -p "$WORKCORPUS"

command -v "${FUZZ_CC:-clang}" >/dev/null ||
	fail "no ${FUZZ_CC:-clang}: install the Debian packages clang and libclang-rt-14-dev"
note "building fuzz_proto"
make -s -C "$SYNCQ_ROOT" fuzz FUZZ_DIR="$SYNCQ_TMP/build" >"$SYNCQ_TMP/build.log" 2>&1 ||
	{ cat "$SYNCQ_TMP/build.log" >&2; fail "make fuzz failed"; }
[ -x "$FUZZ" ] || fail "make fuzz made no $FUZZ"

# The sanitizers stop at the first error (tests/run sets the same); libFuzzer
# looks for leaks itself after each input.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# finding LOG: the report of the first finding in LOG, for the failure message
finding() {
	grep -m1 -A 30 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|broken promise|deadly signal' "$1" |
		head -n 40 >&2 || tail -n 30 "$1" >&2
	ls "$SYNCQ_TMP"/crash-* "$SYNCQ_TMP"/leak-* "$SYNCQ_TMP"/timeout-* "$SYNCQ_TMP"/oom-* 2>/dev/null >&2 || true
}

note "the regression inputs, once each"
regress=("$SYNCQ_ROOT"/tests/fuzz/regress/*)
if [ -e "${regress[0]}" ]; then
	(cd "$SYNCQ_TMP" && "$FUZZ" -rss_limit_mb=2048 -artifact_prefix="$SYNCQ_TMP/" "${regress[@]}") \
		>"$SYNCQ_TMP/regress.log" 2>&1 || {
		finding "$SYNCQ_TMP/regress.log"
		fail "a regression input failed: $(sed -n 's/^Running: //p' "$SYNCQ_TMP/regress.log" | tail -n 1)"
	}
	note "${#regress[@]} regression inputs passed"
fi

note "fuzzing for $SECONDS_TO_RUN s, seed $SEED (replay: SYNCQ_FUZZ_SEED=$SEED)"
rc=0
(cd "$SYNCQ_TMP" && "$FUZZ" -seed="$SEED" -dict="$SYNCQ_ROOT/tests/fuzz/proto.dict" \
	-max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
	-artifact_prefix="$SYNCQ_TMP/" -print_final_stats=1 \
	"$WORKCORPUS" "$SYNCQ_ROOT/tests/fuzz/corpus") >"$SYNCQ_TMP/fuzz.log" 2>&1 || rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$SYNCQ_TMP/fuzz.log")
[ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$SYNCQ_TMP/fuzz.log" | tail -n 1 | tr -d '#')
note "executions: ${execs:-unknown} in $SECONDS_TO_RUN s; $(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$SYNCQ_TMP/fuzz.log" | tail -n 1)"
if [ "$rc" -ne 0 ]; then
	finding "$SYNCQ_TMP/fuzz.log"
	fail "fuzz_proto found something (exit $rc, seed $SEED): the input is kept in $SYNCQ_TMP"
fi
if ls "$SYNCQ_TMP"/crash-* "$SYNCQ_TMP"/leak-* "$SYNCQ_TMP"/timeout-* "$SYNCQ_TMP"/oom-* >/dev/null 2>&1; then
	finding "$SYNCQ_TMP/fuzz.log"
	fail "fuzz_proto left a finding in $SYNCQ_TMP"
fi
grep -q '^Done [0-9]* runs' "$SYNCQ_TMP/fuzz.log" || { tail -n 20 "$SYNCQ_TMP/fuzz.log" >&2; fail "fuzz_proto did not finish its run"; }
[ "${execs:-0}" -gt 1000 ] || fail "fuzz_proto ran only ${execs:-0} inputs"
echo "fuzz_proto: $execs executions in $SECONDS_TO_RUN s (seed $SEED), no finding"
