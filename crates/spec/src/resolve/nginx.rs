//! The edge: one upstream per routed service, routes sorted by prefix, the
//! rate-limit zones and the headers.

use super::{LOOPBACK, upstream_name};
use crate::{
    plan::{ApiDocumentPlan, Header, NginxPlan, RoutePlan, UpstreamPlan},
    policy,
    raw::RawPlatform,
    rules::Environment,
};

/// Where the edge serves the API's OpenAPI document.
const API_DOCUMENT_URI: &str = "/api/openapi.json";

/// The document in the repository (written by `TEIPSUM_REFRESH=1 cargo test
/// -p teipsum-openapi`).
const API_DOCUMENT_FILE: &str = "docs/openapi.json";

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
                rate_limits: policy::route_limits(platform, s.auth_endpoint, s.placement_endpoint),
                micro_cache_secs: s.micro_cache.secs(),
            })
        })
        .collect();
    routes.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    let nginx = &environment.spec.nginx;
    NginxPlan {
        host: environment.edge.clone(),
        http_port: 80,
        https_port: 443,
        gzip: nginx.gzip,
        client_max_body_size: nginx.client_max_body_size.clone(),
        keepalive: nginx.keepalive,
        server_tokens: false,
        reload_on_change: true,
        acme_certificate: true,
        force_tls: true,
        limit_key: policy::limit_key(platform),
        limit_status: policy::LIMIT_STATUS,
        rate_limits: policy::rate_limits(
            platform,
            (&nginx.auth_rate_limit.rate, nginx.auth_rate_limit.burst),
            (&nginx.order_rate_limit.rate, nginx.order_rate_limit.burst),
            &routes,
        ),
        micro_cache: policy::micro_cache(platform, &routes),
        proxy_headers: policy::proxy_headers(),
        static_locations: policy::static_locations(&raw.frontend.route, raw.frontend.spa_fallback),
        api_fallback: policy::api_fallback(platform, &routes),
        api_document: ApiDocumentPlan {
            uri: API_DOCUMENT_URI.to_owned(),
            file: API_DOCUMENT_FILE.to_owned(),
            content_type: "application/json".to_owned(),
            cache_control: "no-cache".to_owned(),
        },
        edge_errors: policy::edge_errors(platform),
        presets: policy::presets(nginx.gzip),
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
