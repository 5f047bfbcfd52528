//! The edge: one upstream per routed service, routes sorted by prefix, the
//! rate-limit zones and the headers.

use super::{LOOPBACK, upstream_name};
use crate::{
    plan::{Header, NginxPlan, RateLimitPlan, RoutePlan, UpstreamPlan},
    raw::{RawPlatform, RawRateLimit},
    rules::Environment,
};

/// nginx of `environment`.
pub(super) fn resolve(raw: &RawPlatform, environment: &Environment) -> NginxPlan {
    let platform = &raw.name;
    let mut routes: Vec<RoutePlan> = raw
        .services
        .iter()
        .flat_map(|(service, s)| {
            s.routes.iter().map(|prefix| RoutePlan {
                prefix: prefix.clone(),
                service: service.clone(),
                upstream: upstream_name(platform, service),
                rate_limited: s.auth_endpoint,
                placement_limited: s.placement_endpoint,
                micro_cache_secs: s.micro_cache.secs(),
            })
        })
        .collect();
    routes.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    let nginx = &environment.spec.nginx;
    let zone = |name: &str, limit: &RawRateLimit| RateLimitPlan {
        zone: format!("{platform}_{name}"),
        // About 160 000 client addresses.
        zone_size: "10m".to_owned(),
        rate: limit.rate.clone(),
        burst: limit.burst,
    };
    NginxPlan {
        host: environment.edge.clone(),
        http_port: 80,
        https_port: 443,
        gzip: nginx.gzip,
        client_max_body_size: nginx.client_max_body_size.clone(),
        keepalive: nginx.keepalive,
        auth_rate_limit: zone("auth", &nginx.auth_rate_limit),
        order_rate_limit: zone("orders", &nginx.order_rate_limit),
        security_headers: nginx
            .security_headers
            .iter()
            .map(|(name, value)| Header {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        api_csp: nginx.api_csp.clone(),
        frontend_csp: nginx.frontend_csp.clone(),
        upstreams: raw
            .services
            .iter()
            .filter(|(_, s)| !s.routes.is_empty())
            .map(|(service, s)| UpstreamPlan {
                name: upstream_name(platform, service),
                service: service.clone(),
                servers: vec![format!("{LOOPBACK}:{}", s.port)],
            })
            .collect(),
        routes,
    }
}
