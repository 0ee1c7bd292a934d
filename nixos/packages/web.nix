# The web shell and service worker. Output: the dist directory itself, which the agent serves
# as webDir.
#
# Built by web/scripts/build.mjs, the same script `npm run build` runs in CI, with nixpkgs' own
# `typescript` and `esbuild` on PATH instead of npm devDependencies. The shell has no run-time
# dependencies, so nothing from the npm registry is fetched: no npmDepsHash to keep in step
# with web/package-lock.json (whose entries carry no download locations).
{
  lib,
  stdenvNoCC,
  nodejs,
  esbuild,
  typescript,
}:

let
  root = ../../web;
  fs = lib.fileset;
  pkgJson = lib.importJSON (root + "/package.json");
in
stdenvNoCC.mkDerivation {
  pname = "bloud-web";
  version = pkgJson.version or "0.1.0";

  # What scripts/build.mjs reads; tests, node_modules and dist stay out, so editing a test
  # does not rebuild the shell.
  src = fs.toSource {
    inherit root;
    fileset = fs.unions [
      (root + "/src")
      (root + "/public")
      (root + "/scripts/build.mjs")
      (root + "/index.html")
      (root + "/package.json")
      (root + "/tsconfig.json")
      (root + "/tsconfig.build.json")
    ];
  };

  nativeBuildInputs = [
    nodejs
    esbuild
    typescript
  ];

  buildPhase = ''
    runHook preBuild
    node scripts/build.mjs dist
    runHook postBuild
  '';

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
