# The web shell and service worker (Vite build of web/). Output: the dist directory itself,
# which the agent serves as webDir.
{
  lib,
  buildNpmPackage,
  nodejs,
}:

let
  root = ../../web;
  fs = lib.fileset;
  pkgJson = lib.importJSON (root + "/package.json");
in
buildNpmPackage {
  pname = "bloud-web";
  version = pkgJson.version or "0.1.0";
  inherit nodejs;

  src = fs.toSource {
    inherit root;
    fileset = fs.difference root (
      fs.unions [
        (fs.maybeMissing (root + "/node_modules"))
        (fs.maybeMissing (root + "/dist"))
      ]
    );
  };

  # Hash of the npm dependencies in web/package-lock.json. It cannot be computed offline;
  # to fill it in: run `nix build .#web`, copy the `got: sha256-...` value from the hash
  # mismatch error here, and update it whenever package-lock.json changes
  # (or run `nix run nixpkgs#prefetch-npm-deps web/package-lock.json`).
  npmDepsHash = lib.fakeHash;

  npmBuildScript = "build";

  installPhase = ''
    runHook preInstall
    cp -r dist $out
    runHook postInstall
  '';

  meta = {
    description = "Bloud web shell (served by bloud-agent at /)";
    license = lib.licenses.asl20;
  };
}
