# nixpkgs' own lib (../shared/nixpkgs-lib: the real module system and types), with
# `lib.fileset` replaced: Debian's nix 2.8 lacks builtins.readFileType that it needs, and the
# evaluation test builds nothing. The stand-in keeps the root path (checked to exist).
let
  b = builtins;
  nixpkgsLib = import ../../../../shared/nixpkgs-lib/lib;
in
nixpkgsLib.extend (
  _final: _prev: {
    fileset = {
      toSource =
        { root, fileset }:
        assert b.pathExists root;
        root;
      unions = l: l;
      union = a: _: a;
      intersection = a: _: a;
      difference = a: _: a;
      maybeMissing = p: p;
      fileFilter = _: p: p;
      gitTracked = p: p;
      fromSource = p: p;
      traceVal = p: p;
    };
  }
)
