# Strict declarations of the NixOS options that Bloud's modules (and the installed profile,
# the app modules and the VM test node) set or read, for the evaluation test (./default.nix).
#
# Evaluated with the real module system of nixpkgs (`lib.evalModules` from
# ../shared/nixpkgs-lib), with the types NixOS declares them with. Nothing is free-form: an
# option Bloud sets that is not declared here, a wrong type or a conflicting definition fails
# the evaluation, as it would on NixOS. Submodules (users, units, sudo rules, /etc entries)
# declare their fields one by one for the same reason. A few NixOS assertions that Bloud's
# settings could break (user group and kind, unique uids) are reproduced at the end.
{
  lib,
  pkgs,
  config,
  ...
}:

let
  inherit (lib) mkOption types;

  opt =
    type: default:
    mkOption {
      inherit type default;
      description = "As in NixOS.";
    };
  req =
    type:
    mkOption {
      inherit type;
      description = "As in NixOS.";
    };

  strList = opt (types.listOf types.str) [ ];

  # nixos/lib/systemd-unit-options.nix: a unit setting is an atom or a list of atoms; lists
  # from several definitions are concatenated, atoms must agree.
  atom = v: builtins.isBool v || builtins.isInt v || builtins.isString v || builtins.isPath v || lib.isDerivation v;
  unitOption = lib.mkOptionType {
    name = "systemd option";
    check = v: atom v || (builtins.isList v && builtins.all atom v);
    merge =
      loc: defs:
      let
        defs' = lib.filterOverrides defs;
      in
      if builtins.any (d: builtins.isList d.value) defs' then
        lib.concatMap (d: lib.toList d.value) defs'
      else
        lib.mergeEqualOption loc defs';
  };

  unitCommon = {
    enable = opt types.bool true;
    description = opt types.singleLineStr "";
    wantedBy = strList;
    requiredBy = strList;
    upheldBy = strList;
    wants = strList;
    requires = strList;
    upholds = strList;
    after = strList;
    before = strList;
    bindsTo = strList;
    partOf = strList;
    conflicts = strList;
    onFailure = strList;
    unitConfig = opt (types.attrsOf unitOption) { };
  };

  serviceOptions = unitCommon // {
    serviceConfig = opt (types.attrsOf unitOption) { };
    environment = opt (types.attrsOf (types.nullOr (types.oneOf [
      types.str
      types.path
      types.package
    ]))) { };
    path = opt (types.listOf (types.oneOf [
      types.package
      types.str
    ])) [ ];
    restartTriggers = opt (types.listOf types.unspecified) [ ];
    reloadTriggers = opt (types.listOf types.unspecified) [ ];
    restartIfChanged = opt types.bool true;
    stopIfChanged = opt types.bool true;
    script = opt types.lines "";
    preStart = opt types.lines "";
    postStart = opt types.lines "";
    startAt = opt (types.either types.str (types.listOf types.str)) [ ];
  };

  service = types.submodule { options = serviceOptions; };
  target = types.submodule { options = unitCommon; };

  user = types.submodule (
    { name, ... }:
    {
      options = {
        name = opt types.str name;
        uid = opt (types.nullOr types.int) null;
        group = opt types.str "";
        extraGroups = strList;
        isNormalUser = opt types.bool false;
        isSystemUser = opt types.bool false;
        description = opt types.str "";
        home = opt types.path "/var/empty";
        createHome = opt types.bool false;
        shell = opt (types.nullOr (types.either types.shellPackage types.path)) null;
        autoSubUidGidRange = opt types.bool false;
        linger = opt (types.nullOr types.bool) null;
        packages = opt (types.listOf types.package) [ ];
        hashedPassword = opt (types.nullOr types.str) null;
        initialPassword = opt (types.nullOr types.str) null;
        openssh.authorizedKeys.keys = strList;
      };
    }
  );

  group = types.submodule (
    { name, ... }:
    {
      options = {
        name = opt types.str name;
        gid = opt (types.nullOr types.int) null;
        members = strList;
      };
    }
  );

  sudoRule = types.submodule {
    options = {
      users = opt (types.listOf (types.either types.str types.int)) [ ];
      groups = opt (types.listOf (types.either types.str types.int)) [ ];
      host = opt types.str "ALL";
      runAs = opt types.str "ALL:ALL";
      commands = req (
        types.listOf (
          types.either types.str (
            types.submodule {
              options = {
                command = req types.str;
                options = opt (types.listOf (types.enum [
                  "NOPASSWD"
                  "PASSWD"
                  "NOEXEC"
                  "EXEC"
                  "SETENV"
                  "NOSETENV"
                  "LOG_INPUT"
                  "NOLOG_INPUT"
                  "LOG_OUTPUT"
                  "NOLOG_OUTPUT"
                ])) [ ];
              };
            }
          )
        )
      );
    };
  };

  etcEntry = types.submodule (
    { name, ... }:
    {
      options = {
        enable = opt types.bool true;
        target = opt types.str name;
        text = opt (types.nullOr types.lines) null;
        source = opt (types.nullOr types.path) null;
        mode = opt types.str "symlink";
        user = opt types.str "+0";
        group = opt types.str "+0";
      };
    }
  );

  fileSystem = types.submodule {
    options = {
      device = opt (types.nullOr types.str) null;
      fsType = opt types.str "auto";
      options = opt (types.nonEmptyListOf types.str) [ "defaults" ];
    };
  };
