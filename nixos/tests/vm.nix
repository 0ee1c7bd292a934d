# NixOS VM test (flake check `vm`): boots a Bloud box with no apps and checks what a user and
# an operator notice: the proxy answers on :80 as an unprivileged user, the shell and the API
# come through it from the agent, route files written by the bloud user go live without a
# restart, reload and stop behave, and the rebuild helper refuses anything but app toggles.
#
# Not run on the development machine (no Nix store, no KVM there); see docs/nixos.md.
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
            "      service: ping@internal\\n\" > /var/lib/bloud/routes/vmtest.yml.tmp"
            " && mv /var/lib/bloud/routes/vmtest.yml.tmp /var/lib/bloud/routes/vmtest.yml'"
        )
        machine.wait_until_succeeds("curl -fsS http://localhost/vmtest-ping | grep -qx OK", timeout=30)
        after = machine.succeed("systemctl show -p MainPID --value bloud-proxy.service").strip()
        assert before == after, "the proxy restarted instead of reloading"

    with subtest("the agent can find and signal the proxy"):
        machine.succeed("su -s /bin/sh bloud -c 'cat /run/bloud-proxy/bloud-proxy.pid'")
        # Same credentials as bloud-agent.service: user bloud with ambient CAP_KILL.
        machine.succeed(
            "systemd-run --wait --pipe -p User=bloud -p Group=bloud -p AmbientCapabilities=CAP_KILL "
            "/bin/sh -c 'kill -HUP $(cat /run/bloud-proxy/bloud-proxy.pid)'"
        )
        machine.succeed("systemctl reload bloud-proxy.service")
        assert machine.succeed("curl -fsS http://localhost/ping").strip() == "OK"
        machine.succeed("curl -fsS http://localhost/vmtest-ping | grep -qx OK")

    with subtest("the agent can use sudo (no NoNewPrivileges implied by its sandbox)"):
        pid = machine.succeed("systemctl show -p MainPID --value bloud-agent.service").strip()
        machine.succeed(f"grep -qE '^NoNewPrivs:[[:space:]]+0' /proc/{pid}/status")
        machine.succeed(f"grep -qE '^CapAmb:[[:space:]]+0000000000000020' /proc/{pid}/status")

    with subtest("the rebuild helper only accepts app toggles"):
        helper = machine.succeed(
            "grep -o '/nix/store/[^\"]*-bloud-rebuild' /etc/bloud/agent.yaml | head -n 1"
        ).strip()
        machine.succeed(
            "su -s /bin/sh bloud -c 'echo \"{ ... }: { users.users.root.initialPassword = \\\"x\\\"; }\""
            " > /var/lib/bloud/nix/apps.nix'"
        )
        out = machine.fail(f"su -s /bin/sh bloud -c 'sudo -n {helper}' 2>&1")
        assert "refusing" in out, out
        machine.fail("su -s /bin/sh bloud -c 'sudo -n /run/current-system/sw/bin/id'")

    with subtest("stop drains and exits within graceTimeOut + 5 s"):
        machine.succeed("timeout 20 systemctl stop bloud-proxy.service")
        machine.succeed("systemctl start bloud-proxy.service")
        machine.wait_for_open_port(80)
        assert machine.succeed("curl -fsS http://localhost/ping").strip() == "OK"
  '';
}
