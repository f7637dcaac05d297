#!/usr/bin/env bash
# pgxn_dist.sh — `make dist` makes the PGXN zip that META.json describes:
# syncq-VERSION.zip with every file under syncq-VERSION/, META.json valid
# for the PGXN meta spec 1.0.0 (its required fields; every "provides" file
# and docfile in the zip; versions agree), the generated install script in
# it, and PGXS builds and installs the extension from the unpacked zip
# alone (into a staging DESTDIR: the system's PostgreSQL is not touched).
. "$SYNCQ_ROOT/tests/lib/synctest.sh"
cd "$SYNCQ_ROOT"
ver=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" pg_ext/syncq.control)
d=$SYNCQ_TMP/dist
make -s dist DISTDIR="$d" >"$SYNCQ_TMP/dist.log" 2>&1 || { cat "$SYNCQ_TMP/dist.log"; fail "make dist"; }
zip=$d/syncq-$ver.zip
[ -f "$zip" ] || fail "make dist made no $zip"
unzip -Z1 "$zip" >"$SYNCQ_TMP/names"
bad=$(grep -v "^syncq-$ver/" "$SYNCQ_TMP/names" || true)
[ -z "$bad" ] || fail "entries outside syncq-$ver/: $bad"
# every committed file, and only those, plus the generated install script
git ls-tree -r --name-only HEAD | sed "s|^|syncq-$ver/|" | sort >"$SYNCQ_TMP/want"
echo "syncq-$ver/sql/syncq--$ver.sql" >>"$SYNCQ_TMP/want"
grep -v '/$' "$SYNCQ_TMP/names" | sort | diff -u <(sort "$SYNCQ_TMP/want") - ||
	fail "the zip's files are not the committed tree plus sql/syncq--$ver.sql (above: - wanted, + in the zip)"
mkdir -p "$d/x"
unzip -q "$zip" -d "$d/x"
top=$d/x/syncq-$ver
python3 - "$top" "$ver" <<'PY' || fail "META.json in the zip"
import json, os, re, sys
top, ver = sys.argv[1], sys.argv[2]
m = json.load(open(os.path.join(top, "META.json")))
for k in ("name", "version", "abstract", "maintainer", "license", "provides", "meta-spec"):
    assert k in m, "META.json lacks the required field %r" % k
semver = re.compile(r"^\d+\.\d+\.\d+$")
assert m["meta-spec"]["version"] == "1.0.0", m["meta-spec"]
assert semver.match(m["version"]) and m["version"] == ver, m["version"]
assert m.get("release_status", "stable") in ("stable", "testing", "unstable")
assert m["license"] in ("postgresql", "bsd", "mit", "apache_2_0", "gpl_3") or isinstance(m["license"], (dict, list)), m["license"]
known = {"name", "version", "abstract", "maintainer", "license", "provides", "meta-spec", "description",
         "generated_by", "tags", "no_index", "prereqs", "release_status", "resources"}
extra = [k for k in m if k not in known and not k.lower().startswith("x_")]
assert not extra, "META.json has fields the spec does not know: %s" % extra
assert m["provides"], "provides is empty"
for ext, p in m["provides"].items():
    assert p["version"] == ver, (ext, p["version"])
    assert semver.match(p["version"])
    for f in ("file", "docfile"):
        if f in p:
            assert os.path.isfile(os.path.join(top, p[f])), "%s of %s: %s is not in the zip" % (f, ext, p[f])
    ctl = open(os.path.join(top, "pg_ext", ext + ".control")).read()
    assert "default_version = '%s'" % ver in ctl, ctl
print("META.json: spec 1.0.0 fields present, provides", ", ".join(m["provides"]))
PY
head -n 2 "$top/sql/syncq--$ver.sql" | grep -q '^\\echo Use "CREATE EXTENSION syncq"' || fail "the zip's install script lacks the \\echo guard"
# PGXS from the zip alone, as a PGXN user's `make install` would
stage=$d/stage
make -s -C "$top/pg_ext" >"$SYNCQ_TMP/build.log" 2>&1 || { tail -n 20 "$SYNCQ_TMP/build.log"; fail "PGXS build from the zip"; }
make -s -C "$top/pg_ext" install DESTDIR="$stage" >>"$SYNCQ_TMP/build.log" 2>&1 || { tail -n 20 "$SYNCQ_TMP/build.log"; fail "PGXS install from the zip"; }
ext=$stage$(pg_config --sharedir)/extension
lib=$stage$(pg_config --pkglibdir)
[ -f "$lib/syncq.so" ] || fail "PGXS did not install syncq.so from the zip"
[ -f "$ext/syncq.control" ] || fail "PGXS did not install syncq.control"
for f in sql/syncq--*.sql; do
	[ -f "$ext/$(basename "$f")" ] || fail "PGXS did not install $(basename "$f") from the zip"
done
cmp -s "$ext/syncq--$ver.sql" "sql/syncq--$ver.sql" || fail "the zip's install script differs from the one built here"
note "$(basename "$zip"): $(grep -vc '/$' "$SYNCQ_TMP/names") files; PGXS builds and installs from it"
echo ok
