# bloud-agent as a system service on loopback, running as the bloud user.
#
# - Config: /etc/bloud/agent.yaml, generated with the keys of docs/agent.md.
# - Privileges: none. No capability (ambient or otherwise), no privileged group (rootless
#   podman needs no `podman` group; that group owns the root podman socket). The one way to
#   root is `sudo bloud-rebuild` (modules/rebuild.nix), which takes the list of app names only.
# - Routes: the agent writes <routesDir>/apps-routes.yml (routesDir is bloud:bloud-proxy 2750,
#   so the proxy reads it through its own group) and does not signal the proxy
#   (`proxyPidFile: ""`): the proxy's file watch reloads it. So the agent needs no CAP_KILL and
#   no polkit rule, and the proxy gains nothing it could be tricked into.
# - Rebuilds: `rebuild.mode: command` runs `sudo bloud-rebuild` (modules/rebuild.nix), the only
#   command the bloud user may run as root.
# - Base routes: base.yml (agent API, auth and the shell catch-all) is a Nix-managed route file.
# - CLI: `bloud-agent install|uninstall` talks to the agent over the Unix socket
#   /run/bloud-agent/agent.sock (RuntimeDirectory), mode 0660, group `adminGroup` (bloud-admin).
#   The agent checks every connection's peer credentials (SO_PEERCRED): root, the bloud user and
#   members of the group may use it; list people in `adminUsers` (or add them to the group
#   yourself). Over TCP nothing is trusted by address: everything but health, setup and login
#   needs a session, so app containers on the host network get 401.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    literalExpression
    mkEnableOption
    mkIf
    mkOption
    recursiveUpdate
    types
    ;

  bloud = config.bloud;
  cfg = bloud.agent;
  yaml = pkgs.formats.yaml { };

  # docs/agent.md "Configuration".
  settings = recursiveUpdate {
    listen = cfg.listen;
    appsDir = cfg.appsDir;
    dataDir = bloud.dataDir;
    routesDir = bloud.proxy.routesDir;
    # Empty: no SIGHUP (the agent has no right to signal another user's process); the proxy's
    # file watch reloads the routes (bloud.proxy.watch, asserted on).
    proxyPidFile = "";
    webDir = cfg.webDir;
    publicUrl = bloud.externalHost;
    rebuild = {
      mode = cfg.rebuild.mode;
      flake = bloud.rebuild.flakeDir;
      target = bloud.rebuild.target;
      command = cfg.rebuild.command;
      # The history page lists its generations; rollbacks switch them (`bloud-rebuild --rollback`).
      systemProfile = bloud.rebuild.systemProfile;
    };
    queue.batchWindow = "${toString cfg.batchWindow}s";
    socket = socketPath;
    adminGroup = cfg.adminGroup;
    # bloud.apps.<name>.public (nixos/lib/bloud-app.nix); system apps without the option count
    # as not public.
    publicApps = builtins.sort builtins.lessThan (
      builtins.attrNames (lib.filterAttrs (_: app: app.public or false) bloud.apps)
    );
  } cfg.settings;

  socketPath = "/run/bloud-agent/agent.sock";

  configFile = yaml.generate "bloud-agent.yaml" settings;

  agentUrl = "http://${cfg.listen}";

  # Mirrors config/routes/base.yml (the dev/demo copy), with the agent's real address.
  baseRoutes = {
    http = {
      routers = {
        host-api = {
          rule = "PathPrefix(`/api`)";
          service = "host-agent";
          priority = 90;
        };
        host-auth = {
          rule = "PathPrefix(`/auth`)";
          service = "host-agent";
          priority = 89;
        };
        bloud-ui = {
          rule = "PathPrefix(`/`)";
          middlewares = [ "cross-origin-isolation" ];
          service = "host-agent";
          priority = 1;
        };
      };
      middlewares.cross-origin-isolation.headers.customResponseHeaders = {
        Cross-Origin-Opener-Policy = "same-origin";
        Cross-Origin-Embedder-Policy = "credentialless";
      };
      services.host-agent.loadBalancer.servers = [ { url = agentUrl; } ];
    };
  };
