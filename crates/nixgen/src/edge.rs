//! What nginx does, decided once from the plan: http-level directives,
//! upstreams and locations. The NixOS module and the plain `nginx.conf` of
//! `teipsum dev` are both printed from this, so development runs the edge
//! that production runs.

use teipsum_spec::plan::{Header, Plan};

/// An upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    /// Name used by `proxy_pass http://<name>`.
    pub name: String,
    /// `address:port` of each server.
    pub servers: Vec<String>,
    /// Extra directives (`keepalive`).
    pub directives: Vec<String>,
}

/// A `location` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// The location match (`/api/orders/`, `= /index.html`).
    pub path: String,
    /// Upstream to proxy to.
    pub proxy_pass: Option<String>,
    /// `try_files` arguments.
    pub try_files: Option<String>,
    /// Other directives, each ending with `;`.
    pub directives: Vec<String>,
}

/// The edge of one environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    /// Directives at `http` level (rate-limit zones, default headers).
    pub http: Vec<String>,
    /// Upstreams, sorted by name.
    pub upstreams: Vec<Upstream>,
    /// Locations of the virtual host, in print order.
    pub locations: Vec<Location>,
    /// `client_max_body_size`.
    pub body_limit: String,
}

/// Quote a header value for nginx (the spec guarantees no `"` or `\`).
fn quoted(text: &str) -> String {
    format!("\"{text}\"")
}

/// `add_header` lines for the security headers plus a CSP, all `always`, so
/// that errors and redirects carry them too.
fn header_lines(headers: &[Header], csp: &str) -> Vec<String> {
    let mut lines: Vec<String> = headers
        .iter()
        .map(|h| format!("add_header {} {} always;", h.name, quoted(&h.value)))
        .collect();
    lines.push(format!(
        "add_header Content-Security-Policy {} always;",
        quoted(csp)
    ));
    lines
}

/// Name of the micro-cache zone.
pub const MICRO_CACHE_ZONE: &str = "teipsum_micro";

/// Where nginx keeps the micro-cache on NixOS (the unit's CacheDirectory).
pub const NIXOS_CACHE_DIR: &str = "/var/cache/nginx/teipsum";

/// The variable the rate-limit zone is keyed on.
pub const LIMIT_KEY: &str = "teipsum_limit_key";

/// Rate-limit key: an IPv4 client by its address, an IPv6 client by its /64
/// (the first 8 of the 16 bytes of `$binary_remote_addr`), since one host
/// commonly holds a whole /64 and would otherwise get a fresh limit per
/// address. nginx's regexes are not in UTF mode, so `.` is one byte; `(?s)`
/// lets it match 0x0a too. IPv4-mapped addresses (a dual-stack socket) keep
/// their own address rather than sharing `::ffff:0:0/64`.
pub const LIMIT_KEY_MAP: &str = r#"map $binary_remote_addr $teipsum_limit_key {
  "~^(?s)\x00{10}\xff\xff" $binary_remote_addr;
  "~^(?s)(.{8}).{8}" $1;
  default $binary_remote_addr;
}"#;

/// The errors nginx itself answers in front of a service (body too large,
/// rate limit, upstream down or slow), as the services' JSON error shape:
/// status, stable code, message.
const EDGE_ERRORS: [(u16, &str, &str); 6] = [
    (413, "PAYLOAD_TOO_LARGE", "the request body is too large"),
    (
        429,
        "TOO_MANY_REQUESTS",
        "too many requests; try again shortly",
    ),
    (
        500,
        "INTERNAL",
        "something went wrong on our side; it has been logged",
    ),
    (
        502,
        "UNAVAILABLE",
        "the service cannot answer right now; try again shortly",
    ),
    (
        503,
        "UNAVAILABLE",
        "the service cannot answer right now; try again shortly",
    ),
    (
        504,
        "UNAVAILABLE",
        "the service did not answer in time; try again shortly",
    ),
];

/// The named location answering edge error `status` as JSON.
fn error_location_name(status: u16) -> String {
    format!("@teipsum_error_{status}")
}

