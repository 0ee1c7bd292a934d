# mkPodmanService: one rootless podman container as one systemd *user* unit of the
# bloud user (`podman-<name>.service`, wanted by `bloud-apps.target`).
#
# Same parameters and unit shape as upstream's helper, so the agent's assumptions
# (unit names, container names, start ordering) keep holding. Differences:
# - the podman command line lives in a generated script, so environment values
#   never go through systemd's `%`/`$` expansion;
# - published ports carry an explicit bind address (loopback by default, set by
#   mkBloudApp), so apps are reachable through bloud-proxy only;
# - agent hooks are optional (`hookCommand`), since they are not part of the
#   agent's CLI contract yet.
{
  lib,
  pkgs,
  # virtualisation.podman.package of the configuration.
  podmanPackage ? pkgs.podman,
}:

{
  name,
  image,
  description ? "Bloud container ${name}",
  # "host:container" or "addr:host:container", passed to `-p` as given.
  ports ? [ ],
  environment ? { },
  envFile ? null,
  volumes ? [ ],
  network ? null,
  userns ? null,
  cmd ? [ ],
  extraPodmanArgs ? [ ],
  # Container names; each becomes After=/Wants= podman-<dep>.service.
  dependsOn ? [ ],
  # [{ container, command (list or string), timeout ? 60 }]: polled with `podman exec` before start.
  waitFor ? [ ],
  extraAfter ? [ ],
  extraRequires ? [ ],
  # App name for the agent's prestart/poststart hooks, and the argv prefix that runs them
  # (e.g. [ ".../bloud-agent" "--config" "/etc/bloud/agent.yaml" "configure" ]); both needed.
  bloudAppName ? null,
  hookCommand ? null,
  preStartScript ? null,
  stopTimeout ? 10,
  # User units are installed for every user; only this user's manager runs them.
  user ? null,
}:

let
  inherit (lib)
    concatMapStringsSep
    escapeShellArg
    escapeShellArgs
    isList
    mapAttrsToList
    optional
    optionals
    ;

  podman = "${podmanPackage}/bin/podman";

  depUnits = map (dep: "podman-${dep}.service") dependsOn;

  runArgs =
    [
      "run"
      "--pull=missing"
      "--sdnotify=conmon"
      "--name=${name}"
      "--rm"
    ]
    ++ map (p: "--publish=${p}") ports
    ++ mapAttrsToList (k: v: "--env=${k}=${toString v}") environment
    ++ optional (envFile != null) "--env-file=${envFile}"
    ++ map (v: "--volume=${v}") volumes
    ++ optional (network != null) "--network=${network}"
    ++ optional (userns != null) "--userns=${userns}"
    ++ extraPodmanArgs
    ++ [ image ]
    ++ cmd;

  startScript = pkgs.writeShellScript "podman-${name}-start" ''
    exec ${podman} ${escapeShellArgs runArgs}
  '';

  waitScript = pkgs.writeShellScript "podman-${name}-wait-for-deps" (
    ''
      set -u
    ''
    + concatMapStringsSep "\n" (
      w:
      let
        command = if isList w.command then escapeShellArgs w.command else w.command;
        timeout = toString (w.timeout or 60);
      in
      ''
        echo "waiting for ${w.container} (up to ${timeout}s)"
        ok=0
        for _ in $(seq 1 ${timeout}); do
          if ${podman} exec ${escapeShellArg w.container} ${command} >/dev/null 2>&1; then ok=1; break; fi
          sleep 1
        done
        if [ "$ok" -ne 1 ]; then
          echo "${w.container} did not become ready within ${timeout}s; ${name} will be retried by systemd" >&2
          exit 1
        fi
      ''
    ) waitFor
  );

  preScript = pkgs.writeShellScript "podman-${name}-prestart" ''
    set -euo pipefail
    ${preStartScript}
  '';

  hooks = bloudAppName != null && hookCommand != null;
  hookArgv = phase: escapeShellArgs (hookCommand ++ [ phase bloudAppName ]);
in
{
  inherit description;
  after = [
    "podman-apps-network.service"
    "bloud-secrets.service"
  ] ++ depUnits ++ extraAfter;
  wants = [
    "podman-apps-network.service"
    "bloud-secrets.service"
  ] ++ depUnits;
  requires = extraRequires;
  wantedBy = [ "bloud-apps.target" ];
  unitConfig = lib.optionalAttrs (user != null) { ConditionUser = user; };
  # newuidmap/newgidmap (setuid wrappers) are needed by rootless podman.
  path = [
    "/run/wrappers"
    podmanPackage
    pkgs.coreutils
  ];
  serviceConfig = {
    Type = "notify";
    NotifyAccess = "all";
    Restart = "always";
    RestartSec = "5s";
    # Covers image pulls and the hooks, which wait for dependencies.
    TimeoutStartSec = 900;
    ExecStartPre =
      [ "-${podman} rm -f ${name}" ]
      ++ optional (waitFor != [ ]) "${waitScript}"
      ++ optional hooks (hookArgv "prestart")
      ++ optional (preStartScript != null) "${preScript}";
    ExecStart = "${startScript}";
    ExecStartPost = optionals hooks [ (hookArgv "poststart") ];
    ExecStop = "${podman} stop -t ${toString stopTimeout} ${name}";
  };
}
