# What the NixOS layer generates, for checks outside Nix (scripts/nix-parse-check):
# - the proxy's static config (providers.file.directory and pidFile replaced by @ROUTES_DIR@
#   and @PID_FILE@) and the Nix-managed route files, for the real `bloud-proxy check` (as the
#   build-time check in nixos/modules/proxy.nix does on a Nix machine);
# - every generated shell script (systemd units, the rebuild helper, commands), for `bash -n`.
let
  b = builtins;
  lib = import ./lib.nix;
  # The real module system; pkgs is a stand-in (./pkgs.nix), passed the way NixOS does.
  evalModules = args: lib.evalModules (args // { specialArgs = { inherit lib; } // (args.specialArgs or { }); });
  pkgs = import ./pkgs.nix { inherit lib evalModules; };
  config =
    (evalModules {
      modules = [
        ./nixos-options.nix
        ../../bloud.nix
        ../../profiles/installed.nix
        {
          bloud.sourceDir = "/nix/store/00000000000000000000000000000000-source";
          bloud.apps = lib.genAttrs [
            "actual-budget"
            "adguard-home"
            "affine"
            "authentik"
            "jellyfin"
            "jellyseerr"
            "miniflux"
            "postgres"
            "prowlarr"
            "qbittorrent"
            "radarr"
            "redis"
            "sonarr"
          ] (_: { enable = true; });
          bloud.hooks.command = [
            "/nix/store/00000000000000000000000000000000-bloud-agent/bin/bloud-agent"
            "configure"
          ];
        }
        { bloud.apps.jellyfin.ldapPluginHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; }
      ];
      specialArgs.pkgs = pkgs;
    }).config;
  settings = config.bloud.proxy.effectiveSettings;
in
{
  "proxy.yaml" = b.toJSON (
    lib.recursiveUpdate settings {
      providers.file.directory = "@ROUTES_DIR@";
      pidFile = "@PID_FILE@";
    }
  );
  routes = b.mapAttrs (_: b.toJSON) config.bloud.proxy.routeFiles;
  # Generated scripts appear as /nix/store/…-«name:content» (see ./pkgs.nix), nested where one calls another.
  scripts = b.toJSON {
    inherit (config) systemd;
    helper = "${config.bloud.rebuild.helper}";
    packages = config.environment.systemPackages;
  };
}
