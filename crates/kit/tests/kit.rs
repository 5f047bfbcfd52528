//! The kit against real components: a throw-away PostgreSQL cluster, a tansu
//! broker, real processes and a real NOTIFY_SOCKET.
//!
//! Some tests run part of themselves in a child process (the test binary
//! started again with `KIT_CHILD=<role>`), so that it can be killed with
//! SIGKILL or observed through sd_notify like a service under systemd.

use std::{
    collections::{BTreeMap, BTreeSet},
    os::unix::net::UnixDatagram,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use rdkafka::{Message, Offset, TopicPartitionList, consumer::Consumer, producer::FutureRecord};
use teipsum_kit::{
    db::Db,
    events::{self, Envelope, HandleError},
    jwt::{self, Claims, Role, Signer, Verifier},
    kafka,
};
use teipsum_testkit::{Postgres, Tansu, TempDir};
use uuid::Uuid;

/// Run the child role named by `KIT_CHILD`, if any, instead of the test.
fn child_role() -> Option<String> {
    std::env::var("KIT_CHILD").ok()
}

/// Start this test binary again, running only `test` with `KIT_CHILD=role`.
fn spawn_child(test: &str, role: &str, env: &[(&str, String)]) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("KIT_CHILD", role)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().expect("the test binary starts again")
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A migrated database with an `effects` table for handlers to write to.
fn database(pg: &Postgres, name: &str) -> (Db, String) {
    let conninfo = pg.create_database(name).expect("the database is created");
    let db = Db::new(&conninfo, 8, None).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(db.migrate(name, refinery::Runner::new(&[])))
        .unwrap();
    db.get()
        .unwrap()
        .batch_execute("CREATE TABLE IF NOT EXISTS effects (event_id UUID NOT NULL, subject TEXT NOT NULL, seq INT NOT NULL, tx BIGINT NOT NULL DEFAULT txid_current())")
        .unwrap();
    (db, conninfo)
}

/// Append `n` events per subject in committed transactions, plus some in
/// rolled-back ones; returns the committed envelopes in order.
fn fill_outbox(db: &Db, topic: &str, subjects: &[&str], n: usize) -> Vec<Envelope> {
    let mut committed = Vec::new();
    let mut conn = db.get().unwrap();
    for seq in 0..n {
        for subject in subjects {
            let event = Envelope::new(
                "test",
                "thing-changed",
                1,
                subject,
                serde_json::json!({"seq": seq}),
            );
            let mut tx = conn.transaction().unwrap();
            events::append(&mut tx, topic, &event).unwrap();
            if seq % 7 == 3 {
                tx.rollback().unwrap();
            } else {
                tx.commit().unwrap();
                committed.push(event);
            }
        }
    }
    committed
}

/// Everything on `topic`, from the beginning, until `expected` distinct ids were seen.
fn read_topic(broker: &Tansu, topic: &str, expected: usize, timeout: Duration) -> Vec<Envelope> {
    let consumer = kafka::consumer(
        &broker.bootstrap,
        &format!("reader-{}", Uuid::new_v4()),
        "reader",
    )
    .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let mut ids = BTreeSet::new();
    let started = Instant::now();
    while ids.len() < expected && started.elapsed() < timeout {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            let event: Envelope = serde_json::from_slice(message.payload().unwrap()).unwrap();
            assert_eq!(
                message.key(),
                Some(event.subject.as_bytes()),
                "the key is the subject"
            );
            ids.insert(event.id);
            out.push(event);
        }
    }
    // Anything extra still in flight shows up within a moment.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_millis(500) {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            out.push(serde_json::from_slice(message.payload().unwrap()).unwrap());
        }
    }
    out
}

/// Per subject, the sequence numbers in the order they were first delivered.
fn first_seen_order(events: &[Envelope]) -> BTreeMap<String, Vec<i64>> {
    let mut seen = BTreeSet::new();
    let mut order: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for e in events {
        if seen.insert(e.id) {
            order
                .entry(e.subject.clone())
                .or_default()
                .push(e.data["seq"].as_i64().unwrap());
        }
    }
    order
}

#[test]
fn the_relay_publishes_exactly_the_committed_events_in_per_aggregate_order() {
    if child_role().is_some() {
        return;
    }
    let pg = Postgres::start().expect("PostgreSQL starts");
    let broker = Tansu::start().expect("tansu starts");
    broker
        .create_topics(&[("things", 3)])
        .expect("the topics are created");
    let (db, _) = database(&pg, "relay_order");
    let committed = fill_outbox(&db, "things", &["a", "b", "c", "d"], 60);
    let producer = kafka::producer(&broker.bootstrap, "relay-test").unwrap();
    let relay = events::spawn_relay(
        db.clone(),
        producer,
        "relay_order",
        events::Retention::new(Duration::from_secs(86_400)),
        Default::default(),
    );

    let delivered = read_topic(&broker, "things", committed.len(), Duration::from_secs(60));
    relay.stop();
    let delivered_ids: BTreeSet<Uuid> = delivered.iter().map(|e| e.id).collect();
    let committed_ids: BTreeSet<Uuid> = committed.iter().map(|e| e.id).collect();
    assert_eq!(
        delivered_ids, committed_ids,
        "exactly the committed events, none rolled back"
    );
    assert_eq!(
        delivered.len(),
        committed.len(),
        "no duplicates without a crash"
    );
    for (subject, seqs) in first_seen_order(&delivered) {
        let mut sorted = seqs.clone();
        sorted.sort();
        assert_eq!(seqs, sorted, "events of {subject} out of order");
    }
    let unsent: i64 = db
        .get()
        .unwrap()
        .query_one("SELECT count(*) FROM kit_outbox WHERE sent_at IS NULL", &[])
        .unwrap()
        .get(0);
    assert_eq!(unsent, 0);
}

