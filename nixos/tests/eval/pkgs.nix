# A stand-in `pkgs` for evaluating Bloud's modules without nixpkgs' packages (./lib.nix is
# nixpkgs' real lib).
#
# Packages are fake derivations; generated scripts and files are "transparent": their path
# carries their name and content (`«name:…»`), so a check can look into an ExecStart or a
# generated config. Nothing here can be built.
{ lib, evalModules }:

let
  b = builtins;

  drv =
    name: extra:
    {
      type = "derivation";
      inherit name;
      outPath = "/nix/store/00000000000000000000000000000000-${name}";
    }
    // extra;

  transparent =
    name: content:
    drv name {
      outPath = "/nix/store/00000000000000000000000000000000-«${name}:${content}»";
      text = content;
    };

  plain = names: b.listToAttrs (map (n: { name = n; value = drv n { }; }) names);

  self =
    plain [
      "bash"
      "cargo"
      "clippy"
      "cmake"
      "coreutils"
      "crudini"
      "curl"
      "esbuild"
      "findutils"
      "gawk"
      "git"
      "gnugrep"
      "gnused"
      "jq"
      "nix"
      "nixfmt"
      "nixos-rebuild"
      "nodejs"
      "pkg-config"
      "podman"
      "rustc"
      "rustfmt"
      "systemd"
      "typescript"
      "util-linux"
    ]
    // {
      inherit lib;
      stdenv.hostPlatform.system = "x86_64-linux";
      system = "x86_64-linux";

      writeShellScript = name: text: transparent name "#!/bin/bash\n${text}";
      writeShellScriptBin = name: text: transparent name "#!/bin/bash\n${text}";
      writeText = name: text: transparent name text;
      writeTextDir = path: text: transparent path text;
      runCommand = name: env: script: transparent name script // { inherit env; };

      formats.yaml = _: {
        type = lib.types.anything;
        generate = name: value: transparent name (b.toJSON value) // { inherit value; };
      };

      fetchzip =
        args:
        assert args ? url && args ? hash;
        drv "fetchzip" { inherit args; };

      callPackage =
        f: args:
        let
          fn = if b.isPath f || b.isString f then import f else f;
        in
        fn (b.intersectAttrs (b.functionArgs fn) self // args);

      rustPlatform.buildRustPackage =
        args:
        assert b.pathExists args.cargoLock.lockFile;
        drv "${args.pname}-${args.version}" { inherit args; };

      stdenvNoCC.mkDerivation = args: drv "${args.pname}-${args.version}" { inherit args; };

      mkShell = args: drv "shell" { inherit args; };

      testers.runNixOSTest =
        test:
        drv "nixos-test-${test.name}" {
          inherit (test) testScript;
          nodes = b.mapAttrs (
            name: node:
            evalModules {
              modules = [
                ./nixos-options.nix
                node
                # The test framework names each node's host after the node.
                { networking.hostName = name; }
              ];
              specialArgs.pkgs = self;
            }
          ) test.nodes;
        };
    }
    // import ../../packages { pkgs = self; };
in
self
