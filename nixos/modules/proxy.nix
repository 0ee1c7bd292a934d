# bloud-proxy as a hardened system service on port 80.
#
# Port 80 without root: the service runs as its own unprivileged user with
# AmbientCapabilities=CAP_NET_BIND_SERVICE (and nothing else in its bounding set), so
# no iptables 80->8080 redirect is needed and `curl http://localhost/` works on the box
# itself (upstream's PREROUTING redirect did not apply to local traffic).
#
# The static config (/etc/bloud/proxy.yaml) is generated from these options with the
# keys of docs/proxy.md; route files live in `routesDir`, written by the agent
# (apps-routes.yml) and by Nix (`routeFiles`, e.g. base.yml). Route changes are picked up
# by the file watch or `systemctl reload bloud-proxy` (SIGHUP); static config changes
# restart the service.
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
    escapeShellArg
    literalExpression
    mapAttrs
    mkEnableOption
    mkIf
    mkOption
    optionalAttrs
    recursiveUpdate
    types
    ;

  bloud = config.bloud;
  cfg = bloud.proxy;
  yaml = pkgs.formats.yaml { };

  listenAddress = "${cfg.bindAddress}:${toString cfg.port}";

  # docs/proxy.md "Static configuration": same keys as Traefik's static configuration.
  baseSettings = {
    entryPoints = {
      web = {
        address = listenAddress;
        forwardedHeaders.trustedIPs = cfg.trustedIPs;
      };
      admin.address = cfg.adminAddress;
    } // optionalAttrs cfg.https.enable {
      # TLS with the box-local CA's certificate, which the agent writes into routesDir
      # (tls.yml, docs/agent.md "HTTPS"); port 80 stays plain HTTP for the first visit.
      websecure = {
        address = "${cfg.bindAddress}:${toString cfg.https.port}";
        forwardedHeaders.trustedIPs = cfg.trustedIPs;
        http.tls = { };
      };
    };
    providers.file = {
      directory = "@ROUTES_DIR@";
      watch = cfg.watch;
    };
    ping.entryPoint = "web";
    metrics.prometheus.entryPoint = "admin";
    api.entryPoint = "admin";
    log.level = cfg.logLevel;
    pidFile = "@PID_FILE@";
    lifeCycle.graceTimeOut = "${toString cfg.graceTimeOut}s";
  } // optionalAttrs cfg.accessLog.enable {
    accessLog = {
      inherit (cfg.accessLog) filePath format;
    };
  };

  templateSettings = recursiveUpdate baseSettings cfg.settings;
  template = yaml.generate "bloud-proxy-template.yaml" templateSettings;

  realSettings = recursiveUpdate templateSettings {
    providers.file.directory = cfg.routesDir;
    pidFile = cfg.pidFile;
  };
  configFile = yaml.generate "bloud-proxy.yaml" realSettings;

  routeFileDrvs = mapAttrs (name: value: yaml.generate name value) cfg.routeFiles;

  # Loads the static file and the Nix-managed route files with the real binary at build
  # time, so a typo in an option fails `nixos-rebuild` instead of the running proxy.
  checkedConfigFile =
    pkgs.runCommand "bloud-proxy.yaml"
      {
        nativeBuildInputs = [ cfg.package ];
      }
      ''
        mkdir -p routes
        ${concatMapStringsSep "\n" (n: "cp ${routeFileDrvs.${n}} routes/${escapeShellArg n}") (
          attrNames routeFileDrvs
        )}
        substitute ${template} check.yaml \
          --replace-fail @ROUTES_DIR@ "$PWD/routes" \
          --replace-fail @PID_FILE@ "$PWD/bloud-proxy.pid"
        bloud-proxy check --config check.yaml
        cp ${configFile} $out
      '';

  # nixos/scripts/install-routes.sh, run as the bloud user (bloud-proxy-routes.service).
  installRoutes = pkgs.writeShellScript "bloud-proxy-install-routes" (
    builtins.readFile ../scripts/install-routes.sh
  );
  routesManifest = "/var/lib/${routesStateDir}/nix-managed";
  routesStateDir = "bloud-proxy-routes";
  installRoutesArgs = lib.escapeShellArgs (
    [
      cfg.routesDir
      routesManifest
    ]
    ++ lib.concatMap (n: [
      n
      "${routeFileDrvs.${n}}"
    ]) (attrNames routeFileDrvs)
  );
