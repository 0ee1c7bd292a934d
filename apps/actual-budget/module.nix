# Actual Budget. Host network as upstream, bound to loopback (ACTUAL_HOSTNAME). Its COOP/COEP
# headers (SharedArrayBuffer) and the root-level /openid callback route come from
# metadata.yaml `routing`, which the agent turns into proxy routes.
import ../../nixos/lib/bloud-app.nix {
  name = "actual-budget";
  description = "Actual Budget, personal budgeting";
  image = "docker.io/actualbudget/actual-server:latest";
  port = 5006;
  network = "host";
  dataDir = "/data";

  environment =
    cfg:
    {
      ACTUAL_PORT = toString cfg.port;
      ACTUAL_HOSTNAME = "127.0.0.1";
    }
    // cfg.lib.optionalAttrs cfg.oidcEnabled {
      ACTUAL_OPENID_DISCOVERY_URL = cfg.oidcIssuer;
      ACTUAL_OPENID_CLIENT_ID = cfg.oidcClientId;
      ACTUAL_OPENID_SERVER_HOSTNAME = cfg.embedUrl;
      ACTUAL_OPENID_ENFORCE = "true";
    };

  # The OpenID Connect client secret the agent wrote when it registered the app's client.
  secrets = [ "oidc-actual-budget-client-secret" ];
  envFiles = cfg: {
    "actual-budget.env" = cfg.lib.optionalAttrs cfg.oidcEnabled {
      ACTUAL_OPENID_CLIENT_SECRET = cfg.oidcSecret;
    };
  };
  envFile = "actual-budget.env";

  # With SSO the app must not start before the identity provider.
  extraServices = cfg: {
    podman-actual-budget = cfg.lib.mkIf cfg.authentikEnabled {
      after = [ "podman-apps-authentik-server.service" ];
      wants = [ "podman-apps-authentik-server.service" ];
    };
  };
}