in
{
  options.bloud.agent = {
    enable = mkEnableOption "bloud-agent, Bloud's host agent (API, catalog, rebuilds, routes)";

    package = mkOption {
      type = types.package;
      default =
        pkgs.bloud-agent
          or (throw "bloud.agent.package is not set: use the flake's nixosModules.default (it adds the Bloud overlay) or set it");
      defaultText = literalExpression "pkgs.bloud-agent";
      description = "The bloud-agent package.";
    };

    webPackage = mkOption {
      type = types.nullOr types.package;
      default = pkgs.bloud-web or null;
      defaultText = literalExpression "pkgs.bloud-web or null";
      description = "The built web shell (its output is the Vite dist directory); null serves no shell.";
    };

    listen = mkOption {
      type = types.str;
      default = "127.0.0.1:3000";
      description = "Address of the API and shell. Keep it on loopback: the proxy is the way in.";
    };

    appsDir = mkOption {
      type = types.str;
      default =
        if bloud.sourceDir != null then
          "${bloud.sourceDir}/apps"
        else
          throw "bloud.agent.appsDir: set bloud.sourceDir (the flake does) or this option";
      defaultText = literalExpression ''"''${config.bloud.sourceDir}/apps"'';
      description = "Catalog directory (apps/<name>/metadata.yaml).";
    };

    webDir = mkOption {
      type = types.str;
      default = if cfg.webPackage != null then "${cfg.webPackage}" else "${bloud.dataDir}/web";
      defaultText = literalExpression ''"''${config.bloud.agent.webPackage}"'';
      description = "Shell build served at /.";
    };

    adminGroup = mkOption {
      type = types.str;
      default = "bloud-admin";
      description = ''
        Group whose members may use `bloud-agent install`/`uninstall` (the agent's Unix socket
        /run/bloud-agent/agent.sock), besides root and the bloud user. Created by this module.
      '';
    };

    adminUsers = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "alice" ];
      description = "Users added to `adminGroup`, so they can run the CLI without sudo.";
    };

    batchWindow = mkOption {
      type = types.ints.unsigned;
      default = 5;
      description = "Seconds the queue waits to batch installs into one rebuild (queue.batchWindow).";
    };

    rebuild = {
      mode = mkOption {
        type = types.enum [
          "nixos"
          "command"
        ];
        default = "command";
        description = ''
          `command` (default) runs `rebuild.command`, i.e. the root helper through sudo, which
          validates apps.nix, refreshes the flake copy and switches. `nixos` makes the agent call
          nixos-rebuild itself, which only works if the agent runs as root.
        '';
      };
      command = mkOption {
        type = types.listOf types.str;
        default = [
          "/run/wrappers/bin/sudo"
          "--non-interactive"
          "${bloud.rebuild.helper}"
        ];
        defaultText = literalExpression ''[ "/run/wrappers/bin/sudo" "--non-interactive" "''${config.bloud.rebuild.helper}" ]'';
        description = "Argv of a rebuild in `command` mode.";
      };
    };

    settings = mkOption {
      inherit (yaml) type;
      default = { };
      description = "Extra agent configuration, merged over the generated /etc/bloud/agent.yaml.";
    };

    effectiveSettings = mkOption {
      type = types.attrs;
      readOnly = true;
      default = settings;
      defaultText = literalExpression "the config as written to /etc/bloud/agent.yaml";
      description = "The agent config as written to /etc/bloud/agent.yaml (for inspection and checks).";
    };

    configFile = mkOption {
      type = types.path;
      readOnly = true;
      default = configFile;
      defaultText = literalExpression "generated from the options";
      description = "The generated agent config.";
    };
  };

  config = mkIf cfg.enable {
    environment.etc."bloud/agent.yaml".source = cfg.configFile;
    users.groups.${cfg.adminGroup}.members = cfg.adminUsers;
    environment.systemPackages = [ cfg.package ];

    bloud.proxy.routeFiles."base.yml" = baseRoutes;

    systemd.services.bloud-agent = {
      description = "Bloud host agent (bloud-agent)";
      wantedBy = [ "multi-user.target" ];
      # The user manager runs the apps' rootless podman (XDG_RUNTIME_DIR, its D-Bus).
      wants = [
        "network-online.target"
        "user@${toString bloud.uid}.service"
      ];
      after = [
        "network-online.target"
        "systemd-tmpfiles-setup.service"
        "bloud-proxy-routes.service"
        "user@${toString bloud.uid}.service"
      ];
      restartTriggers = [ cfg.configFile ];
      # sudo (rebuild helper), podman exec (configurators), systemctl/journalctl (status).
      path = [
        "/run/wrappers"
        config.virtualisation.podman.package
        pkgs.systemd
        pkgs.coreutils
      ];
      environment = {
        # The rootless podman of the bloud user lives in its user manager's runtime dir.
        XDG_RUNTIME_DIR = "/run/user/${toString bloud.uid}";
        DBUS_SESSION_BUS_ADDRESS = "unix:path=/run/user/${toString bloud.uid}/bus";
        RUST_LOG = "info";
      };
      serviceConfig = {
        ExecStart = "${cfg.package}/bin/bloud-agent serve --config /etc/bloud/agent.yaml";
        User = bloud.user;
        Group = bloud.group;
        WorkingDirectory = bloud.dataDir;
        Restart = "always";
        RestartSec = 5;
        UMask = "0027";
        # The CLI's socket lives here; the directory is searchable, the socket itself is 0660
        # with group adminGroup, and the agent checks each peer's credentials.
        RuntimeDirectory = "bloud-agent";
        RuntimeDirectoryMode = "0755";
        # Membership lets the agent hand the socket to the admin group (chown needs it).
        SupplementaryGroups = [ cfg.adminGroup ];
        # No AmbientCapabilities: the agent needs none (see the top of this file).
        # sudo is setuid: the agent must keep the ability to gain privileges for the rebuild
        # helper. systemd silently turns NoNewPrivileges on with SystemCallFilter,
        # SystemCallArchitectures, RestrictAddressFamilies, RestrictNamespaces, PrivateDevices,
        # ProtectKernel*, ProtectClock, MemoryDenyWriteExecute, RestrictRealtime,
        # RestrictSUIDSGID, LockPersonality or DynamicUser, so none of those here; nor a
        # CapabilityBoundingSet or ProtectSystem/ProtectHome, which sudo and rootless podman
        # (storage in ~bloud) would inherit. The privileged part runs elsewhere: the helper
        # switches in its own transient unit (systemd-run).
        NoNewPrivileges = false;
      };
    };
  };
}
