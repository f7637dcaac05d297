# bench/lib/sync.sh — what the sync benchmarks (bench/parts/4*.sh, 5*.sh)
# share: timing, rates and ratios, percentiles, one timed `syncqd --once`,
# the URL of a serve just started. Source it after
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

# pct FILE P: the P-th percentile of the numbers in FILE (microseconds), in ms
pct() { sort -n "$1" | awk -v p="$2" '{ a[NR] = $1 } END { i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; printf "%.1f", a[i] / 1000 }'; }

serve_url() {	# serve_url LOG: the URL of the syncqd serve logging to LOG, once it listens
	local i
	for i in $(seq 200); do grep -q 'listening on' "$1" && break; sleep 0.05; done
	echo "http://127.0.0.1:$(sed -nE 's/.*listening on [^ ]*:([0-9]+) .*/\1/p' "$1")"
}
