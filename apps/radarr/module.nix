# Radarr: movie collection manager (forward-auth SSO). Downloads come from qBittorrent
# (apps-qbittorrent:8080 on apps-net); the agent's configurator adds it as the download
# client and /movies as the root folder. Shares <dataDir>/downloads with qBittorrent.
import ../../nixos/lib/bloud-app.nix {
  name = "radarr";
  description = "Radarr, movie collection manager";
  image = "docker.io/linuxserver/radarr:latest";
  port = 7878;
  environment = cfg: {
    PUID = toString cfg.uid;
    PGID = toString cfg.gid;
    TZ = cfg.timeZone;
  };
  volumes = cfg: [
    "${cfg.appDataPath}/config:/config:Z"
    "${cfg.dataDir}/downloads:/downloads:z"
    "${cfg.dataDir}/media/movies:/movies:z"
  ];
  preStartScript =
    cfg:
    import ../../nixos/lib/arr-config.nix {
      port = 7878;
      configDir = "${cfg.appDataPath}/config";
    };
}
