# evalModules for the stand-in lib (./lib.nix): enough of the NixOS module system to evaluate
# Bloud's modules. Imports are followed (each file once), option declarations are merged
# into one tree, definitions are merged per option with the option's type. A definition of
# an undeclared option inside a declared namespace (e.g. `bloud.proxy.prot`) is an error, as in
# NixOS; top-level namespaces Bloud does not declare (systemd, users, ...) are free-form.
{ lib }:

{
  modules,
  specialArgs ? { },
}:

let
  b = builtins;
  I = lib._internal;

  isOption = v: b.isAttrs v && (v._type or null) == "option";

  call =
    fn: args:
    if b.isFunction fn then
      let
        formals = b.functionArgs fn;
      in
      fn (if formals == { } then args else b.intersectAttrs formals args)
    else
      fn;

  normalize =
    file: r:
    if !(b.isAttrs r) then
      throw "module ${file} does not evaluate to an attribute set"
    else if r ? config || r ? options then
      {
        inherit file;
        imports = r.imports or [ ];
        options = r.options or { };
        config = r.config or { };
      }
    else
      {
        inherit file;
        imports = r.imports or [ ];
        options = { };
        config = b.removeAttrs r [
          "imports"
          "_file"
          "key"
        ];
      };

  collect =
    args:
    let
      go =
        acc: m:
        let
          isFile = b.isPath m || b.isString m;
          key = if isFile then toString m else null;
          file = if isFile then toString m else "<inline module>";
        in
        if key != null && b.elem key acc.keys then
          acc
        else
          let
            r = normalize file (call (if isFile then import m else m) args);
            acc' = {
              keys = acc.keys ++ (if key != null then [ key ] else [ ]);
              mods = acc.mods ++ [ r ];
            };
          in
          b.foldl' go acc' r.imports;
    in
    (b.foldl' go {
      keys = [ ];
      mods = [ ];
    } modules).mods;

  mergeDecls =
    loc: a: c:
    if isOption a || isOption c then
      throw "The option `${I.showLoc loc}' is declared twice, or is both an option and a namespace"
    else
      a // b.mapAttrs (n: v: if a ? ${n} then mergeDecls (loc ++ [ n ]) a.${n} v else v) c;

  evalOption =
    loc: decl: defs:
    let
      type = decl.type or lib.types.anything;
      merged = type.merge loc defs;
    in
    if I.isNone merged then
      (
        if decl ? default then
          (if decl ? apply then decl.apply decl.default else decl.default)
        else
          throw "The option `${I.showLoc loc}' is used but not defined"
      )
    else if decl ? apply then
      decl.apply merged
    else
      merged;

  build =
    loc: decl: defs:
    if isOption decl then
      evalOption loc decl defs
    else
      let
        keys = I.uniqueList (b.attrNames decl ++ b.concatMap I.keysOf defs);
        child =
          k:
          let
            cdefs = b.concatMap (I.childDefs k) defs;
          in
          if decl ? ${k} then
            build (loc ++ [ k ]) decl.${k} cdefs
          else if loc == [ ] then
            (
              let
                v = I.mergeAnything [ k ] cdefs;
              in
              if I.isNone v then { } else v
            )
          else
            throw "The option `${I.showLoc (loc ++ [ k ])}' does not exist (definition in a declared namespace)";
      in
      # No filtering here: the attribute names of a namespace must not depend on option values
      # (that would make `config.bloud` depend on itself).
      b.listToAttrs (
        map (k: {
          name = k;
          value = child k;
        }) keys
      );

  args = specialArgs // {
    inherit lib config options;
  };
  mods = collect args;
  options = b.foldl' (mergeDecls [ ]) { } (map (m: m.options) mods);
  config = build [ ] options (map (m: m.config) mods);
in
{
  inherit config options;
  files = map (m: m.file) mods;
}
