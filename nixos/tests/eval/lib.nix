# A small stand-in for the parts of nixpkgs' `lib` that Bloud's modules use, so that the
# modules can be *evaluated* (not only parsed) on a machine without nixpkgs.
#
# It is written for this check, not taken from nixpkgs, and is intentionally simpler: the
# module system in ./modules.nix understands mkIf, mkMerge and mkOverride/mkDefault, option
# declarations with the types below, and treats every NixOS option that Bloud does not
# declare (systemd.*, users.*, ...) as free-form. Type checks are real: a wrong type in a
# definition is an evaluation error here, as in NixOS.
let
  b = builtins;

  none = {
    _type = "none";
  };
  isNone = v: b.isAttrs v && (v._type or null) == "none";

  isDerivation = v: b.isAttrs v && (v.type or null) == "derivation";

  # Definitions as written in modules may be wrapped in mkIf / mkMerge / mkOverride at any level.
  # `flatten` turns a list of such values into [{ value; priority; }], evaluating the mkIf
  # conditions at this level only.
  flatten =
    defs:
    b.concatMap (
      v:
      let
        t = if b.isAttrs v then v._type or null else null;
      in
      if t == "if" then
        (
          if !b.isBool v.condition then
            throw "mkIf condition is not a boolean: ${b.typeOf v.condition}"
          else if v.condition then
            flatten [ v.content ]
          else
            [ ]
        )
      else if t == "merge" then
        flatten v.contents
      else if t == "override" then
        map (d: d // { priority = v.priority; }) (flatten [ v.content ])
      else
        [
          {
            value = v;
            priority = 100;
          }
        ]
    ) defs;

  # Keep the definitions with the highest priority (the lowest number).
  byPriority =
    flat:
    let
      best = b.foldl' (acc: d: if d.priority < acc then d.priority else acc) 9999 flat;
    in
    b.filter (d: d.priority == best) flat;

  # The definitions of attribute `k` inside each definition, with the wrappers pushed down so
  # that conditions are only evaluated when the attribute's value is needed.
  childDefs =
    k: v:
    let
      t = if b.isAttrs v then v._type or null else null;
    in
    if t == "if" then
      map (c: {
        _type = "if";
        inherit (v) condition;
        content = c;
      }) (childDefs k v.content)
    else if t == "merge" then
      b.concatMap (childDefs k) v.contents
    else if t == "override" then
      map (c: {
        _type = "override";
        inherit (v) priority;
        content = c;
      }) (childDefs k v.content)
    else if b.isAttrs v && !isDerivation v && v ? ${k} then
      [ v.${k} ]
    else
      [ ];

  # Attribute names a definition can contribute, without evaluating conditions.
  keysOf =
    v:
    let
      t = if b.isAttrs v then v._type or null else null;
    in
    if t == "if" || t == "override" then
      keysOf v.content
    else if t == "merge" then
      b.concatMap keysOf v.contents
    else if b.isAttrs v && !isDerivation v then
      b.attrNames v
    else
      [ ];

  uniqueList = l: b.foldl' (acc: x: if b.elem x acc then acc else acc ++ [ x ]) [ ] l;
  showLoc = loc: b.concatStringsSep "." loc;
  describe =
    v:
    if b.isString v then
      ''"${v}"''
    else if isDerivation v then
      "a package"
    else
      b.typeOf v;

  mkType =
    {
      name,
      check,
      merge ? null,
    }:
    {
      _type = "option-type";
      inherit name check;
      merge =
        if merge != null then
          merge
        else
          # Scalars: every definition must agree (as NixOS' mergeEqualOption).
          loc: defs:
          let
            flat = byPriority (flatten defs);
            values = map (d: d.value) flat;
          in
          if flat == [ ] then
            none
          else
            b.foldl' (
              acc: v:
              if !check v then
                throw "The option `${showLoc loc}' has a value of the wrong type: expected ${name}, got ${describe v}"
              else if acc != none && acc != v then
                throw "The option `${showLoc loc}' has conflicting definitions: ${describe acc} and ${describe v}"
              else
                v
            ) none values;
    };

  # Free-form values (`types.anything`, undeclared NixOS options): attribute sets merge key by
  # key, lists concatenate, anything else must agree.
  mergeAnything =
    loc: defs:
    let
      flat = byPriority (flatten defs);
      values = map (d: d.value) flat;
      allAttrs = b.all (v: b.isAttrs v && !isDerivation v) values;
      allLists = b.all b.isList values;
      keys = uniqueList (b.concatMap keysOf values);
      children = b.listToAttrs (
        map (k: {
          name = k;
          value = mergeAnything (loc ++ [ k ]) (b.concatMap (childDefs k) values);
        }) keys
      );
    in
    if flat == [ ] then
      none
    else if allAttrs then
      filterNone children
    else if allLists then
      b.concatLists values
    else
      b.foldl' (
        acc: v:
        if acc != none && acc != v && !(b.isFunction v) then
          throw "The option `${showLoc loc}' has conflicting definitions: ${describe acc} and ${describe v}"
        else
          v
      ) none values;

  filterNone = attrs: b.removeAttrs attrs (b.filter (n: isNone attrs.${n}) (b.attrNames attrs));

  types = rec {
    anything = mkType {
      name = "anything";
      check = _: true;
      merge = mergeAnything;
    };
    raw = anything;
    unspecified = anything;
    bool = mkType {
      name = "boolean";
      check = b.isBool;
    };
    str = mkType {
      name = "string";
      check = b.isString;
    };
    lines = mkType {
      name = "lines";
      check = b.isString;
      merge =
        loc: defs:
        let
          flat = byPriority (flatten defs);
        in
        if flat == [ ] then none else b.concatStringsSep "\n" (map (d: d.value) flat);
    };
    int = mkType {
      name = "integer";
      check = b.isInt;
    };
    port = mkType {
      name = "16 bit unsigned integer";
      check = v: b.isInt v && v >= 0 && v <= 65535;
    };
    ints = {
      positive = mkType {
        name = "positive integer";
        check = v: b.isInt v && v > 0;
      };
      unsigned = mkType {
        name = "unsigned integer";
        check = v: b.isInt v && v >= 0;
      };
    };
    path = mkType {
      name = "path";
      check = v: b.isPath v || isDerivation v || (b.isString v && builtins.substring 0 1 v == "/");
    };
    package = mkType {
      name = "package";
      check = isDerivation;
    };
    enum =
      values:
      mkType {
        name = "one of ${b.concatStringsSep ", " (map toString values)}";
        check = v: b.elem v values;
      };
    nullOr =
      t:
      mkType {
        name = "null or ${t.name}";
        check = v: v == null || t.check v;
        merge =
          loc: defs:
          let
            flat = byPriority (flatten defs);
            nonNull = b.filter (d: d.value != null) flat;
          in
          if flat == [ ] then
            none
          else if nonNull == [ ] then
            null
          else if b.length nonNull != b.length flat then
            throw "The option `${showLoc loc}' is defined both null and not null"
          else
            t.merge loc (map (d: d.value) nonNull);
      };
    listOf =
      t:
      mkType {
        name = "list of ${t.name}";
        check = b.isList;
        merge =
          loc: defs:
          let
            flat = byPriority (flatten defs);
            lists = map (
              d:
              if b.isList d.value then
                d.value
              else
                throw "The option `${showLoc loc}' has a value of the wrong type: expected a list, got ${describe d.value}"
            ) flat;
            items = b.concatLists lists;
          in
          if flat == [ ] then
            none
          else
            b.genList (
              i:
              let
                v = t.merge (loc ++ [ "[${toString i}]" ]) [ (b.elemAt items i) ];
              in
              if isNone v then throw "The option `${showLoc loc}' has an empty list element" else v
            ) (b.length items);
      };
    attrsOf =
      t:
      mkType {
        name = "attribute set of ${t.name}";
        check = v: b.isAttrs v && !isDerivation v;
        merge =
          loc: defs:
          let
            flat = byPriority (flatten defs);
            values = map (
              d:
              if b.isAttrs d.value && !isDerivation d.value then
                d.value
              else
                throw "The option `${showLoc loc}' has a value of the wrong type: expected an attribute set, got ${describe d.value}"
            ) flat;
            keys = uniqueList (b.concatMap b.attrNames values);
          in
          if flat == [ ] then
            none
          else
            filterNone (
              b.listToAttrs (
                map (k: {
                  name = k;
                  value = t.merge (loc ++ [ k ]) (b.concatMap (v: if v ? ${k} then [ v.${k} ] else [ ]) values);
                }) keys
              )
            );
      };
    lazyAttrsOf = attrsOf;
    attrs = mkType {
      name = "attribute set";
      check = v: b.isAttrs v && !isDerivation v;
    };
    # Only the free-form flavour is used by Bloud (pkgs.formats.yaml's type).
    submodule =
      m:
      mkType {
        name = "submodule";
        check = b.isAttrs;
        merge = mergeAnything;
      };
  };

  mkOption =
    args:
    {
      _type = "option";
    }
    // args;
