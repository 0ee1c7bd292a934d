#!/usr/bin/env python3
"""The NixOS layer's root-side scripts, run as root against an unprivileged attacker.

What a `bloud` user (or an app that took over the agent) could try against the two scripts that
touch its files, run here for real as root in a temporary sandbox, while an attacker process with
another uid swaps its files in a loop:

- rebuild: nixos/scripts/rebuild-prepare.sh with `bloud-agent apps-nix` (what `sudo
  bloud-rebuild` runs). The attacker owns the data dir and swaps apps.list between a valid list,
  Nix code (`users.users.root.initialPassword = "pwned"`), a FIFO, a symlink to a root-only file
  outside, and the whole nix/ directory for a symlink to a directory outside. After each run the
  flake copy must hold only the module generated from catalog names, never a byte of the
  attacker's Nix nor of the root-only files (they hold an app name the attacker never writes, so
  a read through a symlink shows up as that app).
- routes: nixos/scripts/install-routes.sh (bloud-proxy-routes.service, which runs it as the
  bloud user; here as root, the worst case). The attacker owns the routes dir and the manifest
  and writes `../` names into the manifest, symlinks it outside, turns base.yml into a symlink
  or a directory, and replaces the installer's temporary files with symlinks the moment they
  appear.

After every run, nothing outside the attacker's area changed: the canary files keep their
content, owner, mode and mtime, none disappears, nothing new appears, and their access times
(set before their mtime, so relatime updates them on any read) show no read.

Usage: tests/nixos/root_helpers_attack.py [--runs N] [--agent PATH] [--baseline]
  --baseline runs the pre-issue-13 logic of both scripts (copied from main before the fix, as
  shell snippets below) instead, to measure what the attacker got then. The test itself
  (scripts/test) runs the current scripts and fails on any hit.
Needs root (re-runs itself with `sudo -n` when possible). Bounded: each script run has a
timeout; the attacker is stopped and the sandbox removed at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
ATTACKER_UID = 61213  # no passwd entry needed; owns nothing else on the machine
RUN_TIMEOUT = 20
# The whole test stops (and fails) past this, even if many runs hit their timeout.
TOTAL_BUDGET = 900
# The old helper blocks on a FIFO (it read the file with grep): a short timeout keeps --baseline bounded.
BASELINE_TIMEOUT = 2
SECRET_APP = "sonarr"  # the canary's content: a valid name the attacker never writes
PWNED = 'users.users.root.initialPassword = "pwned";'

# What main had before issue 13 (nixos/modules/rebuild.nix and proxy.nix), for --baseline.
OLD_REBUILD = r"""
set -euo pipefail
src=$1 flake=$2 apps=$3
if [ -e "$apps" ]; then
  bad="$(grep -nvE \
    -e '^[[:space:]]*(#.*)?$' \
    -e '^[[:space:]]*[{}][[:space:]]*$' \
    -e '^[[:space:]]*\{[[:space:]]*(config|lib|pkgs|\.\.\.)([[:space:]]*,[[:space:]]*(config|lib|pkgs|\.\.\.))*[[:space:]]*\}:[[:space:]]*$' \
    -e '^[[:space:]]*bloud\.apps\.("[A-Za-z0-9_-]+"|[A-Za-z0-9_-]+)(\.ldap)?\.enable[[:space:]]*=[[:space:]]*(true|false);[[:space:]]*$' \
    -- "$apps" || true)"
  if [ -n "$bad" ]; then
    echo "refusing; offending lines:" >&2
    printf '%s\n' "$bad" >&2
    exit 1
  fi
