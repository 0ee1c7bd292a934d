# Authentik, the identity provider (OIDC for native-oidc apps, forward-auth for the rest, and
# an LDAP outpost for Jellyfin). Containers, as upstream:
#   podman-apps-authentik-server   server on host 9001 (http) and 9443 (https), loopback only
#   podman-apps-authentik-worker   background worker (applies the blueprints the agent writes)
#   podman-apps-authentik-proxy    nginx on apps-net: lets containers use the browser-facing
#                                  issuer URL (Host = externalHost) without leaving apps-net
#   podman-apps-authentik-ldap     LDAP outpost (when ldap.enable), 3389/6636
# plus the proxy route file authentik.yml (root-level /application, /flows, /if, ... routes;
# upstream generated it from metadata.yaml `traefikConfig`).
{
  config,
  lib,
  pkgs,
  ...
}:

let
  mkBloudApp = import ../../nixos/lib/bloud-app.nix;
  version = "2025.10.3";
  serverImage = "ghcr.io/goauthentik/server:${version}";
  ldapImage = "ghcr.io/goauthentik/ldap:${version}";

  app = config.bloud.apps.authentik;
  externalHostName =
    let
      m = builtins.match "[a-z]+://([^/]+).*" config.bloud.externalHost;
    in
    if m == null then "localhost" else builtins.head m;

  # Shared by server and worker.
  commonEnv = cfg: {
    AUTHENTIK_POSTGRESQL__HOST = "apps-postgres";
    AUTHENTIK_POSTGRESQL__USER = cfg.postgresUser;
    AUTHENTIK_POSTGRESQL__NAME = "authentik";
    AUTHENTIK_REDIS__HOST = "apps-redis";
    AUTHENTIK_BOOTSTRAP_EMAIL = cfg.bootstrapEmail;
    AUTHENTIK_ERROR_REPORTING__ENABLED = "false";
    AUTHENTIK_DISABLE_UPDATE_CHECK = "true";
  };
  commonVolumes = cfg: [
    "${cfg.dataDir}/authentik-media:/media:Z"
    "${cfg.dataDir}/authentik-templates:/templates:Z"
    "${cfg.dataDir}/authentik-certs:/certs:Z"
    "${cfg.dataDir}/authentik-blueprints:/blueprints/custom:z"
  ];
  readiness = [
    {
      container = "apps-postgres";
      command = [
        "pg_isready"
        "-U"
        "apps"
      ];
    }
    {
      container = "apps-redis";
      command = [
        "redis-cli"
        "ping"
      ];
    }
  ];

  frameHeaders = {
    X-Frame-Options = "";
    Content-Security-Policy = "frame-ancestors 'self' ${config.bloud.externalHost} http://localhost:* https://localhost:*";
    Cross-Origin-Embedder-Policy = "credentialless";
    Cross-Origin-Resource-Policy = "cross-origin";
  };
  router = rule: priority: {
    inherit rule priority;
    middlewares = [ "authentik-iframe-headers" ];
    service = "authentik";
  };
  routes = {
    http = {
      routers = {
        authentik-outpost = router "PathPrefix(`/outpost.goauthentik.io`)" 96;
        # Above the agent's /api (90).
        authentik-api = router "PathPrefix(`/api/v3`)" 95;
        authentik-application = router "PathPrefix(`/application`)" 85;
        authentik-flows = router "PathPrefix(`/flows`)" 85;
        authentik-if = router "PathPrefix(`/if`)" 85;
        authentik-internal = router "PathPrefix(`/-`)" 85;
        authentik-static = router "PathPrefix(`/static`)" 85;
      };
      middlewares.authentik-iframe-headers.headers.customResponseHeaders = frameHeaders;
      services.authentik.loadBalancer.servers = [ { url = "http://127.0.0.1:${toString app.port}"; } ];
    };
  };
