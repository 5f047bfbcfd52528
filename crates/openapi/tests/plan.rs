//! The document and the Plan agree on where each service's routes are:
//! every documented path of a service lies under one of its route prefixes
//! in the spec (config.ncl `routes`, the edge's locations), and every prefix
//! has at least one documented path. The prefixes and the services'
//! `warp::path!` were tied by nothing but a 404 before.

use std::{collections::BTreeSet, path::Path};

use teipsum_spec::load_spec;

/// Whether `path` is served by the edge location of `prefix` (a prefix
/// without a trailing slash is the path itself and what is under it).
fn under(path: &str, prefix: &str) -> bool {
    if prefix.ends_with('/') {
        path.starts_with(prefix)
    } else {
        path == prefix || path.starts_with(&format!("{prefix}/"))
    }
}

#[test]
fn every_documented_path_is_under_its_services_route_prefix_and_every_prefix_is_documented() {
    let spec = load_spec(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.ncl"))
        .expect("config.ncl is valid");
    let services = teipsum_openapi::services();
    for (environment, plan) in &spec.plans {
        let routed: BTreeSet<&str> = plan
            .nginx
            .routes
            .iter()
            .map(|r| r.service.as_str())
            .collect();
        let documented: BTreeSet<&str> = services.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            routed, documented,
            "{environment}: the routed services are the documented ones"
        );
        for (service, api) in &services {
            let prefixes: Vec<&str> = plan
                .nginx
                .routes
                .iter()
                .filter(|r| r.service == *service)
                .map(|r| r.prefix.as_str())
                .collect();
            let paths: Vec<&String> = api.paths.paths.keys().collect();
            for path in &paths {
                // The edge routes a path to the longest matching prefix.
                let owner = plan
                    .nginx
                    .routes
                    .iter()
                    .filter(|r| under(path, &r.prefix))
                    .max_by_key(|r| r.prefix.len())
                    .map(|r| r.service.as_str());
                assert_eq!(
                    owner,
                    Some(*service),
                    "{environment}: {path} of {service} is routed by the edge to {owner:?} (prefixes of {service}: {prefixes:?})"
                );
            }
            for prefix in &prefixes {
                assert!(
                    paths.iter().any(|p| under(p, prefix)),
                    "{environment}: the route prefix {prefix} of {service} has no documented path"
                );
            }
        }
    }
}

#[test]
fn a_prefix_without_a_slash_is_the_path_and_what_is_under_it() {
    assert!(under("/api/products", "/api/products"));
    assert!(under("/api/products/{id}", "/api/products"));
    assert!(!under("/api/products-x", "/api/products"));
    assert!(under("/api/orders/", "/api/orders/"));
    assert!(!under("/api/orders", "/api/orders/"));
}
