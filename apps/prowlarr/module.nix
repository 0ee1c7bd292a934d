# Prowlarr: indexer manager (forward-auth SSO). The agent's configurator registers
# radarr/sonarr (container DNS names on apps-net) as applications.
import ../../nixos/lib/bloud-app.nix {
  name = "prowlarr";
  description = "Prowlarr, indexer manager for the *arr apps";
  image = "docker.io/linuxserver/prowlarr:latest";
  port = 9696;
  environment = cfg: {
    PUID = toString cfg.uid;
    PGID = toString cfg.gid;
    TZ = cfg.timeZone;
  };
  volumes = cfg: [ "${cfg.appDataPath}/config:/config:Z" ];
  preStartScript =
    cfg:
    import ../../nixos/lib/arr-config.nix {
      port = 9696;
      configDir = "${cfg.appDataPath}/config";
    };
}