/// Decide the edge of `plan`; `cache_dir` holds the micro-cache.
pub fn edge(plan: &Plan, cache_dir: &str) -> Edge {
    let nginx = &plan.nginx;
    let limit = &nginx.auth_rate_limit;
    let mut http = vec![
        LIMIT_KEY_MAP.to_owned(),
        format!(
            "limit_req_zone ${LIMIT_KEY} zone={}:{} rate={};",
            limit.zone, limit.zone_size, limit.rate
        ),
        "limit_req_status 429;".to_owned(),
    ];
    // Order placement: only POSTs count (the key of any other method is
    // empty, and nginx does not account empty keys), so shoppers can list
    // their orders as often as they like; an IPv6 client counts by its /64,
    // as for the auth limit.
    let orders = &nginx.order_rate_limit;
    if nginx.routes.iter().any(|r| r.placement_limited) {
        http.push(format!(
            "map $request_method ${zone}_key {{ POST ${LIMIT_KEY}; default \"\"; }}",
            zone = orders.zone
        ));
        http.push(format!(
            "limit_req_zone ${zone}_key zone={zone}:{} rate={};",
            orders.zone_size,
            orders.rate,
            zone = orders.zone
        ));
    }
    if nginx.routes.iter().any(|r| r.micro_cache_secs > 0) {
        http.push(format!(
            "proxy_cache_path {cache_dir} levels=1:2 keys_zone={MICRO_CACHE_ZONE}:10m max_size=256m inactive=10m use_temp_path=off;"
        ));
    }
    // Inherited by every location without add_header of its own: the API
    // routes, the ACME challenge, the HTTP→HTTPS redirect and nginx's own
    // error pages.
    http.extend(header_lines(&nginx.security_headers, &nginx.api_csp));

    let upstreams = nginx
        .upstreams
        .iter()
        .map(|u| Upstream {
            name: u.name.clone(),
            servers: u.servers.clone(),
            directives: vec![format!("keepalive {};", nginx.keepalive)],
        })
        .collect();

    let mut locations = Vec::new();
    let frontend = &plan.frontend;
    let route = frontend.route.trim_end_matches('/');
    // A location with add_header drops every inherited one: repeat them all.
    // `always` also sends the header on errors: right for `no-cache`, wrong
    // for a year-long cache, which must never be given to a 404.
    let static_headers = |cache: &str, always: bool| {
        let mut lines = header_lines(&nginx.security_headers, &nginx.frontend_csp);
        let always = if always { " always" } else { "" };
        lines.push(format!(
            "add_header Cache-Control {}{always};",
            quoted(cache)
        ));
        lines
    };
    locations.push(Location {
        path: format!("{route}/"),
        proxy_pass: None,
        try_files: Some(if frontend.spa_fallback {
            format!("$uri $uri/ {route}/index.html")
        } else {
            "$uri $uri/ =404".to_owned()
        }),
        directives: static_headers("no-cache", true),
    });
    // The page itself is always revalidated, so a deploy is seen at once.
    locations.push(Location {
        path: format!("= {route}/index.html"),
        proxy_pass: None,
        try_files: None,
        directives: static_headers("no-cache", true),
    });
    // Content-hashed assets never change under the same name.
    locations.push(Location {
        path: format!("{route}/assets/"),
        proxy_pass: None,
        try_files: Some("$uri =404".to_owned()),
        directives: static_headers("public, max-age=31536000, immutable", false),
    });
    // Unknown API paths get a JSON 404, not the storefront's index.html.
    if !nginx.routes.iter().any(|r| r.prefix == "/api/")
        && nginx.routes.iter().any(|r| r.prefix.starts_with("/api/"))
    {
        locations.push(Location {
            path: "/api/".to_owned(),
            proxy_pass: None,
            try_files: None,
            directives: vec![
                "default_type application/json;".to_owned(),
                r#"return 404 '{"error":"NOT_FOUND","message":"no such API route"}';"#.to_owned(),
            ],
        });
    }
    for r in &nginx.routes {
        // Upstream keepalive needs HTTP/1.1 without `Connection: close`; the
        // request id ties nginx's log line to the service's.
        let mut directives = vec![
            "proxy_set_header Connection \"\";".to_owned(),
            "proxy_set_header X-Request-Id $request_id;".to_owned(),
        ];
        if r.micro_cache_secs > 0 {
            // The service says what is cacheable (Cache-Control: public,
            // max-age). One request per key fills it while the others wait;
            // an expired copy is refreshed in the background while it is
            // still served. A location with add_header repeats them all.
            directives.push(format!("proxy_cache {MICRO_CACHE_ZONE};"));
            directives.push(format!("proxy_cache_valid 200 {}s;", r.micro_cache_secs));
            directives.push("proxy_cache_lock on;".to_owned());
            directives
                .push("proxy_cache_use_stale updating error timeout http_502 http_503;".to_owned());
            directives.push("proxy_cache_background_update on;".to_owned());
            directives.extend(header_lines(&nginx.security_headers, &nginx.api_csp));
            directives.push("add_header X-Cache-Status $upstream_cache_status always;".to_owned());
        }
        if r.rate_limited {
            directives.push(format!(
                "limit_req zone={} burst={} nodelay;",
                limit.zone, limit.burst
            ));
        }
        if r.placement_limited {
            directives.push(format!(
                "limit_req zone={} burst={} nodelay;",
                orders.zone, orders.burst
            ));
        }
        // What nginx answers itself in front of a service is JSON too,
        // not its HTML pages (the upstream's own errors pass through).
        directives.extend(EDGE_ERRORS.iter().map(|(status, _, _)| {
            format!("error_page {status} {};", error_location_name(*status))
        }));
        // A prefix without a trailing slash is the path itself and what is
        // under it: `/api/products` and `/api/products/<id>`, never
        // `/api/products-anything`.
        let paths = if r.prefix.ends_with('/') {
            vec![r.prefix.clone()]
        } else {
            vec![format!("= {}", r.prefix), format!("{}/", r.prefix)]
        };
        for path in paths {
            locations.push(Location {
                path,
                proxy_pass: Some(format!("http://{}", r.upstream)),
                try_files: None,
                directives: directives.clone(),
            });
        }
    }
    for (status, code, message) in EDGE_ERRORS {
        locations.push(Location {
            path: error_location_name(status),
            proxy_pass: None,
            try_files: None,
            directives: vec![
                "default_type application/json;".to_owned(),
                format!(r#"return {status} '{{"error":"{code}","message":"{message}"}}';"#),
            ],
        });
    }
    Edge {
        http,
        upstreams,
        locations,
        body_limit: nginx.client_max_body_size.clone(),
    }
}
