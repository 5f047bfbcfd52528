//! Plan → the NixOS modules of one environment.
//!
//! Every option path used here was read from the nixos-26.05 module sources
//! and is listed, with the module it comes from, in `nix/option-allowlist.txt`
//! (a test checks every emitted path against it).

use teipsum_spec::plan::{KafkaMode, PackageInput, Plan, Restart, Setting, UnitOrdering};

use crate::{
    edge::{self, Edge},
    nix::{Attrs, Nix},
    unit,
};

/// The package holding every service binary and the `teipsum` CLI.
pub fn package() -> Nix {
    Nix::select("config.teipsum.package")
}

/// The storefront's static files.
pub fn frontend_package() -> Nix {
    Nix::select("config.teipsum.frontend")
}

fn setting(value: &Setting) -> Nix {
    match value {
        Setting::Bool(b) => Nix::Bool(*b),
        Setting::Int(i) => Nix::Int(*i),
        Setting::Float(f) => Nix::Float(*f),
        Setting::Str(s) => Nix::from(s.as_str()),
        Setting::List(items) => Nix::from(items.clone()),
    }
}

/// Where a host finds its plan (`teipsum restore --plan`).
pub const HOST_PLAN: &str = "/etc/teipsum/plan.json";

/// `default.nix`: imports the others, and installs the plan for the
/// commands an operator runs on the host (a host has no spec checkout).
pub fn default(files: &[&str]) -> Nix {
    let mut attrs = Attrs::new();
    attrs.set(
        "imports",
        Nix::List(files.iter().map(|f| Nix::path(&format!("./{f}"))).collect()),
    );
    attrs.set_path(
        &[
            "environment",
            "etc",
            HOST_PLAN.trim_start_matches("/etc/"),
            "source",
        ],
        Nix::path("./plan.json"),
    );
    attrs.comment(
        "environment",
        format!("The plan, for `teipsum restore --plan {HOST_PLAN}` (a host has no config.ncl)."),
    );
    Nix::Attrs(attrs)
}

/// `postgresql.nix`: server, databases, roles, access and backups.
pub fn postgresql(plan: &Plan) -> Nix {
    let pg = &plan.postgres;
    let mut postgresql = Attrs::new();
    postgresql.set("enable", true);
    postgresql.set_with(
        "package",
        "Pinned: the default follows system.stateVersion, and a new major version needs pg_upgrade.",
        Nix::select(&format!("pkgs.{}", pg.package)),
    );
    let mut settings = Attrs::new();
    settings.set("port", pg.port);
    for (name, value) in &pg.settings {
        settings.set(name.as_str(), setting(value));
    }
    postgresql.set("settings", settings);
    postgresql.set(
        "ensureDatabases",
        pg.databases
            .iter()
            .map(|d| d.name.clone())
            .collect::<Vec<_>>(),
    );
    postgresql.set_with(
        "ensureUsers",
        "One role per service, owning its database (role = database = system user).",
        Nix::List(
            pg.databases
                .iter()
                .map(|d| {
                    let mut user = Attrs::new();
                    user.set("name", d.role.as_str());
                    user.set("ensureDBOwnership", true);
                    Nix::Attrs(user)
                })
                .collect(),
        ),
    );
    let mut hba = String::new();
    for rule in &pg.access {
        hba.push_str(&rule.line());
        hba.push('\n');
    }
    postgresql.set_with(
        "authentication",
        "Each database admits its own service's user over the Unix socket (peer, no\npasswords) and postgres for setup and backups; everyone else is rejected.",
        hba,
    );

    let mut backup = Attrs::new();
    backup.set("enable", true);
    backup.set("databases", pg.backup.databases.clone());
    backup.set("startAt", pg.backup.schedule.as_str());
    backup.set("compression", pg.backup.compression.as_str());
    backup.set("location", pg.backup.location.as_str());

    let mut services = Attrs::new();
    services.set("postgresql", postgresql);
    services.set_with(
        "postgresqlBackup",
        "A dump of every service database, kept with the previous one.",
        backup,
    );
    let mut top = Attrs::new();
    top.set("services", services);
    Nix::Attrs(top)
}

