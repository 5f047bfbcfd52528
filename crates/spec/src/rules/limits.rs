//! The unit's `MemoryMax=` and `TasksMax=`: small enough to be a bound,
//! large enough for a service to start; and the consumer's batch bound.

use crate::{
    diagnostic::{Diagnostic, FieldPath, Violation},
    raw::RawService,
};

/// The resource limits of the service at `path`.
pub(super) fn check(path: &FieldPath, service: &RawService, errors: &mut Vec<Diagnostic>) {
    let (min, max) = (64 << 20, 64 << 30);
    if !(min..=max).contains(&service.memory_max.bytes()) {
        errors.push(Diagnostic::new(
            path.field("memory_max"),
            Violation::LimitOutOfRange {
                what: "a service's memory limit",
                value: service.memory_max.to_string(),
                min: "64M",
                max: "64G",
            },
        ));
    }
    if !(64..=65_536).contains(&service.tasks_max) {
        errors.push(Diagnostic::new(
            path.field("tasks_max"),
            Violation::LimitOutOfRange {
                what: "a service's task limit",
                value: service.tasks_max.to_string(),
                min: "64",
                max: "65536",
            },
        ));
    }
    // One transaction holds a whole batch's rows locked; beyond this a
    // failed batch would take long to replay event by event.
    if !(1..=10_000).contains(&service.consumer_batch) {
        errors.push(Diagnostic::new(
            path.field("consumer_batch"),
            Violation::LimitOutOfRange {
                what: "a consumer's batch bound",
                value: service.consumer_batch.to_string(),
                min: "1",
                max: "10000",
            },
        ));
    }
}
