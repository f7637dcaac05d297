#!/bin/sh
# deps/install.sh — make sure every package of deps/debian-packages.txt is
# installed.  As root, installs the missing ones with apt-get; otherwise
# prints the exact apt-get line to run and fails.
set -eu
here=$(dirname "$0")
pkgs=$(grep -v '^#' "$here/debian-packages.txt" | tr -s ' \n' '  ')
missing=""
for p in $pkgs; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = "installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
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
