# Miniflux feed reader. Host network (as upstream) so it reaches postgres on localhost;
# it listens on loopback only and serves under /embed/miniflux itself (BASE_URL), which is
# why metadata.yaml says `routing.stripPrefix: false`.
#
# Login: a local admin (password in <dataDir>/secrets/values/miniflux-admin-password) unless
# disableLocalAuth is set; with bloud-agent, "Bloud SSO" signs in with the Bloud account
# through the agent's OpenID Connect provider (client registered at install, its secret in
# the env file).
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
      description = "Only allow Bloud SSO (OpenID Connect) logins; needs bloud-agent.";
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
    // cfg.lib.optionalAttrs cfg.oidcEnabled {
      OAUTH2_PROVIDER = "oidc";
      OAUTH2_CLIENT_ID = cfg.oidcClientId;
      OAUTH2_OIDC_DISCOVERY_ENDPOINT = cfg.oidcIssuer;
      OAUTH2_REDIRECT_URL = "${cfg.embedUrl}/oauth2/oidc/callback";
      OAUTH2_OIDC_PROVIDER_NAME = "Bloud SSO";
      OAUTH2_USER_CREATION = "1";
    }
    // cfg.lib.optionalAttrs cfg.disableLocalAuth { DISABLE_LOCAL_AUTH = "true"; };

  secrets = [
    "postgres-password"
    "miniflux-admin-password"
    "oidc-miniflux-client-secret"
  ];
  envFiles = cfg: {
    "miniflux.env" = {
      DATABASE_URL = "postgres://apps:@postgres-password@@localhost:5432/miniflux?sslmode=disable";
      ADMIN_PASSWORD = "@miniflux-admin-password@";
    }
    // cfg.lib.optionalAttrs cfg.oidcEnabled { OAUTH2_CLIENT_SECRET = cfg.oidcSecret; };
  };
  envFile = "miniflux.env";
}