/// `kafka.nix`: the broker, ZooKeeper or KRaft, and the topics unit.
pub fn kafka(plan: &Plan) -> Nix {
    let k = &plan.kafka;
    let mut top = Attrs::new();
    let mut kafka = Attrs::new();
    kafka.set("enable", true);
    kafka.set_with(
        "package",
        match k.mode {
            KafkaMode::Zookeeper { .. } => {
                "ZooKeeper mode ended with Kafka 3.9, past upstream support and only in the older\nnixpkgs input (`teipsum check` warns); KRaft is the way forward."
            }
            KafkaMode::Kraft { .. } => {
                "Pinned so that a nixpkgs update cannot change the broker's major version."
            }
        },
        match k.package_input {
            PackageInput::Nixpkgs => Nix::select(&format!("pkgs.{}", k.package)),
            PackageInput::NixpkgsKafka => {
                Nix::select(&format!("config.teipsum.nixpkgsKafka.{}", k.package))
            }
        },
    );
    kafka.set("jvmOptions", k.jvm_options.clone());
    let mut settings = Attrs::new();
    for (name, value) in &k.settings {
        settings.set(name.as_str(), setting(value));
    }
    settings.comment(
        "auto.create.topics.enable",
        "Topics exist only when declared: a typo must not create a topic nobody reads.",
    );
    kafka.set("settings", settings);

    let mut systemd_services = Attrs::new();
    // The broker's unit in nixpkgs has no Restart=: a broker that gave up
    // on a slow ZooKeeper (18 s by default) or a full disk would stay down,
    // the topics unit would time out and the services run without topics.
    let mut broker = Attrs::new();
    restart(&mut broker, &k.broker_restart);
    broker.comment(
        "startLimitIntervalSec",
        "Retry for as long as it takes, every RestartSec.",
    );
    match &k.mode {
        KafkaMode::Zookeeper {
            zookeeper_port,
            zookeeper_jvm_options,
            zookeeper_conf,
            zookeeper_restart,
            broker_ordering,
        } => {
            let mut zookeeper = Attrs::new();
            zookeeper.set("enable", true);
            zookeeper.set("port", *zookeeper_port);
            zookeeper.set("extraCmdLineOptions", zookeeper_jvm_options.clone());
            let conf: String = zookeeper_conf
                .iter()
                .map(|p| format!("{}={}\n", p.name, p.value))
                .collect();
            zookeeper.set_with(
                "extraConf",
                "Loopback only, and no AdminServer (it would listen on 8080).",
                conf,
            );
            top.set_path(&["services", "zookeeper"], zookeeper);
            ordering(&mut broker, broker_ordering);
            let mut coordinator = Attrs::new();
            restart(&mut coordinator, zookeeper_restart);
            systemd_services.set_with(
                "zookeeper",
                "Neither has the ZooKeeper unit of nixpkgs a Restart=.",
                coordinator,
            );
        }
        KafkaMode::Kraft { cluster_id, .. } => {
            kafka.set_with(
                "clusterId",
                "Stable per environment: changing it after formatting stops the broker from starting.",
                cluster_id.as_str(),
            );
            kafka.set("formatLogDirs", true);
        }
    }
    top.set_path(&["services", "apache-kafka"], kafka);
    systemd_services.set("apache-kafka", broker);

    let topics = unit::topics_unit(plan);
    systemd_services.set_with(
        topics.name.as_str(),
        "Creates the declared topics with `teipsum topics apply` before the services start.",
        unit::to_nix(&topics, &package()),
    );
    top.set_path(&["systemd", "services"], Nix::Attrs(systemd_services));
    Nix::Attrs(top)
}

/// The plan's restart of a unit that nixpkgs defines: `serviceConfig`'s
/// `Restart=` and `RestartSec=`, and `startLimitIntervalSec`.
fn restart(unit: &mut Attrs, restart: &Restart) {
    let mut service = Attrs::new();
    service.set("Restart", restart.policy.as_str());
    if let Some(delay) = restart.delay() {
        service.set("RestartSec", delay);
    }
    unit.set("serviceConfig", service);
    if let Some(secs) = restart.start_limit_interval_sec {
        unit.set(
            "startLimitIntervalSec",
            Nix::Int(i64::try_from(secs).unwrap_or(i64::MAX)),
        );
    }
}

/// A plan's ordering for a unit a module defines, its reason on the first line.
fn ordering(unit: &mut Attrs, ordering: &UnitOrdering) {
    let mut why = Some(ordering.why.as_str());
    for (key, units) in [
        ("after", &ordering.after),
        ("wants", &ordering.wants),
        ("requires", &ordering.requires),
    ] {
        if units.is_empty() {
            continue;
        }
        match why.take() {
            Some(why) => unit.set_with(key, why, units.clone()),
            None => unit.set(key, units.clone()),
        };
    }
}

