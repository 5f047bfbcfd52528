//! The Plan decides everything the NixOS renderer prints: each renderer
//! takes nothing but a plan, and every policy field of the plan, changed,
//! changes the output accordingly. A renderer that went back to a literal
//! fails here.

use std::{path::Path, process::Command};

use teipsum_nixgen::{GeneratedFile, edge, modules, nix::Nix, render, unit};
use teipsum_spec::{
    load_spec,
    plan::{
        AccessRule, Plan, RateLimitPlan, RestartPolicy, ServicePlan, UnitKind, UnitSetting,
        UnitValue,
    },
};

fn plan() -> Plan {
    let spec = load_spec(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.ncl"))
        .expect("config.ncl is valid");
    spec.plans["prod"].clone()
}

fn file(plan: &Plan, name: &str) -> String {
    render(plan, "config.ncl")
        .into_iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .contents
}

/// The text of `name` after `change`, with the text before, checked to differ.
fn changed(name: &str, change: impl FnOnce(&mut Plan)) -> (String, String) {
    let before = plan();
    let mut after = before.clone();
    change(&mut after);
    let (old, new) = (file(&before, name), file(&after, name));
    assert_ne!(old, new, "{name} ignores the change");
    (old, new)
}

fn service<'a>(plan: &'a mut Plan, name: &str) -> &'a mut ServicePlan {
    plan.services
        .iter_mut()
        .find(|s| s.name == name)
        .expect("a service of config.ncl")
}

#[test]
fn every_renderer_takes_only_a_plan() {
    // The signatures are the proof: nothing but the plan (and, for the
    // file header, the spec's file name) goes in.
    let _: fn(&Plan, &str) -> Vec<GeneratedFile> = render;
    let _: fn(&Plan) -> Nix = modules::kafka;
    let _: fn(&Plan) -> Nix = modules::nginx;
    let _: fn(&Plan) -> Nix = modules::postgresql;
    let _: fn(&Plan) -> Nix = modules::services;
    let _: fn(&Plan) -> edge::Edge = edge::edge;
    let _: fn(&Plan, &ServicePlan) -> unit::Unit = unit::service_unit;
    let _: fn(&Plan) -> unit::Unit = unit::topics_unit;
}

/// Child mode of [`the_output_does_not_depend_on_the_environment_of_the_process`].
fn print_if_child() -> bool {
    if std::env::var_os("PLAN_DECIDES_CHILD").is_none() {
        return false;
    }
    println!("<<<");
    for f in render(&plan(), "config.ncl") {
        print!("== {}\n{}", f.name, f.contents);
    }
    println!(">>>");
    true
}

