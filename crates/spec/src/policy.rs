//! Policy the spec has no field for, decided here once: unit profiles and
//! the sandbox, database access rules, the edge's cache, limits, locations
//! and answers, Kafka client ids. `resolve` calls these while it
//! resolves a plan; renderers only print what they return, so `teipsum diff`
//! sees every one of these decisions change.

use teipsum_conventions as conventions;

use crate::plan::{
    AccessRule, ApiFallbackPlan, CacheZonePlan, DatabasePlan, EdgeResponsePlan, Header,
    LimitKeyPlan, NginxPreset, Property, RateLimitPlan, Restart, RestartPolicy, RoutePlan,
    StaticLocationPlan, TopicsUnitPlan, UnitKind, UnitOrdering, UnitProfile, UnitSetting,
    UnitValue,
};

/// What a service's unit is: notified readiness, a watchdog, restarts two
/// seconds after a failure, 30 s to drain on SIGTERM, the sandbox.
pub fn service_profile(watchdog_sec: u64) -> UnitProfile {
    UnitProfile {
        kind: UnitKind::Notify,
        watchdog_sec: Some(watchdog_sec),
        restart: Restart {
            policy: RestartPolicy::OnFailure,
            delay_ms: Some(2_000),
            start_limit_interval_sec: None,
            why: None,
        },
        timeout_stop_sec: Some(30),
        sandboxed: true,
        wanted_by: vec!["multi-user.target".to_owned()],
    }
}

/// Seconds `teipsum topics apply` waits for the broker.
pub const TOPICS_WAIT_SECS: u64 = 300;

/// The oneshot creating the topics: after the broker, retried every 10 s
/// when the broker took longer than the wait.
pub fn topics_unit(platform: &str) -> TopicsUnitPlan {
    let broker = "apache-kafka.service".to_owned();
    TopicsUnitPlan {
        unit: conventions::topics_unit(platform),
        description: format!("Create the {platform} Kafka topics"),
        // The compiler's own binary, whatever the platform is called.
        binary: "teipsum".to_owned(),
        wait_secs: TOPICS_WAIT_SECS,
        after: vec![broker.clone()],
        wants: vec![],
        requires: vec![broker],
        dynamic_user: true,
        profile: UnitProfile {
            kind: UnitKind::Oneshot,
            watchdog_sec: None,
            restart: Restart {
                policy: RestartPolicy::OnFailure,
                delay_ms: Some(10_000),
                start_limit_interval_sec: None,
                why: Some(
                    "a broker that took longer than the wait: try again rather than leave the services without topics"
                        .to_owned(),
                ),
            },
            timeout_stop_sec: None,
            sandboxed: true,
            wanted_by: vec!["multi-user.target".to_owned()],
        },
    }
}

/// Restart on failure every 10 s for as long as it takes: for the broker
/// and ZooKeeper, whose nixpkgs units have no `Restart=`.
pub fn coordination_restart() -> Restart {
    Restart {
        policy: RestartPolicy::OnFailure,
        delay_ms: Some(10_000),
        start_limit_interval_sec: Some(0),
        why: None,
    }
}

/// The certificate order unit: restarted on failure (its module's own
/// `RestartSec`, below Let's Encrypt's limit of failed validations), forever.
pub fn acme_order_restart() -> Restart {
    Restart {
        policy: RestartPolicy::OnFailure,
        delay_ms: None,
        start_limit_interval_sec: Some(0),
        why: None,
    }
}

/// The certificate order unit nixpkgs defines for `domain`.
pub fn acme_order_unit(domain: &str) -> String {
    format!("acme-order-renew-{domain}")
}

/// The order unit runs after nginx serves the challenge.
pub fn acme_order_ordering() -> UnitOrdering {
    let nginx = "nginx.service".to_owned();
    UnitOrdering {
        after: vec![nginx.clone()],
        wants: vec![nginx],
        requires: vec![],
        why: "With enableReload, nixpkgs no longer orders nginx before the first certificate order:\n\
              an order that ran before nginx served the challenge would keep the self-signed\n\
              certificate until the daily timer."
            .to_owned(),
    }
}

/// The broker runs after ZooKeeper, and not without it.
pub fn broker_after_zookeeper() -> UnitOrdering {
    let zookeeper = "zookeeper.service".to_owned();
    UnitOrdering {
        after: vec![zookeeper.clone()],
        wants: vec![],
        requires: vec![zookeeper],
        why: "The Kafka module does not order the broker after ZooKeeper.".to_owned(),
    }
}

