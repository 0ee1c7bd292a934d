# Evaluation check of the NixOS layer without nixpkgs (run by scripts/nix-parse-check):
#
#   nix-instantiate --eval --strict --json nixos/tests/eval
#
# Evaluates flake.nix's outputs with the stand-ins in this directory: the real
# nixosConfigurations.bloud, the same with every catalog app enabled and agent hooks on,
# and the VM test's node. Every option of those configurations is forced (so an undefined
# option, a wrong type or a conflicting definition fails), then the contracts are checked:
# the proxy's and agent's config keys (docs/proxy.md, docs/agent.md), unit names and ports (upstream fixtures),
# privileges, env files and secrets. Returns [{ name; ok; detail; }].
let
  b = builtins;
  lib = import ./lib.nix;
  # The real module system; pkgs is a stand-in (./pkgs.nix), passed the way NixOS does.
  evalModules = args: lib.evalModules (args // { specialArgs = { inherit lib; } // (args.specialArgs or { }); });
  pkgs = import ./pkgs.nix { inherit lib evalModules; };

  repo = ../../..;
  sourceStorePath = "/nix/store/00000000000000000000000000000000-source";
  nixpkgsStorePath = "/nix/store/00000000000000000000000000000000-nixpkgs";

  nixpkgs = {
    outPath = nixpkgsStorePath;
    lib = lib // {
      nixosSystem =
        { modules, ... }:
        evalModules {
          modules = [ ./nixos-options.nix ] ++ modules;
          specialArgs.pkgs = pkgs;
        };
      genAttrs = lib.genAttrs;
    };
    legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (_: pkgs);
  };

  flake = (import (repo + "/flake.nix")).outputs {
    self = flake // {
      outPath = sourceStorePath;
    };
    inherit nixpkgs;
  };

  appNames = [
    "actual-budget"
    "adguard-home"
    "affine"
    "authentik"
    "jellyfin"
    "jellyseerr"
    "miniflux"
    "postgres"
    "prowlarr"
    "qbittorrent"
    "radarr"
    "redis"
    "sonarr"
  ];

  hookCommand = [
    "/nix/store/00000000000000000000000000000000-bloud-agent/bin/bloud-agent"
    "--config"
    "/etc/bloud/agent.yaml"
    "configure"
  ];

  withModules =
    extra:
    nixpkgs.lib.nixosSystem {
      modules = [
        flake.nixosModules.default
        (repo + "/nixos/profiles/installed.nix")
      ] ++ extra;
    };

  base = flake.nixosConfigurations.bloud.config;
  full =
    (withModules [
      {
        bloud.apps = lib.genAttrs appNames (_: {
          enable = true;
        });
        bloud.hooks.command = hookCommand;
      }
    ]).config;
  vmNode = flake.checks.x86_64-linux.vm.nodes.machine.config;

  # Force every value (functions excepted; fake packages by their path).
  force =
    v:
    if lib.isDerivation v then
      b.seq v.outPath true
    else if b.isAttrs v then
      b.all (n: force v.${n}) (b.attrNames v)
    else if b.isList v then
      b.all force v
    else
      b.seq v true;

  check = name: ok: detail: { inherit name ok detail; };
  hasInfix = lib.hasInfix;
  sort = l: b.sort b.lessThan l;

  failedAssertions = cfg: map (a: a.message) (b.filter (a: !a.assertion) (cfg.assertions or [ ]));

  userServices = cfg: cfg.systemd.user.services;
  execStart = cfg: unit: (userServices cfg).${unit}.serviceConfig.ExecStart;

  proxySettings = cfg: cfg.bloud.proxy.effectiveSettings;
  agentSettings = cfg: cfg.bloud.agent.effectiveSettings;
  proxyUnit = cfg: cfg.systemd.services.bloud-proxy.serviceConfig;
  agentUnit = cfg: cfg.systemd.services.bloud-agent.serviceConfig;

  # Ports from the upstream catalog (shared fixtures) and from our own apps/<name>/metadata.yaml.
  portIn =
    file:
    if b.pathExists file then
      (
        let
          m = b.match "(.*\n)?port: *([0-9]+).*" (b.readFile file);
        in
        if m == null then null else b.fromJSON (b.elemAt m 1)
      )
    else
      null;
  fixturePort = app: portIn (repo + "/../shared/fixtures/upstream-apps/${app}/metadata.yaml");
  catalogPort = app: portIn (repo + "/apps/${app}/metadata.yaml");

  # Main unit, container name and network of each app (upstream's unit naming).
  mainUnits = {
    actual-budget = { unit = "podman-actual-budget"; host = true; };
    adguard-home = { unit = "podman-adguard-home"; host = true; };
    affine = { unit = "podman-affine"; host = false; };
    authentik = { unit = "podman-apps-authentik-server"; host = false; };
    jellyfin = { unit = "podman-jellyfin"; host = false; };
    jellyseerr = { unit = "podman-jellyseerr"; host = false; };
    miniflux = { unit = "podman-miniflux"; host = true; };
    postgres = { unit = "podman-apps-postgres"; host = false; };
    prowlarr = { unit = "podman-prowlarr"; host = false; };
    qbittorrent = { unit = "podman-apps-flood"; host = false; };
    radarr = { unit = "podman-radarr"; host = false; };
    redis = { unit = "podman-apps-redis"; host = false; };
    sonarr = { unit = "podman-sonarr"; host = false; };
  };

  # Each catalog app enabled alone: evaluates completely, no failed assertion.
  aloneChecks = map (
    app:
    let
      c = (withModules [ { bloud.apps.${app}.enable = true; } ]).config;
    in
    check "apps: ${app} alone evaluates with no failed assertion" (force c && failedAssertions c == [ ]) (
      b.toJSON (failedAssertions c)
    )
  ) appNames;

  portChecks = b.concatMap (
    app:
    let
      info = mainUnits.${app};
      port = full.bloud.apps.${app}.port;
      start = execStart full info.unit;
      expected = b.filter (p: p != null) [
        (fixturePort app)
        (catalogPort app)
      ];
    in
    [
      (check "${app}: host port ${toString port} matches the catalog (upstream fixture, apps/ metadata)" (
        b.all (p: p == port) expected
      ) "fixture/catalog ports: ${b.toJSON expected}")
      (
        if info.host then
          check "${app}: host network, nothing published" (
            hasInfix "'--network=host'" start && !(hasInfix "--publish" start)
          ) start
        else
          check "${app}: published on loopback port ${toString port}" (hasInfix "'--publish=127.0.0.1:${toString port}:" start) start
      )
    ]
  ) appNames;

  placeholders = v: b.filter b.isString (b.concatMap (x: if b.isList x then x else [ ]) (b.split "@([A-Za-z0-9-]+)@" v));
  envPlaceholders = lib.unique (
    b.concatMap (
      file: b.concatMap placeholders (b.attrValues full.bloud.secrets.envFiles.${file})
    ) (b.attrNames full.bloud.secrets.envFiles)
  );

  expectedUnits = [
    "affine-db-init"
    "affine-migration"
    "apps-authentik-server-db-init"
    "bloud-pull-images"
    "bloud-secrets"
    "miniflux-db-init"
    "podman-actual-budget"
    "podman-adguard-home"
    "podman-affine"
    "podman-apps-authentik-ldap"
    "podman-apps-authentik-proxy"
    "podman-apps-authentik-server"
    "podman-apps-authentik-worker"
    "podman-apps-flood"
    "podman-apps-network"
    "podman-apps-postgres"
    "podman-apps-qbittorrent"
    "podman-apps-redis"
    "podman-jellyfin"
    "podman-jellyseerr"
    "podman-miniflux"
    "podman-prowlarr"
    "podman-radarr"
    "podman-sonarr"
    "qbittorrent-init"
  ];

  # Dependencies between the bloud user's units that point at no unit (a naming mismatch).
  userUnitNames = b.attrNames (userServices full) ++ map (t: "${t}") (b.attrNames full.systemd.user.targets);
  danglingDeps = lib.unique (
    b.concatMap (
      name:
      let
        u = (userServices full).${name};
        refs = (u.after or [ ]) ++ (u.wants or [ ]) ++ (u.requires or [ ]) ++ (u.before or [ ]) ++ (u.requiredBy or [ ]);
        local = b.filter (r: !(b.elem r [ "network-online.target" ])) refs;
      in
      map (r: "${name} -> ${r}") (
        b.filter (
          r:
          let
            m = b.match "(.*)\\.(service|target)" r;
          in
          m == null || !(b.elem (b.head m) userUnitNames)
        ) local
      )
    ) (b.attrNames (userServices full))
  );

  # (rule, priority) pairs of the routers in apps/authentik/metadata.yaml `traefikConfig`, read
  # line by line (no YAML parser in Nix): each `rule:` with the next `priority:`.
  metadataAuthentikRoutes =
    let
      file = repo + "/apps/authentik/metadata.yaml";
      lines = b.filter b.isString (b.split "\n" (b.readFile file));
      step =
        acc: line:
        let
          rule = b.match " *rule: *\"(.*)\" *" line;
          prio = b.match " *priority: *([0-9]+) *" line;
        in
        if rule != null then
          acc // { pending = b.head rule; }
        else if prio != null && acc.pending != null then
          {
            pending = null;
            found = acc.found ++ [ "${acc.pending} ${b.head prio}" ];
          }
        else
          acc;
    in
    if b.pathExists file then
      sort (b.foldl' step {
        pending = null;
        found = [ ];
      } lines).found
    else
      null;
  nixAuthentikRoutes = sort (
    map (r: "${r.rule} ${toString r.priority}") (
      b.attrValues full.bloud.proxy.routeFiles."authentik.yml".http.routers
    )
  );

  routeFileNames = cfg: sort (b.attrNames cfg.bloud.proxy.routeFiles);
  installRoutesScript = cfg: cfg.systemd.services.bloud-proxy-routes.serviceConfig.ExecStart;
  sudoCommands = cfg: b.concatMap (r: map (c: c.command) r.commands) cfg.security.sudo.extraRules;