in
rec {
  inherit types mkOption isDerivation;
  _internal = {
    inherit
      flatten
      byPriority
      childDefs
      keysOf
      none
      isNone
      filterNone
      uniqueList
      showLoc
      mergeAnything
      ;
  };

  mkEnableOption =
    name:
    mkOption {
      type = types.bool;
      default = false;
      description = "Whether to enable ${name}.";
    };
  mkIf = condition: content: {
    _type = "if";
    inherit condition content;
  };
  mkMerge = contents: {
    _type = "merge";
    inherit contents;
  };
  mkOverride = priority: content: {
    _type = "override";
    inherit priority content;
  };
  mkDefault = mkOverride 1000;
  mkForce = mkOverride 50;
  literalExpression = text: {
    _type = "literalExpression";
    inherit text;
  };

  # attrsets
  inherit (b) attrNames attrValues mapAttrs filter elem isList isAttrs isString isFunction hasAttr removeAttrs;
  filterAttrs = pred: set: b.listToAttrs (b.concatMap (n: if pred n set.${n} then [ { name = n; value = set.${n}; } ] else [ ]) (b.attrNames set));
  mapAttrsToList = f: set: map (n: f n set.${n}) (b.attrNames set);
  optionalAttrs = cond: set: if cond then set else { };
  attrByPath =
    path: default: set:
    if path == [ ] then
      set
    else if b.isAttrs set && set ? ${b.head path} then
      attrByPath (b.tail path) default set.${b.head path}
    else
      default;
  recursiveUpdate =
    lhs: rhs:
    lhs
    // b.mapAttrs (
      n: v: if lhs ? ${n} && b.isAttrs lhs.${n} && b.isAttrs v && !isDerivation v then recursiveUpdate lhs.${n} v else v
    ) rhs;
  genAttrs = names: f: b.listToAttrs (map (n: { name = n; value = f n; }) names);

  # lists
  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  unique = uniqueList;
  concatLists = b.concatLists;

  # strings
  inherit (b) concatStringsSep;
  concatMapStringsSep = sep: f: list: b.concatStringsSep sep (map f list);
  optionalString = cond: s: if cond then s else "";
  hasPrefix = p: s: b.substring 0 (b.stringLength p) s == p;
  hasSuffix =
    suffix: s:
    let
      ls = b.stringLength s;
      lx = b.stringLength suffix;
    in
    ls >= lx && b.substring (ls - lx) lx s == suffix;
  hasInfix = infix: s: b.match ".*${escapeRegex infix}.*" s != null;
  escapeRegex = b.replaceStrings (map (c: c) [ "\\" "[" "]" "{" "}" "(" ")" "." "*" "+" "?" "^" "$" "|" ]) (
    map (c: "\\${c}") [ "\\" "[" "]" "{" "}" "(" ")" "." "*" "+" "?" "^" "$" "|" ]
  );
  splitString = sep: s: b.filter b.isString (b.split (escapeRegex sep) s);
  escapeShellArg = arg: "'${b.replaceStrings [ "'" ] [ "'\\''" ] (toString arg)}'";
  escapeShellArgs = args: b.concatStringsSep " " (map escapeShellArg args);
  makeBinPath = pkgs: b.concatStringsSep ":" (map (p: "${p}/bin") pkgs);
  importJSON = path: b.fromJSON (b.readFile path);
  importTOML = path: b.fromTOML (b.readFile path);

  fakeHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  licenses.asl20 = "asl20";
  platforms.linux = [
    "x86_64-linux"
    "aarch64-linux"
  ];
  fileset = {
    toSource = { root, fileset }: assert b.pathExists root; root;
    unions = l: l;
    maybeMissing = p: p;
    difference = a: _: a;
  };
}
