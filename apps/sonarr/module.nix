# Sonarr: TV series collection manager (forward-auth SSO). Downloads come from qBittorrent
# (apps-qbittorrent:8080 on apps-net); the agent's configurator adds it as the download
# client and /tv as the root folder. Shares <dataDir>/downloads with qBittorrent.
import ../../nixos/lib/bloud-app.nix {
  name = "sonarr";
  description = "Sonarr, TV series collection manager";
  image = "docker.io/linuxserver/sonarr:latest";
  port = 8989;
  environment = cfg: {
    PUID = toString cfg.uid;
    PGID = toString cfg.gid;
    TZ = cfg.timeZone;
  };
  volumes = cfg: [
    "${cfg.appDataPath}/config:/config:Z"
    "${cfg.dataDir}/downloads:/downloads:z"
    "${cfg.dataDir}/media/shows:/tv:z"
  ];
  preStartScript =
    cfg:
    import ../../nixos/lib/arr-config.nix {
      port = 8989;
      configDir = "${cfg.appDataPath}/config";
    };
}
