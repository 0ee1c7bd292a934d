# Miniflux feed reader. Host network (as upstream) so it reaches postgres on localhost;
# it listens on loopback only and serves under /embed/miniflux itself (BASE_URL), which is
# why metadata.yaml says `routing.stripPrefix: false`.
#
# Login: a local admin (password in <dataDir>/secrets/values/miniflux-admin-password) unless
# disableLocalAuth is set; with Authentik, the OIDC settings below plus the client secret that
# the agent's prestart hook appends (bloud.hooks.command) enable "Bloud SSO".
import ../../nixos/lib/bloud-app.nix {
  name = "miniflux";
  description = "Miniflux feed reader";
  image = "docker.io/miniflux/miniflux:latest";
  port = 8085;
  network = "host";
  database = "miniflux";
  dependsOn = [ "postgres" ];

  options = {
    disableLocalAuth = {
      type = "bool";
      default = false;
      description = "Only allow Authentik (OIDC) logins; needs Authentik and the agent's SSO hook.";
    };
  };

  environment =
    cfg:
    {
      RUN_MIGRATIONS = "1";
      LISTEN_ADDR = "127.0.0.1:${toString cfg.port}";
      BASE_URL = cfg.embedUrl;
      CREATE_ADMIN = "1";
      ADMIN_USERNAME = "admin";
    }
    // cfg.lib.optionalAttrs cfg.ssoEnabled {
      OAUTH2_PROVIDER = "oidc";
      OAUTH2_CLIENT_ID = "miniflux-client";
      OAUTH2_OIDC_DISCOVERY_ENDPOINT = "${cfg.authentikExternalHost}/application/o/miniflux/";
      OAUTH2_REDIRECT_URL = "${cfg.embedUrl}/oauth2/oidc/callback";
      OAUTH2_OIDC_PROVIDER_NAME = "Bloud SSO";
      OAUTH2_USER_CREATION = "1";
    }
    // cfg.lib.optionalAttrs cfg.disableLocalAuth { DISABLE_LOCAL_AUTH = "true"; };

  secrets = [
    "postgres-password"
    "miniflux-admin-password"
  ];
  envFiles."miniflux.env" = {
    DATABASE_URL = "postgres://apps:@postgres-password@@localhost:5432/miniflux?sslmode=disable";
    ADMIN_PASSWORD = "@miniflux-admin-password@";
  };
  envFile = "miniflux.env";
}
