#!/usr/bin/env bash
# Installs the Nix-managed route files (bloud.proxy.routeFiles) into the proxy's routes
# directory, next to the agent's apps-routes.yml, and removes the ones Nix no longer manages.
#
#   install-routes.sh ROUTES_DIR MANIFEST [NAME STORE_FILE]...
#
# bloud-proxy-routes.service runs it as the bloud user (who owns ROUTES_DIR anyway), so it
# grants nothing. It is also written to be safe as root in a directory someone else can write
# (scripts/test runs it so against an attacker): it never follows a name in ROUTES_DIR, never
# reads a file from it, and never changes ownership or modes there.
# - MANIFEST (the names installed last time) lives in the unit's own StateDirectory, not in
#   ROUTES_DIR; it is read with one O_NOFOLLOW open, names from it are checked again before
#   they are removed (plain `*.yml`/`*.yaml` names, no `/`), and `rm` of a name unlinks the
#   entry, never its target.
# - New files are created under a fresh random name with noclobber (O_CREAT|O_EXCL: an existing
#   entry of that name, symlink or not, makes it fail), written through that descriptor, then
#   renamed over the final name (rename replaces the entry; -T refuses a directory there).
set -euo pipefail
set -o noclobber
export LC_ALL=C
umask 0027

if [ "$#" -lt 2 ] || [ $(($# % 2)) -ne 0 ]; then
  echo "usage: install-routes.sh ROUTES_DIR MANIFEST [NAME STORE_FILE]..." >&2
  exit 2
fi
dir=$1 manifest=$2
shift 2

valid() { [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*\.ya?ml$ ]]; }

names=() srcs=()
declare -A wanted=()
while [ "$#" -gt 0 ]; do
  valid "$1" || { echo "install-routes: bad route file name from Nix: $1" >&2; exit 2; }
  names+=("$1") srcs+=("$2") wanted[$1]=1
  shift 2
done

if [ ! -d "$dir" ] || [ -L "$dir" ]; then
  echo "install-routes: $dir is not a directory (systemd-tmpfiles creates it)" >&2
  exit 1
fi

# dd iflag=nofollow,nonblock: one open with O_NOFOLLOW (a symlink is not followed, even if it
# replaces the file after any check) and O_NONBLOCK (a FIFO does not hang the unit).
previous="$(dd if="$manifest" iflag=nofollow,nonblock bs=65536 count=1 status=none 2>/dev/null || true)"
while IFS= read -r old; do
  valid "$old" || continue
  [ -n "${wanted[$old]+x}" ] && continue
  rm -f -- "$dir/$old" 2>/dev/null || echo "install-routes: could not remove $old" >&2
done <<<"$previous"

status=0
for i in "${!names[@]}"; do
  tmp="$(mktemp -u -p "$dir" .nix-route-XXXXXXXXXXXX.tmp)"
  if ! cat -- "${srcs[$i]}" >"$tmp"; then
    echo "install-routes: could not create a temporary file for ${names[$i]}" >&2
    status=1
    continue
  fi
  if ! mv -f -T -- "$tmp" "$dir/${names[$i]}"; then
    rm -f -- "$tmp"
    echo "install-routes: could not install ${names[$i]}" >&2
    status=1
  fi
done

mtmp="$(mktemp -u -p "$(dirname -- "$manifest")" .manifest-XXXXXXXXXXXX)"
printf '%s\n' ${names[@]+"${names[@]}"} >"$mtmp"
mv -f -T -- "$mtmp" "$manifest"
exit "$status"
