# Core Bloud module: the `bloud.*` option tree, the bloud user, the data layout, and
# the imports that make up a Bloud box:
#
#   modules/proxy.nix         bloud-proxy on :80 (system service, CAP_NET_BIND_SERVICE)
#   modules/agent.nix         bloud-agent on loopback (system service, user bloud)
#   modules/apps-runtime.nix  rootless podman for the apps: user units, secrets, start at boot
#   modules/rebuild.nix       the root helper the agent runs (through sudo) to switch the system
#   ../apps/*/module.nix      one module per catalog app, each gated by bloud.apps.<name>.enable
#
# Differences from upstream, on purpose: no Traefik container (bloud-proxy is a native
# system service that binds :80 itself, so no iptables 80->8080 redirect); data lives in
# /var/lib/bloud instead of ~bloud/.local/share/bloud; the agent keeps its state in SQLite,
# so no app is enabled by default (postgres/redis come on when an app needs them).
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    attrNames
    filter
    mkDefault
    mkEnableOption
    mkIf
    mkOption
    types
    ;

  cfg = config.bloud;

  appsDir = ../apps;
  appModules =
    if builtins.pathExists appsDir then
      map (d: appsDir + "/${d}/module.nix") (
        filter (d: builtins.pathExists (appsDir + "/${d}/module.nix")) (
          attrNames (lib.filterAttrs (_: kind: kind == "directory") (builtins.readDir appsDir))
        )
      )
    else
      [ ];

  # The apps the agent enabled: written by the rebuild helper into its root-owned copy of this
  # source (never committed). Imported here, not by one configuration, so that every
  # configuration built from the copy gets them: nixosConfigurations.bloud, or the host's own
  # flake whose Bloud input the helper overrides with the copy (bloud.rebuild.bloudInput).
  generatedApps = lib.optional (builtins.pathExists ./generated/apps.nix) ./generated/apps.nix;
