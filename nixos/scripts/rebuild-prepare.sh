#!/usr/bin/env bash
# Root side of `bloud-rebuild`, before the switch: a fresh root-owned copy of the Bloud flake
# with nixos/generated/apps.nix generated here, from data only.
#
#   rebuild-prepare.sh SRC FLAKE_DIR APPS_LIST AGENT
#
# SRC (the flake source in the Nix store), FLAKE_DIR (root-owned, outside anything the bloud user
# can write) and AGENT (the bloud-agent binary in the store) are fixed by the NixOS module; sudo
# passes the bloud user no arguments. The only input from the bloud user is APPS_LIST, the
# agent's list of enabled app names: `bloud-agent apps-nix` reads it once without following a
# symlink anywhere on its path, accepts catalog names only, and writes the Nix itself. Nothing
# of the list is printed (its errors name a line number). A missing list gives a module with no
# apps, so a generated file from an earlier rebuild never survives.
set -euo pipefail
export LC_ALL=C
umask 022

if [ "$#" -ne 4 ]; then
  echo "usage: rebuild-prepare.sh SRC FLAKE_DIR APPS_LIST AGENT" >&2
  exit 2
fi
src=$1 flake=$2 list=$3 agent=$4

install -d -m 0755 -- "$(dirname -- "$flake")"
rm -rf -- "$flake.new"
cp -rT --no-preserve=mode,ownership -- "$src" "$flake.new"
install -d -m 0755 -- "$flake.new/nixos/generated"
# Written into the fresh root-owned copy only; a generated file in SRC is never kept.
rm -f -- "$flake.new/nixos/generated/apps.nix"
if ! "$agent" apps-nix --catalog "$src/apps" --list "$list" >"$flake.new/nixos/generated/apps.nix.tmp"; then
  rm -rf -- "$flake.new"
  echo "bloud-rebuild: the app list was refused; nothing switched" >&2
  exit 1
fi
mv -T -- "$flake.new/nixos/generated/apps.nix.tmp" "$flake.new/nixos/generated/apps.nix"

rm -rf -- "$flake.old"
if [ -e "$flake" ]; then mv -T -- "$flake" "$flake.old"; fi
mv -T -- "$flake.new" "$flake"
rm -rf -- "$flake.old"