#[test]
fn killing_the_relay_mid_batch_and_restarting_it_loses_nothing() {
    if child_role().as_deref() == Some("relay") {
        // The child: relay until killed.
        let db = Db::new(&std::env::var("KIT_DB").unwrap(), 4, None).unwrap();
        let producer =
            kafka::producer(&std::env::var("KIT_BROKER").unwrap(), "relay-child").unwrap();
        let _relay = events::spawn_relay(
            db,
            producer,
            "relay_kill",
            events::Retention::new(Duration::from_secs(86_400)),
            Default::default(),
        );
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let pg = Postgres::start().expect("PostgreSQL starts");
    let broker = Tansu::start().expect("tansu starts");
    broker
        .create_topics(&[("things", 3)])
        .expect("the topics are created");
    let (db, conninfo) = database(&pg, "relay_kill");
    let committed = fill_outbox(&db, "things", &["a", "b", "c"], 700);
    let count = |sql: &str| -> i64 { db.get().unwrap().query_one(sql, &[]).unwrap().get(0) };

    let mut child = spawn_child(
        "killing_the_relay_mid_batch_and_restarting_it_loses_nothing",
        "relay",
        &[
            ("KIT_DB", conninfo),
            ("KIT_BROKER", broker.bootstrap.clone()),
        ],
    );
    // Kill it once it has published some, but not all.
    wait_until(
        "the child relay to publish",
        Duration::from_secs(60),
        || count("SELECT count(*) FROM kit_outbox WHERE sent_at IS NOT NULL") > 0,
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let sent_before_restart = count("SELECT count(*) FROM kit_outbox WHERE sent_at IS NOT NULL");
    assert!(
        (sent_before_restart as usize) < committed.len(),
        "the relay finished before it could be killed; make the backlog bigger"
    );

    let producer = kafka::producer(&broker.bootstrap, "relay-restarted").unwrap();
    let relay = events::spawn_relay(
        db.clone(),
        producer,
        "relay_kill",
        events::Retention::new(Duration::from_secs(86_400)),
        Default::default(),
    );
    wait_until("the backlog to drain", Duration::from_secs(120), || {
        count("SELECT count(*) FROM kit_outbox WHERE sent_at IS NULL") == 0
    });
    let delivered = read_topic(&broker, "things", committed.len(), Duration::from_secs(60));
    relay.stop();
    let delivered_ids: BTreeSet<Uuid> = delivered.iter().map(|e| e.id).collect();
    let committed_ids: BTreeSet<Uuid> = committed.iter().map(|e| e.id).collect();
    assert_eq!(
        delivered_ids, committed_ids,
        "every committed event, once or more"
    );
    for (subject, seqs) in first_seen_order(&delivered) {
        let mut sorted = seqs.clone();
        sorted.sort();
        assert_eq!(seqs, sorted, "events of {subject} out of order");
    }
    println!(
        "killed after {sent_before_restart} of {} sent; {} deliveries after restart",
        committed.len(),
        delivered.len()
    );
}

fn effect_handler() -> impl events::Handler {
    |tx: &mut postgres::Transaction<'_>,
     _topic: &str,
     event: &Envelope|
     -> Result<(), HandleError> {
        let seq = event.data["seq"]
            .as_i64()
            .ok_or_else(|| HandleError::Permanent(anyhow::anyhow!("no seq")))?;
        tx.execute(
            "INSERT INTO effects (event_id, subject, seq) VALUES ($1, $2, $3)",
            &[&event.id, &event.subject, &(seq as i32)],
        )?;
        Ok(())
    }
}

/// Events on `things` come from `test`.
fn trust_test() -> events::Producers {
    events::Producers::of([("things", &["test"][..])])
}

fn produce(broker: &Tansu, topic: &str, key: &str, payload: &[u8]) {
    let producer = kafka::producer(&broker.bootstrap, "test-producer").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(producer.send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(10),
        ))
        .expect("delivered");
}

#[test]
fn a_consumer_fed_the_same_event_twice_applies_it_once_parks_poison_and_skips_other_kinds() {
    if child_role().is_some() {
        return;
    }
    let pg = Postgres::start().expect("PostgreSQL starts");
    let broker = Tansu::start().expect("tansu starts");
    broker
        .create_topics(&[("things", 1)])
        .expect("the topics are created");
    let (db, _) = database(&pg, "consumer_dup");
    let event = Envelope::new(
        "test",
        "thing-changed",
        1,
        "a",
        serde_json::json!({"seq": 1}),
    );
    let bytes = serde_json::to_vec(&event).unwrap();
    produce(&broker, "things", "a", &bytes);
    produce(&broker, "things", "a", &bytes);
    produce(&broker, "things", "x", b"this is not an envelope");
    let wrong = Envelope::new(
        "test",
        "thing-changed",
        1,
        "w",
        serde_json::json!({"no": "seq"}),
    );
    produce(&broker, "things", "w", &serde_json::to_vec(&wrong).unwrap());
    // A kind this consumer is not for: it would be parked (no seq) if it
    // were applied, so a skip leaves no trace at all.
    let other = Envelope::new(
        "test",
        "thing-audited",
        1,
        "o",
        serde_json::json!({"no": "seq"}),
    );
    produce(&broker, "things", "o", &serde_json::to_vec(&other).unwrap());
    let after = Envelope::new(
        "test",
        "thing-changed",
        1,
        "b",
        serde_json::json!({"seq": 2}),
    );
    produce(&broker, "things", "b", &serde_json::to_vec(&after).unwrap());

    let consumer = kafka::consumer(&broker.bootstrap, "dup-group", "dup").unwrap();
    let worker = events::spawn_consumer(
        db.clone(),
        consumer,
        "consumer_dup",
        &["things"],
        trust_test(),
        events::only(&["thing-changed"], effect_handler()),
        events::DEFAULT_BATCH,
    )
    .unwrap();
    let count = |sql: &str| -> i64 { db.get().unwrap().query_one(sql, &[]).unwrap().get(0) };
    wait_until("the last event", Duration::from_secs(60), || {
        count("SELECT count(*) FROM effects WHERE subject = 'b'") == 1
    });
    worker.stop();
    assert_eq!(
        count("SELECT count(*) FROM effects WHERE subject = 'a'"),
        1,
        "applied once"
    );
    assert_eq!(
        count("SELECT count(*) FROM kit_processed_events WHERE consumer = 'consumer_dup'"),
        2,
        "a ledger row for each applied event, none for the skipped kind"
    );
    assert_eq!(
        count("SELECT count(*) FROM kit_parked_events"),
        2,
        "the non-envelope and the unappliable event are parked"
    );
    assert_eq!(
        count("SELECT count(*) FROM effects WHERE subject = 'w'"),
        0,
        "nothing partial"
    );
}

#[test]
fn a_crash_between_commit_and_offset_store_causes_no_double_effect() {
    if child_role().as_deref() == Some("consumer") {
        let db = Db::new(&std::env::var("KIT_DB").unwrap(), 4, None).unwrap();
        let consumer = kafka::consumer(
            &std::env::var("KIT_BROKER").unwrap(),
            "crash-group",
            "crash",
        )
        .unwrap();
        let _worker = events::spawn_consumer(
            db,
            consumer,
            "consumer_crash",
            &["things"],
            trust_test(),
            effect_handler(),
            events::DEFAULT_BATCH,
        )
        .unwrap();
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let pg = Postgres::start().expect("PostgreSQL starts");
    let broker = Tansu::start().expect("tansu starts");
    broker
        .create_topics(&[("things", 1)])
        .expect("the topics are created");
    let (db, conninfo) = database(&pg, "consumer_crash");
    let count = |sql: &str| -> i64 { db.get().unwrap().query_one(sql, &[]).unwrap().get(0) };
    let committed_offset = || offset_committed_by(&broker, "crash-group");

    // Each round kills the consumer right after the event's transaction
    // commits, before the offset reaches the broker (it is committed once a
    // second). A kill that comes too late, rarely, is tried again.
    let mut redeliveries_forced = 0;
    let mut rounds = 0;
    for round in 0..3 {
        rounds += 1;
        let event = Envelope::new(
            "test",
            "thing-changed",
            1,
            format!("s{round}"),
            serde_json::json!({"seq": round}),
        );
        produce(
            &broker,
            "things",
            &event.subject,
            &serde_json::to_vec(&event).unwrap(),
        );
        let mut child = spawn_child(
            "a_crash_between_commit_and_offset_store_causes_no_double_effect",
            "consumer",
            &[
                ("KIT_DB", conninfo.clone()),
                ("KIT_BROKER", broker.bootstrap.clone()),
            ],
        );
        let sql = format!(
            "SELECT count(*) FROM kit_processed_events WHERE event_id = '{}'",
            event.id
        );
        // A new member waits for the killed one's session to expire.
        wait_until(
            "the child to apply the event",
            Duration::from_secs(120),
            || count(&sql) == 1,
        );
        child.kill().unwrap();
        child.wait().unwrap();
        if committed_offset() <= round {
            redeliveries_forced += 1;
            break;
        }
    }
    assert!(
        redeliveries_forced > 0,
        "every kill came after the offset commit; the test proved nothing"
    );

    // The restarted consumer (the same member, as a restarted service is)
    // gets the uncommitted events again and skips them.
    let consumer = kafka::consumer(&broker.bootstrap, "crash-group", "crash").unwrap();
    let worker = events::spawn_consumer(
        db.clone(),
        consumer,
        "consumer_crash",
        &["things"],
        trust_test(),
        effect_handler(),
        events::DEFAULT_BATCH,
    )
    .unwrap();
    wait_until("the offsets to catch up", Duration::from_secs(120), || {
        committed_offset() == rounds
    });
    worker.stop();
    for round in 0..rounds {
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM effects WHERE subject = 's{round}'"
            )),
            1,
            "event {round} applied more than once"
        );
    }
    println!("{redeliveries_forced} redelivery forced in {rounds} round(s)");
}

