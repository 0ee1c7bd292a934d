# AFFiNE knowledge base. Bridge network (apps-net): it reaches apps-postgres and apps-redis by
# container name. Before each start, affine-migration runs the image's self-host predeploy
# script (database migrations) once the database exists.
let
  image = "ghcr.io/toeverything/affine:stable";
in
import ../../nixos/lib/bloud-app.nix {
  name = "affine";
  description = "AFFiNE knowledge base";
  inherit image;
  port = 3010;
  database = "affine";
  dependsOn = [
    "postgres"
    "redis"
  ];
  # The image runs as root; in rootless podman that is the bloud user on the host.
  userns = null;

  waitFor = [
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

  environment =
    cfg:
    {
      REDIS_SERVER_HOST = "apps-redis";
      AFFINE_SERVER_EXTERNAL_URL = cfg.embedUrl;
      AFFINE_INDEXER_ENABLED = "false";
    }
    // cfg.lib.optionalAttrs cfg.oidcEnabled {
      OAUTH_OIDC_ISSUER = cfg.oidcIssuer;
      OAUTH_OIDC_CLIENT_ID = cfg.oidcClientId;
      OAUTH_OIDC_SCOPE = "openid email profile";
      OAUTH_OIDC_CLAIM_MAP_USERNAME = "preferred_username";
      OAUTH_OIDC_CLAIM_MAP_EMAIL = "email";
      OAUTH_OIDC_CLAIM_MAP_NAME = "name";
    };

  secrets = [
    "postgres-password"
    "oidc-affine-client-secret"
  ];
  envFiles = cfg: {
    "affine.env" = {
      DATABASE_URL = "postgresql://apps:@postgres-password@@apps-postgres:5432/affine";
    }
    // cfg.lib.optionalAttrs cfg.oidcEnabled { OAUTH_OIDC_CLIENT_SECRET = cfg.oidcSecret; };
  };
  envFile = "affine.env";

  volumes = cfg: [
    "${cfg.appDataPath}/storage:/root/.affine/storage:Z"
    "${cfg.appDataPath}/config:/root/.affine/config:Z"
  ];

  extraServices =
    cfg:
    let
      podman = "${cfg.podman}/bin/podman";
    in
    {
      affine-migration = {
        description = "AFFiNE database migrations";
        after = [
          "affine-db-init.service"
          "podman-apps-redis.service"
          "bloud-secrets.service"
        ];
        requires = [ "affine-db-init.service" ];
        wants = [ "podman-apps-redis.service" ];
        before = [ "podman-affine.service" ];
        requiredBy = [ "podman-affine.service" ];
        unitConfig.ConditionUser = cfg.bloudUser;
        path = [
          "/run/wrappers"
          cfg.podman
        ];
        serviceConfig = {
          Type = "oneshot";
          TimeoutStartSec = 900;
          ExecStart = cfg.pkgs.writeShellScript "affine-migration" ''
            exec ${podman} run --rm --pull=missing --name=affine-migration \
              --network=apps-net \
              --env-file=${cfg.secretsDir}/affine.env \
              --env=REDIS_SERVER_HOST=apps-redis \
              --volume=${cfg.appDataPath}/storage:/root/.affine/storage:Z \
              --volume=${cfg.appDataPath}/config:/root/.affine/config:Z \
              ${image} node ./scripts/self-host-predeploy.js
          '';
        };
      };
    };
}
