#!/usr/bin/env bash
# Installs Debian packages, for hack/setup-*.sh: every argument is
# "check:package [package...]", where check is a command that must be on
# PATH or an absolute path that must exist; the packages are installed
# (with one apt-get update) only when it is missing.
set -euo pipefail

need_pkgs=()
for spec in "$@"; do
	check="${spec%%:*}"
	read -r -a pkgs <<< "${spec#*:}"
	case "$check" in
	/*) [ -e "$check" ] || need_pkgs+=("${pkgs[@]}") ;;
	*) command -v "$check" >/dev/null 2>&1 || need_pkgs+=("${pkgs[@]}") ;;
	esac
done
[ ${#need_pkgs[@]} -gt 0 ] || exit 0
if [ "$(id -u)" != 0 ]; then
	echo "missing ${need_pkgs[*]} and not root: install them first" >&2; exit 1
fi
echo "installing ${need_pkgs[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq "${need_pkgs[@]}" >&2
