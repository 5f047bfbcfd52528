//! Where things run in an environment: the edge host and every TCP listener.
//!
//! The rules use these to find clashes, and resolution to write the Plan's
//! listeners, so both see the same placement.

use std::collections::BTreeMap;

use crate::{
    diagnostic::FieldPath,
    raw::{RawEnvironment, RawService},
    units::Coordination,
};

/// The host nginx and the services run on: the one named `main`, else the
/// first by name; `None` for an environment without hosts.
pub(crate) fn edge_host(environment: &RawEnvironment) -> Option<&str> {
    if environment.hosts.contains_key("main") {
        Some("main")
    } else {
        environment.hosts.keys().next().map(String::as_str)
    }
}

/// A TCP listener of an environment and the field that declares it.
pub(crate) struct Claim {
    /// Host it listens on.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Who listens (`service `order``, `postgresql`).
    pub owner: String,
    /// The field that chose the port.
    pub field: FieldPath,
}

/// Every TCP listener of an environment whose services run on `edge`, in a
/// fixed order (the first claimant of a port keeps it).
pub(crate) fn listeners(
    services: &BTreeMap<String, RawService>,
    environment: &RawEnvironment,
    edge: &str,
    path: &FieldPath,
) -> Vec<Claim> {
    let kafka = &environment.kafka;
    let claim = |host: &str, port: u16, owner: &str, field: FieldPath| Claim {
        host: host.to_owned(),
        port,
        owner: owner.to_owned(),
        field,
    };
    let mut out = vec![
        claim(edge, 80, "nginx (HTTP)", path.field("nginx")),
        claim(edge, 443, "nginx (HTTPS)", path.field("nginx")),
        claim(
            &environment.postgres.host,
            environment.postgres.port,
            "postgresql",
            path.field("postgres").field("port"),
        ),
        claim(
            &kafka.host,
            kafka.port,
            "the Kafka broker",
            path.field("kafka").field("port"),
        ),
    ];
    out.push(match kafka.mode {
        Coordination::Kraft => claim(
            &kafka.host,
            kafka.controller_port,
            "the KRaft controller",
            path.field("kafka").field("controller_port"),
        ),
        Coordination::Zookeeper => claim(
            &kafka.host,
            kafka.zookeeper_port,
            "zookeeper",
            path.field("kafka").field("zookeeper_port"),
        ),
    });
    for (name, service) in services {
        out.push(claim(
            edge,
            service.port,
            &format!("service `{name}`"),
            FieldPath::root()
                .field("services")
                .field(name)
                .field("port"),
        ));
    }
    let monitoring = &environment.monitoring;
    if monitoring.enable {
        for (name, service) in services {
            out.push(claim(
                edge,
                service.metrics_port,
                &format!("the metrics of service `{name}`"),
                FieldPath::root()
                    .field("services")
                    .field(name)
                    .field("metrics_port"),
            ));
        }
        let ports = &monitoring.ports;
        let field = |name: &str| path.field("monitoring").field("ports").field(name);
        for (port, owner, name) in [
            (ports.prometheus, "Prometheus", "prometheus"),
            (ports.alertmanager, "Alertmanager", "alertmanager"),
            (ports.node_exporter, "the node exporter", "node_exporter"),
            (
                ports.postgres_exporter,
                "the PostgreSQL exporter",
                "postgres_exporter",
            ),
            (ports.nginx_exporter, "the nginx exporter", "nginx_exporter"),
            (ports.kafka_exporter, "the Kafka exporter", "kafka_exporter"),
        ] {
            out.push(claim(edge, port, owner, field(name)));
        }
        if monitoring.grafana.enable {
            out.push(claim(edge, ports.grafana, "Grafana", field("grafana")));
        }
        if monitoring.logs.enable {
            out.push(claim(edge, ports.loki, "Loki", field("loki")));
            out.push(claim(
                edge,
                ports.loki_grpc,
                "Loki's gRPC",
                field("loki_grpc"),
            ));
        }
    }
    out
}
