# Jellyfin media server. Logins for TV and mobile clients come from Authentik's LDAP outpost
# (apps-authentik-ldap:3389 on apps-net), so enabling Jellyfin turns the outpost on.
# The wizard, the /movies and /shows libraries and the LDAP plugin settings are the agent's
# configurator's job; the plugin itself can be installed by Nix (ldapPlugin.*).
import ../../nixos/lib/bloud-app.nix {
  name = "jellyfin";
  description = "Jellyfin media server";
  image = "docker.io/jellyfin/jellyfin:latest";
  port = 8096;

  options = {
    ldapPluginUrl = {
      default = "https://repo.jellyfin.org/files/plugin/ldap-authentication/ldap-authentication_22.0.0.0.zip";
      description = "LDAP authentication plugin archive (installed only when ldapPluginHash is set).";
    };
    ldapPluginHash = {
      default = "";
      description = ''
        SRI hash of ldapPluginUrl. Empty (default): the plugin is not installed by Nix, so a
        rebuild needs no network. Get it with `nix store prefetch-file <url>`.
      '';
    };
  };

  environment = cfg: {
    PUID = toString cfg.uid;
    PGID = toString cfg.gid;
    TZ = cfg.timeZone;
  };
  volumes = cfg: [
    "${cfg.appDataPath}/config:/config:Z"
    "${cfg.appDataPath}/cache:/cache:Z"
    "${cfg.dataDir}/media/movies:/movies:ro,z"
    "${cfg.dataDir}/media/shows:/shows:ro,z"
  ];

  # Behind bloud-proxy Jellyfin must trust X-Forwarded-* from loopback and build its
  # published URL from the request, or clients see "server mismatch". First start only.
  preStartScript =
    cfg:
    let
      plugin =
        if cfg.ldapPluginHash == "" then
          null
        else
          cfg.pkgs.fetchzip {
            url = cfg.ldapPluginUrl;
            hash = cfg.ldapPluginHash;
            stripRoot = false;
          };
    in
    ''
      net=${cfg.appDataPath}/config/config/network.xml
      mkdir -p "$(dirname "$net")"
      if [ ! -e "$net" ]; then
        cat > "$net.tmp" <<'XML'
      <?xml version="1.0" encoding="utf-8"?>
      <NetworkConfiguration xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
        <BaseUrl />
        <EnablePublishedServerUriByRequest>true</EnablePublishedServerUriByRequest>
        <KnownProxies>
          <string>127.0.0.1</string>
          <string>::1</string>
        </KnownProxies>
        <InternalHttpPort>8096</InternalHttpPort>
        <PublicHttpPort>8096</PublicHttpPort>
      </NetworkConfiguration>
      XML
        mv -f "$net.tmp" "$net"
      fi
    ''
    + cfg.lib.optionalString (plugin != null) ''
      dest=${cfg.appDataPath}/config/plugins/LDAP-Auth
      mkdir -p "$dest"
      cp -rT --no-preserve=mode ${plugin} "$dest"
    '';

  extraConfig = cfg: { bloud.apps.authentik.ldap.enable = true; };
}