/// The offset `group` has committed on partition 0 of `things` (0 before any).
fn offset_committed_by(broker: &Tansu, group: &str) -> i64 {
    let probe = kafka::consumer(&broker.bootstrap, group, "probe").unwrap();
    let mut list = TopicPartitionList::new();
    list.add_partition("things", 0);
    let committed = probe
        .committed_offsets(list, Duration::from_secs(10))
        .unwrap();
    match committed.find_partition("things", 0).unwrap().offset() {
        Offset::Offset(o) => o,
        _ => 0,
    }
}

fn claims(now: u64) -> Claims {
    Claims {
        iss: "https://teipsum.store".into(),
        aud: "teipsum".into(),
        sub: Uuid::new_v4(),
        role: Role::Customer,
        iat: now,
        nbf: now,
        exp: now + 900,
        jti: Uuid::new_v4(),
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn jwt_verification_rejects_every_classic_forgery() {
    if child_role().is_some() {
        return;
    }
    let (private, public) = jwt::generate_keypair();
    let signer = Signer::new(private.as_bytes()).unwrap();
    let verifier = Verifier::new(public.as_bytes(), "https://teipsum.store", "teipsum").unwrap();
    let now = jwt::now();
    let good = signer.sign(&claims(now));
    assert!(verifier.verify(&good).is_ok());

    let payload = b64(&serde_json::to_vec(&claims(now)).unwrap());
    let alg_none = format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"at+jwt"}"#));
    let hs256_with_public_key = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        jsonwebtoken::encode(
            &header,
            &claims(now),
            &jsonwebtoken::EncodingKey::from_secret(public.as_bytes()),
        )
        .unwrap()
    };
    let with = |f: &dyn Fn(&mut Claims)| {
        let mut c = claims(now);
        f(&mut c);
        signer.sign(&c)
    };
    let tampered = {
        let parts: Vec<&str> = good.split('.').collect();
        let mut c = claims(now);
        c.role = Role::Admin;
        format!(
            "{}.{}.{}",
            parts[0],
            b64(&serde_json::to_vec(&c).unwrap()),
            parts[2]
        )
    };
    let wrong_typ = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(
            &header,
            &claims(now),
            &jsonwebtoken::EncodingKey::from_ed_pem(private.as_bytes()).unwrap(),
        )
        .unwrap()
    };
    let other_key = {
        let (other, _) = jwt::generate_keypair();
        Signer::new(other.as_bytes()).unwrap().sign(&claims(now))
    };
    let forgeries = [
        ("alg none", alg_none),
        ("HS256 keyed with the public key", hs256_with_public_key),
        ("wrong audience", with(&|c| c.aud = "someone-else".into())),
        (
            "wrong issuer",
            with(&|c| c.iss = "https://evil.example".into()),
        ),
        ("expired", with(&|c| c.exp = now - 120)),
        ("not yet valid", with(&|c| c.nbf = now + 120)),
        ("tampered payload", tampered),
        ("wrong typ", wrong_typ),
        ("signed by another key", other_key),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (what, token) in forgeries {
        assert!(verifier.verify(&token).is_err(), "accepted a token: {what}");
    }
    // Within the 30 s leeway, clock skew is tolerated.
    assert!(verifier.verify(&with(&|c| c.exp = now - 10)).is_ok());
}

/// Settings of a minimal service for the process tests.
fn service_env(conninfo: &str, broker: &str, port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("TEIPSUM_SERVICE", "probe".to_owned()),
        ("TEIPSUM_LISTEN", format!("127.0.0.1:{port}")),
        ("TEIPSUM_DATABASE", conninfo.to_owned()),
        ("TEIPSUM_KAFKA_BROKERS", broker.to_owned()),
        ("TEIPSUM_JWT_ISSUER", "https://teipsum.store".to_owned()),
        ("TEIPSUM_JWT_AUDIENCE", "teipsum".to_owned()),
        ("TEIPSUM_LOG", "warn".to_owned()),
    ]
}

fn run_probe_service() {
    use warp::Filter;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let code = runtime.block_on(teipsum_kit::service::run(
        teipsum_kit::Service {
            name: "probe",
            migrations: || refinery::Runner::new(&[]),
            verifies_tokens: false,
            openapi: utoipa::openapi::OpenApi::default,
        },
        |_ctx| {
            Ok(teipsum_kit::Parts {
                routes: warp::path!("hello").map(|| "hello"),
                consumer: None,
            })
        },
    ));
    std::process::exit(if code == std::process::ExitCode::SUCCESS {
        0
    } else {
        1
    });
}

/// Datagrams received on `socket` within `timeout`, until `stop` matches one.
fn receive(socket: &UnixDatagram, timeout: Duration, stop: &str) -> Vec<String> {
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut got = Vec::new();
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    while started.elapsed() < timeout {
        if let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = text.lines().any(|l| l == stop);
            got.push(text);
            if done {
                break;
            }
        }
    }
    got
}