fi
rm -rf "$flake.new"
cp -rT --no-preserve=mode,ownership "$src" "$flake.new"
install -d -m 0755 "$flake.new/nixos/generated"
if [ -e "$apps" ]; then install -m 0644 "$apps" "$flake.new/nixos/generated/apps.nix"; fi
rm -rf "$flake.old"
if [ -e "$flake" ]; then mv "$flake" "$flake.old"; fi
mv "$flake.new" "$flake"
rm -rf "$flake.old"
"""

OLD_ROUTES = r"""
set -euo pipefail
dir=$1 src=$2 owner=$3
manifest="$dir/.nix-managed"
wanted=(base.yml)
if [ -f "$manifest" ]; then
  while IFS= read -r old; do
    [ -n "$old" ] || continue
    keep=0
    for w in "${wanted[@]}"; do [ "$w" = "$old" ] && keep=1; done
    if [ "$keep" -eq 0 ]; then rm -f -- "$dir/$old"; fi
  done < "$manifest"
fi
install -m 0640 -o "$owner" "$src" "$dir/base.yml.tmp"
mv -f "$dir/base.yml.tmp" "$dir/base.yml"
printf '%s\n' "${wanted[@]}" > "$manifest.tmp"
chown "$owner" "$manifest.tmp"
mv -f "$manifest.tmp" "$manifest"
"""


def ensure_root() -> None:
    if os.geteuid() == 0:
        return
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        os.execvp("sudo", ["sudo", "-n", "--preserve-env=CARGO_TARGET_DIR", sys.executable, *sys.argv])
    sys.exit("root_helpers_attack: needs root (the scripts run as root on a Bloud box); run it as root")


def read_noatime(p: Path) -> bytes:
    """Reads a canary without touching its access time (O_NOATIME: root may)."""
    fd = os.open(p, os.O_RDONLY | os.O_NOATIME | os.O_NOFOLLOW)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class Canaries:
    """Files outside the attacker's reach, watched for reads, writes, deletion and chown."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "outside"
        self.dir.mkdir(mode=0o700)
        (self.dir / "lists").mkdir(mode=0o700)
        self.files = {
            "secret": f"{SECRET_APP}\n",
            "victim.yml": "root-owned route file, must stay as is\n",
            "lists/apps.list": f"{SECRET_APP}\n",
        }
        for name, text in self.files.items():
            p = self.dir / name
            p.write_text(text)
            os.chmod(p, 0o600)
        self.reset_atimes()
        self.snapshot = self.state()
        # relatime (or noatime) decides whether reads are visible; check it on a scratch file.
        probe = root / "atime-probe"
        probe.write_text("x")
        os.utime(probe, (1, time.time()))
        before = probe.stat().st_atime
        probe.read_text()
        self.atime_works = probe.stat().st_atime != before
        probe.unlink()

    def reset_atimes(self) -> None:
        now = time.time()
        for name in self.files:
            os.utime(self.dir / name, (1, now - 10))

    def state(self) -> dict:
        out = {}
        for p in sorted(self.dir.rglob("*")):
            st = p.lstat()
            out[str(p.relative_to(self.dir))] = (
                stat.S_IFMT(st.st_mode),
                st.st_mode & 0o7777,
                st.st_uid,
                st.st_gid,
                read_noatime(p) if p.is_file() and not p.is_symlink() else None,
                st.st_mtime_ns if p.is_file() else None,
            )
        return out

    def check(self) -> list[str]:
        hits = []
        now = self.state()
        if now != self.snapshot:
            changed = sorted(set(now) ^ set(self.snapshot)) + sorted(
                k for k in set(now) & set(self.snapshot) if now[k] != self.snapshot[k]
            )
            hits.append(f"outside changed: {changed}")
            for p in self.dir.rglob("*"):
                if p.is_symlink() or str(p.relative_to(self.dir)) not in self.files:
                    if p.is_dir() and not p.is_symlink():
                        continue
                    p.unlink()
            for name, text in self.files.items():
                p = self.dir / name
                if p.is_symlink() or p.is_dir():
                    p.unlink() if p.is_symlink() else shutil.rmtree(p)
                p.write_text(text)
                os.chown(p, 0, 0)
                os.chmod(p, 0o600)
            self.reset_atimes()
            self.snapshot = self.state()
        if self.atime_works:
            read = [n for n in self.files if (self.dir / n).stat().st_atime > 1]
            if read:
                hits.append(f"outside read: {read}")
                self.reset_atimes()
                self.snapshot = self.state()
        return hits


