# PostgreSQL shared by the apps that need a database (container `apps-postgres`).
# Apps get their database from <app>-db-init (mkBloudApp `database`); the password is the
# generated secret `postgres-password`. Published on loopback so host-network apps
# (miniflux) reach it as localhost:5432; bridge apps use apps-postgres:5432.
import ../../nixos/lib/bloud-app.nix {
  name = "postgres";
  description = "PostgreSQL for Bloud apps";
  image = "docker.io/library/postgres:16-alpine";
  port = 5432;
  containerName = "apps-postgres";
  pullImage = true;
  # The image runs postgres as uid 70: map the bloud user onto it so the data dir stays ours.
  userns = "keep-id:uid=70,gid=70";

  options = {
    user = {
      default = "apps";
      description = "Superuser the apps connect as (POSTGRES_USER).";
    };
    database = {
      default = "apps";
      description = "Initial database (POSTGRES_DB).";
    };
  };

  environment = cfg: {
    POSTGRES_USER = cfg.user;
    POSTGRES_DB = cfg.database;
  };
  secrets = [ "postgres-password" ];
  envFiles."postgres.env".POSTGRES_PASSWORD = "@postgres-password@";
  envFile = "postgres.env";

  volumes = cfg: [ "${cfg.appDataPath}:/var/lib/postgresql/data:Z" ];
}