#[test]
fn ready_watchdog_and_stopping_reach_a_real_notify_socket() {
    if child_role().as_deref() == Some("probe") {
        run_probe_service();
        return;
    }
    let pg = Postgres::start().expect("PostgreSQL starts");
    let broker = Tansu::start().expect("tansu starts");
    let conninfo = pg
        .create_database("probe")
        .expect("the database is created");
    let dir = TempDir::new("notify").expect("a temporary directory");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let port = teipsum_testkit::free_port().expect("a free port");
    let mut env = service_env(&conninfo, &broker.bootstrap, port);
    env.push(("NOTIFY_SOCKET", socket_path.display().to_string()));
    // 2 s watchdog: the service pings every second.
    env.push(("WATCHDOG_USEC", "2000000".to_owned()));
    let mut child = spawn_child(
        "ready_watchdog_and_stopping_reach_a_real_notify_socket",
        "probe",
        &env,
    );
    env.truncate(0);

    let before_ready = receive(&socket, Duration::from_secs(60), "READY=1");
    assert!(
        before_ready
            .iter()
            .any(|m| m.lines().any(|l| l == "READY=1")),
        "{before_ready:?}"
    );
    assert!(
        before_ready
            .iter()
            .any(|m| m.contains("STATUS=waiting for PostgreSQL")),
        "{before_ready:?}"
    );
    assert!(
        before_ready
            .iter()
            .any(|m| m.contains("STATUS=serving on 127.0.0.1:")),
        "{before_ready:?}"
    );
    let body = reqwest::blocking_get(format!("http://127.0.0.1:{port}/hello"));
    assert_eq!(body, "hello");

    let pings = receive(&socket, Duration::from_millis(2600), "never");
    let watchdogs = pings
        .iter()
        .filter(|m| m.lines().any(|l| l == "WATCHDOG=1"))
        .count();
    assert!(watchdogs >= 2, "expected a ping every second: {pings:?}");

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let stopping = receive(&socket, Duration::from_secs(30), "STOPPING=1");
    assert!(
        stopping
            .iter()
            .any(|m| m.lines().any(|l| l == "STOPPING=1")),
        "{stopping:?}"
    );
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the service exits cleanly on SIGTERM: {status:?}"
    );
}

#[test]
fn no_ready_is_sent_while_the_database_is_unreachable() {
    if child_role().as_deref() == Some("probe") {
        run_probe_service();
        return;
    }
    let broker = Tansu::start().expect("tansu starts");
    let dir = TempDir::new("notify-nodb").expect("a temporary directory");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let nowhere = format!(
        "host={} port=5432 dbname=probe user=probe",
        dir.path().display()
    );
    let mut env = service_env(
        &nowhere,
        &broker.bootstrap,
        teipsum_testkit::free_port().expect("a free port"),
    );
    env.push(("NOTIFY_SOCKET", socket_path.display().to_string()));
    let mut child = spawn_child(
        "no_ready_is_sent_while_the_database_is_unreachable",
        "probe",
        &env,
    );
    let messages = receive(&socket, Duration::from_secs(4), "READY=1");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !messages.iter().any(|m| m.lines().any(|l| l == "READY=1")),
        "READY without a database: {messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("STATUS=waiting for PostgreSQL")),
        "{messages:?}"
    );
}

/// A tiny blocking GET, without pulling a blocking HTTP client in.
mod reqwest {
    pub fn blocking_get(url: String) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            teipsum_testkit::http_client()
                .expect("an HTTP client")
                .get(url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    }
}

/// A handler error as a service has one: only the unexpected variant.
#[derive(Debug, thiserror::Error)]
enum QueryError {
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
teipsum_kit::unexpected_errors!(QueryError);

impl teipsum_kit::http::ErrorResponse for QueryError {
    fn response(&self) -> (http::StatusCode, &'static str) {
        let QueryError::Unexpected(e) = self;
        teipsum_kit::http::unexpected_response(e)
    }
}

#[test]
fn a_value_postgresql_refuses_is_a_400_and_other_database_errors_stay_500() {
    use warp::{Filter, Reply};
    let pg = Postgres::start().expect("PostgreSQL starts");
    let (db, _) = database(&pg, "kit_data_exception");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // `GET /text?value=...` binds the value as text; `GET /broken` runs a
    // query on a table that does not exist.
    // The pool outlives the runtime: its connections close outside it.
    let pool = db.clone();
    let text_db = db.clone();
    let text = warp::path!("text")
        .and(warp::query::<BTreeMap<String, String>>())
        .then(move |query: BTreeMap<String, String>| {
            let db = text_db.clone();
            async move {
                let value = query.get("value").cloned().unwrap_or_default();
                let result = db
                    .run(move |conn| -> Result<_, QueryError> {
                        let row = conn.query_one("SELECT $1::text", &[&value])?;
                        Ok(row.get::<_, String>(0))
                    })
                    .await
                    .map(|s| warp::reply::json(&s).into_response());
                teipsum_kit::http::answer(result)
            }
        });
    let broken = warp::path!("broken").then(move || {
        let db = db.clone();
        async move {
            let result = db
                .run(|conn| -> Result<_, QueryError> {
                    conn.query("SELECT * FROM no_such_table", &[])?;
                    Ok(warp::reply().into_response())
                })
                .await;
            teipsum_kit::http::answer(result)
        }
    });
    let (status, body, broken_status) = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(teipsum_kit::http::serve(
            listener,
            text.or(broken).recover(teipsum_kit::http::handle_rejection),
            async {
                let _ = stopped.await;
            },
        ));
        // reqwest is built without a default crypto provider (each test
        // runs in a process of its own under nextest).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = ::reqwest::Client::new();
        let fine = http
            .get(format!("{base}/text?value=plain"))
            .send()
            .await
            .unwrap();
        assert_eq!(fine.status(), 200);
        let nul = http
            .get(format!("{base}/text?value=a%00b"))
            .send()
            .await
            .unwrap();
        let status = nul.status();
        let body: serde_json::Value = nul.json().await.unwrap();
        let broken = http.get(format!("{base}/broken")).send().await.unwrap();
        let broken_status = broken.status();
        let _ = stop.send(());
        server.await.unwrap();
        (status, body, broken_status)
    });
    drop(runtime);
    drop(pool);
    assert_eq!(status, 400, "a NUL in text (22021) is the client's: {body}");
    assert_eq!(body["error"], "INVALID_INPUT", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        !message.contains("UTF8") && !message.contains("db error"),
        "PostgreSQL's text stays in the log: {message}"
    );
    assert_eq!(broken_status, 500, "a missing table (42P01) is ours");
}

/// A fresh pool of `name`'s database: new sessions, with the role's settings of now.
fn fresh_pool(pg: &Postgres, name: &str) -> Db {
    Db::new(&pg.conninfo(name), 4, None).unwrap()
}

fn thing(subject: &str, data: serde_json::Value) -> Envelope {
    Envelope::new("test", "thing-changed", 1, subject, data)
}

fn produce_event(broker: &Tansu, topic: &str, event: &Envelope) {
    produce(
        broker,
        topic,
        &event.subject,
        &serde_json::to_vec(event).unwrap(),
    );
}

