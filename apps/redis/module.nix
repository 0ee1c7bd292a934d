# Redis (container `apps-redis`), the cache of Authentik and AFFiNE. No password: it is
# published on loopback only and reached by containers as apps-redis:6379.
import ../../nixos/lib/bloud-app.nix {
  name = "redis";
  description = "Redis for Bloud apps";
  image = "docker.io/library/redis:alpine";
  port = 6379;
  containerName = "apps-redis";
  pullImage = true;
  cmd = [
    "redis-server"
    "--save"
    "60"
    "1"
    "--loglevel"
    "warning"
  ];
  volumes = cfg: [ "${cfg.appDataPath}:/data:Z" ];
}