def attacker(mode: str, area: Path, outside: Path, stop: Path, fname: str, legit: str) -> None:
    """Child process: drops to ATTACKER_UID and swaps its files until `stop` exists."""
    os.setgroups([])
    os.setgid(ATTACKER_UID)
    os.setuid(ATTACKER_UID)
    rnd = random.Random(os.getpid())
    n = 0

    def put(path: Path, make) -> None:
        tmp = path.with_name(f".atk-{n}")
        try:
            make(tmp)
            os.replace(tmp, path)
        except OSError:
            try:
                if tmp.is_dir() and not tmp.is_symlink():
                    shutil.rmtree(tmp)
                else:
                    tmp.unlink()
            except OSError:
                pass

    def text(t: str):
        return lambda p: p.write_text(t)

    def link(target: Path):
        return lambda p: os.symlink(target, p)

    while not stop.exists():
        n += 1
        try:
            if mode == "rebuild":
                nixdir = area / "data" / "nix"
                lst = nixdir / fname
                choice = rnd.randrange(7)
                if choice == 0:
                    put(lst, text(legit))
                elif choice == 1:
                    put(lst, text("{ ... }: { " + PWNED + " }\n"))
                elif choice == 2:
                    put(lst, text("bloud.apps.miniflux.enable = true;\n" + PWNED + "\n"))
                elif choice == 3:
                    put(lst, link(outside / "secret"))
                elif choice == 4:
                    put(lst, lambda p: os.mkfifo(p, 0o644))
                elif choice == 5:
                    # The directory above the list: a symlink to a directory outside.
                    if nixdir.is_symlink() or not nixdir.exists():
                        if nixdir.is_symlink():
                            nixdir.unlink()
                        nixdir.mkdir(exist_ok=True)
                    else:
                        aside = area / "data" / f".nix-{n}"
                        os.rename(nixdir, aside)
                        os.symlink(outside / "lists", nixdir)
                        shutil.rmtree(aside, ignore_errors=True)
                else:
                    put(lst, text(legit))
            else:
                routes = area / "routes"
                manifest = area / "state" / "nix-managed"
                choice = rnd.randrange(7)
                if choice == 0:
                    put(manifest, text("old.yml\n../outside/victim.yml\n../../outside/victim.yml\n"
                                       f"{outside}/victim.yml\n"))
                elif choice == 1:
                    put(manifest, link(outside / "secret"))
                elif choice == 2:
                    put(routes / "base.yml", link(outside / "victim.yml"))
                elif choice == 3:
                    b = routes / "base.yml"
                    if b.is_dir() and not b.is_symlink():
                        shutil.rmtree(b)  # the installer works again next run
                    else:
                        put(b, lambda p: p.mkdir())
                elif choice == 4:
                    put(routes / ".nix-managed", link(outside / "victim.yml"))
                    put(routes / ".nix-managed.tmp", link(outside / "victim.yml"))
                    put(routes / "base.yml.tmp", link(outside / "victim.yml"))
                else:
                    # Swap the installer's temporary files for symlinks as they appear.
                    for d in (routes, area / "state"):
                        for e in os.listdir(d):
                            if e.startswith("."):
                                p = d / e
                                try:
                                    os.unlink(p)
                                    os.symlink(outside / "victim.yml", p)
                                except OSError:
                                    pass
        except OSError:
            pass
    os._exit(0)


def start_attacker(mode: str, area: Path, outside: Path, stop: Path, fname: str = "", legit: str = "") -> int:
    pid = os.fork()
    if pid == 0:
        try:
            attacker(mode, area, outside, stop, fname, legit)
        finally:
            os._exit(0)
    return pid