#[test]
fn a_read_only_database_holds_an_event_until_it_is_writable_then_applies_it_once() {
    if child_role().is_some() {
        return;
    }
    let pg = Postgres::start().expect("PostgreSQL starts");
    let broker = Tansu::start().expect("tansu starts");
    broker
        .create_topics(&[("things", 1)])
        .expect("the topics are created");
    database(&pg, "consumer_ro");
    // As the superuser: the test's sessions are not the ones terminated below.
    let count = |sql: &str| -> i64 { pg.psql("consumer_ro", sql).unwrap().parse().unwrap() };
    // As after a failover to a standby: every write fails with 25006.
    pg.psql(
        "postgres",
        "ALTER ROLE consumer_ro SET default_transaction_read_only = on",
    )
    .unwrap();
    let event = thing("a", serde_json::json!({"seq": 1}));
    produce_event(&broker, "things", &event);
    let consumer = kafka::consumer(&broker.bootstrap, "ro-group", "ro").unwrap();
    let worker = events::spawn_consumer(
        fresh_pool(&pg, "consumer_ro"),
        consumer,
        "consumer_ro",
        &["things"],
        trust_test(),
        effect_handler(),
        events::DEFAULT_BATCH,
    )
    .unwrap();
    // The consumer has been failing on the event for a while: every
    // attempt opened a transaction that could not write.
    wait_until("the consumer to try", Duration::from_secs(60), || {
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'consumer_ro'",
        )
        .unwrap()
            != "0"
    });
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        count("SELECT count(*) FROM kit_parked_events"),
        0,
        "a read-only database is not the event's fault: nothing is parked"
    );
    assert_eq!(count("SELECT count(*) FROM effects"), 0);

    // The database is writable again; the sessions opened read-only go.
    pg.psql(
        "postgres",
        "ALTER ROLE consumer_ro RESET default_transaction_read_only",
    )
    .unwrap();
    pg.psql(
        "postgres",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'consumer_ro'",
    )
    .unwrap();
    wait_until("the held event", Duration::from_secs(60), || {
        count("SELECT count(*) FROM effects") == 1
    });
    // The partition goes on after it, in order.
    let next = thing("b", serde_json::json!({"seq": 2}));
    produce_event(&broker, "things", &next);
    wait_until("the next event", Duration::from_secs(60), || {
        count("SELECT count(*) FROM effects WHERE subject = 'b'") == 1
    });
    worker.stop();
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM effects WHERE event_id = '{}'",
            event.id
        )),
        1,
        "applied exactly once"
    );
    assert_eq!(count("SELECT count(*) FROM kit_parked_events"), 0);
}

#[test]
fn a_lock_timeout_is_retried_and_the_event_applied_once_the_lock_is_gone() {
    if child_role().is_some() {
        return;
    }
    let pg = Postgres::start().expect("PostgreSQL starts");
    let broker = Tansu::start().expect("tansu starts");
    broker
        .create_topics(&[("things", 1)])
        .expect("the topics are created");
    let (db, _) = database(&pg, "consumer_lock");
    let count = |sql: &str| -> i64 { db.get().unwrap().query_one(sql, &[]).unwrap().get(0) };
    pg.psql(
        "postgres",
        "ALTER ROLE consumer_lock SET lock_timeout = '100ms'",
    )
    .unwrap();
    // The test holds the table's lock: the handler's INSERT times out (55P03).
    let mut holder = db.dedicated().unwrap();
    let mut lock = holder.transaction().unwrap();
    lock.batch_execute("LOCK TABLE effects IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let event = thing("a", serde_json::json!({"seq": 1}));
    produce_event(&broker, "things", &event);
    let consumer = kafka::consumer(&broker.bootstrap, "lock-group", "lock").unwrap();
    let worker = events::spawn_consumer(
        fresh_pool(&pg, "consumer_lock"),
        consumer,
        "consumer_lock",
        &["things"],
        trust_test(),
        effect_handler(),
        events::DEFAULT_BATCH,
    )
    .unwrap();
    let waits = || {
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'consumer_lock' AND wait_event_type = 'Lock'",
        )
        .unwrap()
            != "0"
    };
    wait_until(
        "the consumer to wait for the lock",
        Duration::from_secs(60),
        waits,
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        count("SELECT count(*) FROM kit_parked_events"),
        0,
        "a lock timeout is not the event's fault"
    );
    lock.rollback().unwrap();
    wait_until("the event", Duration::from_secs(60), || {
        count("SELECT count(*) FROM effects") == 1
    });
    worker.stop();
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM kit_processed_events WHERE event_id = '{}'",
            event.id
        )),
        1
    );
    assert_eq!(count("SELECT count(*) FROM kit_parked_events"), 0);
}

#[test]
fn parked_events_are_listed_and_replayed_once_through_a_fixed_handler() {
    if child_role().is_some() {
        return;
    }
    let pg = Postgres::start().expect("PostgreSQL starts");
    let broker = Tansu::start().expect("tansu starts");
    broker
        .create_topics(&[("things", 1)])
        .expect("the topics are created");
    let (db, _) = database(&pg, "consumer_replay");
    let count = |sql: &str| -> i64 { db.get().unwrap().query_one(sql, &[]).unwrap().get(0) };
    // The handler of this build says Permanent to an event without `seq`.
    let unseq = thing("u", serde_json::json!({"no": "seq"}));
    produce_event(&broker, "things", &unseq);
    produce(&broker, "things", "x", b"this is not an envelope");
    let last = thing("z", serde_json::json!({"seq": 9}));
    produce_event(&broker, "things", &last);
    let consumer = kafka::consumer(&broker.bootstrap, "replay-group", "replay").unwrap();
    let worker = events::spawn_consumer(
        db.clone(),
        consumer,
        "consumer_replay",
        &["things"],
        trust_test(),
        effect_handler(),
        events::DEFAULT_BATCH,
    )
    .unwrap();
    wait_until("the last event", Duration::from_secs(60), || {
        count("SELECT count(*) FROM effects WHERE subject = 'z'") == 1
    });
    worker.stop();

    let parked = events::list_parked(&mut *db.get().unwrap(), "consumer_replay").unwrap();
    assert_eq!(parked.len(), 2, "{parked:?}");
    assert_eq!(parked[0].event_id, Some(unseq.id));
    assert_eq!(parked[0].kind.as_deref(), Some("thing-changed"));
    assert!(parked[0].error.contains("no seq"), "{}", parked[0].error);
    assert_eq!(parked[1].event_id, None, "not an envelope");
    let garbage = parked[1].id;

    // The fixed build reads a missing `seq` as 0.
    let mut fixed = |tx: &mut postgres::Transaction<'_>,
                     _topic: &str,
                     event: &Envelope|
     -> Result<(), HandleError> {
        let seq = event.data["seq"].as_i64().unwrap_or(0) as i32;
        tx.execute(
            "INSERT INTO effects (event_id, subject, seq) VALUES ($1, $2, $3)",
            &[&event.id, &event.subject, &seq],
        )?;
        Ok(())
    };
    let outcomes = events::replay(
        &db,
        "consumer_replay",
        events::Replay::Event(unseq.id),
        Some(&trust_test()),
        &mut fixed,
    )
    .unwrap();
    assert_eq!(outcomes, [(parked[0].id, events::Replayed::Applied)]);
    assert_eq!(
        count("SELECT count(*) FROM effects WHERE subject = 'u'"),
        1,
        "applied"
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM kit_processed_events WHERE event_id = '{}'",
            unseq.id
        )),
        1,
        "with its ledger row"
    );

    // A second replay of everything: the undecodable message stays parked.
    let outcomes = events::replay(
        &db,
        "consumer_replay",
        events::Replay::All,
        Some(&trust_test()),
        &mut fixed,
    )
    .unwrap();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(outcomes[0].0, garbage);
    assert!(
        matches!(&outcomes[0].1, events::Replayed::Failed(e) if e.contains("not an event envelope")),
        "{outcomes:?}"
    );
    assert_eq!(count("SELECT count(*) FROM kit_parked_events"), 1);
    assert_eq!(
        count("SELECT count(*) FROM effects WHERE subject = 'u'"),
        1,
        "once"
    );

    // An event parked again after it was applied (the ledger knows it) is
    // unparked without a second effect.
    let mut conn = db.get().unwrap();
    conn.execute(
        "INSERT INTO kit_parked_events (consumer, topic, partition, \"offset\", key, payload, error) \
         VALUES ('consumer_replay', 'things', 0, 0, 'u', $1, 'again')",
        &[&serde_json::to_vec(&unseq).unwrap()],
    )
    .unwrap();
    let outcomes = events::replay(
        &db,
        "consumer_replay",
        events::Replay::Event(unseq.id),
        None,
        &mut fixed,
    )
    .unwrap();
    assert_eq!(outcomes[0].1, events::Replayed::Skipped);
    assert_eq!(count("SELECT count(*) FROM effects WHERE subject = 'u'"), 1);
    assert_eq!(count("SELECT count(*) FROM kit_parked_events"), 1);
}

