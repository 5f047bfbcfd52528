//! Topics: what services produce and consume is declared, produced by
//! someone and not applied twice; replicas fit the brokers.

use std::collections::BTreeSet;

use crate::{
    diagnostic::{Diagnostic, FieldPath, Violation},
    raw::RawPlatform,
};

/// Each service's `produces` and `consumes`, and topics nobody uses (a warning).
pub(super) fn check(
    raw: &RawPlatform,
    errors: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) {
    let declared: Vec<String> = raw.topics.keys().cloned().collect();
    let mut produced = BTreeSet::new();
    let mut consumed = BTreeSet::new();
    for service in raw.services.values() {
        produced.extend(service.produces.iter().cloned());
        consumed.extend(service.consumes.iter().cloned());
    }
    for (name, service) in &raw.services {
        let path = FieldPath::root().field("services").field(name);
        for (list, field) in [
            (&service.produces, "produces"),
            (&service.consumes, "consumes"),
        ] {
            let mut seen = BTreeSet::new();
            for (i, topic) in list.iter().enumerate() {
                let at = path.field(field).index(i);
                let violation = if !seen.insert(topic) {
                    Violation::DuplicateTopic {
                        topic: topic.clone(),
                    }
                } else if !raw.topics.contains_key(topic) {
                    Violation::UndeclaredTopic {
                        topic: topic.clone(),
                        declared: declared.clone(),
                    }
                } else if field == "consumes" && !produced.contains(topic) {
                    Violation::TopicWithoutProducer {
                        topic: topic.clone(),
                    }
                } else if field == "consumes" && service.produces.contains(topic) {
                    Violation::ConsumesOwnTopic {
                        service: name.clone(),
                        topic: topic.clone(),
                    }
                } else {
                    continue;
                };
                errors.push(Diagnostic::new(at, violation));
            }
        }
    }
    for name in raw.topics.keys() {
        if !produced.contains(name) && !consumed.contains(name) {
            warnings.push(Diagnostic::new(
                FieldPath::root().field("topics").field(name),
                Violation::TopicWithoutProducer {
                    topic: name.clone(),
                },
            ));
        }
    }
}

/// No topic has more replicas than environment `environment` has brokers.
pub(super) fn replication(raw: &RawPlatform, environment: &str, errors: &mut Vec<Diagnostic>) {
    // One broker per environment until multi-broker placement exists.
    let brokers = 1;
    for (name, topic) in &raw.topics {
        if topic.replication_factor > brokers {
            errors.push(Diagnostic::new(
                FieldPath::root()
                    .field("topics")
                    .field(name)
                    .field("replication_factor"),
                Violation::ReplicationAboveBrokers {
                    replication_factor: topic.replication_factor,
                    brokers,
                    environment: environment.to_owned(),
                },
            ));
        }
    }
}
