#!/bin/sh
# deps/install.sh — make sure every package of deps/debian-packages.txt is
# installed, and then the browser test's npm packages (tests/browser, exactly
# as its package-lock.json says: npm ci).  As root, installs the missing
# Debian packages with apt-get; otherwise prints the exact apt-get line to
# run and fails.  Nothing is downloaded later, at build or test time.
set -eu
here=$(dirname "$0")
root=$(cd "$here/.." && pwd)
pkgs=$(grep -v '^#' "$here/debian-packages.txt" | tr -s ' \n' '  ')
missing=""
for p in $pkgs; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = "installed" ] || missing="$missing $p"
done
# npm: NodeSource's nodejs carries its own; Debian's nodejs needs Debian's npm
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "syncq: missing Debian packages:$missing" >&2
		echo "syncq: run as root:  apt-get install -y$missing" >&2
		exit 1
	fi
	echo "syncq: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ ! -d "$root/tests/browser/node_modules/playwright-core" ]; then
	echo "syncq: npm ci in tests/browser (playwright-core; the browser is Debian's chromium)" >&2
	npm ci --prefix "$root/tests/browser" --no-audit --no-fund --loglevel=error >&2
fi