#[test]
fn an_event_from_a_service_that_does_not_produce_the_topic_is_parked_naming_both() {
    if child_role().is_some() {
        return;
    }
    let pg = Postgres::start().expect("PostgreSQL starts");
    let broker = Tansu::start().expect("tansu starts");
    broker
        .create_topics(&[("things", 1)])
        .expect("the topics are created");
    let (db, _) = database(&pg, "consumer_trust");
    let count = |sql: &str| -> i64 { db.get().unwrap().query_one(sql, &[]).unwrap().get(0) };
    let forged = Envelope::new(
        "intruder",
        "thing-changed",
        1,
        "f",
        serde_json::json!({"seq": 1}),
    );
    produce_event(&broker, "things", &forged);
    let genuine = thing("g", serde_json::json!({"seq": 2}));
    produce_event(&broker, "things", &genuine);
    let consumer = kafka::consumer(&broker.bootstrap, "trust-group", "trust").unwrap();
    let worker = events::spawn_consumer(
        db.clone(),
        consumer,
        "consumer_trust",
        &["things"],
        trust_test(),
        effect_handler(),
        events::DEFAULT_BATCH,
    )
    .unwrap();
    wait_until("the genuine event", Duration::from_secs(60), || {
        count("SELECT count(*) FROM effects WHERE subject = 'g'") == 1
    });
    worker.stop();
    assert_eq!(
        count("SELECT count(*) FROM effects WHERE subject = 'f'"),
        0,
        "the forged event changed nothing"
    );
    let parked = events::list_parked(&mut *db.get().unwrap(), "consumer_trust").unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].event_id, Some(forged.id));
    let error = &parked[0].error;
    assert!(
        error.contains("`intruder`") && error.contains("`things`") && error.contains("test"),
        "{error}"
    );
}

#[test]
fn an_unknown_event_version_waits_for_an_upgraded_consumer_instead_of_being_parked() {
    if child_role().is_some() {
        return;
    }
    let pg = Postgres::start().expect("PostgreSQL starts");
    let broker = Tansu::start().expect("tansu starts");
    broker
        .create_topics(&[("things", 1)])
        .expect("the topics are created");
    let (db, _) = database(&pg, "consumer_version");
    let count = |sql: &str| -> i64 { db.get().unwrap().query_one(sql, &[]).unwrap().get(0) };
    let before = thing("p", serde_json::json!({"seq": 0}));
    produce_event(&broker, "things", &before);
    let newer = Envelope::new(
        "test",
        "thing-changed",
        2,
        "n",
        serde_json::json!({"seq": 1}),
    );
    produce_event(&broker, "things", &newer);
    let after = thing("a", serde_json::json!({"seq": 2}));
    produce_event(&broker, "things", &after);
    let consumer = kafka::consumer(&broker.bootstrap, "version-group", "version").unwrap();
    let old = events::spawn_consumer(
        db.clone(),
        consumer,
        "consumer_version",
        &["things"],
        trust_test(),
        effect_handler(),
        events::DEFAULT_BATCH,
    )
    .unwrap();
    // The consumer is running: the event before the unknown one is applied.
    wait_until("the first event", Duration::from_secs(60), || {
        count("SELECT count(*) FROM effects WHERE subject = 'p'") == 1
    });
    std::thread::sleep(Duration::from_secs(4));
    old.stop();
    assert_eq!(
        count("SELECT count(*) FROM kit_parked_events"),
        0,
        "not parked"
    );
    assert_eq!(
        count("SELECT count(*) FROM effects"),
        1,
        "the partition waits at the unknown version, in order"
    );

    // The upgraded build knows version 2.
    struct Upgraded<H>(H);
    impl<H: events::Handler> events::Handler for Upgraded<H> {
        fn handle(
            &mut self,
            tx: &mut postgres::Transaction<'_>,
            topic: &str,
            event: &Envelope,
        ) -> Result<(), HandleError> {
            self.0.handle(tx, topic, event)
        }
        fn understands(&self, _: &str, _: &str, version: u32) -> bool {
            version <= 2
        }
    }
    let consumer = kafka::consumer(&broker.bootstrap, "version-group", "version").unwrap();
    let upgraded = events::spawn_consumer(
        db.clone(),
        consumer,
        "consumer_version",
        &["things"],
        trust_test(),
        Upgraded(effect_handler()),
        events::DEFAULT_BATCH,
    )
    .unwrap();
    wait_until("the held events", Duration::from_secs(120), || {
        count("SELECT count(*) FROM effects") == 3
    });
    upgraded.stop();
    assert_eq!(count("SELECT count(*) FROM kit_parked_events"), 0);
}

#[test]
fn old_ledger_and_idempotency_rows_are_pruned_and_recent_ones_stay() {
    if child_role().is_some() {
        return;
    }
    let pg = Postgres::start().expect("PostgreSQL starts");
    let (db, _) = database(&pg, "prune");
    let mut conn = db.get().unwrap();
    conn.batch_execute(
        "CREATE TABLE keys (key TEXT PRIMARY KEY, created_at TIMESTAMPTZ NOT NULL DEFAULT now());
         INSERT INTO keys VALUES ('old', now() - interval '40 days'), ('new', now() - interval '1 day');
         INSERT INTO kit_processed_events (consumer, event_id, processed_at) VALUES
           ('c', gen_random_uuid(), now() - interval '40 days'),
           ('c', gen_random_uuid(), now() - interval '36 days'),
           ('c', gen_random_uuid(), now());",
    )
    .unwrap();
    let retention =
        events::Retention::new(Duration::from_secs(37 * 86_400)).table("keys", "created_at");
    assert_eq!(events::prune(&db, &retention).unwrap(), 2);
    let left: Vec<String> = conn
        .query("SELECT key FROM keys", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, ["new"]);
    let ledger: i64 = conn
        .query_one("SELECT count(*) FROM kit_processed_events", &[])
        .unwrap()
        .get(0);
    assert_eq!(ledger, 2, "rows younger than the retention stay");
}

