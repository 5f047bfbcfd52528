//! Monitoring: one way to deliver alerts, thresholds a query can count,
//! secrets as files, sane scrape and retention durations. Port clashes of
//! the monitoring components are the environment's port rule.

use teipsum_conventions::metrics::DURATION_BUCKETS;

use super::{Bounds, duration_within, secrets};
use crate::{
    diagnostic::{Diagnostic, FieldPath, Violation},
    raw::RawMonitoring,
    syntax::is_email,
};

/// The `monitoring` of one environment, at `path`.
pub(super) fn check(monitoring: &RawMonitoring, path: &FieldPath, errors: &mut Vec<Diagnostic>) {
    let path = path.field("monitoring");
    if !monitoring.enable {
        return;
    }
    receiver(monitoring, &path, errors);
    grafana(monitoring, &path, errors);
    if monitoring.logs.enable {
        duration_within(
            path.field("logs").field("retention"),
            monitoring.logs.retention,
            Bounds {
                what: "the log retention",
                min: (86_400_000, "1d"),
                max: (400 * 86_400_000, "400d"),
            },
            errors,
        );
        if !monitoring
            .logs
            .retention
            .millis()
            .is_multiple_of(86_400_000)
        {
            errors.push(Diagnostic::new(
                path.field("logs").field("retention"),
                Violation::NotWholeDays {
                    what: "the log retention",
                    value: monitoring.logs.retention.to_string(),
                },
            ));
        }
    }
    let latency = monitoring.alerts.latency;
    if !DURATION_BUCKETS
        .iter()
        .any(|bound| (bound * 1000.0).round() as u64 == latency.millis())
    {
        errors.push(Diagnostic::new(
            path.field("alerts").field("latency"),
            Violation::LatencyNotABucket {
                value: latency.to_string(),
            },
        ));
    }
    duration_within(
        path.field("scrape_interval"),
        monitoring.scrape_interval,
        Bounds {
            what: "the scrape interval",
            min: (5_000, "5s"),
            max: (300_000, "5min"),
        },
        errors,
    );
    duration_within(
        path.field("retention"),
        monitoring.retention,
        Bounds {
            what: "the metrics retention",
            min: (86_400_000, "1d"),
            max: (400 * 86_400_000, "400d"),
        },
        errors,
    );
    let alerts = path.field("alerts");
    for (field, value, what, min) in [
        (
            "consumer_stalled",
            monitoring.alerts.consumer_stalled,
            "the stalled consumer alert",
            (10_000, "10s"),
        ),
        (
            "outbox_oldest",
            monitoring.alerts.outbox_oldest,
            "the outbox age alert",
            (10_000, "10s"),
        ),
        (
            "backup_max_age",
            monitoring.alerts.backup_max_age,
            "the backup age alert",
            (3_600_000, "1h"),
        ),
        (
            "certificate_expiry",
            monitoring.alerts.certificate_expiry,
            "the certificate expiry alert",
            (86_400_000, "1d"),
        ),
    ] {
        duration_within(
            alerts.field(field),
            value,
            Bounds {
                what,
                min,
                max: (90 * 86_400_000, "90d"),
            },
            errors,
        );
    }
}

/// Exactly one delivery, its secrets as host files.
fn receiver(monitoring: &RawMonitoring, path: &FieldPath, errors: &mut Vec<Diagnostic>) {
    let Some(receiver) = &monitoring.receiver else {
        errors.push(Diagnostic::new(
            path.field("receiver"),
            Violation::BadReceiver {
                problem: "a monitored environment needs somewhere to send its alerts",
            },
        ));
        return;
    };
    let path = path.field("receiver");
    if receiver.webhook_url_file.is_some() == receiver.email.is_some() {
        errors.push(Diagnostic::new(
            path.clone(),
            Violation::BadReceiver {
                problem: "the alert receiver needs exactly one of `webhook_url_file` and `email`",
            },
        ));
    }
    if let Some(email) = &receiver.email {
        for (field, address) in [("to", &email.to), ("from", &email.from)] {
            if !is_email(address) {
                errors.push(Diagnostic::new(
                    path.field("email").field(field),
                    Violation::BadEmail {
                        email: address.clone(),
                    },
                ));
            }
        }
    }
    let files = [
        (
            path.field("webhook_url_file"),
            "webhook_url_file",
            receiver.webhook_url_file.as_ref(),
        ),
        (
            path.field("email").field("password_file"),
            "password_file",
            receiver
                .email
                .as_ref()
                .and_then(|email| email.password_file.as_ref()),
        ),
    ];
    for (at, name, file) in files {
        if let Some(file) = file {
            secrets::file(at, name, file, errors);
        }
    }
}

/// Grafana's two secrets, as host files, when it runs.
fn grafana(monitoring: &RawMonitoring, path: &FieldPath, errors: &mut Vec<Diagnostic>) {
    let grafana = &monitoring.grafana;
    if !grafana.enable {
        return;
    }
    let path = path.field("grafana");
    for (name, file) in [
        ("secret_key_file", &grafana.secret_key_file),
        ("admin_password_file", &grafana.admin_password_file),
    ] {
        match file {
            Some(file) => secrets::file(path.field(name), name, file, errors),
            None => errors.push(Diagnostic::new(
                path.field(name),
                Violation::MissingSecretFile {
                    name: name.to_owned(),
                    needed_by: "Grafana",
                },
            )),
        }
    }
}
