# The rebuild path: the agent writes <dataDir>/nix/apps.list and runs `sudo bloud-rebuild`.
#
# bloud-rebuild (root, no arguments) replaces upstream's blanket `NOPASSWD: ALL`:
#   1. takes data, not code, from the bloud user: <dataDir>/nix/apps.list, the enabled app
#      names the agent writes. `bloud-agent apps-nix` (agent/src/apps_list.rs) opens it with
#      O_NOFOLLOW on every path component, refuses FIFOs, hard links and big files, accepts
#      catalog names only (the catalog in the Nix store) and prints nothing of it; so sudo
#      gives the bloud user "switch these catalog apps", not "run any Nix as root";
#   2. refreshes a root-owned copy of the Bloud flake (flakeDir) from the store (sourceDir) and
#      writes the generated module into it as nixos/generated/apps.nix (always: no list, no
#      apps; nixos/scripts/rebuild-prepare.sh; nixos/bloud.nix imports it when present);
#   3. switches the host's own configuration (`flake`#`target`, or a non-flake one) with the
#      Bloud source it imports replaced by that copy (`--override-input <bloudInput>`, or
#      `-I <bloudInput>=`), in a transient unit, so restarting the agent cannot kill a switch
#      half-way. The Bloud box (nixosConfigurations.bloud) switches the copy itself, `#bloud`,
#      with nixpkgs pinned to what the running system was built from (no network, no --impure);
#   4. brings the bloud user's app units in line: daemon-reload, stop units that disappeared
#      (uninstalled apps), restart units whose definition changed, start bloud-apps.target.
#   5. `bloud-rebuild --rollback N` (the history page's rollback) instead checks that N is a
#      plain generation number with a link in the system profile
#      (nixos/scripts/rollback-check.sh; nothing else of the argument is used), points the
#      profile at it and runs its switch-to-configuration, then step 4. The agent has already
#      written that generation's app list, so the next rebuild keeps its app set.
# Output goes to stdout/stderr, which the agent streams and keeps as the rebuild log.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    concatLists
    escapeShellArg
    escapeShellArgs
    literalExpression
    mapAttrsToList
    mkIf
    mkOption
    optionals
    types
    ;

  bloud = config.bloud;
  cfg = bloud.rebuild;
  userSystemctl = bloud.internal.userSystemctl;

  # What `nixos-rebuild switch` gets: the configuration the host was installed with, where the
  # Bloud source is the root-owned copy holding the generated apps.nix.
  switchArgs =
    if cfg.flake != null then
      [
        "--flake"
        "${cfg.flake}#${cfg.target}"
        "--no-write-lock-file"
      ]
      ++ optionals (cfg.bloudInput != null) [
        "--override-input"
        cfg.bloudInput
        "path:${cfg.flakeDir}"
      ]
      ++ concatLists (
        mapAttrsToList (name: path: [
          "--override-input"
          name
          "path:${path}"
        ]) cfg.flakeInputs
      )
    else
      [
        "-I"
        "${cfg.bloudInput}=${cfg.flakeDir}"
      ]
      ++ optionals (cfg.configuration != null) [
        "-I"
        "nixos-config=${cfg.configuration}"
      ];

  # Runs inside the transient unit `bloud-rebuild.service`.
  switchScript = pkgs.writeShellScript "bloud-rebuild-switch" ''
    set -euo pipefail
    export LC_ALL=C
    unit_targets() {
      for f in /etc/systemd/user/podman-*.service /etc/systemd/user/*-db-init.service; do
        [ -e "$f" ] && printf '%s %s\n' "$(basename "$f")" "$(readlink -f "$f")"
      done | sort
      return 0
    }

    before="$(unit_targets)"

    if [ "''${1:-}" = --rollback ]; then
      # $2 passed rollback-check.sh in the helper: 1 to 9 digits, an existing generation.
      echo "bloud-rebuild: switching to generation $2 of ${cfg.systemProfile}"
      nix-env -p ${escapeShellArg cfg.systemProfile} --switch-generation "$2"
      ${escapeShellArg cfg.systemProfile}/bin/switch-to-configuration switch
    else
      echo "bloud-rebuild: nixos-rebuild switch "${escapeShellArgs switchArgs}
      # _NIXOS_REBUILD_REEXEC=1: do not re-exec a nixos-rebuild built from the flake (upstream
      # bug: that attribute resolved to the agent package).
      _NIXOS_REBUILD_REEXEC=1 nixos-rebuild switch ${escapeShellArgs (switchArgs ++ cfg.extraArgs)}
    fi

    after="$(unit_targets)"

    # The system is switched; what follows is best effort (the agent's health checks tell
    # whether the apps came up), so a failure is reported but does not fail the rebuild.
    echo "bloud-rebuild: refreshing the app units of ${bloud.user}"
    ${userSystemctl} daemon-reload || echo "bloud-rebuild: warning: daemon-reload of ${bloud.user}'s manager failed" >&2

    # Units whose files are gone: the app was uninstalled.
    gone="$(${userSystemctl} list-units --all --plain --no-legend 'podman-*.service' '*-db-init.service' \
      | awk '$2 == "not-found" && $3 != "inactive" { print $1 }' || true)"
    for unit in $gone; do
      echo "bloud-rebuild: stopping $unit (removed)"
      ${userSystemctl} stop "$unit" || echo "bloud-rebuild: could not stop $unit" >&2
    done

    # Units whose definition changed: new image, env, ports.
    changed="$(join <(printf '%s\n' "$before") <(printf '%s\n' "$after") | awk '$2 != $3 { print $1 }' || true)"
    for unit in $changed; do
      echo "bloud-rebuild: restarting $unit (changed)"
      ${userSystemctl} try-restart --no-block "$unit" || echo "bloud-rebuild: could not restart $unit" >&2
    done

    # New apps: queued, not awaited (image pulls take minutes; the agent polls app health).
    ${userSystemctl} start --no-block bloud-apps.target \
      || echo "bloud-rebuild: warning: could not start bloud-apps.target" >&2
    echo "bloud-rebuild: done"
  '';

  prepareScript = pkgs.writeShellScript "bloud-rebuild-prepare" (
    builtins.readFile ../scripts/rebuild-prepare.sh
  );

  rollbackCheck = pkgs.writeShellScript "bloud-rollback-check" (
    builtins.readFile ../scripts/rollback-check.sh
  );

  helper = pkgs.writeShellScript "bloud-rebuild" ''
    set -euo pipefail
    rollback=()
    if [ "$#" -eq 2 ] && [ "$1" = --rollback ]; then
      # The generation number is the only argument the bloud user can pass; checked before use.
      gen="$(${rollbackCheck} ${escapeShellArg cfg.systemProfile} "$2")"
      rollback=(--rollback "$gen")
    elif [ "$#" -ne 0 ]; then
      echo "usage: bloud-rebuild  (no arguments: switches this host's configuration with the apps of ${cfg.appsListFile})" >&2
      echo "       bloud-rebuild --rollback N  (switches back to generation N of ${cfg.systemProfile})" >&2
      exit 2
    fi
    export PATH=${
      lib.makeBinPath [
        pkgs.coreutils
        pkgs.gawk
        pkgs.systemd
        config.nix.package
        config.system.build.nixos-rebuild
        pkgs.git
        pkgs.util-linux
      ]
    }:/run/wrappers/bin:/run/current-system/sw/bin

    # One rebuild at a time from here on (the transient unit's name guards the switch itself;
    # this also covers preparing the flake copy). /run is root's.
    exec 9>/run/bloud-rebuild.lock
    if ! flock -n 9; then
      echo "bloud-rebuild: another rebuild is running" >&2
      exit 1
    fi

    # Data, not code, crosses from the bloud user: the list of enabled app names, read once
    # (no symlinks on its path), checked against the catalog in the store, turned into Nix
    # here (nixos/scripts/rebuild-prepare.sh, `bloud-agent apps-nix`).
    # A rollback switches an existing generation: no flake copy to prepare.
    if [ "''${#rollback[@]}" -eq 0 ]; then
      ${prepareScript} \
        ${escapeShellArg (if bloud.sourceDir == null then "" else "${bloud.sourceDir}")} \
        ${escapeShellArg cfg.flakeDir} \
        ${escapeShellArg cfg.appsListFile} \
        ${escapeShellArg "${bloud.agent.package}/bin/bloud-agent"}
    fi

    # Own unit: survives an agent restart during the switch, and a second rebuild cannot
    # run at the same time (the unit name is taken).
    exec systemd-run --unit=bloud-rebuild --description="Bloud rebuild" \
      --wait --pipe --collect --quiet --service-type=exec \
      --setenv=PATH="$PATH" --setenv=HOME=/root --setenv=LOCALE_ARCHIVE=/run/current-system/sw/lib/locale/locale-archive \
      ${switchScript} "''${rollback[@]}"
  '';
in
{
  options.bloud.rebuild = {
    flakeDir = mkOption {
      type = types.str;
      default = "/var/lib/bloud-rebuild/flake";
      description = ''
        Root-owned copy of the Bloud flake that rebuilds evaluate (`path:` flake, so the generated
        apps.nix is visible without git). Outside bloud.dataDir on purpose: the bloud user must not
        be able to change what root evaluates.
      '';
    };

    flake = mkOption {
      type = types.nullOr types.str;
      default = "/etc/nixos";
      example = "path:/var/lib/bloud-rebuild/flake";
      description = ''
        Flake of the configuration rebuilds switch: the host's own. The default is where
        `nixos-rebuild` itself looks (/etc/nixos/flake.nix); a host whose flake is elsewhere sets
        it (e.g. `"path:''${self}"` from the host flake: exactly the source the system was built
        from). The Bloud box (nixosConfigurations.bloud) sets it to `path:<flakeDir>`. null: the
        host has a non-flake configuration (see `configuration`).
      '';
    };

    target = mkOption {
      type = types.str;
      default = config.networking.hostName;
      defaultText = literalExpression "config.networking.hostName";
      description = ''
        nixosConfigurations attribute of `flake` to switch to. The default is the one
        `nixos-rebuild` picks itself (the host name); nixosConfigurations.bloud sets "bloud".
      '';
    };

    bloudInput = mkOption {
      type = types.nullOr types.str;
      default = "bloud";
      description = ''
        Under which name the host's configuration gets the Bloud source: the flake input
        (overridden with `path:<flakeDir>`, the copy holding the generated apps.nix) or, for a
        non-flake configuration, the search path entry (`-I <name>=<flakeDir>`, imported as
        `<bloud/nixos/bloud.nix>`). null when `flake` is the copy itself (the Bloud box).
      '';
    };

    configuration = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/etc/nixos/configuration.nix";
      description = ''
        Non-flake hosts (`flake = null`): the configuration file (`-I nixos-config=`); null uses
        the `nixos-config` of root's NIX_PATH, like a plain `nixos-rebuild switch`.
      '';
    };

    appsListFile = mkOption {
      type = types.str;
      default = "${bloud.dataDir}/nix/apps.list";
      defaultText = literalExpression ''"''${config.bloud.dataDir}/nix/apps.list"'';
      description = ''
        Where the agent writes the names of the enabled apps (one per line, next to its
        apps.nix). The only thing the rebuild helper takes from the bloud user: read once
        without following symlinks, every name checked against the catalog in the Nix store,
        the Nix generated by the helper itself.
      '';
    };

    flakeInputs = mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = literalExpression ''{ nixpkgs = inputs.nixpkgs.outPath; }'';
      description = ''
        Flake inputs pinned for rebuilds (`--override-input <name> path:<store path>`).
        nixosConfigurations.bloud sets nixpkgs to the one the system was built from, so a rebuild
        needs no network. A host flake's own flake.lock pins its inputs: it needs none.
      '';
    };

    systemProfile = mkOption {
      type = types.str;
      default = "/nix/var/nix/profiles/system";
      description = ''
        The system profile whose generations the agent lists (`rebuild.systemProfile`) and
        `bloud-rebuild --rollback N` switches.
      '';
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Extra nixos-rebuild arguments.";
    };

    helper = mkOption {
      type = types.path;
      readOnly = true;
      default = helper;
      defaultText = literalExpression "the generated bloud-rebuild script";
      description = "The root helper the agent runs through sudo.";
    };
  };

  config = mkIf (bloud.enable && bloud.agent.enable) {
    assertions = [
      {
        # networking.hostName may be "" (name from DHCP): then the attribute must be given.
        assertion = cfg.flake == null || cfg.target != "";
        message = "bloud.rebuild.target is empty (networking.hostName is \"\"): set it to the nixosConfigurations attribute of this host";
      }
      {
        assertion = cfg.flake != null || cfg.bloudInput != null;
        message = "bloud.rebuild.bloudInput must name the search path entry of Bloud when bloud.rebuild.flake is null";
      }
      {
        assertion = bloud.sourceDir != null;
        message = "bloud.sourceDir must be set for rebuilds (the flake sets it to its own source)";
      }
    ];

    # Exactly one command, no arguments accepted by the script itself.
    security.sudo.extraRules = [
      {
        users = [ bloud.user ];
        runAs = "root";
        commands = [
          {
            command = "${helper}";
            options = [ "NOPASSWD" ];
          }
        ];
      }
    ];

    systemd.tmpfiles.rules = [ "d ${builtins.dirOf cfg.flakeDir} 0755 root root - -" ];
  };
}