#[test]
fn the_output_does_not_depend_on_the_environment_of_the_process() {
    if print_if_child() {
        return;
    }
    let run = |vars: &[(&str, &str)]| {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--exact",
                "the_output_does_not_depend_on_the_environment_of_the_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env_clear()
            .env("PLAN_DECIDES_CHILD", "1");
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        for (k, v) in vars {
            command.env(k, v);
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        // What the child rendered, without the test harness's own lines.
        let stdout = String::from_utf8(out.stdout).unwrap();
        let start = stdout.find("<<<\n").expect("the child rendered") + 4;
        let end = stdout.rfind(">>>").expect("the child finished");
        stdout[start..end].to_owned()
    };
    let plain = run(&[]);
    assert!(plain.contains("== services.nix"), "{plain}");
    let odd = run(&[
        ("TEIPSUM_KAFKA_GROUP", "elsewhere"),
        ("TEIPSUM_KAFKA_CLIENT_ID", "elsewhere"),
        ("TEIPSUM_PLATFORM", "other"),
        ("TEIPSUM_PG_BIN", "/nowhere"),
        ("HOSTNAME", "another-host"),
        ("USER", "someone"),
        ("TZ", "Pacific/Kiritimati"),
        ("LANG", "de_DE.UTF-8"),
    ]);
    assert!(plain == odd, "the environment changed the rendered modules");
}

#[test]
fn the_micro_cache_is_the_plans() {
    let (_, nginx) = changed("nginx.nix", |p| {
        let cache = p
            .nginx
            .micro_cache
            .as_mut()
            .expect("config.ncl caches a route");
        cache.name = "shop_cache".into();
        cache.path = "/var/cache/nginx/shop".into();
        cache.keys_size = "20m".into();
        cache.max_size = "1g".into();
        cache.inactive = "1h".into();
        cache.lock = false;
        cache.use_stale = vec!["error".into()];
        cache.background_update = false;
        cache.status_header = "X-Shop-Cache".into();
    });
    for expected in [
        "proxy_cache_path /var/cache/nginx/shop levels=1:2 keys_zone=shop_cache:20m max_size=1g inactive=1h",
        "proxy_cache shop_cache;",
        "proxy_cache_lock off;",
        "proxy_cache_use_stale error;",
        "proxy_cache_background_update off;",
        "add_header X-Shop-Cache $upstream_cache_status always;",
    ] {
        assert!(nginx.contains(expected), "missing {expected}:\n{nginx}");
    }
    assert!(
        !nginx.contains("teipsum_micro"),
        "the old zone name is left"
    );
    let (_, nginx) = changed("nginx.nix", |p| p.nginx.micro_cache = None);
    assert!(!nginx.contains("proxy_cache"), "a cache without a zone");
}

#[test]
fn the_storefronts_cache_control_is_the_plans() {
    let (_, nginx) = changed("nginx.nix", |p| {
        let assets = p
            .nginx
            .static_locations
            .iter_mut()
            .find(|l| l.path.ends_with("/assets/"))
            .unwrap();
        assets.cache_control = "public, max-age=60".into();
        assets.always = true;
        p.nginx.static_locations[0].try_files = Some("$uri =404".into());
    });
    assert!(nginx.contains("add_header Cache-Control \"public, max-age=60\" always;"));
    assert!(!nginx.contains("max-age=31536000"));
    assert!(nginx.contains("tryFiles = \"$uri =404\";"));
}

#[test]
fn the_answers_nginx_gives_itself_are_the_plans() {
    let (_, nginx) = changed("nginx.nix", |p| {
        let fallback = p
            .nginx
            .api_fallback
            .as_mut()
            .expect("config.ncl has API routes");
        fallback.response.message = "nothing here".into();
        let too_large = p
            .nginx
            .edge_errors
            .iter_mut()
            .find(|e| e.status == 413)
            .unwrap();
        too_large.code = "TOO_BIG".into();
        too_large.location = "@shop_413".into();
    });
    assert!(nginx.contains(r#"return 404 '{"error":"NOT_FOUND","message":"nothing here"}';"#));
    assert!(nginx.contains(r#"return 413 '{"error":"TOO_BIG","#));
    assert!(nginx.contains("error_page 413 @shop_413;"));
    assert!(nginx.contains("\"@shop_413\".extraConfig"), "{nginx}");
    let (_, nginx) = changed("nginx.nix", |p| {
        p.nginx.api_fallback = None;
        p.nginx.edge_errors.retain(|e| e.status != 500);
    });
    assert!(!nginx.contains("no such API route"));
    assert!(!nginx.contains("error_page 500"));
}

#[test]
fn the_rate_limits_are_one_list_of_the_plan() {
    let (_, nginx) = changed("nginx.nix", |p| {
        p.nginx.rate_limits.push(RateLimitPlan {
            zone: "teipsum_search".into(),
            purpose: "search".into(),
            methods: vec!["GET".into()],
            zone_size: "5m".into(),
            rate: "50r/s".into(),
            burst: 7,
        });
        let route = p
            .nginx
            .routes
            .iter_mut()
            .find(|r| r.prefix.starts_with("/api/products"))
            .unwrap();
        route.rate_limits.push("teipsum_search".into());
        p.nginx.rate_limits[0].burst = 99;
        p.nginx.limit_key.variable = "shop_key".into();
        p.nginx.limit_key.ipv6_prefix_bits = 48;
        p.nginx.limit_status = 503;
    });
    for expected in [
        "map $request_method $teipsum_search_key { GET $shop_key; default \"\"; }",
        "limit_req_zone $teipsum_search_key zone=teipsum_search:5m rate=50r/s;",
        "limit_req zone=teipsum_search burst=7 nodelay;",
        "burst=99 nodelay;",
        "\"~^(?s)(.{6}).{10}\" $1;",
        "limit_req_status 503;",
        "limit_req_zone $shop_key zone=",
    ] {
        assert!(nginx.contains(expected), "missing {expected}:\n{nginx}");
    }
    assert!(!nginx.contains("teipsum_limit_key"));
}

#[test]
fn proxy_headers_presets_and_tokens_are_the_plans() {
    let (_, nginx) = changed("nginx.nix", |p| {
        p.nginx.proxy_headers[1].name = "X-Correlation-Id".into();
        for preset in &mut p.nginx.presets {
            preset.enabled = false;
        }
        p.nginx.server_tokens = true;
    });
    assert!(nginx.contains("proxy_set_header X-Correlation-Id $request_id;"));
    for option in [
        "recommendedTlsSettings = false;",
        "recommendedProxySettings = false;",
        "recommendedOptimisation = false;",
        "recommendedGzipSettings = false;",
        "serverTokens = true;",
    ] {
        assert!(nginx.contains(option), "missing {option}:\n{nginx}");
    }
}

#[test]
fn a_services_unit_profile_is_the_plans() {
    let (_, services) = changed("services.nix", |p| {
        let order = service(p, "order");
        order.profile.restart.policy = RestartPolicy::Always;
        order.profile.restart.delay_ms = Some(5_500);
        order.profile.timeout_stop_sec = Some(45);
        order.profile.watchdog_sec = Some(77);
        order.profile.wanted_by = vec!["shop.target".into()];
    });
    let order = unit_block(&services, "teipsum-order");
    for expected in [
        "Restart = \"always\";",
        "RestartSec = \"5500ms\";",
        "TimeoutStopSec = \"45s\";",
        "WatchdogSec = \"77s\";",
        "wantedBy = [ \"shop.target\" ];",
    ] {
        assert!(order.contains(expected), "missing {expected}:\n{order}");
    }
    let user = unit_block(&services, "teipsum-user");
    assert!(user.contains("RestartSec = \"2s\";"), "{user}");
    let (_, services) = changed("services.nix", |p| {
        let order = service(p, "order");
        order.profile.kind = UnitKind::Oneshot;
        order.profile.watchdog_sec = None;
        order.profile.timeout_stop_sec = None;
        order.profile.sandboxed = false;
    });
    let order = unit_block(&services, "teipsum-order");
    assert!(order.contains("Type = \"oneshot\";"), "{order}");
    for absent in [
        "WatchdogSec",
        "TimeoutStopSec",
        "NoNewPrivileges",
        "NotifyAccess",
    ] {
        assert!(!order.contains(absent), "{absent} left:\n{order}");
    }
}

#[test]
fn the_sandbox_is_the_plans_for_every_unit() {
    let change = |p: &mut Plan| {
        let protect = p
            .sandbox
            .iter_mut()
            .find(|s| s.name == "ProtectSystem")
            .unwrap();
        protect.value = UnitValue::Str("full".into());
        p.sandbox.push(UnitSetting {
            name: "ProtectHostname".into(),
            value: UnitValue::Bool(false),
            why: Some("a test".into()),
        });
        p.sandbox.retain(|s| s.name != "UMask");
    };
    let (_, services) = changed("services.nix", change);
    let (_, kafka) = changed("kafka.nix", change);
    for text in [&services, &kafka] {
        assert!(text.contains("ProtectSystem = \"full\";"));
        assert!(!text.contains("UMask"));
    }
    let (_, kafka) = changed("kafka.nix", |p| {
        p.kafka.topics_unit.profile.sandboxed = false;
    });
    assert!(!kafka.contains("NoNewPrivileges"));
}

#[test]
fn the_topics_unit_is_the_plans() {
    let (_, kafka) = changed("kafka.nix", |p| {
        let topics = &mut p.kafka.topics_unit;
        topics.wait_secs = 120;
        topics.profile.restart.delay_ms = Some(30_000);
        topics.profile.restart.why = None;
        topics.after.push("network-online.target".into());
        topics.wants.push("network-online.target".into());
        topics.dynamic_user = false;
        topics.description = "Make the topics".into();
    });
    for expected in [
        "--wait 120",
        "RestartSec = \"30s\";",
        "\"network-online.target\"",
        "description = \"Make the topics\";",
    ] {
        assert!(kafka.contains(expected), "missing {expected}:\n{kafka}");
    }
    assert!(!kafka.contains("--wait 300"));
    assert!(!kafka.contains("DynamicUser"));
    assert!(!kafka.contains("took longer than the wait"));
}

#[test]
fn the_restarts_of_the_units_nixpkgs_defines_are_the_plans() {
    let (_, kafka) = changed("kafka.nix", |p| {
        p.kafka.broker_restart.delay_ms = Some(3_000);
        p.kafka.broker_restart.start_limit_interval_sec = Some(600);
    });
    assert!(kafka.contains("RestartSec = \"3s\";"), "{kafka}");
    assert!(kafka.contains("startLimitIntervalSec = 600;"), "{kafka}");
    let (_, nginx) = changed("nginx.nix", |p| {
        p.acme.order_restart.policy = RestartPolicy::Always;
        p.acme.order_restart.delay_ms = Some(60_000);
    });
    assert!(nginx.contains("Restart = \"always\";"), "{nginx}");
    assert!(nginx.contains("RestartSec = \"60s\";"), "{nginx}");
}

#[test]
fn the_ordering_added_to_units_nixpkgs_defines_is_the_plans() {
    let (_, kafka) = changed("kafka.nix", |p| match &mut p.kafka.mode {
        teipsum_spec::plan::KafkaMode::Zookeeper {
            broker_ordering, ..
        } => {
            broker_ordering.requires.clear();
            broker_ordering.wants = vec!["zookeeper.service".into()];
            broker_ordering.why = "Softly, for the test.".into();
        }
        teipsum_spec::plan::KafkaMode::Kraft { .. } => panic!("config.ncl runs ZooKeeper"),
    });
    assert!(
        !kafka.contains("requires = [ \"zookeeper.service\" ]"),
        "{kafka}"
    );
    assert!(
        kafka.contains("wants = [ \"zookeeper.service\" ]"),
        "{kafka}"
    );
    assert!(kafka.contains("# Softly, for the test."), "{kafka}");
    let (_, nginx) = changed("nginx.nix", |p| {
        p.acme.order_unit = "acme-order-shop".into();
        p.acme.order_ordering.after = vec!["network-online.target".into()];
    });
    assert!(
        nginx.contains("systemd.services.acme-order-shop = {"),
        "{nginx}"
    );
    assert!(
        nginx.contains("after = [ \"network-online.target\" ];"),
        "{nginx}"
    );
}

#[test]
fn the_edges_switches_are_the_plans() {
    let (_, nginx) = changed("nginx.nix", |p| {
        p.nginx.reload_on_change = false;
        p.nginx.force_tls = false;
        p.nginx.acme_certificate = false;
        p.acme.accept_terms = false;
    });
    for line in [
        "enableReload = false;",
        "forceSSL = false;",
        "enableACME = false;",
        "acceptTerms = false;",
    ] {
        assert!(nginx.contains(line), "{line}: {nginx}");
    }
}

#[test]
fn zookeepers_configuration_is_the_plans() {
    let (_, kafka) = changed("kafka.nix", |p| match &mut p.kafka.mode {
        teipsum_spec::plan::KafkaMode::Zookeeper {
            zookeeper_conf,
            zookeeper_restart,
            ..
        } => {
            zookeeper_conf[0].value = "10".into();
            zookeeper_conf.pop();
            zookeeper_restart.delay_ms = Some(1_000);
        }
        teipsum_spec::plan::KafkaMode::Kraft { .. } => panic!("config.ncl runs ZooKeeper"),
    });
    assert!(kafka.contains("initLimit=10"), "{kafka}");
    assert!(!kafka.contains("admin.enableServer"), "{kafka}");
    assert!(kafka.contains("RestartSec = \"1s\";"), "{kafka}");
}

#[test]
fn database_access_is_the_plans() {
    let (_, pg) = changed("postgresql.nix", |p| {
        p.postgres.access.retain(|r| r.user != "postgres");
        p.postgres.access.insert(
            0,
            AccessRule {
                connection: "hostssl".into(),
                database: "teipsum_order".into(),
                user: "teipsum_order".into(),
                method: "scram-sha-256".into(),
            },
        );
    });
    assert!(pg.contains("hostssl teipsum_order teipsum_order scram-sha-256"));
    assert!(!pg.contains("postgres peer"), "{pg}");
}

#[test]
fn a_services_environment_is_the_plans() {
    let (_, services) = changed("services.nix", |p| {
        service(p, "order")
            .environment
            .insert("TEIPSUM_KAFKA_CLIENT_ID".into(), "shop-order".into());
    });
    assert!(services.contains("TEIPSUM_KAFKA_CLIENT_ID = \"shop-order\";"));
}

/// The `systemd.services.<unit>` block of `services.nix`.
fn unit_block<'a>(services: &'a str, unit: &str) -> &'a str {
    let start = services
        .find(&format!("{unit} = {{"))
        .unwrap_or_else(|| panic!("no unit {unit}"));
    let block = &services[start..];
    let end = block[1..]
        .find("\n    teipsum-")
        .map_or(block.len(), |i| i + 1);
    &block[..end]
}

#[test]
fn a_percent_in_a_description_reaches_systemd_as_a_literal() {
    // `%` starts a systemd specifier (`%n` is the unit's name), and NixOS
    // writes `description` into `Description=` as it is.
    let (_, services) = changed("services.nix", |p| {
        service(p, "catalog").description = "100% of the catalog, %n not expanded".into();
    });
    assert!(
        unit_block(&services, "teipsum-catalog")
            .contains(r#"description = "100%% of the catalog, %%n not expanded";"#),
        "{services}"
    );
}
