# qBittorrent with the Flood web UI (forward-auth SSO).
#
# Two containers, as upstream:
#   podman-apps-flood        container `flood` (jesec/flood), the UI on host port 8086 -> 3000;
#                            it is the app's main unit (hooks run for app "qbittorrent")
#   podman-apps-qbittorrent  container `apps-qbittorrent` (linuxserver), WebUI 8080 on apps-net
#                            only; radarr/sonarr/flood reach it as apps-qbittorrent:8080
# qbittorrent-init (oneshot) sets the qBittorrent.conf keys that let Flood and the *arr apps
# in without a password (subnet whitelist of the podman networks) and the save path.
import ../../nixos/lib/bloud-app.nix {
  name = "qbittorrent";
  description = "qBittorrent with the Flood web UI";
  image = "docker.io/jesec/flood:latest";
  port = 8086;
  containerPort = 3000;
  containerName = "flood";
  serviceName = "apps-flood";
  dependsOn = [ "apps-qbittorrent" ];

  environment = cfg: {
    # Flood listens on 127.0.0.1 unless told otherwise, which a published port cannot reach.
    FLOOD_OPTION_host = "0.0.0.0";
    FLOOD_OPTION_port = "3000";
    FLOOD_OPTION_auth = "none";
    FLOOD_OPTION_rundir = "/config";
    FLOOD_OPTION_qburl = "http://apps-qbittorrent:8080";
    # Unused by qBittorrent (the subnet whitelist lets Flood in) but required by Flood.
    FLOOD_OPTION_qbuser = "admin";
    FLOOD_OPTION_qbpass = "adminadmin";
    TZ = cfg.timeZone;
  };
  volumes = cfg: [
    "${cfg.dataDir}/flood:/config:Z"
    "${cfg.dataDir}/downloads:/downloads:z"
  ];

  extraServices =
    cfg:
    let
      conf = "${cfg.appDataPath}/qBittorrent/qBittorrent.conf";
      crudini = "${cfg.pkgs.crudini}/bin/crudini";
      set = key: value: "${crudini} --set ${conf} Preferences ${cfg.lib.escapeShellArg key} ${cfg.lib.escapeShellArg value}";
    in
    {
      qbittorrent-init = {
        description = "Prepare qBittorrent.conf for Bloud";
        before = [ "podman-apps-qbittorrent.service" ];
        wantedBy = [ "bloud-apps.target" ];
        unitConfig.ConditionUser = cfg.bloudUser;
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = cfg.pkgs.writeShellScript "qbittorrent-init" ''
            set -euo pipefail
            mkdir -p ${cfg.appDataPath}/qBittorrent
            touch ${conf}
            ${set "WebUI\\Port" "8080"}
            ${set "WebUI\\HostHeaderValidation" "false"}
            ${set "WebUI\\CSRFProtection" "false"}
            ${set "WebUI\\ClickjackingProtection" "false"}
            ${set "WebUI\\AuthSubnetWhitelistEnabled" "true"}
            ${set "WebUI\\AuthSubnetWhitelist" "10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 127.0.0.0/8"}
            ${set "WebUI\\LocalHostAuth" "false"}
            ${set "Downloads\\SavePath" "/downloads/"}
          '';
        };
      };

      podman-apps-qbittorrent = cfg.mkContainer {
        name = "apps-qbittorrent";
        image = "docker.io/linuxserver/qbittorrent:latest";
        description = "Bloud app qbittorrent: qBittorrent engine";
        network = "apps-net";
        userns = "keep-id";
        environment = {
          PUID = toString cfg.uid;
          PGID = toString cfg.gid;
          TZ = cfg.timeZone;
          WEBUI_PORT = "8080";
        };
        volumes = [
          "${cfg.appDataPath}:/config:Z"
          "${cfg.dataDir}/downloads:/downloads:z"
        ];
        extraAfter = [ "qbittorrent-init.service" ];
        extraRequires = [ "qbittorrent-init.service" ];
      };
    };

}
