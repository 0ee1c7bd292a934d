{
  description = "Bloud: a home-cloud OS on NixOS (bloud-proxy on Pingora, bloud-agent, app modules)";

  # nixos-unstable because Cargo.lock needs rustc >= 1.95 (parking_lot 0.13, lock_api 0.5).
  # flake.lock pins it to one revision (where it comes from: docs/nixos.md "The nixpkgs pin").
  # Rebuilds on a Bloud box pin nixpkgs to the store path the running system was built from
  # (bloud.rebuild.flakeInputs), so they fetch nothing.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;

      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      bloudPackages = pkgs: import ./nixos/packages { inherit pkgs; };

      # Everything a NixOS configuration needs to run Bloud from this flake: the modules, the
      # packages (overlay), the source the agent's catalog and the rebuild helper use, and
      # the inputs pinned for rebuilds.
      bloudModule =
        { lib, ... }:
        {
          imports = [ ./nixos/bloud.nix ];
          nixpkgs.overlays = [ self.overlays.default ];
          bloud.sourceDir = lib.mkDefault self.outPath;
        };

      # How the Bloud box rebuilds: it was installed from this flake's `bloud` configuration, so
      # it switches the root-owned copy of this flake (which holds the generated apps.nix) with
      # nixpkgs pinned to the one it was built from. Any other host that imports
      # nixosModules.default keeps the defaults: its own configuration (docs/nixos.md).
      boxRebuild =
        { config, lib, ... }:
        {
          bloud.rebuild = {
            flake = lib.mkDefault "path:${config.bloud.rebuild.flakeDir}";
            target = lib.mkDefault "bloud";
            bloudInput = lib.mkDefault null;
            flakeInputs = lib.mkDefault { nixpkgs = nixpkgs.outPath; };
          };
        };
    in
    {
      overlays.default = final: _prev: bloudPackages final;

      packages = forAllSystems (
        pkgs:
        let
          p = bloudPackages pkgs;
        in
        {
          inherit (p) bloud-proxy bloud-agent;
          web = p.bloud-web;
          default = p.bloud-proxy;
        }
      );

      nixosModules.default = bloudModule;
      nixosModules.bloud = bloudModule;

      nixosConfigurations.bloud = lib.nixosSystem {
        modules = [
          bloudModule
          boxRebuild
          ./nixos/profiles/installed.nix
          { nixpkgs.hostPlatform = "x86_64-linux"; }
        ];
      };

      checks = forAllSystems (pkgs: {
        inherit (self.packages.${pkgs.stdenv.hostPlatform.system}) bloud-proxy bloud-agent web;
        vm = import ./nixos/tests/vm.nix { inherit pkgs bloudModule; };
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.cargo
            pkgs.rustc
            pkgs.clippy
            pkgs.rustfmt
            pkgs.cmake
            pkgs.pkg-config
            pkgs.nodejs
          ];
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt);
    };
}