in
{
  imports = [
    (mkBloudApp {
      name = "authentik";
      description = "Authentik identity provider";
      image = serverImage;
      port = 9001;
      containerPort = 9000;
      extraPorts = [ "9443:9443" ];
      containerName = "apps-authentik-server";
      pullImage = true;
      database = "authentik";
      dependsOn = [
        "postgres"
        "redis"
      ];
      waitFor = readiness;
      cmd = [ "server" ];

      options = {
        bootstrapEmail = {
          default = "admin@bloud.local";
          description = "Email of the akadmin user created on first start.";
        };
      };

      environment = commonEnv;
      volumes = commonVolumes;
      secrets = [
        "postgres-password"
        "authentik-secret-key"
        "authentik-bootstrap-password"
        "authentik-bootstrap-token"
      ];
      envFiles."authentik.env" = {
        AUTHENTIK_SECRET_KEY = "@authentik-secret-key@";
        AUTHENTIK_BOOTSTRAP_PASSWORD = "@authentik-bootstrap-password@";
        AUTHENTIK_BOOTSTRAP_TOKEN = "@authentik-bootstrap-token@";
        AUTHENTIK_POSTGRESQL__PASSWORD = "@postgres-password@";
        AUTHENTIK_REDIS__PASSWORD = "";
      };
      envFile = "authentik.env";

      extraServices = cfg: {
        podman-apps-authentik-worker = cfg.mkContainer {
          name = "apps-authentik-worker";
          image = serverImage;
          description = "Bloud app authentik: worker";
          network = "apps-net";
          userns = "keep-id";
          environment = commonEnv cfg;
          envFile = "${cfg.secretsDir}/authentik.env";
          volumes = commonVolumes cfg;
          waitFor = readiness;
          extraAfter = [ "apps-authentik-server-db-init.service" ];
          extraRequires = [ "apps-authentik-server-db-init.service" ];
          cmd = [ "worker" ];
        };

        podman-apps-authentik-proxy = cfg.mkContainer {
          name = "apps-authentik-proxy";
          image = "docker.io/library/nginx:alpine";
          description = "Bloud app authentik: internal issuer proxy";
          network = "apps-net";
          dependsOn = [ "apps-authentik-server" ];
          volumes = [
            "${cfg.pkgs.writeText "authentik-proxy.conf" ''
              server {
                listen 80;
                location / {
                  proxy_pass http://apps-authentik-server:9000;
                  proxy_set_header Host ${externalHostName};
                  proxy_set_header X-Forwarded-Proto http;
                  proxy_set_header X-Forwarded-For $remote_addr;
                }
              }
            ''}:/etc/nginx/conf.d/default.conf:ro"
          ];
        };
      };

      extraConfig = cfg: {
        bloud.pullImages = [ "docker.io/library/nginx:alpine" ];
        bloud.proxy.routeFiles."authentik.yml" = routes;
      };
    })
  ];

  options.bloud.apps.authentik.ldap = {
    enable = lib.mkEnableOption "Authentik's LDAP outpost (Jellyfin logins; enabled by the jellyfin module)";
    port = lib.mkOption {
      type = lib.types.port;
      default = 3389;
      description = "Host port of the LDAP outpost.";
    };
    securePort = lib.mkOption {
      type = lib.types.port;
      default = 6636;
      description = "Host port of the LDAPS outpost.";
    };
  };

  config = lib.mkIf (app.enable && app.ldap.enable) (
    let
      bloud = config.bloud;
      podmanPackage = config.virtualisation.podman.package;
      podman = "${podmanPackage}/bin/podman";
      mkPodmanService = import ../../nixos/lib/podman-service.nix { inherit lib pkgs podmanPackage; };
      envFile = "${bloud.secrets.dir}/ldap-outpost.env";
      # The outpost's API token exists once the worker has applied the agent's outpost
      # blueprint; poll for it (as upstream) and hand it to the container as AUTHENTIK_TOKEN.
      tokenScript = ''
        for _ in $(seq 1 60); do
          token="$(${podman} exec apps-authentik-server ak shell -c '
        from authentik.outposts.models import Outpost
        o = Outpost.objects.filter(type="ldap").first()
        print(o.token.key if o else "")
        ' 2>/dev/null | tail -n 1 || true)"
          if [ -n "$token" ]; then
            umask 077
            printf 'AUTHENTIK_TOKEN=%s\n' "$token" > ${envFile}.tmp
            mv -f ${envFile}.tmp ${envFile}
            exit 0
          fi
          sleep 3
        done
        echo "no LDAP outpost in Authentik yet (the agent writes its blueprint); retrying later" >&2
        exit 1
      '';
    in
    {
      systemd.user.services.podman-apps-authentik-ldap = mkPodmanService {
        name = "apps-authentik-ldap";
        image = ldapImage;
        description = "Bloud app authentik: LDAP outpost";
        user = bloud.user;
        network = "apps-net";
        ports = [
          "${bloud.publishAddress}:${toString app.ldap.port}:3389"
          "${bloud.publishAddress}:${toString app.ldap.securePort}:6636"
        ];
        environment = {
          AUTHENTIK_HOST = "http://apps-authentik-server:9000";
          AUTHENTIK_INSECURE = "true";
        };
        envFile = envFile;
        dependsOn = [ "apps-authentik-server" ];
        waitFor = [
          {
            container = "apps-authentik-server";
            command = [
              "ak"
              "healthcheck"
            ];
            timeout = 300;
          }
        ];
        preStartScript = tokenScript;
      };
      bloud.pullImages = [ ldapImage ];
    }
  );
}