def stop_attacker(pid: int, stop: Path) -> None:
    stop.touch()
    deadline = time.time() + 10
    while time.time() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


DEADLINE = float("inf")

GEN_LINE = re.compile(r"  bloud\.apps\.([a-z0-9-]+)(\.ldap)?\.enable = true;")


def check_flake(flake: Path, catalog: set[str], legit: set[str]) -> list[str]:
    """The generated module holds only generated lines naming apps the attacker may enable."""
    f = flake / "nixos" / "generated" / "apps.nix"
    if not f.exists():
        return []
    text = f.read_text(errors="replace")
    hits = []
    if "pwned" in text or "initialPassword" in text:
        hits.append("attacker Nix in the flake")
    for line in text.splitlines():
        if line in ("# Generated by Bloud - DO NOT EDIT MANUALLY", "# This file is managed by the Bloud host agent",
                    "{ config, lib, pkgs, ... }:", "", "{", "}"):
            continue
        m = GEN_LINE.fullmatch(line)
        if not m:
            hits.append("a line the generator does not write is in the flake")
        elif m.group(1) not in catalog:
            hits.append("a non-catalog name in the flake")
        elif m.group(2) is None and m.group(1) not in legit:
            hits.append(f"{m.group(1)} (only in a root-only file) in the flake")
    return hits


def run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Runs a script in its own process group; on timeout the whole group is killed (a child
    blocked on a FIFO would otherwise keep the pipes open)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        return subprocess.CompletedProcess(cmd, p.returncode, out, err)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        return subprocess.CompletedProcess(cmd, 124, out, err)


def rebuild_round(root: Path, runs: int, agent: Path, baseline: bool, canaries: Canaries) -> dict:
    area = root / "attacker"
    (area / "data" / "nix").mkdir(parents=True)
    for p in (area, area / "data", area / "data" / "nix"):
        os.chown(p, ATTACKER_UID, ATTACKER_UID)
    src = root / "src"
    shutil.copytree(REPO / "apps", src / "apps")
    (src / "flake.nix").write_text("{ outputs = _: { }; }\n")
    (root / "rebuild").mkdir(mode=0o755)
    flake = root / "rebuild" / "flake"
    lst = area / "data" / "nix" / "apps.list"
    catalog = {p.name for p in (src / "apps").iterdir() if (p / "metadata.yaml").exists()}
    legit = {"miniflux", "postgres"}
    stats = {"runs": 0, "hits": 0, "accepted": 0, "refused": 0, "timeouts": 0, "leaks": 0, "details": set()}
    stop = root / "stop-rebuild"
    if baseline:
        # The old helper read apps.nix: the same swaps under that name, valid content in its format.
        fname, legit_text = "apps.nix", ("# Generated by Bloud - DO NOT EDIT MANUALLY\n{ config, lib, pkgs, ... }:\n\n"
                                         "{\n  bloud.apps.miniflux.enable = true;\n}\n")
    else:
        fname, legit_text = "apps.list", "miniflux\npostgres\n"
    pid = start_attacker("rebuild", area, canaries.dir, stop, fname, legit_text)
    try:
        for _ in range(runs):
            if time.time() > DEADLINE:
                break
            if baseline:
                apps_nix = area / "data" / "nix" / "apps.nix"
                r = run(["bash", "-c", OLD_REBUILD, "old", str(src), str(flake), str(apps_nix)], BASELINE_TIMEOUT)
            else:
                r = run(["bash", str(REPO / "nixos/scripts/rebuild-prepare.sh"), str(src), str(flake), str(lst), str(agent)],
                        RUN_TIMEOUT)
            stats["runs"] += 1
            stats["timeouts"] += r.returncode == 124
            stats["accepted" if r.returncode == 0 else "refused"] += 1
            hits = check_flake(flake, catalog, legit) if r.returncode == 0 else []
            output = r.stdout + r.stderr
            if SECRET_APP + "\n" in output or "pwned" in output or "root:" in output:
                stats["leaks"] += 1
                hits.append("input content printed")
            hits += canaries.check()
            if hits:
                stats["hits"] += 1
                stats["details"].update(hits)
    finally:
        stop_attacker(pid, stop)
    return stats


