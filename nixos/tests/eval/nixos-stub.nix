# The few NixOS options that Bloud's modules read (the rest is free-form in ./modules.nix).
{ lib, pkgs, ... }:

{
  options.time.timeZone = lib.mkOption {
    type = lib.types.nullOr lib.types.str;
    default = null;
    description = "As in NixOS.";
  };

  config = {
    nix.package = pkgs.nix;
    system.build.nixos-rebuild = pkgs.nixos-rebuild;
  };
}