#[test]
fn a_stuck_outbox_stops_the_watchdog_and_readiness_reports_parked_events() {
    if child_role().as_deref() == Some("probe") {
        run_probe_service();
        return;
    }
    let pg = Postgres::start().expect("PostgreSQL starts");
    let mut broker = Tansu::start().expect("tansu starts");
    let conninfo = pg
        .create_database("probe")
        .expect("the database is created");
    let dir = TempDir::new("notify-outbox").expect("a temporary directory");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let port = teipsum_testkit::free_port().expect("a free port");
    let mut env = service_env(&conninfo, &broker.bootstrap, port);
    env.push(("NOTIFY_SOCKET", socket_path.display().to_string()));
    env.push(("WATCHDOG_USEC", "2000000".to_owned()));
    env.push(("TEIPSUM_OUTBOX_MAX_LAG_SECS", "2".to_owned()));
    let mut child = spawn_child(
        "a_stuck_outbox_stops_the_watchdog_and_readiness_reports_parked_events",
        "probe",
        &env,
    );
    let ready = receive(&socket, Duration::from_secs(60), "READY=1");
    assert!(
        ready.iter().any(|m| m.lines().any(|l| l == "READY=1")),
        "{ready:?}"
    );
    let readyz = || -> serde_json::Value {
        serde_json::from_str(&reqwest::blocking_get(format!(
            "http://127.0.0.1:{port}/readyz"
        )))
        .unwrap()
    };
    assert_eq!(readyz()["parked_events"], 0);
    let db = Db::new(&conninfo, 2, None).unwrap();
    db.get()
        .unwrap()
        .execute(
            "INSERT INTO kit_parked_events (consumer, topic, partition, \"offset\", error) \
             VALUES ('probe', 'things', 0, 7, 'a test')",
            &[],
        )
        .unwrap();
    let answer = readyz();
    assert_eq!(answer["parked_events"], 1, "{answer}");
    assert_eq!(
        answer["status"], "ready",
        "parked events do not make it unready"
    );

    // Healthy: a ping a second, an event in the outbox relayed at once.
    let mut conn = db.get().unwrap();
    events::append(
        &mut *conn,
        "things",
        &thing("a", serde_json::json!({"seq": 1})),
    )
    .unwrap();
    let pings = receive(&socket, Duration::from_millis(3200), "never");
    let count_pings = |messages: &[String]| {
        messages
            .iter()
            .filter(|m| m.lines().any(|l| l == "WATCHDOG=1"))
            .count()
    };
    assert!(count_pings(&pings) >= 2, "{pings:?}");

    // The broker goes away: the next event stays in the outbox.
    broker.kill();
    events::append(
        &mut *conn,
        "things",
        &thing("b", serde_json::json!({"seq": 2})),
    )
    .unwrap();
    let unhealthy = receive(&socket, Duration::from_secs(20), "never-stop-early");
    let _ = child.kill();
    let _ = child.wait();
    let status = unhealthy
        .iter()
        .position(|m| m.contains("STATUS=unhealthy: the oldest unsent event"))
        .unwrap_or_else(|| panic!("no unhealthy status: {unhealthy:?}"));
    assert_eq!(
        count_pings(&unhealthy[status..]),
        0,
        "no watchdog ping once the outbox is stuck: {unhealthy:?}"
    );
}

/// A CA and a server certificate for 127.0.0.1 it signed (openssl).
fn test_ca(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let run = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=test ca",
        "-days",
        "2",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    (read("ca.pem"), read("server.pem"), read("server.key"))
}

#[test]
fn a_dedicated_connection_trusts_the_postgres_ca_credential_as_the_pool_does() {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    use std::io::{Read, Write};
    if child_role().is_some() {
        return;
    }
    let dir = TempDir::new("pg-tls").expect("a temporary directory");
    let (ca, cert, key) = test_ca(dir.path());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert)
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_slice(&key).unwrap();
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap(),
    );
    // The server side of PostgreSQL's TLS start, then nothing: the test
    // asks only whether the client accepted the server's certificate.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let mut request = [0u8; 8];
        tcp.read_exact(&mut request).unwrap();
        assert_eq!(&request[4..], &[0x04, 0xd2, 0x16, 0x2f], "an SSLRequest");
        tcp.write_all(b"S").unwrap();
        let mut tls = rustls::ServerConnection::new(config).unwrap();
        while tls.is_handshaking() {
            if tls.complete_io(&mut tcp).is_err() {
                return false;
            }
        }
        true
    });
    let db = Db::new(
        &format!("host=127.0.0.1 port={port} dbname=x user=x sslmode=require"),
        1,
        Some(&ca),
    )
    .unwrap();
    let _ = db.dedicated();
    assert!(
        server.join().unwrap(),
        "the dedicated connection rejected a certificate of the postgres-ca"
    );
}

/// A service whose own setup fails says why and exits, rather than
/// panicking while its pool closes on the runtime's thread.
#[test]
fn a_failing_setup_is_reported_and_exits_without_a_panic() {
    if child_role().as_deref() == Some("failing-setup") {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let code = runtime.block_on(teipsum_kit::service::run(
            teipsum_kit::Service {
                name: "probe",
                migrations: || refinery::Runner::new(&[]),
                verifies_tokens: false,
                openapi: utoipa::openapi::OpenApi::default,
            },
            |_ctx| -> anyhow::Result<teipsum_kit::Parts<warp::filters::BoxedFilter<(String,)>>> {
                anyhow::bail!("the probe's setting is out of range")
            },
        ));
        std::process::exit(if code == std::process::ExitCode::SUCCESS {
            0
        } else {
            1
        });
    }
    let pg = Postgres::start().expect("PostgreSQL starts");
    let broker = Tansu::start().expect("tansu starts");
    let (_db, conninfo) = database(&pg, "kit_failing_setup");
    let port = teipsum_testkit::free_port().expect("a free port");
    let mut env = service_env(&conninfo, &broker.bootstrap, port);
    env.push(("TEIPSUM_LOG", "info".to_owned()));
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_failing_setup_is_reported_and_exits_without_a_panic",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KIT_CHILD", "failing-setup")
        .envs(env)
        .output()
        .expect("the test binary starts again");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("out of range") || stdout.contains("out of range"),
        "the error is reported: {stderr}{stdout}"
    );
}

/// Publish `events` to `topic` with one producer, in order, waiting for each.
fn produce_all(broker: &Tansu, topic: &str, events: &[Vec<u8>], keys: &[String]) {
    let producer = kafka::producer(&broker.bootstrap, "test-producer").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sends = events.iter().zip(keys).map(|(payload, key)| {
            producer.send(
                FutureRecord::to(topic).key(key).payload(payload),
                Duration::from_secs(10),
            )
        });
        for result in futures::future::join_all(sends).await {
            result.expect("delivered");
        }
    });
}

/// `n` good `thing-changed` events about subjects `{prefix}{i}`.
fn things(prefix: &str, n: usize) -> Vec<Envelope> {
    (0..n)
        .map(|i| {
            Envelope::new(
                "test",
                "thing-changed",
                1,
                format!("{prefix}{i}"),
                serde_json::json!({"seq": i}),
            )
        })
        .collect()
}

