//! Resolution: a [`Valid`] spec → one [`Plan`] per environment.
//!
//! Nothing here can fail and nothing is parsed: every value of the spec is
//! already typed, and every rule already held. Each part of the Plan has its
//! module; [`plan`] puts them together.

mod dashboards;
mod kafka;
mod monitoring;
mod nginx;
mod postgres;
mod services;

use crate::{
    Spec,
    plan::*,
    policy,
    raw::{RawPlatform, RawSetting},
    rules::{Environment, Valid},
    topology::listeners,
};

/// Listen address of every service: nginx is the only way in.
const LOOPBACK: &str = "127.0.0.1";

/// Resolve every environment of a valid spec.
pub(crate) fn spec(valid: Valid) -> Spec {
    let plans = valid
        .environments
        .iter()
        .map(|environment| (environment.name.clone(), plan(&valid.platform, environment)))
        .collect();
    Spec {
        name: valid.platform.name,
        plans,
        warnings: valid.warnings,
    }
}

/// The plan of one environment.
fn plan(raw: &RawPlatform, environment: &Environment) -> Plan {
    let platform = raw.name.clone();
    let spec = &environment.spec;
    let postgres = postgres::resolve(raw, spec);
    let kafka = kafka::resolve(raw, environment);
    let nginx = nginx::resolve(raw, environment);
    let services = services::resolve(raw, environment, &postgres, &kafka);
    let acme_order_unit = policy::acme_order_unit(&spec.domain);
    let monitoring = monitoring::resolve(raw, environment, &postgres, &kafka, &acme_order_unit);
    let mut listeners: Vec<Listener> = listeners(
        &raw.services,
        spec,
        &environment.edge,
        &crate::diagnostic::FieldPath::root(),
    )
    .into_iter()
    .map(|claim| Listener {
        host: claim.host,
        port: claim.port,
        owner: claim.owner,
    })
    .collect();
    listeners.sort();

    Plan {
        platform,
        environment: environment.name.clone(),
        domain: spec.domain.clone(),
        hosts: spec
            .hosts
            .iter()
            .map(|(host, h)| HostPlan {
                name: host.clone(),
                address: h.address.clone(),
                system: h.system.as_str().to_owned(),
            })
            .collect(),
        acme: AcmePlan {
            email: spec.acme.email.clone(),
            server: spec.acme.ca.directory().to_owned(),
            staging: !spec.acme.ca.is_trusted(),
            accept_terms: true,
            order_unit: acme_order_unit,
            order_restart: policy::acme_order_restart(),
            order_ordering: policy::acme_order_ordering(),
        },
        postgres,
        kafka,
        nginx,
        frontend: FrontendPlan {
            root: raw.frontend.root.clone(),
            route: raw.frontend.route.clone(),
            spa_fallback: raw.frontend.spa_fallback,
        },
        services,
        monitoring,
        listeners,
        sandbox: policy::sandbox(),
    }
}

/// A setting of the spec as the Plan carries it.
fn setting(value: &RawSetting) -> Setting {
    match value {
        RawSetting::Bool(b) => Setting::Bool(*b),
        RawSetting::Int(i) => Setting::Int(*i),
        RawSetting::Float(f) => Setting::Float(*f),
        RawSetting::Str(s) => Setting::Str(s.clone()),
    }
}

/// The nginx upstream of a service (`teipsum_order`).
fn upstream_name(platform: &str, service: &str) -> String {
    format!("{platform}_{}", service.replace('-', "_"))
}
