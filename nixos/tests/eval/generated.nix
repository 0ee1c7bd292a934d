# The files the NixOS layer generates for bloud-proxy, from the all-apps configuration:
# the static config (providers.file.directory and pidFile replaced by @ROUTES_DIR@ and
# @PID_FILE@) and the Nix-managed route files. scripts/nix-parse-check feeds them to the real
# `bloud-proxy check` when the binary has been built, like the build-time check in
# nixos/modules/proxy.nix does on a Nix machine.
let
  b = builtins;
  lib = import ./lib.nix;
  evalModules = import ./modules.nix { inherit lib; };
  pkgs = import ./pkgs.nix { inherit lib evalModules; };
  config =
    (evalModules {
      modules = [
        ./nixos-stub.nix
        ../../bloud.nix
        ../../profiles/installed.nix
        {
          bloud.sourceDir = "/nix/store/00000000000000000000000000000000-source";
          bloud.apps = lib.genAttrs [ "authentik" "jellyfin" "radarr" "miniflux" ] (_: {
            enable = true;
          });
        }
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
}