/// `nginx.nix`: ACME, the virtual host, upstreams, routes, headers, limits, firewall.
pub fn nginx(plan: &Plan) -> Nix {
    let nginx_plan = &plan.nginx;
    let Edge {
        http,
        upstreams,
        locations,
        body_limit,
    } = edge::edge(plan);

    let mut top = Attrs::new();
    let mut firewall = Attrs::new();
    firewall.set("enable", true);
    firewall.set(
        "allowedTCPPorts",
        vec![nginx_plan.http_port, nginx_plan.https_port],
    );
    top.set_with("networking", "Only the edge is reachable from outside.", {
        let mut networking = Attrs::new();
        networking.set("firewall", firewall);
        networking
    });

    let mut acme = Attrs::new();
    acme.set("acceptTerms", plan.acme.accept_terms);
    let mut defaults = Attrs::new();
    defaults.set("email", plan.acme.email.as_str());
    defaults.set("server", plan.acme.server.as_str());
    acme.set("defaults", defaults);
    if plan.acme.staging {
        acme.comment(
            "defaults",
            "Let's Encrypt staging: untrusted certificates, generous rate limits.",
        );
    }
    top.set_path(&["security", "acme"], acme);

    let mut nginx = Attrs::new();
    nginx.set("enable", true);
    nginx.set_with(
        "enableReload",
        "A route change reloads nginx instead of dropping connections.",
        nginx_plan.reload_on_change,
    );
    for preset in &nginx_plan.presets {
        match &preset.why {
            Some(why) => nginx.set_with(preset.option.as_str(), why.as_str(), preset.enabled),
            None => nginx.set(preset.option.as_str(), preset.enabled),
        };
    }
    nginx.set("serverTokens", nginx_plan.server_tokens);
    nginx.set("clientMaxBodySize", body_limit);
    let mut common = http.join("\n");
    common.push('\n');
    nginx.set_with(
        "commonHttpConfig",
        "Rate-limit zone for authentication, and the security headers every response\ninherits unless a location sets its own (which then repeats them all).",
        common,
    );

    let mut ups = Attrs::new();
    for u in &upstreams {
        let mut upstream = Attrs::new();
        let mut servers = Attrs::new();
        for s in &u.servers {
            servers.set(s.as_str(), Attrs::new());
        }
        upstream.set("servers", servers);
        let mut extra = u.directives.join("\n");
        extra.push('\n');
        upstream.set("extraConfig", extra);
        ups.set(u.name.as_str(), upstream);
    }
    nginx.set("upstreams", ups);

    let mut vhost = Attrs::new();
    vhost.set("enableACME", nginx_plan.acme_certificate);
    vhost.set("forceSSL", nginx_plan.force_tls);
    vhost.set("root", frontend_package());
    let mut locs = Attrs::new();
    for l in &locations {
        let mut location = Attrs::new();
        if let Some(upstream) = &l.proxy_pass {
            location.set("proxyPass", upstream.as_str());
        }
        if let Some(try_files) = &l.try_files {
            location.set("tryFiles", try_files.as_str());
        }
        if !l.directives.is_empty() {
            let mut extra = l.directives.join("\n");
            extra.push('\n');
            location.set("extraConfig", extra);
        }
        locs.set(l.path.as_str(), location);
    }
    vhost.set("locations", locs);
    let mut vhosts = Attrs::new();
    vhosts.set(plan.domain.as_str(), vhost);
    nginx.set("virtualHosts", vhosts);
    top.set_path(&["services", "nginx"], nginx);

    let mut order = Attrs::new();
    ordering(&mut order, &plan.acme.order_ordering);
    restart(&mut order, &plan.acme.order_restart);
    top.set_path(&["systemd", "services"], {
        let mut units = Attrs::new();
        units.set(plan.acme.order_unit.as_str(), order);
        units
    });
    Nix::Attrs(top)
}

/// `services.nix`: a system user and a unit per service.
pub fn services(plan: &Plan) -> Nix {
    let mut users = Attrs::new();
    let mut groups = Attrs::new();
    let mut units = Attrs::new();
    for s in &plan.services {
        let mut user = Attrs::new();
        user.set("isSystemUser", true);
        user.set("group", s.group.as_str());
        user.set("description", format!("{} service", s.name));
        users.set(s.user.as_str(), user);
        groups.set(s.group.as_str(), Attrs::new());
        units.set(
            s.unit.trim_end_matches(".service"),
            unit::to_nix(&unit::service_unit(plan, s), &package()),
        );
    }
    let mut top = Attrs::new();
    top.set_path(&["users", "users"], users);
    top.set_path(&["users", "groups"], groups);
    top.set_path(&["systemd", "services"], units);
    Nix::Attrs(top)
}
