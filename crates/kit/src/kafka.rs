//! Kafka clients through librdkafka: the idempotent producer, consumers,
//! and the admin calls behind `teipsum topics apply`.

use std::time::{Duration, Instant};

use rdkafka::{
    ClientConfig,
    admin::{
        AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
        TopicReplication,
    },
    client::DefaultClientContext,
    consumer::{BaseConsumer, Consumer},
    error::KafkaError,
    producer::FutureProducer,
};

/// The producer every service publishes through: idempotent (no duplicates
/// or reordering from its own retries), acknowledged by all in-sync replicas.
pub fn producer(brokers: &str, client_id: &str) -> Result<FutureProducer, KafkaError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("client.id", client_id)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        // A message not delivered in this time fails, and the relay backs off.
        .set("message.timeout.ms", "30000")
        .set("log_level", "4")
        .create()
}

/// The context of every consumer: logs partition assignments (what an
/// operator wants to know after a restart) and, for a service's consumer,
/// counts the partitions it holds.
#[derive(Default)]
pub struct ConsumerWatch {
    #[cfg(feature = "service")]
    metrics: crate::metrics::ConsumerMetrics,
}

#[cfg(feature = "service")]
impl ConsumerWatch {
    /// The consumer's metrics (counted into no registry unless the consumer
    /// was made by [`observed_consumer`]).
    pub fn metrics(&self) -> &crate::metrics::ConsumerMetrics {
        &self.metrics
    }
}

impl rdkafka::ClientContext for ConsumerWatch {}

impl rdkafka::consumer::ConsumerContext for ConsumerWatch {
    fn post_rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        rebalance: &rdkafka::consumer::Rebalance<'_>,
    ) {
        use rdkafka::consumer::Rebalance;
        // The count comes from the event, never from the consumer: calling
        // back into it (`assignment()`) from this callback while it closes
        // waits forever for its own thread (a service hung on SIGTERM so).
        // The assignor is eager: an assignment is the whole of it, and a
        // revocation takes everything.
        let _ = consumer;
        #[cfg(feature = "service")]
        match rebalance {
            Rebalance::Assign(list) => self.metrics.assigned(list.count()),
            Rebalance::Revoke(_) => self.metrics.assigned(0),
            Rebalance::Error(_) => {}
        }
        match rebalance {
            Rebalance::Assign(list) => {
                let partitions: Vec<String> = list
                    .elements()
                    .iter()
                    .map(|e| format!("{}[{}]", e.topic(), e.partition()))
                    .collect();
                tracing::info!(partitions = %partitions.join(" "), "partitions assigned");
            }
            Rebalance::Revoke(list) => tracing::info!(count = list.count(), "partitions revoked"),
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance failed"),
        }
    }
}

/// `fetch.wait.max.ms` of every consumer (see [`consumer`]).
const FETCH_WAIT_MS: &str = "20";

/// A consumer of `group` that stores offsets only when told to
/// (`enable.auto.offset.store=false`) and commits stored offsets in the
/// background; a new group starts from the earliest event.
pub fn consumer(
    brokers: &str,
    group: &str,
    client_id: &str,
) -> Result<BaseConsumer<ConsumerWatch>, KafkaError> {
    consumer_as(
        brokers,
        group,
        client_id,
        &format!("{client_id}@{}", hostname()),
    )
}

/// The static member id (`group.instance.id`) of a service's consumer: one
/// per replica, the same across its restarts. Two members with one id
/// fence each other, so replicas on one host differ by their listen port.
pub fn static_member_id(client_id: &str, host: &str, port: u16) -> String {
    format!("{client_id}@{host}:{port}")
}

/// [`static_member_id`] of a replica of this host listening on `port`.
pub fn replica_member_id(client_id: &str, port: u16) -> String {
    static_member_id(client_id, &hostname(), port)
}