in
{
  imports = [
    ./modules/proxy.nix
    ./modules/agent.nix
    ./modules/apps-runtime.nix
    ./modules/rebuild.nix
  ] ++ appModules ++ generatedApps;

  options.bloud = {
    enable = mkEnableOption "Bloud, the home-cloud OS (proxy, agent and apps)";

    user = mkOption {
      type = types.str;
      default = "bloud";
      description = "User that runs the agent and owns the rootless podman containers of the apps.";
    };

    group = mkOption {
      type = types.str;
      default = "bloud";
      description = ''
        Primary group of the bloud user (the agent and the app containers). The proxy is not
        in it: it has its own group (bloud.proxy.group) for its routes.
      '';
    };

    uid = mkOption {
      type = types.int;
      default = 1000;
      description = ''
        Fixed uid of the bloud user. Pinned because the user manager (user@<uid>.service) and
        XDG_RUNTIME_DIR=/run/user/<uid> are named by it (upstream relied on bloud being the first
        normal user).
      '';
    };

    gid = mkOption {
      type = types.int;
      default = 1000;
      description = "Fixed gid of the bloud group (PGID of the linuxserver.io containers).";
    };

    externalHost = mkOption {
      type = types.str;
      default = "http://bloud.local";
      example = "http://bloud.local:8080";
      description = ''
        Scheme, host and port (if not the default) that browsers use, without a trailing slash.
        Apps get `<externalHost>/embed/<app>` as their public URL. Unlike upstream, no proxy port
        is appended: the proxy listens on 80 itself.
      '';
    };

    authentikExternalHost = mkOption {
      type = types.str;
      default = cfg.externalHost;
      defaultText = lib.literalExpression "config.bloud.externalHost";
      description = "Browser-facing base URL of Authentik (OIDC issuer and discovery URLs are built from it).";
    };

    dataDir = mkOption {
      type = types.str;
      default = "/var/lib/bloud";
      description = ''
        Root of Bloud's state: the agent's SQLite database, nix/apps.nix, rebuild logs, routes/,
        secrets/, and one directory per app (<dataDir>/<app>), plus downloads/ and media/.
      '';
    };

    sourceDir = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = ''
        The Bloud source tree (flake.nix, nixos/, apps/). The flake sets it to its own store path.
        The agent reads the catalog from <sourceDir>/apps and the rebuild helper copies it to
        bloud.rebuild.flakeDir before each switch.
      '';
    };

    publishAddress = mkOption {
      type = types.str;
      default = "127.0.0.1";
      description = ''
        Address that container ports are published on. Loopback keeps apps reachable only
        through bloud-proxy (and so behind forward-auth); upstream published on all interfaces.
      '';
    };

    timeZone = mkOption {
      type = types.str;
      default = if config.time.timeZone != null then config.time.timeZone else "UTC";
      defaultText = lib.literalExpression ''if config.time.timeZone != null then config.time.timeZone else "UTC"'';
      description = "TZ passed to the app containers.";
    };

    pullImages = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Images pulled one after the other before the apps start (avoids registry rate limits).";
    };

    hooks.command = mkOption {
      type = types.nullOr (types.listOf types.str);
      default = null;
      example = lib.literalExpression ''[ "''${pkgs.bloud-agent}/bin/bloud-agent" "--config" "/etc/bloud/agent.yaml" "configure" ]'';
      description = ''
        Argv prefix of the per-app configure hooks. When set, every app unit runs
        `<command> prestart <app>` before and `<command> poststart <app>` after its container
        starts (upstream's `host-agent configure`). Null (default): no hooks, because the agent's
        CLI contract does not include `configure` yet.
      '';
    };

    secrets = {
      dir = mkOption {
        type = types.str;
        default = "${cfg.dataDir}/secrets";
        defaultText = lib.literalExpression ''"''${config.bloud.dataDir}/secrets"'';
        description = "Directory (0700, bloud) holding generated secrets and the apps' env files.";
      };

      names = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = ''
          Random secrets to generate once (48 alphanumeric characters each), kept in
          <secrets.dir>/values/<name>. App modules add the names they use.
        '';
      };

      envFiles = mkOption {
        type = types.attrsOf (types.attrsOf types.str);
        default = { };
        example = {
          "miniflux.env".DATABASE_URL = "postgres://apps:@postgres-password@@localhost:5432/miniflux";
        };
        description = ''
          Env files (podman --env-file) rewritten from the secrets on every start of the apps:
          file name -> variables. `@name@` in a value is replaced by the secret `name`.
        '';
      };
    };

    # bloud.apps.<name>.* is declared by each apps/<name>/module.nix (see nixos/lib/bloud-app.nix).

    # Upstream ran Traefik as an app; an apps.nix written by upstream's agent may still enable it.
    apps.traefik.enable = mkOption {
      type = types.bool;
      default = false;
      description = "Accepted for upstream apps.nix files and ignored: bloud-proxy replaces the Traefik container.";
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = lib.hasPrefix "/" cfg.dataDir && !lib.hasSuffix "/" cfg.dataDir;
        message = "bloud.dataDir must be an absolute path without a trailing slash (got ${cfg.dataDir})";
      }
      {
        assertion = !lib.hasSuffix "/" cfg.externalHost;
        message = "bloud.externalHost must not end with a slash (got ${cfg.externalHost})";
      }
    ];

    users.groups.${cfg.group}.gid = cfg.gid;
    users.users.${cfg.user} = {
      uid = cfg.uid;
      group = cfg.group;
      isNormalUser = true;
      description = "Bloud apps and agent";
      home = "/home/${cfg.user}";
      createHome = true;
      # Rootless podman needs subordinate ids; lingering keeps the user manager (and so the
      # app containers) running without a login session.
      autoSubUidGidRange = true;
      linger = true;
      # No `podman` group: it owns the root podman socket (a privileged container away from
      # root); rootless podman needs none. No other group either.
      extraGroups = [ ];
    };

    # Only the bloud user (and its group, which has no other member) enters dataDir; the
    # proxy's routes live outside it (bloud.proxy.routesDir).
    systemd.tmpfiles.rules = [
      "d ${cfg.dataDir} 0750 ${cfg.user} ${cfg.group} - -"
      "d ${cfg.dataDir}/nix 0750 ${cfg.user} ${cfg.group} - -"
      "d ${cfg.secrets.dir} 0700 ${cfg.user} ${cfg.group} - -"
      "d ${cfg.dataDir}/downloads 0750 ${cfg.user} ${cfg.group} - -"
      "d ${cfg.dataDir}/media 0750 ${cfg.user} ${cfg.group} - -"
      "d ${cfg.dataDir}/media/movies 0750 ${cfg.user} ${cfg.group} - -"
      "d ${cfg.dataDir}/media/shows 0750 ${cfg.user} ${cfg.group} - -"
    ];

    warnings = lib.optional cfg.apps.traefik.enable "bloud.apps.traefik.enable is ignored: bloud-proxy (bloud.proxy) replaces upstream's Traefik container.";

    bloud.proxy.enable = mkDefault true;
    bloud.agent.enable = mkDefault true;

    virtualisation.podman = {
      enable = true;
      dockerCompat = false;
      defaultNetwork.settings.dns_enabled = true;
    };

    nix.settings.experimental-features = [
      "nix-command"
      "flakes"
    ];
  };
}
