# mkBloudApp: turns a short app description into a whole NixOS module.
#
#   apps/<name>/module.nix = import ../../nixos/lib/bloud-app.nix { name = "..."; image = "..."; ... }
#
# The module declares `bloud.apps.<name>.{enable,port,...}` and, when enabled, the
# rootless podman user unit `podman-<serviceName>`, its data directories, optional
# database bootstrap and env files. Parameters (upstream's, plus env files):
#
#   name, image, description         required
#   port ? null                      host port (also `bloud.apps.<name>.port`); matches metadata.yaml
#   containerPort ? port
#   extraPorts ? [ ]                 more "host:container" ports, published on bloud.publishAddress
#   containerName ? name, serviceName ? containerName   unit = podman-<serviceName>.service
#   options ? { }                    { opt = { default; description; type ? "str"; }; } -> bloud.apps.<name>.<opt>
#   environment ? { }                attrs or (cfg -> attrs)
#   volumes ? [ ]                    list or (cfg -> list)
#   dataDir ? false                  true: <data>/<name>:/data:z; a string: <data>/<name>:<string>:z
#   database ? null                  postgres database created by <serviceName>-db-init before the app
#   dependsOn ? [ ]                  "postgres" | "redis" | container names ("apps-authentik-server")
#   waitFor ? [ ]                    list or (cfg -> list), see mkPodmanService
#   network ? "apps-net"             "host" for apps that must listen on the host
#   userns ? "keep-id" (null on the host network)
#   cmd ? [ ], extraPodmanArgs ? [ ]  lists or (cfg -> list)
#   envFile ? null                   file name inside bloud.secrets.dir, passed as --env-file
#   envFiles ? { }                   attrs or (cfg -> attrs): { "<file>.env" = { VAR = "value with @secret@"; }; }
#   secrets ? [ ]                    random secrets to generate (names usable as @name@ in envFiles)
#   preStartScript ? null            string or (cfg -> string): runs before the container, as bloud
#   pullImage ? false                add the image to bloud.pullImages (sequential pre-pull)
#   extraServices ? { }              attrs or (cfg -> attrs), merged into systemd.user.services
#   extraConfig ? { }                attrs or (cfg -> attrs), merged into the NixOS config
#
# `cfg`, passed to the function-valued parameters, is the app's options plus:
#   appName, externalHost, authentikExternalHost, embedUrl, dataDir (bloud.dataDir),
#   appDataPath, secretsDir, bloudUser, uid, gid, timeZone, postgresUser, authentikEnabled,
#   redisEnabled, ssoEnabled (Authentik on and agent hooks set), oidcEnabled, oidcIssuer,
#   oidcClientId, oidcSecret (the agent's OpenID Connect provider), publishAddress, and for
#   extra containers: pkgs, lib, podman (virtualisation.podman.package), publish ("h:c" -> "<publishAddress>:h:c") and mkContainer
#   (mkPodmanService for the bloud user).
#
# Conditions on option values go inside the values (mkIf, functions of cfg); which options a
# module defines must follow from `spec` alone, or evaluating an app's enable would need itself.
spec:

{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    attrByPath
    filter
    hasPrefix
    isFunction
    mapAttrs
    mkEnableOption
    mkIf
    mkMerge
    mkOption
    optional
    optionalAttrs
    types
    unique
    ;

  podmanPackage = config.virtualisation.podman.package;
  mkPodmanService = import ./podman-service.nix { inherit lib pkgs podmanPackage; };

  name = spec.name;
  port = spec.port or null;
  containerPort = spec.containerPort or port;
  containerName = spec.containerName or name;
  serviceName = spec.serviceName or containerName;
  network = spec.network or "apps-net";
  hostNetwork = network == "host";
  userns = if spec ? userns then spec.userns else if hostNetwork then null else "keep-id";

  bloud = config.bloud;
  appOpts = bloud.apps.${name};

  cfg = appOpts // {
    appName = name;
    inherit (bloud)
      externalHost
      authentikExternalHost
      dataDir
      uid
      gid
      timeZone
      publishAddress
      ;
    embedUrl = "${bloud.externalHost}/embed/${name}";
    appDataPath = "${bloud.dataDir}/${name}";
    secretsDir = bloud.secrets.dir;
    bloudUser = bloud.user;
    postgresUser = attrByPath [ "postgres" "user" ] "apps" bloud.apps;
    authentikEnabled = attrByPath [ "authentik" "enable" ] false bloud.apps;
    redisEnabled = attrByPath [ "redis" "enable" ] false bloud.apps;
    # Native OIDC needs the client secret that only the agent's prestart hook can write.
    ssoEnabled = cfg.authentikEnabled && bloud.hooks.command != null;
    # bloud-agent is the box's OpenID Connect provider (issuer = externalHost, docs/sso.md): it
    # registers a native-OIDC app's client (id = the app's name) when the app is installed and
    # writes the secret to <secrets.dir>/values/oidc-<name>-client-secret, which envFiles use as
    # `@oidc-<name>-client-secret@` (list that name in `secrets`).
    oidcEnabled = attrByPath [ "agent" "enable" ] false bloud;
    oidcIssuer = bloud.externalHost;
    oidcClientId = name;
    oidcSecret = "@oidc-${name}-client-secret@";
    # For extraServices: more containers of the same app, with Bloud's defaults.
    inherit pkgs lib;
    podman = podmanPackage;
    publish = p: "${bloud.publishAddress}:${p}";
    mkContainer = args: mkPodmanService ({ user = bloud.user; } // args);
  };

  resolve = v: if isFunction v then v cfg else v;

  typeByName = {
    str = types.str;
    int = types.int;
    bool = types.bool;
    port = types.port;
    path = types.str;
    strList = types.listOf types.str;
  };

  customOptions = mapAttrs (
    optName: o:
    mkOption {
      type = typeByName.${o.type or "str"};
      default = o.default;
      description = o.description;
    }
  ) (spec.options or { });

  dataDirVolume =
    let
      d = spec.dataDir or false;
    in
    if d == true then
      [ "${cfg.appDataPath}:/data:z" ]
    else if builtins.isString d then
      [ "${cfg.appDataPath}:${d}:z" ]
    else
      [ ];

  volumes = resolve (spec.volumes or [ ]) ++ dataDirVolume;

  # Host side of "host:container[:opts]" volume specs that are directories. Paths that
  # look like files are created by configurators, not here (as upstream).
  fileLike = p: builtins.match ".*\\.(js|json|yaml|yml|toml|conf|cfg|ini|env|xml)$" p != null;
  hostDirs = filter (p: hasPrefix "/" p && !fileLike p) (
    map (v: builtins.head (lib.splitString ":" v)) volumes
  );

  depName =
    d:
    if d == "postgres" then
      "apps-postgres"
    else if d == "redis" then
      "apps-redis"
    else
      d;
  dependsOn = map depName (spec.dependsOn or [ ]);

  database = spec.database or null;
  dbInitUnit = "${serviceName}-db-init";

  publish = p: "${bloud.publishAddress}:${p}";
  ports =
    if hostNetwork || port == null then
      [ ]
    else
      [ (publish "${toString appOpts.port}:${toString containerPort}") ] ++ map publish (spec.extraPorts or [ ]);

  envFile = spec.envFile or null;

  preStart =
    let
      s = spec.preStartScript or null;
    in
    if s == null then null else resolve s;

  podmanPath = "${podmanPackage}/bin/podman";

  dbInitScript = pkgs.writeShellScript "${dbInitUnit}" ''
    set -u
    # psql over the container's local socket: trusted by the postgres image, no password needed.
    for _ in $(seq 1 30); do
      if ${podmanPath} exec apps-postgres psql -U ${cfg.postgresUser} -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
        break
      fi
      sleep 2
    done
    exists="$(${podmanPath} exec apps-postgres psql -U ${cfg.postgresUser} -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '${database}'")" || {
      echo "postgres (apps-postgres) is not answering; ${name} cannot get its database" >&2
      exit 1
    }
    if [ "$exists" != 1 ]; then
      ${podmanPath} exec apps-postgres psql -U ${cfg.postgresUser} -d postgres -c 'CREATE DATABASE "${database}"'
    fi
    ${podmanPath} exec apps-postgres psql -U ${cfg.postgresUser} -d postgres \
      -c 'GRANT ALL PRIVILEGES ON DATABASE "${database}" TO "${cfg.postgresUser}"'
  '';