def routes_round(root: Path, runs: int, baseline: bool, canaries: Canaries) -> dict:
    area = root / "attacker-routes"
    (area / "routes").mkdir(parents=True)
    (area / "state").mkdir()
    for p in (area, area / "routes", area / "state"):
        os.chown(p, ATTACKER_UID, ATTACKER_UID)
    store = root / "store"
    store.mkdir()
    base = store / "base.yml"
    base.write_text("http:\n  routers: {}\n")
    stats = {"runs": 0, "hits": 0, "accepted": 0, "refused": 0, "timeouts": 0, "leaks": 0, "details": set()}
    stop = root / "stop-routes"
    pid = start_attacker("routes", area, canaries.dir, stop)
    try:
        for _ in range(runs):
            if time.time() > DEADLINE:
                break
            if baseline:
                r = run(["bash", "-c", OLD_ROUTES, "old", str(area / "routes"), str(base), str(ATTACKER_UID)], BASELINE_TIMEOUT)
            else:
                r = run(["bash", str(REPO / "nixos/scripts/install-routes.sh"), str(area / "routes"),
                         str(area / "state" / "nix-managed"), "base.yml", str(base)], RUN_TIMEOUT)
            stats["runs"] += 1
            stats["timeouts"] += r.returncode == 124
            stats["accepted" if r.returncode == 0 else "refused"] += 1
            hits = canaries.check()
            if hits:
                stats["hits"] += 1
                stats["details"].update(hits)
    finally:
        stop_attacker(pid, stop)
    return stats


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--agent", type=Path,
                    default=Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug" / "bloud-agent")
    ap.add_argument("--baseline", action="store_true")
    args = ap.parse_args()
    ensure_root()
    # A timeout or Ctrl-C still stops the attacker and removes the sandbox (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    if not args.baseline and not os.access(args.agent, os.X_OK):
        print(f"root_helpers_attack: {args.agent} is missing; build it first (cargo build -p bloud-agent)", file=sys.stderr)
        return 1
    global DEADLINE
    DEADLINE = time.time() + TOTAL_BUDGET
    root = Path(tempfile.mkdtemp(prefix="bloud-attack-"))
    os.chmod(root, 0o755)
    failed = False
    started = time.time()
    try:
        canaries = Canaries(root)
        if not canaries.atime_works:
            print("root_helpers_attack: note: access times are not updated here (noatime); reads are "
                  "detected by content only")
        for name, stats in (
            ("rebuild (rebuild-prepare.sh + bloud-agent apps-nix)" if not args.baseline else "rebuild (old helper)",
             rebuild_round(root, args.runs, args.agent, args.baseline, canaries)),
            ("routes (install-routes.sh)" if not args.baseline else "routes (old installer)",
             routes_round(root, args.runs, args.baseline, canaries)),
        ):
            print(f"root_helpers_attack: {name}: {stats['runs']} runs as root under attack, "
                  f"{stats['hits']} with attacker content in the flake or a change/read outside "
                  f"(accepted {stats['accepted']}, refused {stats['refused']}, timeouts {stats['timeouts']}, "
                  f"input printed {stats['leaks']})")
            for d in sorted(stats["details"]):
                print(f"    {d}")
            if stats["runs"] < args.runs:
                print(f"    only {stats['runs']} of {args.runs} runs within {TOTAL_BUDGET} s")
                failed = True
            if stats["hits"] or stats["timeouts"]:
                failed = True
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"root_helpers_attack: {'FAIL' if failed else 'ok'} in {time.time() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
