# bench/lib/sync.sh — what the sync benchmarks (bench/parts/4*.sh) share:
# timing, rates and ratios, and one timed `syncqd --once`. Source it after
# setting SYNCQD and T (the part's own directory).
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

timed() {		# timed FILE ONLINE: seconds of one syncqd --once
	local start
	start=$(now)
	"$SYNCQD" --sqlite "$1" --online "$2" --once 2>>"$T/syncqd.log" ||
		{ tail -n 3 "$T/syncqd.log" >&2; return 1; }
	elapsed "$start"
}
