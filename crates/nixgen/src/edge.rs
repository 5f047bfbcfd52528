//! What nginx does, printed from the plan (which decides every zone, limit,
//! location and answer): http-level directives, upstreams and locations. The NixOS module and the plain `nginx.conf` of
//! `teipsum dev` are both printed from this, so development runs the edge
//! that production runs.

use teipsum_spec::plan::{EdgeResponsePlan, Header, LimitKeyPlan, Plan};

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

/// The `map` computing the rate-limit key: an IPv4 client by its address,
/// an IPv6 client by its first `ipv6_prefix_bits` (bytes of
/// `$binary_remote_addr`). nginx's regexes are not in UTF mode, so `.` is one
/// byte; `(?s)` lets it match 0x0a too. IPv4-mapped addresses (a dual-stack
/// socket) keep their own address rather than sharing `::ffff:0:0/64`.
fn limit_key_map(key: &LimitKeyPlan) -> String {
    let prefix = key.ipv6_prefix_bits / 8;
    let rest = 16 - prefix;
    format!(
        "map $binary_remote_addr ${variable} {{\n  \"~^(?s)\\x00{{10}}\\xff\\xff\" $binary_remote_addr;\n  \"~^(?s)(.{{{prefix}}}).{{{rest}}}\" $1;\n  default $binary_remote_addr;\n}}",
        variable = key.variable
    )
}

/// Decide nothing: print the edge `plan` describes.
pub fn edge(plan: &Plan) -> Edge {
    let nginx = &plan.nginx;
    let key = &nginx.limit_key.variable;
    let mut http = vec![limit_key_map(&nginx.limit_key)];
    for (n, limit) in nginx.rate_limits.iter().enumerate() {
        // A zone counting only some methods keys the others on "", which
        // nginx does not account.
        let zone_key = if limit.methods.is_empty() {
            format!("${key}")
        } else {
            let methods: String = limit
                .methods
                .iter()
                .map(|m| format!("{m} ${key}; "))
                .collect();
            http.push(format!(
                "map $request_method ${zone}_key {{ {methods}default \"\"; }}",
                zone = limit.zone
            ));
            format!("${}_key", limit.zone)
        };
        http.push(format!(
            "limit_req_zone {zone_key} zone={}:{} rate={};",
            limit.zone, limit.zone_size, limit.rate
        ));
        if n == 0 {
            // Applies to every zone; printed once.
            http.push(format!("limit_req_status {};", nginx.limit_status));
        }
    }
    if let Some(cache) = &nginx.micro_cache {
        http.push(format!(
            "proxy_cache_path {} levels={} keys_zone={}:{} max_size={} inactive={} use_temp_path=off;",
            cache.path, cache.levels, cache.name, cache.keys_size, cache.max_size, cache.inactive
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
    // A location with add_header drops every inherited one: repeat them all.
    for l in &nginx.static_locations {
        let mut directives = header_lines(&nginx.security_headers, &nginx.frontend_csp);
        let always = if l.always { " always" } else { "" };
        directives.push(format!(
            "add_header Cache-Control {}{always};",
            quoted(&l.cache_control)
        ));
        locations.push(Location {
            path: l.path.clone(),
            proxy_pass: None,
            try_files: l.try_files.clone(),
            directives,
        });
    }
    if let Some(fallback) = &nginx.api_fallback {
        locations.push(Location {
            path: fallback.path.clone(),
            proxy_pass: None,
            try_files: None,
            directives: answer(&fallback.response),
        });
    }
    // The OpenAPI document, a file under the storefront's root (an exact
    // location wins over the API's fallback).
    let document = &nginx.api_document;
    let mut directives = header_lines(&nginx.security_headers, &nginx.api_csp);
    directives.push(format!(
        "add_header Cache-Control {} always;",
        quoted(&document.cache_control)
    ));
    directives.push("types { }".to_owned());
    directives.push(format!("default_type {};", document.content_type));
    locations.push(Location {
        path: format!("= {}", document.uri),
        proxy_pass: None,
        try_files: Some("$uri =404".to_owned()),
        directives,
    });
    for r in &nginx.routes {
        let mut directives: Vec<String> = nginx
            .proxy_headers
            .iter()
            .map(|h| format!("proxy_set_header {} {};", h.name, h.value))
            .collect();
        if let (Some(cache), true) = (&nginx.micro_cache, r.micro_cache_secs > 0) {
            directives.push(format!("proxy_cache {};", cache.name));
            directives.push(format!("proxy_cache_valid 200 {}s;", r.micro_cache_secs));
            directives.push(format!("proxy_cache_lock {};", on(cache.lock)));
            directives.push(format!(
                "proxy_cache_use_stale {};",
                cache.use_stale.join(" ")
            ));
            directives.push(format!(
                "proxy_cache_background_update {};",
                on(cache.background_update)
            ));
            // A location with add_header repeats them all.
            directives.extend(header_lines(&nginx.security_headers, &nginx.api_csp));
            directives.push(format!(
                "add_header {} $upstream_cache_status always;",
                cache.status_header
            ));
        }
        for zone in &r.rate_limits {
            if let Some(limit) = nginx.rate_limits.iter().find(|l| &l.zone == zone) {
                directives.push(format!(
                    "limit_req zone={} burst={} nodelay;",
                    limit.zone, limit.burst
                ));
            }
        }
        // What nginx answers itself in front of a service is JSON too,
        // not its HTML pages (the upstream's own errors pass through).
        directives.extend(
            nginx
                .edge_errors
                .iter()
                .map(|e| format!("error_page {} {};", e.status, e.location)),
        );
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
    for e in &nginx.edge_errors {
        locations.push(Location {
            path: e.location.clone(),
            proxy_pass: None,
            try_files: None,
            directives: answer(e),
        });
    }
    Edge {
        http,
        upstreams,
        locations,
        body_limit: nginx.client_max_body_size.clone(),
    }
}

/// nginx's spelling of a flag.
fn on(flag: bool) -> &'static str {
    if flag { "on" } else { "off" }
}

/// The directives answering `response` as JSON.
fn answer(response: &EdgeResponsePlan) -> Vec<String> {
    vec![
        "default_type application/json;".to_owned(),
        format!("return {} '{}';", response.status, response.body()),
    ]
}