/// [`consumer`] as the static member `member_id`.
pub fn consumer_as(
    brokers: &str,
    group: &str,
    client_id: &str,
    member_id: &str,
) -> Result<BaseConsumer<ConsumerWatch>, KafkaError> {
    consumer_config(brokers, group, client_id, member_id)
        .create_with_context(ConsumerWatch::default())
}

/// [`consumer_as`], keeping `metrics`: the partitions it is assigned.
/// (Its lag is read from the broker at each scrape, see
/// `Metrics::consumer` in the metrics module: librdkafka's own statistics are
/// served by the consumer's polls and pause while a handler waits.)
#[cfg(feature = "service")]
pub fn observed_consumer(
    brokers: &str,
    group: &str,
    client_id: &str,
    member_id: &str,
    metrics: crate::metrics::ConsumerMetrics,
) -> Result<BaseConsumer<ConsumerWatch>, KafkaError> {
    consumer_config(brokers, group, client_id, member_id)
        .create_with_context(ConsumerWatch { metrics })
}

/// The settings of every consumer (see [`consumer`]).
fn consumer_config(brokers: &str, group: &str, client_id: &str, member_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("client.id", client_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // A member killed with SIGKILL holds its partitions until this
        // expires: short enough that a restarted service resumes quickly.
        // Eager rebalancing (librdkafka's default, said here because the
        // assigned-partitions count relies on it: see `post_rebalance`).
        .set("partition.assignment.strategy", "range,roundrobin")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "2000")
        // Static membership: a restarted service is the same member and gets
        // its partitions back at once, without a rebalance of the group.
        .set("group.instance.id", member_id)
        // How long the broker may hold a fetch that finds nothing. Kafka
        // answers as soon as an event arrives, so this only paces idle polls;
        // tansu 0.6 holds every fetch about this long even when it has
        // events, so librdkafka's 500 ms default would add half a second to
        // each hop of the saga. 20 ms costs an idle consumer ~50 small
        // requests per second.
        .set("fetch.wait.max.ms", FETCH_WAIT_MS)
        .set("enable.partition.eof", "false")
        .set("log_level", "4");
    config
}

/// This machine's name, which tells replicas of a service apart.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

/// A topic as declared in the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Replicas.
    pub replication_factor: i32,
    /// `retention.ms`.
    pub retention_ms: u64,
    /// `cleanup.policy`: `delete`, or `compact` (every event is kept for
    /// `retention_ms`, then the latest of each key).
    pub cleanup_policy: String,
}

impl TopicSpec {
    /// The topic configuration the broker is given.
    fn configs(&self) -> Vec<(&'static str, String)> {
        let mut configs = vec![
            ("retention.ms", self.retention_ms.to_string()),
            ("cleanup.policy", self.cleanup_policy.clone()),
        ];
        if self.cleanup_policy == "compact" {
            // No event is compacted away before a consumer could have
            // read it within the retention.
            configs.push(("min.compaction.lag.ms", self.retention_ms.to_string()));
        }
        configs
    }
}

impl std::str::FromStr for TopicSpec {
    type Err = String;

    /// `name:partitions:replication:retention_ms[:cleanup_policy]`, as the
    /// topics unit passes them (the policy is `delete` when left out).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        let (name, partitions, replication, retention, policy) = match parts.as_slice() {
            [n, p, r, t] => (n, p, r, t, "delete"),
            [n, p, r, t, c] => (n, p, r, t, *c),
            _ => {
                return Err(format!(
                    "`{s}`: expected name:partitions:replication:retention_ms[:delete|compact]"
                ));
            }
        };
        if !["delete", "compact"].contains(&policy) {
            return Err(format!(
                "`{s}`: cleanup policy `{policy}` is neither delete nor compact"
            ));
        }
        let number = |what: &str, text: &str| -> Result<i64, String> {
            text.parse::<i64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("`{s}`: {what} `{text}` is not a positive integer"))
        };
        if name.is_empty() {
            return Err(format!("`{s}`: empty topic name"));
        }
        Ok(TopicSpec {
            name: (*name).to_owned(),
            partitions: number("partitions", partitions)? as i32,
            replication_factor: number("replication", replication)? as i32,
            retention_ms: number("retention", retention)? as u64,
            cleanup_policy: policy.to_owned(),
        })
    }
}