fn encoded(events: &[Envelope]) -> (Vec<Vec<u8>>, Vec<String>) {
    (
        events
            .iter()
            .map(|e| serde_json::to_vec(e).unwrap())
            .collect(),
        events.iter().map(|e| e.subject.clone()).collect(),
    )
}

#[test]
fn a_poison_event_in_the_middle_of_a_batch_is_parked_alone_and_the_rest_applied_once() {
    if child_role().is_some() {
        return;
    }
    let pg = Postgres::start().expect("PostgreSQL starts");
    let broker = Tansu::start().expect("tansu starts");
    broker
        .create_topics(&[("things", 1)])
        .expect("the topics are created");
    let (db, _) = database(&pg, "batch_poison");
    let count = |sql: &str| -> i64 { db.get().unwrap().query_one(sql, &[]).unwrap().get(0) };
    // Ten good events, one the handler refuses (no seq), ten more, and the
    // first good one again: all on the topic before the consumer starts,
    // so that its first poll takes them as one batch.
    let mut batch = things("g", 20);
    let poison = Envelope::new(
        "test",
        "thing-changed",
        1,
        "poison",
        serde_json::json!({"no": "seq"}),
    );
    batch.insert(10, poison.clone());
    batch.push(batch[0].clone());
    let (payloads, keys) = encoded(&batch);
    produce_all(&broker, "things", &payloads, &keys);

    let start = || {
        events::spawn_consumer(
            db.clone(),
            kafka::consumer(&broker.bootstrap, "batch-poison", "batch").unwrap(),
            "batch_poison",
            &["things"],
            trust_test(),
            effect_handler(),
            64,
        )
        .unwrap()
    };
    let worker = start();
    wait_until(
        "the good events and the parked one",
        Duration::from_secs(120),
        || {
            count("SELECT count(*) FROM effects") >= 20
                && count("SELECT count(*) FROM kit_parked_events") >= 1
        },
    );
    worker.stop();
    assert_eq!(
        count("SELECT count(*) FROM effects"),
        20,
        "each good event applied once, the repeated one included"
    );
    assert_eq!(count("SELECT count(DISTINCT event_id) FROM effects"), 20);
    assert_eq!(
        count("SELECT count(*) FROM effects WHERE subject = 'poison'"),
        0,
        "nothing of the poison event"
    );
    let parked = events::list_parked(&mut *db.get().unwrap(), "batch_poison").unwrap();
    assert_eq!(
        parked.iter().map(|p| p.event_id).collect::<Vec<_>>(),
        [Some(poison.id)],
        "only the poison event is parked"
    );
    assert_eq!(
        count("SELECT count(*) FROM kit_processed_events WHERE consumer = 'batch_poison'"),
        20,
        "a ledger row per applied event, none for the parked one"
    );

    // A clean backlog is applied in batches: fewer transactions than events.
    let clean = things("c", 100);
    let (payloads, keys) = encoded(&clean);
    produce_all(&broker, "things", &payloads, &keys);
    let worker = start();
    wait_until("the clean backlog", Duration::from_secs(120), || {
        count("SELECT count(*) FROM effects WHERE subject LIKE 'c%'") >= 100
    });
    worker.stop();
    let transactions = count("SELECT count(DISTINCT tx) FROM effects WHERE subject LIKE 'c%'");
    assert_eq!(
        count("SELECT count(*) FROM effects WHERE subject LIKE 'c%'"),
        100
    );
    assert!(
        transactions < 100,
        "100 events took {transactions} transactions: not batched"
    );
    println!("100 events applied in {transactions} transactions");
}

#[test]
fn a_crash_between_a_batch_commit_and_its_offset_store_causes_no_double_effect() {
    const TEST: &str =
        "a_crash_between_a_batch_commit_and_its_offset_store_causes_no_double_effect";
    const GROUP: &str = "batch-crash-group";
    if child_role().as_deref() == Some("batch-consumer") {
        let db = Db::new(&std::env::var("KIT_DB").unwrap(), 4, None).unwrap();
        let consumer =
            kafka::consumer(&std::env::var("KIT_BROKER").unwrap(), GROUP, "batch-crash").unwrap();
        // Slow enough that the kill lands while batches are being applied.
        let mut inner = effect_handler();
        let slow = move |tx: &mut postgres::Transaction<'_>,
                         topic: &str,
                         event: &Envelope|
              -> Result<(), HandleError> {
            std::thread::sleep(Duration::from_millis(5));
            events::Handler::handle(&mut inner, tx, topic, event)
        };
        let _worker = events::spawn_consumer(
            db,
            consumer,
            "batch_crash",
            &["things"],
            trust_test(),
            slow,
            32,
        )
        .unwrap();
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let pg = Postgres::start().expect("PostgreSQL starts");
    let broker = Tansu::start().expect("tansu starts");
    broker
        .create_topics(&[("things", 1)])
        .expect("the topics are created");
    let (db, conninfo) = database(&pg, "batch_crash");
    let count = |sql: &str| -> i64 { db.get().unwrap().query_one(sql, &[]).unwrap().get(0) };
    let committed_offset = || offset_committed_by(&broker, GROUP);
    // Each round kills the consumer while it applies a backlog in batches
    // of 32: after some batches committed, before their offsets reached the
    // broker (committed once a second). A round whose kill came after the
    // offset commit proves nothing and is tried again.
    let mut produced = 0;
    let mut forced = 0;
    for round in 0..3 {
        let backlog = things(&format!("r{round}-"), 200);
        let (payloads, keys) = encoded(&backlog);
        produce_all(&broker, "things", &payloads, &keys);
        produced += backlog.len() as i64;
        let mut child = spawn_child(
            TEST,
            "batch-consumer",
            &[
                ("KIT_DB", conninfo.clone()),
                ("KIT_BROKER", broker.bootstrap.clone()),
            ],
        );
        let applied_before = produced - backlog.len() as i64;
        wait_until(
            "the child to apply a few batches",
            Duration::from_secs(120),
            || count("SELECT count(*) FROM effects") >= applied_before + 40,
        );
        child.kill().unwrap();
        child.wait().unwrap();
        let applied = count("SELECT count(*) FROM effects");
        if committed_offset() < applied {
            forced += 1;
            break;
        }
    }
    assert!(
        forced > 0,
        "every kill came after the offset commit; the test proved nothing"
    );

    // The restarted consumer gets the uncommitted batches again: the
    // ledger skips what was applied, and the rest is applied once.
    let worker = events::spawn_consumer(
        db.clone(),
        kafka::consumer(&broker.bootstrap, GROUP, "batch-crash").unwrap(),
        "batch_crash",
        &["things"],
        trust_test(),
        effect_handler(),
        32,
    )
    .unwrap();
    wait_until("the offsets to catch up", Duration::from_secs(120), || {
        committed_offset() == produced
    });
    worker.stop();
    assert_eq!(
        count("SELECT count(*) FROM effects"),
        produced,
        "every event applied"
    );
    assert_eq!(
        count("SELECT count(DISTINCT event_id) FROM effects"),
        produced,
        "no event applied twice"
    );
    assert_eq!(
        count("SELECT count(*) FROM kit_processed_events WHERE consumer = 'batch_crash'"),
        produced
    );
}