/// zoo.cfg: loopback only, and no AdminServer (it would listen on 8080).
pub fn zookeeper_conf() -> Vec<Property> {
    [
        ("initLimit", "5"),
        ("syncLimit", "2"),
        ("tickTime", "2000"),
        ("clientPortAddress", "127.0.0.1"),
        ("admin.enableServer", "false"),
    ]
    .into_iter()
    .map(|(name, value)| Property {
        name: name.to_owned(),
        value: value.to_owned(),
    })
    .collect()
}

/// The sandbox every TeIpsum unit runs in (security baseline, systemd
/// section): services reach only loopback (nginx in front, PostgreSQL's
/// socket, the broker on 127.0.0.1), write nothing outside their runtime
/// directory, and hold no capabilities.
pub fn sandbox() -> Vec<UnitSetting> {
    let yes = |name: &'static str| (name, UnitValue::Bool(true), None::<String>);
    let text = |name: &'static str, value: &str| (name, UnitValue::Str(value.to_owned()), None);
    let list = |name: &'static str, items: &[&str], why: Option<&str>| {
        (
            name,
            UnitValue::List(items.iter().map(|s| (*s).to_owned()).collect()),
            why.map(str::to_owned),
        )
    };
    let mut settings = vec![
        yes("NoNewPrivileges"),
        list(
            "CapabilityBoundingSet",
            &[""],
            Some("no capabilities at all"),
        ),
        list("AmbientCapabilities", &[""], None),
        (
            "ProtectSystem",
            UnitValue::Str("strict".to_owned()),
            Some("the file system is read-only for the service".to_owned()),
        ),
    ];
    settings.extend(
        [
            "ProtectHome",
            "PrivateTmp",
            "PrivateDevices",
            "PrivateUsers",
            "PrivateMounts",
            "ProtectClock",
            "ProtectHostname",
            "ProtectKernelTunables",
            "ProtectKernelModules",
            "ProtectKernelLogs",
            "ProtectControlGroups",
        ]
        .map(yes),
    );
    settings.extend([text("ProtectProc", "invisible"), text("ProcSubset", "pid")]);
    settings.extend(
        [
            "RestrictNamespaces",
            "RestrictRealtime",
            "RestrictSUIDSGID",
            "LockPersonality",
            "MemoryDenyWriteExecute",
            "RemoveIPC",
        ]
        .map(yes),
    );
    settings.extend([
        text("KeyringMode", "private"),
        text("DevicePolicy", "closed"),
        list(
            "RestrictAddressFamilies",
            &["AF_UNIX", "AF_INET", "AF_INET6"],
            Some("AF_UNIX: sd_notify, journald and the PostgreSQL socket"),
        ),
        list(
            "IPAddressDeny",
            &["any"],
            Some("loopback only: nginx in front, the broker on 127.0.0.1"),
        ),
        list("IPAddressAllow", &["localhost"], None),
        text("SystemCallArchitectures", "native"),
        list(
            "SystemCallFilter",
            &["@system-service", "~@privileged", "~@resources"],
            None,
        ),
        text("SystemCallErrorNumber", "EPERM"),
        text("UMask", "0077"),
    ]);
    settings
        .into_iter()
        .map(|(name, value, why)| UnitSetting {
            name: name.to_owned(),
            value,
            why,
        })
        .collect()
}

/// `pg_hba.conf`: each database admits its own service's role over the
/// Unix socket (peer, no passwords) and `postgres` for setup and backups;
/// everyone else is rejected.
pub fn access_rules(databases: &[DatabasePlan]) -> Vec<AccessRule> {
    let rule = |database: &str, user: &str, method: &str| AccessRule {
        connection: "local".to_owned(),
        database: database.to_owned(),
        user: user.to_owned(),
        method: method.to_owned(),
    };
    databases
        .iter()
        .flat_map(|d| {
            [
                rule(&d.name, &d.role, "peer"),
                rule(&d.name, "postgres", "peer"),
                rule(&d.name, "all", "reject"),
            ]
        })
        .collect()
}

/// Kafka client id of a service's producer and consumer.
pub fn kafka_client_id(platform: &str, service: &str) -> String {
    conventions::kafka_client_id(platform, service)
}

