# AdGuard Home: network-wide DNS ad blocking (forward-auth SSO for the web UI).
# Host network: the web UI listens on loopback:3080 (reached through bloud-proxy), DNS on
# dnsPort (5353 by default, as upstream: port 53 is usually taken and would need
# CAP_NET_BIND_SERVICE for the rootless container). Point clients at <box>:dnsPort or set
# up a 53 -> dnsPort redirect on your router.
import ../../nixos/lib/bloud-app.nix {
  name = "adguard-home";
  description = "AdGuard Home, DNS ad blocking";
  image = "docker.io/adguard/adguardhome:latest";
  port = 3080;
  network = "host";

  options = {
    dnsPort = {
      type = "port";
      default = 5353;
      description = "DNS port (TCP and UDP) AdGuard Home answers on.";
    };
    openFirewall = {
      type = "bool";
      default = true;
      description = "Open dnsPort (TCP and UDP) in the firewall for the LAN.";
    };
  };

  cmd = cfg: [
    "--no-check-update"
    "--config"
    "/opt/adguardhome/conf/AdGuardHome.yaml"
    "--work-dir"
    "/opt/adguardhome/work"
    "--web-addr"
    "127.0.0.1:${toString cfg.port}"
  ];
  volumes = cfg: [
    "${cfg.appDataPath}/work:/opt/adguardhome/work:Z"
    "${cfg.appDataPath}/conf:/opt/adguardhome/conf:Z"
  ];

  # First start only: a config that skips the install wizard (which would take over the
  # web port) with DNS on dnsPort and Quad9 over HTTPS upstream. Later edits in the UI stay.
  preStartScript = cfg: ''
    conf=${cfg.appDataPath}/conf/AdGuardHome.yaml
    mkdir -p "$(dirname "$conf")"
    if [ ! -e "$conf" ]; then
      cat > "$conf.tmp" <<'YAML'
    http:
      address: 127.0.0.1:${toString cfg.port}
    users: []
    dns:
      bind_hosts:
        - 0.0.0.0
      port: ${toString cfg.dnsPort}
      upstream_dns:
        - https://dns.quad9.net/dns-query
      bootstrap_dns:
        - 9.9.9.9
        - 149.112.112.112
    schema_version: 29
    YAML
      mv -f "$conf.tmp" "$conf"
    fi
  '';

  extraConfig = cfg: {
    networking.firewall = cfg.lib.mkIf cfg.openFirewall {
      allowedTCPPorts = [ cfg.dnsPort ];
      allowedUDPPorts = [ cfg.dnsPort ];
    };
  };
}