in
[
  (check "flake: nixosConfigurations.bloud evaluates completely" (force base) "")
  (check "flake: the all-apps configuration evaluates completely" (force full) "")
  (check "flake: the VM test node evaluates completely" (force vmNode) "")
  (check "flake: packages evaluate (bloud-proxy, bloud-agent, web)" (
    force flake.packages.x86_64-linux
    && flake.packages.x86_64-linux.bloud-proxy.args.cargoBuildFlags == [ "--package" "bloud-proxy" "--bin" "bloud-proxy" ]
    && b.elem pkgs.cmake flake.packages.x86_64-linux.bloud-agent.args.nativeBuildInputs
  ) "")
  # flake.lock pins the nixpkgs input flake.nix names, by revision and content hash.
  (check "flake: flake.lock pins flake.nix's nixpkgs by rev and narHash" (
    let
      lock = b.fromJSON (b.readFile ../../../flake.lock);
      n = lock.nodes.${lock.nodes.root.inputs.nixpkgs};
    in
    lock.version == 7
    && n.original == {
      type = "github";
      owner = "NixOS";
      repo = "nixpkgs";
      ref = "nixos-unstable";
    }
    && hasInfix "github:NixOS/nixpkgs/nixos-unstable" (b.readFile ../../../flake.nix)
    && n.locked.type == "github"
    && b.match "[0-9a-f]{40}" n.locked.rev != null
    && b.match "sha256-[A-Za-z0-9+/]{43}=" n.locked.narHash != null
  ) "")
  # CI's `npm run build` and the Nix build are one script; Nix brings esbuild/tsc from nixpkgs.
  (check "flake: web is built by npm's build script, with nixpkgs' esbuild and typescript" (
    let
      web = flake.packages.x86_64-linux.web.args;
      npmBuild = (b.fromJSON (b.readFile ../../../web/package.json)).scripts.build;
    in
    npmBuild == "node scripts/build.mjs"
    && hasInfix "\n${npmBuild} dist\n" web.buildPhase
    && b.all (p: b.elem p web.nativeBuildInputs) [ pkgs.nodejs pkgs.esbuild pkgs.typescript ]
  ) "")
  (check "assertions hold (installed profile)" (failedAssertions base == [ ]) (b.toJSON (failedAssertions base)))
  (check "assertions hold (all apps)" (failedAssertions full == [ ]) (b.toJSON (failedAssertions full)))

  (check "proxy: static config has exactly the documented keys" (
    sort (b.attrNames (proxySettings base)) == [
      "accessLog"
      "api"
      "entryPoints"
      "lifeCycle"
      "log"
      "metrics"
      "pidFile"
      "ping"
      "providers"
    ]
  ) (b.toJSON (proxySettings base)))
  (check "proxy: web on :80, admin on loopback, file provider on the routes dir" (
    let
      s = proxySettings base;
    in
    s.entryPoints.web.address == ":80"
    && s.entryPoints.web.forwardedHeaders.trustedIPs == [ ]
    && s.entryPoints.admin.address == "127.0.0.1:8082"
    && s.providers.file == {
      directory = "/var/lib/bloud-routes";
      watch = true;
    }
    && s.ping.entryPoint == "web"
    && s.metrics.prometheus.entryPoint == "admin"
    && s.api.entryPoint == "admin"
    && s.pidFile == "/run/bloud-proxy/bloud-proxy.pid"
    && s.lifeCycle.graceTimeOut == "10s"
  ) (b.toJSON (proxySettings base)))
  (check "proxy: port 80 by CAP_NET_BIND_SERVICE only, as an unprivileged user" (
    let
      u = proxyUnit base;
    in
    u.AmbientCapabilities == [ "CAP_NET_BIND_SERVICE" ]
    && u.CapabilityBoundingSet == [ "CAP_NET_BIND_SERVICE" ]
    && u.NoNewPrivileges
    && u.User == "bloud-proxy"
    && base.users.users.bloud-proxy.isSystemUser
  ) (b.toJSON (proxyUnit base)))
  (check "proxy: reload is SIGHUP, stop waits longer than graceTimeOut + 5 s" (
    let
      u = proxyUnit base;
    in
    hasInfix "kill -HUP $MAINPID" u.ExecReload && u.TimeoutStopSec > 10 + 5
  ) "")
  (check "proxy: its own group reaches the routes dir and no app data" (
    let
      u = proxyUnit base;
      rules = base.systemd.tmpfiles.rules;
    in
    u.Group == "bloud-proxy"
    && u.SupplementaryGroups == [ ]
    && base.users.users.bloud-proxy.group == "bloud-proxy"
    && base.users.users.bloud-proxy.extraGroups == [ ]
    && base.users.groups.bloud-proxy.members == [ ]
    && b.elem "d /var/lib/bloud-routes 2750 bloud bloud-proxy - -" rules
    # dataDir (app data, secrets, the database) is the bloud user's and its own group's only.
    && b.elem "d /var/lib/bloud 0750 bloud bloud - -" rules
    && base.users.groups.bloud.members == [ ]
    && b.all (usr: usr.name == "bloud" || usr.group != "bloud" && !(b.elem "bloud" usr.extraGroups)) (
      b.attrValues full.users.users
    )
    && u.RuntimeDirectoryMode == "0750"
    && u.UMask == "0027"
  ) (b.toJSON (proxyUnit base)))
  (check "proxy: ports 80 and 443 open in the firewall, no 8080/3000" (
    b.elem 80 base.networking.firewall.allowedTCPPorts
    && b.elem 443 base.networking.firewall.allowedTCPPorts
    && !(b.elem 8080 base.networking.firewall.allowedTCPPorts)
    && !(b.elem 3000 base.networking.firewall.allowedTCPPorts)
  ) (b.toJSON base.networking.firewall.allowedTCPPorts))
  (check "proxy: HTTPS on :443 (websecure, tls) with the agent's CA on; web stays plain HTTP" (
    let
      s = proxySettings base;
      a = agentSettings base;
    in
    s.entryPoints.websecure == {
      address = ":443";
      forwardedHeaders.trustedIPs = [ ];
      http.tls = { };
    }
    && !(s.entryPoints.web ? http)
    && a.tls == {
      enabled = true;
      httpsPort = 443;
    }
  ) (b.toJSON (proxySettings base).entryPoints))
  (check "proxy: https.enable = false drops websecure, port 443 and the agent's CA" (
    let
      c = (withModules [ { bloud.proxy.https.enable = false; } ]).config;
    in
    !((proxySettings c).entryPoints ? websecure)
    && !(b.elem 443 c.networking.firewall.allowedTCPPorts)
    && !(agentSettings c).tls.enabled
  ) "")
  (check "proxy: HTTPS on another port moves the entry point, the firewall and the redirect target" (
    let
      c = (withModules [ { bloud.proxy.https.port = 8443; } ]).config;
    in
    (proxySettings c).entryPoints.websecure.address == ":8443"
    && b.elem 8443 c.networking.firewall.allowedTCPPorts
    && (agentSettings c).tls.httpsPort == 8443
  ) "")

  (check "agent: config has exactly the documented keys" (
    sort (b.attrNames (agentSettings base)) == [
      "adminGroup"
      "appsDir"
      "dataDir"
      "listen"
      "proxyPidFile"
      "publicApps"
      "publicUrl"
      "queue"
      "rebuild"
      "routesDir"
      "socket"
      "tls"
      "webDir"
    ]
    && sort (b.attrNames (agentSettings base).tls) == [
      "enabled"
      "httpsPort"
    ]
    && sort (b.attrNames (agentSettings base).rebuild) == [
      "command"
      "flake"
      "mode"
      "systemProfile"
      "target"
    ]
  ) (b.toJSON (agentSettings base)))
  (check "agent: writes the proxy's routes dir and never signals it (the proxy watches)" (
    let
      a = agentSettings base;
      p = proxySettings base;
    in
    a.routesDir == p.providers.file.directory && a.proxyPidFile == "" && p.providers.file.watch
  ) "")
  (check "proxy: turning the watch off fails an assertion (nothing else reloads the routes)" (
    let
      c = (withModules [ { bloud.proxy.watch = false; } ]).config;
    in
    b.any (m: hasInfix "bloud.proxy.watch" m) (failedAssertions c)
  ) "")
  (check "agent: loopback, catalog from the flake source, public URL" (
    let
      a = agentSettings base;
    in
    a.listen == "127.0.0.1:3000"
    && a.appsDir == "${sourceStorePath}/apps"
    && a.publicUrl == "http://bloud.local"
    && a.dataDir == "/var/lib/bloud"
    && a.queue.batchWindow == "5s"
  ) (b.toJSON (agentSettings base)))
  (check "agent: runs as bloud with no capability, after its user manager, serve --config" (
    let
      u = agentUnit base;
      unit = base.systemd.services.bloud-agent;
    in
    u.User == "bloud"
    && u.Group == "bloud"
    && (u.AmbientCapabilities or [ ]) == [ ]
    && !(hasInfix "CAP_" (b.toJSON u))
    && b.elem "user@1000.service" unit.after
    && b.elem "user@1000.service" unit.wants
    && hasInfix "bloud-agent serve --config /etc/bloud/agent.yaml" u.ExecStart
  ) (b.toJSON (agentUnit base)))
  (check "bloud user: primary group bloud, no supplementary group (no podman, wheel, docker)" (
    let
      usr = full.users.users.bloud;
    in
    usr.group == "bloud"
    && usr.extraGroups == [ ]
    && !(full.users.groups ? podman && b.elem "bloud" full.users.groups.podman.members)
    && b.all (g: !(b.elem "bloud" g.members)) (b.attrValues full.users.groups)
    && usr.isNormalUser
    && usr.linger == true
    && usr.autoSubUidGidRange
  ) (b.toJSON full.users.users.bloud))
  (check "root: sudo lets bloud run the rebuild helper only, and no polkit rule grants anything" (
    let
      rules = full.security.sudo.extraRules;
      r = b.head rules;
    in
    b.length rules == 1
    && r.users == [ "bloud" ]
    && r.groups == [ ]
    && r.runAs == "root"
    && r.commands == [
      {
        command = "${full.bloud.rebuild.helper}";
        options = [ "NOPASSWD" ];
      }
    ]
    && !(hasInfix "bloud" full.security.polkit.extraConfig)
  ) (b.toJSON (map (r: r // { commands = map (c: c.options) r.commands; }) full.security.sudo.extraRules)))
  (check "root: every system unit's user (root only where it runs nothing of bloud's)" (
    let
      units = full.systemd.services;
      users = b.mapAttrs (_: u: u.serviceConfig.User or "root") units;
    in
    users == {
      bloud-agent = "bloud";
      bloud-proxy = "bloud-proxy";
      bloud-proxy-routes = "bloud";
      # Starts bloud-apps.target through runuser into bloud's manager; reads no file of bloud's.
      bloud-apps = "root";
    }
  ) (b.toJSON (b.mapAttrs (_: u: u.serviceConfig.User or "root") full.systemd.services)))
  (check "routes unit: installs as the bloud user, manifest in its own state dir, no capability" (
    let
      u = full.systemd.services.bloud-proxy-routes.serviceConfig;
    in
    (u.User or null) == "bloud"
    && (u.Group or null) == "bloud-proxy"
    && u.StateDirectory == "bloud-proxy-routes"
    && u.CapabilityBoundingSet == ""
    && u.NoNewPrivileges
    && hasInfix "/var/lib/bloud-proxy-routes/nix-managed" u.ExecStart
    && hasInfix "noclobber" u.ExecStart
    && !(hasInfix "chown" u.ExecStart)
  ) "")
  (check "apps: containers use virtualisation.podman.package" (
    let
      c =
        (withModules [
          {
            virtualisation.podman.package = pkgs.podman // {
              outPath = "/nix/store/00000000000000000000000000000000-podman-custom";
            };
            bloud.apps = lib.genAttrs appNames (_: {
              enable = true;
            });
          }
        ]).config;
      text = b.toJSON c.systemd.user.services + b.toJSON c.systemd.services.bloud-agent.path;
    in
    hasInfix "podman-custom/bin/podman" text
    && !(hasInfix "00000000000000000000000000000000-podman/" text)
  ) "")
  (check "agent: the CLI socket in its runtime directory, group bloud-admin created" (
    let
      u = agentUnit base;
      a = agentSettings base;
    in
    a.socket == "/run/bloud-agent/agent.sock"
    && a.adminGroup == "bloud-admin"
    && u.RuntimeDirectory == "bloud-agent"
    && u.SupplementaryGroups == [ "bloud-admin" ]
    && base.users.groups ? "bloud-admin"
  ) (b.toJSON (agentUnit base)))
  (check "agent: nothing in its unit turns NoNewPrivileges on (sudo must work)" (
    let
      u = agentUnit base;
      implying = [
        "SystemCallFilter"
        "SystemCallArchitectures"
        "RestrictAddressFamilies"
        "RestrictNamespaces"
        "PrivateDevices"
        "ProtectKernelTunables"
        "ProtectKernelModules"
        "ProtectKernelLogs"
        "ProtectClock"
        "MemoryDenyWriteExecute"
        "RestrictRealtime"
        "RestrictSUIDSGID"
        "DynamicUser"
        "LockPersonality"
        "CapabilityBoundingSet"
      ];
    in
    u.NoNewPrivileges == false && b.all (k: !(u ? ${k})) implying
  ) (b.toJSON (agentUnit base)))
  (check "rebuild: sudo allows exactly the helper the agent runs" (
    let
      cmd = (agentSettings base).rebuild.command;
    in
    (agentSettings base).rebuild.mode == "command"
    && sudoCommands base == [ (b.elemAt cmd 2) ]
    && b.head cmd == "/run/wrappers/bin/sudo"
  ) (b.toJSON (sudoCommands base)))
  (check "rebuild: helper takes the app list (data), generates the Nix, pins nixpkgs, own unit" (
    let
      h = "${base.bloud.rebuild.helper}";
    in
    hasInfix "apps-nix --catalog \"$src/apps\" --list \"$list\"" h
    && hasInfix " /var/lib/bloud/nix/apps.list " h
    && hasInfix "${sourceStorePath} " h
    && !(hasInfix "apps.nix\"" (b.replaceStrings [ "generated/apps.nix" ] [ "" ] h))
    && !(hasInfix "grep " h)
    && hasInfix "systemd-run --unit=bloud-rebuild" h
    && hasInfix (lib.escapeShellArgs [ "--override-input" "nixpkgs" "path:${nixpkgsStorePath}" ]) h
  ) "")
  # Issue 15 item 4: a rollback goes through the same helper; its only argument is checked as a
  # plain generation number of the system profile before anything uses it.
  (check "rebuild: --rollback N takes a checked generation number and switches the profile" (
    let
      h = "${base.bloud.rebuild.helper}";
    in
    (agentSettings base).rebuild.systemProfile == "/nix/var/nix/profiles/system"
    && hasInfix ''[[ "$gen" =~ ^[1-9][0-9]{0,8}$ ]]'' h
    && hasInfix ''gen="$('' h
    && hasInfix ''nix-env -p /nix/var/nix/profiles/system --switch-generation "$2"'' h
    && hasInfix "/nix/var/nix/profiles/system/bin/switch-to-configuration switch" h
    && hasInfix ''rollback=(--rollback "$gen")'' h
  ) "")
  # Issue 13 item 3: a rebuild switches the configuration the host was installed with.
  (check "rebuild: the Bloud box switches its own flake copy, #bloud" (
    hasInfix "nixos-rebuild switch ${lib.escapeShellArgs [ "--flake" "path:/var/lib/bloud-rebuild/flake#bloud" "--no-write-lock-file" "--override-input" "nixpkgs" ]}" "${base.bloud.rebuild.helper}"
  ) "${base.bloud.rebuild.helper}")
  (check "rebuild: a host importing nixosModules.default switches its own flake, not #bloud" (
    let
      h = "${vmNode.bloud.rebuild.helper}";
    in
    hasInfix "nixos-rebuild switch ${lib.escapeShellArgs [ "--flake" "/etc/nixos#${vmNode.networking.hostName}" "--no-write-lock-file" "--override-input" "bloud" "path:/var/lib/bloud-rebuild/flake" ]}" h
    && !(hasInfix "#bloud'" h)
    && !(hasInfix (lib.escapeShellArgs [ "--override-input" "nixpkgs" ]) h)
  ) "${vmNode.bloud.rebuild.helper}")
  (check "rebuild: a non-flake host switches its configuration with Bloud on the search path" (
    let
      c = (withModules [
        {
          bloud.rebuild.flake = null;
          bloud.rebuild.configuration = "/etc/nixos/configuration.nix";
        }
      ]).config;
    in
    hasInfix "nixos-rebuild switch ${lib.escapeShellArgs [ "-I" "bloud=/var/lib/bloud-rebuild/flake" "-I" "nixos-config=/etc/nixos/configuration.nix" ]}" "${c.bloud.rebuild.helper}"
    && failedAssertions c == [ ]
  ) "")
  (check "rebuild: an empty attribute (no host name) is refused at evaluation" (
    b.any (hasInfix "bloud.rebuild.target is empty") (
      failedAssertions (withModules [ { bloud.rebuild.target = ""; } ]).config
    )
  ) "")
  (check "routes: base.yml sends /api, /auth and / to the agent" (
    let
      r = base.bloud.proxy.routeFiles."base.yml".http;
    in
    routeFileNames base == [ "base.yml" ]
    && r.services.host-agent.loadBalancer.servers == [ { url = "http://127.0.0.1:3000"; } ]
    && r.routers.host-api.priority == 90
    && r.routers.bloud-ui.priority == 1
    && hasInfix "base.yml" (installRoutesScript base)
  ) "")
  (check "routes: Authentik adds authentik.yml above the agent's /api" (
    routeFileNames full == [
      "authentik.yml"
      "base.yml"
    ]
    && full.bloud.proxy.routeFiles."authentik.yml".http.routers.authentik-api.priority > 90
  ) (b.toJSON (routeFileNames full)))

  (check "routes: authentik.yml has the routers of apps/authentik/metadata.yaml traefikConfig" (
    metadataAuthentikRoutes == null || metadataAuthentikRoutes == nixAuthentikRoutes
  ) "metadata ${b.toJSON metadataAuthentikRoutes}, nix ${b.toJSON nixAuthentikRoutes}")
  (check "apps: no app units without apps" (
    sort (b.filter (n: lib.hasPrefix "podman-" n) (b.attrNames (userServices base))) == [ "podman-apps-network" ]
  ) (b.toJSON (b.attrNames (userServices base))))
  (check "apps: unit names as upstream (the agent relies on them)" (
    sort (b.attrNames (userServices full)) == expectedUnits
  ) (b.toJSON (sort (b.attrNames (userServices full)))))
  (check "apps: every @secret@ used in an env file is generated" (
    b.all (p: b.elem p full.bloud.secrets.names) envPlaceholders
  ) "placeholders ${b.toJSON envPlaceholders}, secrets ${b.toJSON full.bloud.secrets.names}")
  (check "apps: native-OIDC apps get the client secret the agent writes at install (docs/sso.md)" (
    b.all (
      app:
      let
        file = full.bloud.secrets.envFiles."${app}.env" or { };
      in
      b.any (v: v == "@oidc-${app}-client-secret@") (b.attrValues file)
      && b.elem "oidc-${app}-client-secret" full.bloud.secrets.names
    ) [ "actual-budget" "affine" "miniflux" ]
  ) (b.toJSON (lib.filterAttrs (n: _: b.elem n [ "actual-budget.env" "affine.env" "miniflux.env" ]) full.bloud.secrets.envFiles)))
  (check "apps: env files passed to containers exist in bloud.secrets.envFiles" (
    b.all (
      unit:
      let
        m = b.match ".*'--env-file=/var/lib/bloud/secrets/([^']+)'.*" (execStart full unit);
      in
      # ldap-outpost.env is written by the LDAP unit's own pre-start (token from Authentik).
      m == null || full.bloud.secrets.envFiles ? ${b.head m} || b.head m == "ldap-outpost.env"
    ) (b.filter (n: lib.hasPrefix "podman-" n && n != "podman-apps-network") (b.attrNames (userServices full)))
  ) (b.toJSON (b.attrNames full.bloud.secrets.envFiles)))
  (check "apps: hooks run `configure prestart|poststart <app>` when set" (
    let
      s = (userServices full).podman-radarr.serviceConfig;
    in
    b.any (x: hasInfix (lib.escapeShellArgs [ "configure" "prestart" "radarr" ]) x) s.ExecStartPre
    && b.any (x: hasInfix (lib.escapeShellArgs [ "configure" "poststart" "radarr" ]) x) s.ExecStartPost
  ) "")
  (check "apps: no hooks by default" (
    (userServices base).podman-apps-network.serviceConfig ? ExecStart
    && !(hasInfix "configure" (b.toJSON (userServices base)))
  ) "")
  (check "apps: user units run in the bloud manager only" (
    b.all (u: (u.unitConfig.ConditionUser or null) == "bloud") (b.attrValues (userServices full))
  ) "")
  (check "apps: postgres and redis come on with the apps that need them" (
    let
      c =
        (withModules [
          {
            bloud.apps.miniflux.enable = true;
            bloud.apps.affine.enable = true;
          }
        ]).config;
    in
    c.bloud.apps.postgres.enable && c.bloud.apps.redis.enable && !c.bloud.apps.authentik.enable
  ) "")
  (check "agent: no app is public by default; bloud.apps.<name>.public feeds publicApps" (
    let
      c =
        (withModules [
          {
            bloud.apps.miniflux.enable = true;
            bloud.apps.miniflux.public = true;
            bloud.apps.radarr.enable = true;
          }
        ]).config;
    in
    (agentSettings base).publicApps == [ ]
    && (agentSettings full).publicApps == [ ]
    && (agentSettings c).publicApps == [ "miniflux" ]
  ) "")
  (check "apps: every unit a user unit orders itself after or requires exists" (
    danglingDeps == [ ]
  ) (b.toJSON danglingDeps))
  (check "apps: an upstream apps.nix enabling traefik still evaluates, with a warning" (
    let
      c = (withModules [ { bloud.apps.traefik.enable = true; } ]).config;
    in
    force c && b.length (c.warnings or [ ]) == 1 && !(c.systemd.user.services ? podman-traefik)
  ) "")
  (check "apps: jellyfin turns on Authentik's LDAP outpost option" (full.bloud.apps.authentik.ldap.enable) "")
  (check "vm test: uses the stub shell and the Bloud module" (
    hasInfix "index.html" "${vmNode.bloud.agent.webPackage}" && vmNode.bloud.proxy.enable && vmNode.bloud.agent.enable
  ) "")
]
++ aloneChecks
++ portChecks