/// The credential a service reads a remote database's CA from.
pub fn database_ca_credential() -> String {
    conventions::credentials::POSTGRES_CA.to_owned()
}

/// Name of the authentication rate-limit zone.
fn auth_zone(platform: &str) -> String {
    format!("{platform}_auth")
}

/// Name of the order placement rate-limit zone.
fn orders_zone(platform: &str) -> String {
    format!("{platform}_orders")
}

/// The zones a route is limited by: authentication endpoints by the
/// authentication zone, order placement by the placement zone.
pub fn route_limits(platform: &str, auth_endpoint: bool, placement_endpoint: bool) -> Vec<String> {
    let mut zones = Vec::new();
    if auth_endpoint {
        zones.push(auth_zone(platform));
    }
    if placement_endpoint {
        zones.push(orders_zone(platform));
    }
    zones
}

/// The variable limits count by: an IPv4 client by its address, an IPv6
/// client by its /64.
pub fn limit_key(platform: &str) -> LimitKeyPlan {
    LimitKeyPlan {
        variable: format!("{platform}_limit_key"),
        ipv6_prefix_bits: 64,
    }
}

/// Status of a rate-limited request.
pub const LIMIT_STATUS: u16 = 429;

/// The rate-limit zones: authentication (always declared) and order
/// placement, declared when a route uses it and counting only `POST`s, so
/// shoppers can list their orders as often as they like. `auth` and
/// `orders` are the spec's `(rate, burst)`.
pub fn rate_limits(
    platform: &str,
    auth: (&str, u32),
    orders: (&str, u32),
    routes: &[RoutePlan],
) -> Vec<RateLimitPlan> {
    // `10m` holds about 160 000 addresses.
    let zone =
        |zone: String, purpose: &str, methods: &[&str], (rate, burst): (&str, u32)| RateLimitPlan {
            zone,
            purpose: purpose.to_owned(),
            methods: methods.iter().map(|m| (*m).to_owned()).collect(),
            zone_size: "10m".to_owned(),
            rate: rate.to_owned(),
            burst,
        };
    let mut zones = vec![zone(auth_zone(platform), "authentication", &[], auth)];
    let orders_zone = orders_zone(platform);
    if routes.iter().any(|r| r.rate_limits.contains(&orders_zone)) {
        zones.push(zone(orders_zone, "order placement", &["POST"], orders));
    }
    zones
}

/// The micro-cache, when a route is cached: the service says what is
/// cacheable (`Cache-Control: public, max-age`); one request per key fills
/// it while the others wait; an expired copy is refreshed in the background
/// while it is still served.
pub fn micro_cache(platform: &str, routes: &[RoutePlan]) -> Option<CacheZonePlan> {
    routes
        .iter()
        .any(|r| r.micro_cache_secs > 0)
        .then(|| CacheZonePlan {
            name: format!("{platform}_micro"),
            // Under nginx's CacheDirectory on NixOS.
            path: format!("/var/cache/nginx/{platform}"),
            levels: "1:2".to_owned(),
            keys_size: "10m".to_owned(),
            max_size: "256m".to_owned(),
            inactive: "10m".to_owned(),
            lock: true,
            use_stale: ["updating", "error", "timeout", "http_502", "http_503"]
                .map(str::to_owned)
                .to_vec(),
            background_update: true,
            status_header: "X-Cache-Status".to_owned(),
        })
}

/// Upstream keepalive needs HTTP/1.1 without `Connection: close`; the
/// request id ties nginx's log line to the service's.
pub fn proxy_headers() -> Vec<Header> {
    [("Connection", "\"\""), ("X-Request-Id", "$request_id")]
        .map(|(name, value)| Header {
            name: name.to_owned(),
            value: value.to_owned(),
        })
        .to_vec()
}

/// The storefront under `route`: the page itself is always revalidated, so
/// a deploy is seen at once; content-hashed assets never change under the
/// same name, so browsers keep them for a year.
pub fn static_locations(route: &str, spa_fallback: bool) -> Vec<StaticLocationPlan> {
    let route = route.trim_end_matches('/');
    let location =
        |path: String, try_files: Option<String>, cache: &str, always: bool| StaticLocationPlan {
            path,
            try_files,
            cache_control: cache.to_owned(),
            always,
        };
    vec![
        location(
            format!("{route}/"),
            Some(if spa_fallback {
                format!("$uri $uri/ {route}/index.html")
            } else {
                "$uri $uri/ =404".to_owned()
            }),
            "no-cache",
            true,
        ),
        location(format!("= {route}/index.html"), None, "no-cache", true),
        location(
            format!("{route}/assets/"),
            Some("$uri =404".to_owned()),
            "public, max-age=31536000, immutable",
            false,
        ),
    ]
}

