# Jellyseerr: media requests for Jellyfin (forward-auth SSO through Authentik).
# The setup wizard (Jellyfin login, libraries) is the agent's configurator's job.
import ../../nixos/lib/bloud-app.nix {
  name = "jellyseerr";
  description = "Jellyseerr, media requests for Jellyfin";
  image = "docker.io/fallenbagel/jellyseerr:latest";
  port = 5055;
  environment = cfg: {
    TZ = cfg.timeZone;
    LOG_LEVEL = "info";
  };
  volumes = cfg: [ "${cfg.appDataPath}/config:/app/config:Z" ];
}
