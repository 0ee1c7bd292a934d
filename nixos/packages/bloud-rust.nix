# One binary crate of the Cargo workspace, built by Nix from Cargo.lock (no vendor hash to
# maintain: cargoLock.lockFile makes Nix fetch every crate by the checksum in the lock).
{
  lib,
  rustPlatform,
  cmake,
  pkg-config,
  crate,
  description,
}:

let
  root = ../..;
  workspace = lib.importTOML (root + "/Cargo.toml");
  fs = lib.fileset;
in
rustPlatform.buildRustPackage {
  pname = crate;
  inherit (workspace.workspace.package) version;

  # Only what cargo needs: editing docs, nixos/ or web/ (but its Authentik path list) does not
  # rebuild the binaries.
  src = fs.toSource {
    inherit root;
    fileset = fs.unions [
      (root + "/Cargo.toml")
      (root + "/Cargo.lock")
      (root + "/proxy")
      (root + "/agent")
      (root + "/common")
      # bloud-common's build script reads the Authentik path list the web shell also uses.
      (root + "/web/src/sw/authentik-paths.json")
      (fs.maybeMissing (root + "/src"))
      (fs.maybeMissing (root + "/benches"))
      (fs.maybeMissing (root + "/tests"))
      (fs.maybeMissing (root + "/.cargo"))
    ];
  };

  cargoLock.lockFile = root + "/Cargo.lock";

  cargoBuildFlags = [
    "--package"
    crate
    "--bin"
    crate
  ];

  # Pingora's compression pulls in libz-ng-sys, which builds zlib-ng with cmake. cmake's
  # setup hook would take over the configure phase of a cargo build: keep cargo in charge.
  nativeBuildInputs = [
    cmake
    pkg-config
  ];
  dontUseCmakeConfigure = true;

  # The tests start real processes, bind ports and run Chromium, which the Nix build sandbox
  # does not allow; CI runs them with cargo (scripts/test). The build itself is the check here.
  doCheck = false;

  meta = {
    inherit description;
    homepage = "https://codeberg.org/d-buckner/bloud";
    license = lib.licenses.asl20;
    mainProgram = crate;
    platforms = lib.platforms.linux;
  };
}
