#!/usr/bin/env bash
# Root side of `bloud-rebuild --rollback N`, before the switch: checks that N, the only thing
# the bloud user passes, is a plain generation number of the system profile.
#
#   rollback-check.sh PROFILE GENERATION
#
# PROFILE (/nix/var/nix/profiles/system) is fixed by the NixOS module. GENERATION comes from the
# bloud user through sudo: accepted only as 1 to 9 ASCII digits without a leading zero (so no
# option, path, glob or shell word can pass), and only when PROFILE-GENERATION-link is a
# generation with a switch-to-configuration. Prints the number; prints nothing of a refused one.
set -euo pipefail
export LC_ALL=C

if [ "$#" -ne 2 ]; then
  echo "usage: rollback-check.sh PROFILE GENERATION" >&2
  exit 2
fi
profile=$1 gen=$2

if ! [[ "$gen" =~ ^[1-9][0-9]{0,8}$ ]]; then
  echo "bloud-rebuild: a rollback takes a generation number (1 to 9 digits); refused" >&2
  exit 2
fi
link="$profile-$gen-link"
if [ ! -L "$link" ] || [ ! -x "$link/bin/switch-to-configuration" ]; then
  echo "bloud-rebuild: the system profile has no generation $gen" >&2
  exit 1
fi
printf '%s\n' "$gen"
