# Bloud's packages, for the flake's `packages` and the overlay (pkgs.bloud-proxy, ...).
{ pkgs }:

let
  rust = import ./bloud-rust.nix;
in
{
  bloud-proxy = pkgs.callPackage rust {
    crate = "bloud-proxy";
    description = "Bloud's reverse proxy: Traefik-compatible routes on Pingora";
  };
  bloud-agent = pkgs.callPackage rust {
    crate = "bloud-agent";
    description = "Bloud's host agent: app catalog, install plans, rebuilds, proxy routes and the API";
  };
  bloud-web = pkgs.callPackage ./web.nix { };
}