/// What `apply_topics` did to one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicOutcome {
    /// It did not exist and was created.
    Created,
    /// It had fewer partitions; partitions were added.
    Grown {
        /// Partitions before.
        from: i32,
    },
    /// It has more partitions than declared: partitions are never removed.
    KeptLarger {
        /// Partitions it has.
        has: i32,
    },
    /// It exists as declared.
    Unchanged,
}

/// Admin failures.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The broker did not answer before the deadline.
    #[error("no broker answered at {brokers} within {waited:?}: {last}")]
    Unreachable {
        /// Bootstrap servers.
        brokers: String,
        /// How long we waited.
        waited: Duration,
        /// The last error.
        last: String,
    },
    /// A request failed.
    #[error("topic {topic}: {message}")]
    Topic {
        /// Topic.
        topic: String,
        /// What the broker said.
        message: String,
    },
    /// The client could not be created.
    #[error(transparent)]
    Client(#[from] KafkaError),
}

/// Partition counts of the existing topics, waiting up to `wait` for the broker.
async fn existing_topics(
    brokers: &str,
    wait: Duration,
) -> Result<std::collections::BTreeMap<String, i32>, AdminError> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(200);
    loop {
        let bootstrap = brokers.to_owned();
        let result = tokio::task::spawn_blocking(move || {
            let client: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("log_level", "3")
                .create()?;
            let metadata = client.fetch_metadata(None, Duration::from_secs(5))?;
            if metadata.brokers().is_empty() {
                return Err(KafkaError::MetadataFetch(
                    rdkafka::types::RDKafkaErrorCode::BrokerNotAvailable,
                ));
            }
            Ok(metadata
                .topics()
                .iter()
                .filter(|t| t.error().is_none())
                .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
                .collect())
        })
        .await
        .expect("metadata task");
        match result {
            Ok(topics) => return Ok(topics),
            Err(e) => {
                if started.elapsed() >= wait {
                    return Err(AdminError::Unreachable {
                        brokers: brokers.to_owned(),
                        waited: wait,
                        last: e.to_string(),
                    });
                }
                tracing::info!(%brokers, error = %e, "waiting for the broker");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Make the broker's topics match `topics`: create the missing ones, add
/// partitions where there are fewer than declared, never remove any.
/// Idempotent: a second run changes nothing.
pub async fn apply_topics(
    brokers: &str,
    topics: &[TopicSpec],
    wait: Duration,
) -> Result<Vec<(String, TopicOutcome)>, AdminError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("log_level", "3")
        .create()?;
    let existing = existing_topics(brokers, wait).await?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let mut outcomes = Vec::new();

    let missing: Vec<&TopicSpec> = topics
        .iter()
        .filter(|t| !existing.contains_key(&t.name))
        .collect();
    if !missing.is_empty() {
        let configs: Vec<Vec<(&str, String)>> = missing.iter().map(|t| t.configs()).collect();
        let new: Vec<NewTopic> = missing
            .iter()
            .zip(&configs)
            .map(|(t, configs)| {
                let topic = NewTopic::new(
                    &t.name,
                    t.partitions,
                    TopicReplication::Fixed(t.replication_factor),
                );
                configs
                    .iter()
                    .fold(topic, |topic, (key, value)| topic.set(key, value))
            })
            .collect();
        for result in admin.create_topics(new.iter(), &options).await? {
            match result {
                Ok(name) => outcomes.push((name, TopicOutcome::Created)),
                // Created meanwhile by someone else: that is what we wanted.
                Err((name, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {
                    outcomes.push((name, TopicOutcome::Unchanged))
                }
                Err((name, code)) => {
                    return Err(AdminError::Topic {
                        topic: name,
                        message: code.to_string(),
                    });
                }
            }
        }
    }

    let mut grow = Vec::new();
    for t in topics {
        let Some(&has) = existing.get(&t.name) else {
            continue;
        };
        if has < t.partitions {
            grow.push(NewPartitions::new(&t.name, t.partitions as usize));
            outcomes.push((t.name.clone(), TopicOutcome::Grown { from: has }));
        } else if has > t.partitions {
            tracing::warn!(topic = %t.name, has, declared = t.partitions, "partitions are never removed; keeping them");
            outcomes.push((t.name.clone(), TopicOutcome::KeptLarger { has }));
        } else {
            outcomes.push((t.name.clone(), TopicOutcome::Unchanged));
        }
    }
    if !grow.is_empty() {
        let results = admin
            .create_partitions(grow.iter(), &options)
            .await
            .map_err(|e| {
                // Some Kafka-compatible brokers (tansu) do not implement CreatePartitions.
                let names: Vec<&str> = topics
                    .iter()
                    .filter(|t| existing.get(&t.name).is_some_and(|&has| has < t.partitions))
                    .map(|t| t.name.as_str())
                    .collect();
                AdminError::Topic {
                    topic: names.join(", "),
                    message: format!("cannot add partitions: {e}"),
                }
            })?;
        for result in results {
            if let Err((name, code)) = result {
                return Err(AdminError::Topic {
                    topic: name,
                    message: format!("adding partitions: {code}"),
                });
            }
        }
    }

    // Retention and cleanup policy of topics that already existed, in one
    // AlterConfig each (it replaces the topic's whole configuration).
    // Brokers that do not implement AlterConfigs (some Kafka-compatible
    // ones) keep their values; that is reported, not fatal.
    let existing_declared: Vec<(&TopicSpec, Vec<(&str, String)>)> = topics
        .iter()
        .filter(|t| existing.contains_key(&t.name))
        .map(|t| (t, t.configs()))
        .collect();
    if !existing_declared.is_empty() {
        let alters: Vec<AlterConfig> = existing_declared
            .iter()
            .map(|(t, configs)| {
                configs.iter().fold(
                    AlterConfig::new(ResourceSpecifier::Topic(&t.name)),
                    |alter, (key, value)| alter.set(key, value),
                )
            })
            .collect();
        match admin.alter_configs(alters.iter(), &options).await {
            Ok(results) => {
                for result in results {
                    if let Err((resource, code)) = result {
                        tracing::warn!(?resource, %code, "could not set retention.ms and cleanup.policy");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "the broker does not accept AlterConfigs; retention and cleanup policy of existing topics unchanged")
            }
        }
    }
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_on_one_host_are_different_static_members() {
        let a = static_member_id("teipsum-order", "main", 8100);
        let b = static_member_id("teipsum-order", "main", 8101);
        assert_ne!(a, b, "two replicas would fence each other");
        assert_eq!(
            a,
            static_member_id("teipsum-order", "main", 8100),
            "stable across restarts"
        );
        assert_eq!(a, "teipsum-order@main:8100");
    }

    #[test]
    fn topic_specs_parse_from_the_units_arguments() {
        let t: TopicSpec = "order-events:3:1:2592000000".parse().unwrap();
        assert_eq!(t.name, "order-events");
        assert_eq!(
            (t.partitions, t.replication_factor, t.retention_ms),
            (3, 1, 2_592_000_000)
        );
        assert_eq!(t.cleanup_policy, "delete", "the default");
        let compacted: TopicSpec = "product-events:3:1:5:compact".parse().unwrap();
        assert_eq!(compacted.cleanup_policy, "compact");
        assert!(
            compacted
                .configs()
                .contains(&("min.compaction.lag.ms", "5".to_owned())),
            "every event stays for the retention"
        );
        assert!("product-events:3:1:5:shred".parse::<TopicSpec>().is_err());
        assert!("order-events:3:1".parse::<TopicSpec>().is_err());
        assert!("order-events:0:1:5".parse::<TopicSpec>().is_err());
        assert!(":3:1:5".parse::<TopicSpec>().is_err());
        assert!(
            "x:three:1:5"
                .parse::<TopicSpec>()
                .unwrap_err()
                .contains("partitions")
        );
    }
}

/// How far one consumer group is behind on one topic, as the broker sees
/// it (what `kafka-consumer-groups.sh --describe` shows): the high
/// watermark of each partition less the group's committed offset.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupLag {
    /// The consumer group.
    pub group: String,
    /// The topic.
    pub topic: String,
    /// Its partitions.
    pub partitions: usize,
    /// Events not yet committed by the group, over every partition; a
    /// partition without a committed offset counts everything it retains.
    pub lag: i64,
    /// Partitions holding events the group has never committed an offset on.
    pub uncommitted: usize,
}

/// The lag of each `(group, topics)` on every partition of its topics,
/// without joining the groups (offsets are read with OffsetFetch, the
/// watermarks with ListOffsets), waiting at most `timeout` per request.
pub async fn group_lags(
    brokers: &str,
    groups: &[(String, Vec<String>)],
    timeout: Duration,
) -> Result<Vec<GroupLag>, AdminError> {
    let brokers = brokers.to_owned();
    let groups = groups.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut lags = Vec::new();
        for (group, topics) in &groups {
            let client = lag_reader(&brokers, group)?;
            for topic in topics {
                let failed = |e: KafkaError| AdminError::Topic {
                    topic: topic.clone(),
                    message: e.to_string(),
                };
                let partitions = partition_lags(&client, topic, timeout).map_err(failed)?;
                let lag = GroupLag {
                    group: group.clone(),
                    topic: topic.clone(),
                    partitions: partitions.len(),
                    lag: partitions.iter().map(|p| p.lag).sum(),
                    uncommitted: partitions
                        .iter()
                        .filter(|p| !p.committed && p.lag > 0)
                        .count(),
                };
                lags.push(lag);
            }
        }
        Ok(lags)
    })
    .await
    .expect("the lag task does not panic")
}

/// One partition's lag for the group of `client` (see [`partition_lags`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLag {
    /// The partition.
    pub partition: i32,
    /// Its high watermark less the group's committed offset; everything it
    /// retains when the group never committed there.
    pub lag: i64,
    /// Whether the group has committed an offset there.
    pub committed: bool,
}

/// The lag of `client`'s group on every partition of `topic`: OffsetFetch
/// for the group's offsets and ListOffsets for the watermarks, each within
/// `timeout`. The client need not be a member of the group (it is not
/// subscribed), so the reading does not depend on the group's consumer.
pub fn partition_lags<C: rdkafka::consumer::ConsumerContext>(
    client: &BaseConsumer<C>,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<PartitionLag>, KafkaError> {
    let metadata = client.fetch_metadata(Some(topic), timeout)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut list = rdkafka::TopicPartitionList::new();
    for &p in &partitions {
        list.add_partition(topic, p);
    }
    let committed = client.committed_offsets(list, timeout)?;
    partitions
        .into_iter()
        .map(|partition| {
            let (low, high) = client.fetch_watermarks(topic, partition, timeout)?;
            let offset = committed
                .find_partition(topic, partition)
                .and_then(|e| e.offset().to_raw())
                .filter(|o| *o >= 0);
            Ok(PartitionLag {
                partition,
                lag: match offset {
                    Some(offset) => (high - offset).max(0),
                    None => (high - low).max(0),
                },
                committed: offset.is_some(),
            })
        })
        .collect()
}

/// A client that reads `group`'s offsets without joining it (no
/// subscription, no commits), for [`partition_lags`].
pub fn lag_reader(brokers: &str, group: &str) -> Result<BaseConsumer, KafkaError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("log_level", "3")
        .create()
}