in
{
  options.bloud.apps.${name} =
    {
      enable = mkEnableOption (spec.description or name);
      public = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Serve ${name}'s routes without Bloud's login (the agent's `publicApps`). Anyone who can
          reach the proxy can then open the app: only for apps with a login of their own that
          does not trust the front door (docs/agent.md "App routes").
        '';
      };
    }
    // optionalAttrs (port != null) {
      port = mkOption {
        type = types.port;
        default = port;
        description = "Host port of ${name}; the agent routes /embed/${name}/ to 127.0.0.1:<port> (metadata.yaml `port`).";
      };
    }
    // customOptions;

  config = mkIf appOpts.enable (
    mkMerge (
      [
    {
      assertions = [
        {
          assertion = bloud.enable;
          message = "bloud.apps.${name}.enable needs bloud.enable = true";
        }
      ];

      systemd.tmpfiles.rules = map (d: "d ${d} 0750 ${bloud.user} ${bloud.group} - -") (
        unique ([ cfg.appDataPath ] ++ hostDirs)
      );

      bloud.pullImages = optional (spec.pullImage or false) spec.image;
      bloud.secrets.names = spec.secrets or [ ];
      bloud.secrets.envFiles = resolve (spec.envFiles or { });

      systemd.user.services."podman-${serviceName}" = mkPodmanService {
        name = containerName;
        inherit (spec) image;
        description = "Bloud app ${name} (${spec.image})";
        inherit ports network userns;
        environment = resolve (spec.environment or { });
        envFile = if envFile == null then null else "${bloud.secrets.dir}/${envFile}";
        inherit volumes dependsOn;
        waitFor = resolve (spec.waitFor or [ ]);
        cmd = resolve (spec.cmd or [ ]);
        extraPodmanArgs = resolve (spec.extraPodmanArgs or [ ]);
        extraAfter = optional (database != null) "${dbInitUnit}.service";
        extraRequires = optional (database != null) "${dbInitUnit}.service";
        bloudAppName = name;
        hookCommand = bloud.hooks.command;
        user = bloud.user;
        preStartScript = preStart;
      };
    }

  ]
  # Dependencies come on with the app (upstream's authentik module forces them the same way).
  # Plain Nix conditionals, not mkIf: the set of options a module defines must not depend on
  # option values, or postgres' own module would define postgres.enable under postgres.enable.
  ++ optional (database != null || builtins.elem "postgres" (spec.dependsOn or [ ])) {
    bloud.apps.postgres.enable = true;
  }
  ++ optional (builtins.elem "redis" (spec.dependsOn or [ ])) { bloud.apps.redis.enable = true; }
  ++ optional (database != null) {
      systemd.user.services.${dbInitUnit} = {
        description = "Create the ${database} database for ${name}";
        requires = [ "podman-apps-postgres.service" ];
        after = [ "podman-apps-postgres.service" ];
        before = [ "podman-${serviceName}.service" ];
        wantedBy = [ "bloud-apps.target" ];
        partOf = [ "bloud-apps.target" ];
        unitConfig.ConditionUser = bloud.user;
        path = [ "/run/wrappers" pkgs.coreutils ];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = "${dbInitScript}";
        };
      };
    }
      ++ [
        { systemd.user.services = resolve (spec.extraServices or { }); }
        (resolve (spec.extraConfig or { }))
      ]
    )
  );
}
