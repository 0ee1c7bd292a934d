# Runtime for the app containers: rootless podman in the bloud user's systemd manager.
#
# User units (bloud's manager only):
#   bloud-apps.target          every podman-<app>.service is WantedBy it
#   podman-apps-network        creates the `apps-net` podman network (container DNS: apps-postgres, ...)
#   bloud-secrets              generates secrets once and rewrites the apps' env files
#   bloud-pull-images          pulls bloud.pullImages one by one (only if the list is not empty)
# System unit:
#   bloud-apps.service         starts bloud-apps.target in the user manager at boot (user units
#                              cannot depend on system targets; upstream's bloud-user-services)
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    attrNames
    concatMapStringsSep
    concatStringsSep
    escapeShellArg
    mapAttrsToList
    mkIf
    mkOption
    types
    unique
    ;

  bloud = config.bloud;
  uid = toString bloud.uid;
  podman = "${config.virtualisation.podman.package}/bin/podman";

  # systemctl --user for the bloud manager, from root (rebuild helper, boot unit).
  userSystemctl = pkgs.writeShellScript "bloud-user-systemctl" ''
    set -euo pipefail
    ${pkgs.systemd}/bin/systemctl start user@${uid}.service
    exec ${pkgs.util-linux}/bin/runuser -u ${escapeShellArg bloud.user} -- \
      ${pkgs.coreutils}/bin/env XDG_RUNTIME_DIR=/run/user/${uid} \
      DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/${uid}/bus \
      ${pkgs.systemd}/bin/systemctl --user "$@"
  '';

  secretNames = unique bloud.secrets.names;

  secretsScript = pkgs.writeShellScript "bloud-secrets" ''
    set -euo pipefail
    umask 077
    dir=${escapeShellArg bloud.secrets.dir}
    mkdir -p "$dir/values"

    declare -A secret=()
    # Generated once, never rotated here: containers keep their passwords across rebuilds.
    for name in ${concatStringsSep " " (map escapeShellArg secretNames)}; do
      f="$dir/values/$name"
      if [ ! -s "$f" ]; then
        # No pipefail here: tr ends with SIGPIPE when head has read enough.
        value="$(set +o pipefail; LC_ALL=C tr -dc 'A-Za-z0-9' < /dev/urandom | head -c 48)"
        if [ "''${#value}" -ne 48 ]; then
          echo "bloud-secrets: could not generate $name from /dev/urandom" >&2
          exit 1
        fi
        printf '%s' "$value" > "$f.tmp"
        mv -f "$f.tmp" "$f"
        echo "bloud-secrets: generated $name"
      fi
      secret[$name]="$(cat "$f")"
    done

    emit() {
      local value="$2" name
      for name in "''${!secret[@]}"; do
        value="''${value//@$name@/''${secret[$name]}}"
      done
      printf '%s=%s\n' "$1" "$value" >> "$tmp"
    }

    ${concatMapStringsSep "\n" (
      file:
      let
        vars = bloud.secrets.envFiles.${file};
      in
      ''
        tmp="$dir/"${escapeShellArg "${file}.tmp"}
        : > "$tmp"
        ${concatStringsSep "\n" (mapAttrsToList (k: v: "emit ${escapeShellArg k} ${escapeShellArg v}") vars)}
        mv -f "$tmp" "$dir/"${escapeShellArg file}
      ''
    ) (attrNames bloud.secrets.envFiles)}
  '';

  pullScript = pkgs.writeShellScript "bloud-pull-images" ''
    set -u
    status=0
    for image in ${concatStringsSep " " (map escapeShellArg (unique bloud.pullImages))}; do
      if ${podman} image exists "$image"; then continue; fi
      echo "pulling $image"
      ${podman} pull "$image" || { echo "could not pull $image; its app retries with --pull=missing" >&2; status=1; }
    done
    exit $status
  '';

  userUnit = {
    unitConfig.ConditionUser = bloud.user;
    path = [
      "/run/wrappers"
      config.virtualisation.podman.package
      pkgs.coreutils
    ];
  };
in
{
  options.bloud.internal.userSystemctl = mkOption {
    type = types.path;
    internal = true;
    readOnly = true;
    default = userSystemctl;
    description = "Script: `systemctl --user` in the bloud user's manager, run from root.";
  };

  config = mkIf bloud.enable {
    systemd.user.targets.bloud-apps = {
      description = "Bloud apps";
      unitConfig.ConditionUser = bloud.user;
    };

    systemd.user.services = {
      podman-apps-network = userUnit // {
        description = "Podman network apps-net for Bloud apps";
        wantedBy = [ "bloud-apps.target" ];
        before = [ "bloud-apps.target" ];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = pkgs.writeShellScript "podman-apps-network" ''
            ${podman} network exists apps-net || ${podman} network create apps-net
          '';
        };
      };

      # Not RemainAfterExit: every start of bloud-apps.target runs it again, so env files of
      # newly installed apps exist before their containers start.
      bloud-secrets = userUnit // {
        description = "Generate Bloud secrets and app env files";
        wantedBy = [ "bloud-apps.target" ];
        before = [ "bloud-apps.target" ];
        serviceConfig = {
          Type = "oneshot";
          ExecStart = "${secretsScript}";
        };
      };

      bloud-pull-images = mkIf (bloud.pullImages != [ ]) (
        userUnit
        // {
          description = "Pull Bloud container images one by one";
          wantedBy = [ "bloud-apps.target" ];
          serviceConfig = {
            Type = "oneshot";
            RemainAfterExit = true;
            TimeoutStartSec = 1800;
            ExecStart = "${pullScript}";
          };
        }
      );
    };

    systemd.services.bloud-apps = {
      description = "Start Bloud apps in the ${bloud.user} user manager";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      requires = [ "user@${uid}.service" ];
      after = [
        "network-online.target"
        "user@${uid}.service"
        "systemd-tmpfiles-setup.service"
      ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        # --no-block: image pulls can take many minutes; do not hold up boot for them.
        ExecStart = "${userSystemctl} start --no-block bloud-apps.target";
        ExecReload = "${userSystemctl} start --no-block bloud-apps.target";
      };
    };

    environment.systemPackages = [
      (pkgs.writeShellScriptBin "bloud-apps-status" ''
        exec ${userSystemctl} list-units --all 'podman-*' 'bloud-*' '*-db-init.service' "$@"
      '')
    ];
  };
}
