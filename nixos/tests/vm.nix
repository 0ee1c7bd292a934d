# NixOS VM test (flake check `vm`): boots a Bloud box with no apps and checks what a user and
# an operator notice: the proxy answers on :80 as an unprivileged user, the shell and the API
# come through it from the agent, route files written by the bloud user go live without a
# restart, reload and stop behave, and the privilege model holds against the bloud user: no
# podman socket, no signal to the proxy, the rebuild helper takes catalog app names only (also
# while bloud swaps the list in a loop), symlinks in bloud's directories lead root nowhere, and
# the proxy cannot read app data.
#
# Not run on the development machine (no Nix store, no KVM there); scripts/test runs the same
# attacks on the root-run scripts outside a VM (tests/nixos/root_helpers_attack.py). See
# docs/nixos.md.
{
  pkgs,
  bloudModule,
}:

let
  # A stand-in shell so the test does not depend on the npm dependency hash of the real one
  # (the `web` check builds that); the agent serves whatever webDir holds.
  stubShell = pkgs.writeTextDir "index.html" ''
    <!doctype html><html><head><title>Bloud</title></head><body>bloud-vm-test-shell</body></html>
  '';
in
pkgs.testers.runNixOSTest {
  name = "bloud";
  # bloudModule adds the Bloud overlay (bloud-proxy, bloud-agent) to the node's nixpkgs.
  node.pkgsReadOnly = false;

  nodes.machine =
    { lib, ... }:
    {
      imports = [ bloudModule ];

      bloud.enable = true;
      bloud.agent.webPackage = stubShell;
      virtualisation.memorySize = 2048;
      virtualisation.diskSize = 4096;
      environment.systemPackages = [ pkgs.curl ];
    };

  testScript = ''
    import json

    machine.wait_for_unit("bloud-proxy.service")
    machine.wait_for_unit("bloud-agent.service")
    machine.wait_for_open_port(80)
    machine.wait_for_open_port(3000)

    with subtest("port 80 without root"):
        pid = machine.succeed("systemctl show -p MainPID --value bloud-proxy.service").strip()
        user = machine.succeed(f"ps -o user= -p {pid}").strip()
        assert user == "bloud-proxy", f"bloud-proxy runs as {user!r}"
        # Only CAP_NET_BIND_SERVICE (bit 10) is effective/ambient.
        caps = machine.succeed(f"grep -E '^Cap(Eff|Amb):' /proc/{pid}/status")
        assert caps.count("0000000000000400") == 2, caps
        machine.fail("iptables -t nat -S 2>/dev/null | grep -q 'REDIRECT.*8080'")

    with subtest("ping and the shell through the proxy"):
        assert machine.succeed("curl -fsS http://localhost/ping").strip() == "OK"
        shell = machine.succeed("curl -fsS http://localhost/")
        assert "bloud-vm-test-shell" in shell, shell
        headers = machine.succeed("curl -fsS -D - -o /dev/null http://localhost/")
        assert "cross-origin-embedder-policy: credentialless" in headers.lower(), headers
        health = json.loads(machine.succeed("curl -fsS http://localhost/api/health"))
        assert health.get("status") == "ok", health

    with subtest("admin and agent stay on loopback"):
        machine.succeed("curl -fsS http://127.0.0.1:8082/metrics | grep -q bloud_proxy")
        ip = machine.succeed("ip -4 -o addr show dev eth1 | awk '{print $4}' | cut -d/ -f1").strip()
        machine.fail(f"curl -fsS --max-time 3 http://{ip}:8082/metrics")
        machine.fail(f"curl -fsS --max-time 3 http://{ip}:3000/api/health")
        machine.succeed(f"curl -fsS --max-time 3 http://{ip}/ping")

    with subtest("no trust by address; the CLI socket admits root and refuses others"):
        # An app on the host network, without a session: refused.
        code = machine.succeed(
            "curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' "
            "-d '{}' http://127.0.0.1:3000/api/apps/refresh-catalog"
        ).strip()
        assert code == "401", code
        sock = "/run/bloud-agent/agent.sock"
        stat = machine.succeed(f"stat -c '%a %G' {sock}").strip()
        assert stat == "660 bloud-admin", stat
        machine.succeed(f"curl -fsS --unix-socket {sock} http://localhost/api/apps/installed")
        out = machine.fail("su -s /bin/sh nobody -c 'bloud-agent install nope' 2>&1")
        assert "bloud-admin" in out, out

    with subtest("route files written by the bloud user go live without a restart"):
        before = machine.succeed("systemctl show -p MainPID --value bloud-proxy.service").strip()
        machine.succeed(
            "su -s /bin/sh bloud -c '"
            "printf \"http:\\n  routers:\\n    vmtest:\\n      rule: \\\"Path(\\x60/vmtest-ping\\x60)\\\"\\n"
            "      service: ping@internal\\n\" > /var/lib/bloud-routes/vmtest.yml.tmp"
            " && mv /var/lib/bloud-routes/vmtest.yml.tmp /var/lib/bloud-routes/vmtest.yml'"
        )
        machine.wait_until_succeeds("curl -fsS http://localhost/vmtest-ping | grep -qx OK", timeout=30)
        after = machine.succeed("systemctl show -p MainPID --value bloud-proxy.service").strip()
        assert before == after, "the proxy restarted instead of reloading"

    with subtest("the agent holds no capability and cannot signal the proxy"):
        pid = machine.succeed("systemctl show -p MainPID --value bloud-agent.service").strip()
        machine.succeed(f"grep -qE '^CapAmb:[[:space:]]+0000000000000000' /proc/{pid}/status")
        machine.succeed(f"grep -qE '^CapEff:[[:space:]]+0000000000000000' /proc/{pid}/status")
        # sudo must keep working for the rebuild helper: no NoNewPrivileges.
        machine.succeed(f"grep -qE '^NoNewPrivs:[[:space:]]+0' /proc/{pid}/status")
        proxy = machine.succeed("systemctl show -p MainPID --value bloud-proxy.service").strip()
        # The agent's credentials (user bloud, no capability): kill(2) across uids is refused.
        out = machine.fail(
            f"systemd-run --wait --pipe -p User=bloud -p Group=bloud /bin/sh -c 'kill -HUP {proxy}' 2>&1"
        )
        assert "not permitted" in out.lower(), out
        machine.fail("su -s /bin/sh bloud -c 'cat /run/bloud-proxy/bloud-proxy.pid'")
        # Reload stays root's (systemctl); the routes reach the proxy through its file watch.
        machine.succeed("systemctl reload bloud-proxy.service")
        assert machine.succeed("curl -fsS http://localhost/ping").strip() == "OK"
        machine.succeed("curl -fsS http://localhost/vmtest-ping | grep -qx OK")

    with subtest("bloud has no privileged group: the root podman socket is out of reach"):
        groups = machine.succeed("id -nG bloud").split()
        assert groups == ["bloud"], groups
        machine.fail(
            "su -s /bin/sh bloud -c 'curl -fsS --max-time 5 --unix-socket /run/podman/podman.sock http://d/_ping'"
        )
        # Rootless podman works without it.
        machine.succeed("su -s /bin/sh bloud -c 'XDG_RUNTIME_DIR=/run/user/$(id -u) podman info >/dev/null'")

    with subtest("the proxy reads its routes, not the apps' data"):
        machine.succeed("runuser -u bloud-proxy -- cat /var/lib/bloud-routes/base.yml >/dev/null")
        machine.fail("runuser -u bloud-proxy -- ls /var/lib/bloud")
        assert machine.succeed("id -nG bloud-proxy").split() == ["bloud-proxy"]

    helper = machine.succeed(
        "grep -o '/nix/store/[^\"]*-bloud-rebuild' /etc/bloud/agent.yaml | head -n 1"
    ).strip()
    prepare_line = machine.succeed(f"grep -- '-bloud-rebuild-prepare' {helper}").split()
    prepare = next(w for w in prepare_line if w.endswith("-bloud-rebuild-prepare"))
    prepare_args = machine.succeed(f"grep -A4 -- '-bloud-rebuild-prepare' {helper} | tail -n 4").split()
    src, _flake, apps_list, agent = [a for a in prepare_args if a != "\\"]
    shadow = machine.succeed("sha256sum /etc/shadow")

    with subtest("the rebuild helper takes catalog app names only and echoes nothing"):
        machine.succeed(
            "su -s /bin/sh bloud -c 'echo \"{ ... }: { users.users.root.initialPassword = \\\"pwned\\\"; }\""
            f" > {apps_list}'"
        )
        out = machine.fail(f"su -s /bin/sh bloud -c 'sudo -n {helper}' 2>&1")
        assert "line 1" in out and "pwned" not in out, out
        # A symlink to a root-only file: refused, nothing of it printed.
        machine.succeed(f"su -s /bin/sh bloud -c 'rm -f {apps_list} && ln -s /etc/shadow {apps_list}'")
        out = machine.fail(f"su -s /bin/sh bloud -c 'sudo -n {helper}' 2>&1")
        assert "symlink" in out and "root:" not in out, out
        # The directory above it a symlink.
        machine.succeed(
            "su -s /bin/sh bloud -c 'mv /var/lib/bloud/nix /var/lib/bloud/nix.real && "
            "ln -s /etc /var/lib/bloud/nix'"
        )
        out = machine.fail(f"su -s /bin/sh bloud -c 'sudo -n {helper}' 2>&1")
        assert "symlink" in out, out
        machine.succeed(
            "su -s /bin/sh bloud -c 'rm /var/lib/bloud/nix && mv /var/lib/bloud/nix.real /var/lib/bloud/nix"
            f" && rm -f {apps_list}'"
        )
        machine.fail("su -s /bin/sh bloud -c 'sudo -n /run/current-system/sw/bin/id'")
        machine.fail(f"su -s /bin/sh bloud -c 'sudo -n {helper} --flake /tmp'")

    with subtest("apps.list race: bloud swaps the list while root prepares the flake, 300 runs"):
        machine.succeed(
            "su -s /bin/sh bloud -c '"
            f"d=$(dirname {apps_list}); while :; do "
            "printf \"miniflux\\n\" > $d/a; mv -f $d/a " + apps_list + "; "
            "printf \"{ ... }: { users.users.root.initialPassword = \\\"pwned\\\"; }\\n\" > $d/b; mv -f $d/b " + apps_list + "; "
            "ln -sfn /etc/shadow $d/c; mv -f $d/c " + apps_list + "; "
            "done' >/dev/null 2>&1 & echo $! > /tmp/attacker.pid"
        )
        accepted = 0
        for _ in range(300):
            status, _ = machine.execute(f"{prepare} {src} /root/attack-flake {apps_list} {agent}")
            if status == 0:
                accepted += 1
                gen = machine.succeed("cat /root/attack-flake/nixos/generated/apps.nix")
                assert "pwned" not in gen and "root:" not in gen, gen
        machine.succeed("pkill -P $(cat /tmp/attacker.pid) || true; kill $(cat /tmp/attacker.pid) || true")
        assert accepted > 0, "no run saw the valid list"
        assert machine.succeed("sha256sum /etc/shadow") == shadow

    with subtest("symlinks in bloud's route directories lead the routes unit nowhere"):
        machine.succeed(
            "su -s /bin/sh bloud -c 'ln -sfn /etc/shadow /var/lib/bloud-routes/base.yml && "
            "printf \"../../../etc/shadow\\n\" > /var/lib/bloud-proxy-routes/nix-managed'"
        )
        machine.succeed("systemctl restart bloud-proxy-routes.service")
        assert machine.succeed("sha256sum /etc/shadow") == shadow
        machine.succeed("test -f /var/lib/bloud-routes/base.yml && test ! -L /var/lib/bloud-routes/base.yml")
        machine.succeed("test -e /etc/shadow")
        assert machine.succeed("systemctl show -p User --value bloud-proxy-routes.service").strip() == "bloud"

    with subtest("stop drains and exits within graceTimeOut + 5 s"):
        machine.succeed("timeout 20 systemctl stop bloud-proxy.service")
        machine.succeed("systemctl start bloud-proxy.service")
        machine.wait_for_open_port(80)
        assert machine.succeed("curl -fsS http://localhost/ping").strip() == "OK"
  '';
}