fn response(platform: &str, status: u16, code: &str, message: &str) -> EdgeResponsePlan {
    EdgeResponsePlan {
        status,
        code: code.to_owned(),
        message: message.to_owned(),
        location: format!("@{platform}_error_{status}"),
    }
}

/// Unknown API paths get a JSON 404, not the storefront's index.html
/// (unless a route serves `/api/` itself).
pub fn api_fallback(platform: &str, routes: &[RoutePlan]) -> Option<ApiFallbackPlan> {
    let prefix = "/api/";
    (!routes.iter().any(|r| r.prefix == prefix)
        && routes.iter().any(|r| r.prefix.starts_with(prefix)))
    .then(|| ApiFallbackPlan {
        path: prefix.to_owned(),
        response: response(platform, 404, "NOT_FOUND", "no such API route"),
    })
}

/// The errors nginx itself answers in front of a service (body too large,
/// rate limit, upstream down or slow), in the services' JSON error shape.
pub fn edge_errors(platform: &str) -> Vec<EdgeResponsePlan> {
    let unavailable = "the service cannot answer right now; try again shortly";
    [
        (413, "PAYLOAD_TOO_LARGE", "the request body is too large"),
        (
            LIMIT_STATUS,
            "TOO_MANY_REQUESTS",
            "too many requests; try again shortly",
        ),
        (
            500,
            "INTERNAL",
            "something went wrong on our side; it has been logged",
        ),
        (502, "UNAVAILABLE", unavailable),
        (503, "UNAVAILABLE", unavailable),
        (
            504,
            "UNAVAILABLE",
            "the service did not answer in time; try again shortly",
        ),
    ]
    .into_iter()
    .map(|(status, code, message)| response(platform, status, code, message))
    .collect()
}

/// The Mozilla "intermediate" cipher list NixOS uses by default.
pub const CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/// NixOS's `recommended*` nginx settings, which the edge uses (gzip as the
/// spec says), and what each stands for in nixos-26.05's nginx module.
pub fn presets(gzip: bool) -> Vec<NginxPreset> {
    let lines = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
    vec![
        NginxPreset {
            option: "recommendedTlsSettings".to_owned(),
            enabled: true,
            why: None,
            http: vec![
                "ssl_protocols TLSv1.2 TLSv1.3;".to_owned(),
                format!("ssl_ciphers {CIPHERS};"),
                "ssl_session_timeout 1d; ssl_session_cache shared:SSL:10m; ssl_session_tickets off; ssl_prefer_server_ciphers off;".to_owned(),
            ],
            proxied: vec![],
        },
        NginxPreset {
            option: "recommendedProxySettings".to_owned(),
            enabled: true,
            why: Some(
                "Also sets `proxy_http_version 1.1` and `Connection \"\"`, which upstream keepalive needs."
                    .to_owned(),
            ),
            http: lines(&[
                "proxy_redirect off; proxy_connect_timeout 60s; proxy_send_timeout 60s; proxy_read_timeout 60s; proxy_http_version 1.1;",
            ]),
            proxied: lines(&[
                "proxy_set_header Host $host;",
                "proxy_set_header X-Real-IP $remote_addr;",
                "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                "proxy_set_header X-Forwarded-Proto $scheme;",
                "proxy_set_header X-Forwarded-Host $host;",
                "proxy_set_header X-Forwarded-Server $host;",
            ]),
        },
        NginxPreset {
            option: "recommendedOptimisation".to_owned(),
            enabled: true,
            why: None,
            http: lines(&["sendfile on; tcp_nopush on; tcp_nodelay on; keepalive_timeout 65;"]),
            proxied: vec![],
        },
        NginxPreset {
            option: "recommendedGzipSettings".to_owned(),
            enabled: gzip,
            why: None,
            http: lines(&[
                "gzip on; gzip_vary on; gzip_comp_level 5; gzip_min_length 256; gzip_proxied expired no-cache no-store private auth;",
                "gzip_types application/javascript application/json image/svg+xml text/css text/javascript text/plain text/xml;",
            ]),
            proxied: vec![],
        },
    ]
}
