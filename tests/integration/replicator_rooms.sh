#!/usr/bin/env bash
# replicator_rooms.sh — the rules of syncqd's rooms (docs/architecture.md),
# checked on the sources and on the objects `make` built:
#
#   * no file of client/ or link/ includes a hub/ header;
#   * only http/ includes microhttpd.h;
#   * no two object files call each other (from nm: a file's undefined
#     symbols against every other file's defined ones);
#   * every .c and .h file opens with a comment that names it and says
#     what it owns;
#   * no literal of a name common/syncq_contract.h defines for code (the
#     NOTIFY channel and payloads, the wake-up suffix, the blob tag, the
#     priorities compared as strings).
#
# Environment (from tests/run): SYNCQ_ROOT.
set -euo pipefail
. "$SYNCQ_ROOT/tests/lib/synctest.sh"

R=$SYNCQ_ROOT/replicator
cd "$R"

note "no hub/ header in client/ or link/"
if grep -n '#include "hub/' client/*.[ch] link/*.[ch]; then
	fail "client/ or link/ includes a hub/ header (what they need of the hub belongs in model/)"
fi

note "microhttpd.h only in http/"
bad=$(grep -ln '#include <microhttpd.h>' $(find . -name '*.[ch]' ! -path './http/*' ! -path './obj/*') || true)
[ -z "$bad" ] || fail "outside http/, these include microhttpd.h: $bad"
# nor through a header of http/ that does
for f in $(find . -name '*.[ch]' ! -path './http/*' ! -path './obj/*'); do
	for h in $(sed -n 's/^#include "\(http\/[a-z_]*\.h\)"/\1/p' "$f"); do
		grep -q '#include <microhttpd.h>' "$h" && fail "$f includes $h, which includes microhttpd.h"
	done
done

note "every file opens with what it owns"
for f in $(find . -name '*.[ch]' ! -path './obj/*' | sort); do
	name=$(basename "$f")
	head -n 2 "$f" | tr "\n" " " | grep -q "^/\* *\* $name — " ||
		fail "$f does not open with a comment \"$name — what it owns\""
done

note "no two object files call each other"
[ -d "$R/obj" ] || fail "no $R/obj: run make first"
/usr/bin/python3 - "$R/obj" <<'EOF' || fail "object files call each other (see above)"
import os, subprocess, sys
objdir = sys.argv[1]
defs, undefs = {}, {}
for root, _, files in os.walk(objdir):
    for f in files:
        if not f.endswith('.o'):
            continue
        p = os.path.join(root, f)
        rel = os.path.relpath(p, objdir)[:-2] + '.c'
        if rel.startswith(('ext/', 'common/')):
            continue
        if not os.path.exists(os.path.join(os.path.dirname(objdir), rel)):
            continue            # an object of a file that is gone
        d, u = set(), set()
        for ln in subprocess.run(['nm', p], capture_output=True, text=True, check=True).stdout.splitlines():
            parts = ln.split()
            if len(parts) == 2 and parts[0] == 'U':
                u.add(parts[1])
            elif len(parts) == 3 and parts[1] in 'TDBR':
                d.add(parts[2])
        defs[rel], undefs[rel] = d, u
owner = {s: f for f, ds in defs.items() for s in ds}
calls = {f: {owner[s] for s in undefs[f] if s in owner and owner[s] != f} for f in defs}
both = sorted((a, b) for a in calls for b in calls[a] if a < b and a in calls[b])
for a, b in both:
    print('# %s and %s call each other' % (a, b))
print('# %d object files, %d calls between files, no two calling each other' %
      (len(calls), sum(len(v) for v in calls.values())) if not both else '')
sys.exit(1 if both else 0)
EOF

note "the contract's names, not literals"
# priorities, payloads, the channel, the wake suffix and the blob tag where
# code compares, writes or sends them (SQL may name the queue table; the
# protocol's field "immediate" is a key of its own)
bad=$(grep -n -E 'strn?cmp\([^;]*"(immediate|batched|change|request|upload:)"|\? "(immediate|batched)" : "(immediate|batched)"|= "(change|request)";|LISTEN sync_queue|pg_notify\('"'"'sync_queue'"'"'|-syncq-wake"|[^*] *"(\\"|)\$hex(\\"|)"' \
	$(find . -name '*.c' ! -path './obj/*') | grep -v -E '^[^:]*:[0-9]+:\s*(/?\*)' || true)
[ -z "$bad" ] || fail "literals of contract names (use common/syncq_contract.h):
$bad"
note "all good"
