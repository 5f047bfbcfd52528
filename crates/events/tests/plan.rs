//! The contracts against the spec: what `config.ncl` says each service
//! produces and consumes is what this crate says, in every environment's
//! resolved Plan. A service that starts emitting a kind, or a spec that
//! drops a topic a consumer reads, fails here rather than at a deploy.

use std::path::Path;

use teipsum_events::{Kind, Subscription, produced_by, producers_of};

fn plans() -> Vec<(String, teipsum_spec::plan::Plan)> {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.ncl");
    let spec = teipsum_spec::load_spec(&config).expect("config.ncl is valid");
    assert!(!spec.plans.is_empty(), "config.ncl has environments");
    spec.plans.into_iter().collect()
}

#[test]
fn every_service_produces_and_consumes_what_the_contracts_say() {
    for (env, plan) in plans() {
        for service in &plan.services {
            let produces: Vec<&str> = service.produces.iter().map(String::as_str).collect();
            assert_eq!(
                produces,
                produced_by(&service.name),
                "{env}: services.{}.produces against the kinds teipsum-events says it emits",
                service.name
            );
            let consumes: Vec<&str> = service.consumes.iter().map(String::as_str).collect();
            let subscribed = Subscription::of(&service.name)
                .map(|s| s.topics())
                .unwrap_or_default();
            assert_eq!(
                consumes, subscribed,
                "{env}: services.{}.consumes against its teipsum-events subscription",
                service.name
            );
        }
        for subscription in Subscription::ALL {
            assert!(
                plan.service(subscription.service).is_some(),
                "{env}: the consumer {} is not a service of the spec",
                subscription.service
            );
        }
    }
}

#[test]
fn every_topic_of_a_kind_exists_with_its_producer() {
    for (env, plan) in plans() {
        for kind in Kind::ALL {
            let topic = plan.topic(kind.topic()).unwrap_or_else(|| {
                panic!("{env}: topic {} of {kind} is not in the spec", kind.topic())
            });
            let producers: Vec<&str> = topic.producers.iter().map(String::as_str).collect();
            assert_eq!(
                producers,
                producers_of(kind.topic()),
                "{env}: the producers of topic {}",
                kind.topic()
            );
        }
    }
}
