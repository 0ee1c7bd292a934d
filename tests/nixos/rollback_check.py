#!/usr/bin/env python3
"""`bloud-rebuild --rollback N`: the one argument the bloud user passes to the root helper.

Runs nixos/scripts/rollback-check.sh (what the helper runs on that argument before anything
else) against a temporary profile with generations 1, 2 and 10, and sends it what an attacker
holding the agent would: shell code, command substitutions, options, paths, globs, whitespace,
newlines, leading zeros, huge numbers, a generation link without a switch-to-configuration.
Each must be refused (exit 2 for a malformed argument, 1 for a missing generation) with nothing
of the argument executed (a canary file would appear) or printed; valid generations print their
number and nothing else. Bounded: each run has a 10 s timeout.

Usage: tests/nixos/rollback_check.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../nixos/scripts/rollback-check.sh")


def run(profile: str, arg: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", SCRIPT, profile, arg], capture_output=True, text=True, timeout=10)


def main() -> int:
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        profiles = os.path.join(tmp, "profiles")
        os.makedirs(profiles)
        for n in (1, 2, 10):
            gen = os.path.join(tmp, f"gen{n}")
            os.makedirs(os.path.join(gen, "bin"))
            stc = os.path.join(gen, "bin", "switch-to-configuration")
            with open(stc, "w") as f:
                f.write("#!/bin/sh\n")
            os.chmod(stc, 0o755)
            os.symlink(gen, os.path.join(profiles, f"system-{n}-link"))
        # A link without an activation script is not a generation to switch to.
        os.makedirs(os.path.join(tmp, "gen3"))
        os.symlink(os.path.join(tmp, "gen3"), os.path.join(profiles, "system-3-link"))
        os.symlink("system-10-link", os.path.join(profiles, "system"))
        profile = os.path.join(profiles, "system")
        canary = os.path.join(tmp, "pwned")

        for gen in ("1", "2", "10"):
            r = run(profile, gen)
            if r.returncode != 0 or r.stdout != f"{gen}\n":
                failures.append(f"valid generation {gen!r}: exit {r.returncode}, stdout {r.stdout!r}, stderr {r.stderr!r}")

        attacks = [
            f"1; touch {canary}",
            f"$(touch {canary})",
            f"`touch {canary}`",
            f"1 && touch {canary}",
            f"1\ntouch {canary}",
            "1 2",
            " 1",
            "1 ",
            "-1",
            "--help",
            "--switch-generation",
            "+1",
            "01",
            "0",
            "1.0",
            "0x1",
            "1e1",
            "../system-1",
            "1-link/../../gen1",
            f"{tmp}/gen1",
            "*",
            "?",
            "[1]",
            "",
            "１",  # a full-width digit
            "1234567890",
            "99999999999999999999",
        ]
        for arg in attacks:
            r = run(profile, arg)
            if r.returncode != 2:
                failures.append(f"{arg!r}: expected exit 2 (refused), got {r.returncode}; stdout {r.stdout!r}")
            if r.stdout != "":
                failures.append(f"{arg!r}: printed {r.stdout!r}")
            if len(arg.strip()) > 2 and arg.strip() in r.stderr:
                failures.append(f"{arg!r}: echoed in the error {r.stderr!r}")
        for gen in ("3", "4", "999999999"):
            r = run(profile, gen)
            if r.returncode != 1 or r.stdout != "":
                failures.append(f"missing generation {gen}: expected exit 1, got {r.returncode}, stdout {r.stdout!r}")
        if os.path.exists(canary):
            failures.append("an argument was executed: the canary file exists")
        r = subprocess.run(["bash", SCRIPT, profile], capture_output=True, text=True, timeout=10)
        if r.returncode != 2:
            failures.append(f"one argument: expected exit 2, got {r.returncode}")

    for f in failures:
        print(f"rollback_check: FAIL: {f}", file=sys.stderr)
    print(f"rollback_check: {len(attacks)} attacks refused, 3 generations accepted" if not failures else f"rollback_check: {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