in
{
  options = {
    assertions = opt (types.listOf (types.submodule {
      options = {
        assertion = req types.bool;
        message = req types.str;
      };
    })) [ ];
    warnings = opt (types.listOf types.str) [ ];

    time.timeZone = opt (types.nullOr types.str) null;

    nixpkgs.overlays = opt (types.listOf (types.functionTo (types.functionTo types.attrs))) [ ];
    nixpkgs.hostPlatform = opt (types.either types.str types.attrs) "x86_64-linux";

    nix.package = opt types.package pkgs.nix;
    nix.settings.experimental-features = strList;

    system.stateVersion = opt types.str "25.05";
    system.build = opt (types.lazyAttrsOf types.unspecified) { };

    users.users = opt (types.attrsOf user) { };
    users.groups = opt (types.attrsOf group) { };

    systemd.services = opt (types.attrsOf service) { };
    systemd.targets = opt (types.attrsOf target) { };
    systemd.user.services = opt (types.attrsOf service) { };
    systemd.user.targets = opt (types.attrsOf target) { };
    systemd.tmpfiles.rules = strList;

    security.sudo.enable = opt types.bool true;
    security.sudo.extraRules = opt (types.listOf sudoRule) [ ];
    security.polkit.enable = opt types.bool false;
    security.polkit.extraConfig = opt types.lines "";

    environment.etc = opt (types.attrsOf etcEntry) { };
    environment.systemPackages = opt (types.listOf types.package) [ ];

    networking.hostName = opt types.str "nixos";
    networking.firewall.enable = opt types.bool true;
    networking.firewall.allowedTCPPorts = opt (types.listOf types.port) [ ];
    networking.firewall.allowedUDPPorts = opt (types.listOf types.port) [ ];

    virtualisation.podman.enable = opt types.bool false;
    virtualisation.podman.package = opt types.package pkgs.podman;
    virtualisation.podman.dockerCompat = opt types.bool false;
    virtualisation.podman.dockerSocket.enable = opt types.bool false;
    virtualisation.podman.defaultNetwork.settings = opt (types.attrsOf types.anything) { };
    # The VM test node (nixos/lib/testing: qemu-vm.nix).
    virtualisation.memorySize = opt types.ints.positive 1024;
    virtualisation.diskSize = opt types.ints.positive 1024;

    services.avahi.enable = opt types.bool false;
    services.avahi.nssmdns4 = opt types.bool false;
    services.avahi.publish.enable = opt types.bool false;
    services.avahi.publish.addresses = opt types.bool false;
    services.avahi.publish.workstation = opt types.bool false;
    services.openssh.enable = opt types.bool false;

    boot.loader.systemd-boot.enable = opt types.bool false;
    boot.loader.efi.canTouchEfiVariables = opt types.bool false;
    boot.initrd.availableKernelModules = strList;
    fileSystems = opt (types.attrsOf fileSystem) { };
  };

  config = {
    system.build.nixos-rebuild = pkgs.nixos-rebuild;

    # nixos/modules/config/users-groups.nix (the checks Bloud's users could trip).
    assertions =
      let
        users = lib.attrValues config.users.users;
        uids = lib.filter (u: u != null) (map (u: u.uid) users);
      in
      map (u: {
        assertion = u.group != "";
        message = "users.users.${u.name}.group is unset.";
      }) users
      ++ map (u: {
        assertion = u.isNormalUser != u.isSystemUser;
        message = "Exactly one of users.users.${u.name}.isSystemUser and users.users.${u.name}.isNormalUser must be set.";
      }) users
      ++ map (u: {
        assertion = u.group == "" || config.users.groups ? ${u.group};
        message = "users.users.${u.name}.group = ${u.group}: the group is not declared.";
      }) users
      ++ [
        {
          assertion = lib.length uids == lib.length (lib.unique uids);
          message = "UIDs and GIDs must be unique!";
        }
      ];
  };
}