in
{
  options.bloud.proxy = {
    enable = mkEnableOption "bloud-proxy, the reverse proxy on port 80";

    package = mkOption {
      type = types.package;
      default = pkgs.bloud-proxy or (throw "bloud.proxy.package is not set: use the flake's nixosModules.default (it adds the Bloud overlay) or set it");
      defaultText = literalExpression "pkgs.bloud-proxy";
      description = "The bloud-proxy package (the flake's packages.<system>.bloud-proxy).";
    };

    port = mkOption {
      type = types.port;
      default = 80;
      description = "Port of the `web` entry point that browsers use.";
    };

    https = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = ''
          The `websecure` entry point (HTTPS) with the certificate of the agent's box-local CA
          (bloud.agent turns the CA on with it). Port 80 keeps serving plain HTTP; admins can
          turn on a redirect to HTTPS from the shell once their browser trusts the CA.
        '';
      };
      port = mkOption {
        type = types.port;
        default = 443;
        description = "Port of the `websecure` entry point.";
      };
    };

    bindAddress = mkOption {
      type = types.str;
      default = "";
      example = "192.168.1.10";
      description = "Address of the `web` entry point; empty means all addresses (`:80`).";
    };

    adminAddress = mkOption {
      type = types.str;
      default = "127.0.0.1:8082";
      description = "The `admin` entry point (/metrics, /api/http/*). Keep it on loopback.";
    };

    trustedIPs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Peers whose X-Forwarded-* headers are kept (entryPoints.web.forwardedHeaders.trustedIPs).";
    };

    routesDir = mkOption {
      type = types.str;
      default = "/var/lib/bloud-routes";
      description = ''
        providers.file.directory and the agent's routesDir: owned by the bloud user (the agent
        writes apps-routes.yml), group `bloud.proxy.group`, mode 2750. Outside bloud.dataDir so
        that the proxy's group reaches its routes and none of the apps' data.
      '';
    };

    watch = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Reload when files in routesDir change (in addition to SIGHUP). Must stay on: it is how
        the proxy learns about the routes the agent writes (the agent may not signal it).
      '';
    };

    logLevel = mkOption {
      type = types.enum [
        "trace"
        "debug"
        "info"
        "warn"
        "error"
      ];
      default = "info";
      description = "log.level.";
    };

    accessLog = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Write an access log (to the journal unless filePath is set).";
      };
      filePath = mkOption {
        type = types.str;
        default = "";
        description = "accessLog.filePath; empty means stdout, i.e. the journal.";
      };
      format = mkOption {
        type = types.enum [
          "json"
          "common"
        ];
        default = "json";
        description = "accessLog.format.";
      };
    };

    graceTimeOut = mkOption {
      type = types.ints.positive;
      default = 10;
      description = "Seconds to drain connections on stop (lifeCycle.graceTimeOut); systemd waits 10 s longer.";
    };

    pidFile = mkOption {
      type = types.str;
      default = "/run/bloud-proxy/bloud-proxy.pid";
      readOnly = true;
      description = "Pid file in the service's RuntimeDirectory; the agent reads it (group) to send SIGHUP.";
    };

    settings = mkOption {
      inherit (yaml) type;
      default = { };
      example = {
        entryPoints.web-compat.address = ":8080";
      };
      description = "Extra static configuration, merged over the generated one.";
    };

    routeFiles = mkOption {
      type = types.attrsOf yaml.type;
      default = { };
      description = ''
        Dynamic route files managed by Nix (file name -> content), installed atomically into
        routesDir before the proxy starts and on every switch. The agent's own apps-routes.yml
        is not touched.
      '';
    };

    checkConfig = mkOption {
      type = types.bool;
      default = true;
      description = "Run `bloud-proxy check` on the static config and routeFiles at build time.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = true;
      description = "Open the web port (and the HTTPS port, with https.enable) in the firewall.";
    };

    user = mkOption {
      type = types.str;
      default = "bloud-proxy";
      description = "Dedicated system user of the proxy.";
    };

    group = mkOption {
      type = types.str;
      default = "bloud-proxy";
      description = ''
        The proxy's only group: it reads the routes directory through it (and its static config
        is world-readable in the store). Not the bloud group, so app data stays out of reach.
      '';
    };

    configFile = mkOption {
      type = types.path;
      readOnly = true;
      description = "The generated static config.";
    };

    effectiveSettings = mkOption {
      type = types.attrs;
      readOnly = true;
      default = realSettings;
      defaultText = literalExpression "the static config as written to /etc/bloud/proxy.yaml";
      description = "The static config as written to /etc/bloud/proxy.yaml (for inspection and checks).";
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        # The agent holds no right to signal the proxy (no CAP_KILL, no polkit rule): new app
        # routes are picked up by this watch alone.
        assertion = cfg.watch;
        message = "bloud.proxy.watch must stay true: the agent does not signal the proxy, the file watch reloads its routes";
      }
    ];

    bloud.proxy.configFile = if cfg.checkConfig then checkedConfigFile else configFile;

    environment.etc."bloud/proxy.yaml".source = cfg.configFile;
    environment.systemPackages = [ cfg.package ];

    users.users.${cfg.user} = {
      isSystemUser = true;
      group = cfg.group;
      extraGroups = [ ];
      description = "bloud-proxy";
    };
    users.groups.${cfg.group} = { };

    # Setgid: files the agent and the routes unit create inherit the proxy's group.
    systemd.tmpfiles.rules = [ "d ${cfg.routesDir} 2750 ${bloud.user} ${cfg.group} - -" ];

    networking.firewall.allowedTCPPorts = mkIf cfg.openFirewall (
      [ cfg.port ] ++ lib.optional cfg.https.enable cfg.https.port
    );

    systemd.services.bloud-proxy-routes = {
      description = "Install Bloud's Nix-managed route files for bloud-proxy";
      wantedBy = [ "bloud-proxy.service" ];
      before = [ "bloud-proxy.service" ];
      after = [ "systemd-tmpfiles-setup.service" ];
      path = [ pkgs.coreutils ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        ExecStart = "${installRoutes} ${installRoutesArgs}";
        # The bloud user owns routesDir and writes apps-routes.yml there itself: installing
        # base.yml as that user grants nothing, and no root process touches the directory.
        User = bloud.user;
        Group = cfg.group;
        UMask = "0027";
        # The manifest of installed names, where only this unit writes (not in routesDir).
        StateDirectory = routesStateDir;
        StateDirectoryMode = "0700";
        NoNewPrivileges = true;
        CapabilityBoundingSet = "";
        ProtectSystem = "strict";
        ReadWritePaths = [ cfg.routesDir ];
        PrivateTmp = true;
      };
    };

    systemd.services.bloud-proxy = {
      description = "Bloud reverse proxy (bloud-proxy)";
      wantedBy = [ "multi-user.target" ];
      wants = [
        "network-online.target"
        "bloud-proxy-routes.service"
      ];
      after = [
        "network-online.target"
        "bloud-proxy-routes.service"
      ];
      # Entry points cannot change in place: a new static config restarts the proxy.
      # Route files are reloaded without a restart (watch / ExecReload).
      restartTriggers = [ cfg.configFile ];
      # Not ordered after the app containers: an app that is down answers 502.
      serviceConfig = {
        Type = "simple";
        ExecStart = "${cfg.package}/bin/bloud-proxy --config /etc/bloud/proxy.yaml";
        ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
        Restart = "always";
        RestartSec = 2;
        # SIGTERM drains for graceTimeOut; the proxy exits within graceTimeOut + 5 s.
        TimeoutStopSec = cfg.graceTimeOut + 10;

        User = cfg.user;
        Group = cfg.group;
        SupplementaryGroups = [ ];
        # /run/bloud-proxy: the pid file, for the proxy itself (systemctl reload uses $MAINPID).
        # The agent does not signal the proxy: the file watch (`watch`) picks up its routes.
        RuntimeDirectory = "bloud-proxy";
        RuntimeDirectoryMode = "0750";
        UMask = "0027";

        AmbientCapabilities = [ "CAP_NET_BIND_SERVICE" ];
        CapabilityBoundingSet = [ "CAP_NET_BIND_SERVICE" ];
        NoNewPrivileges = true;

        ProtectSystem = "strict";
        ProtectHome = true;
        # "-": a missing directory must not stop the proxy (it answers 404 until routes exist).
        ReadOnlyPaths = [ "-${cfg.routesDir}" ];
        PrivateTmp = true;
        PrivateDevices = true;
        PrivateUsers = false; # would drop CAP_NET_BIND_SERVICE in the host namespace
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        ProtectProc = "invisible";
        ProcSubset = "pid";
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          "AF_UNIX"
        ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RemoveIPC = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "~@privileged"
        ];
        # A filtered call fails with EPERM instead of killing the proxy mid-request.
        SystemCallErrorNumber = "EPERM";
        # Upstreams are 127.0.0.1:<port> published by rootless podman: no PrivateNetwork/IPAddressDeny.
        LimitNOFILE = 65536;
      };
    };
  };
}
