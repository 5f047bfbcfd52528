//! `teipsum status` against the whole running stack: the readings a host
//! gets from its PostgreSQL, broker, services, dumps and certificate
//! record, taken from the real components. Only the units differ: there
//! is no systemd here, so a service's unit is active while its process
//! runs, and the other units are reported unreadable.
//!
//! Healthy, every service is ready, every database is read, every consumer
//! group's lag is known; then a stopped catalog, inventory's consumer held
//! on a table lock while an order waits, and the dumps that were never
//! taken are each reported as the problem they are.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use teipsum_cli::{
    restore::Superuser,
    status::{Reading, Site, Status, UnitState, UnitStates, read, render},
};
use teipsum_dev::Stack;
use teipsum_e2e::{Shop, TableLock, start};

/// The dev stack's processes in place of systemd units.
struct DevUnits<'a>(&'a Stack);

impl UnitStates for DevUnits<'_> {
    fn state(&self, unit: &str) -> Result<UnitState, String> {
        let service = self
            .0
            .plan
            .services
            .iter()
            .find(|s| s.unit == unit)
            .ok_or_else(|| "no systemd here".to_owned())?;
        let running = self.0.service(&service.name).is_running();
        Ok(UnitState {
            active: if running { "active" } else { "inactive" }.to_owned(),
            sub: if running { "running" } else { "dead" }.to_owned(),
            oneshot: false,
        })
    }
}

/// What the host's certificate unit records after each order (the script
/// nixgen renders), run on the development certificate.
fn record_certificate(stack: &Stack, textfile: &Path) {
    let status = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -eu\nend=\"$(openssl x509 -enddate -noout -in {} | cut -d= -f2)\"\nprintf 'teipsum_certificate_expiry_timestamp_seconds{{domain=\"{}\"}} %s\\n' \"$(date -d \"$end\" +%s)\" > {}/certificate.prom",
            stack.state_dir.join("tls/server.pem").display(),
            stack.plan.domain,
            textfile.display()
        ))
        .status()
        .expect("bash runs");
    assert!(status.success(), "recording the certificate's expiry");
}

/// One dump as the backup unit takes it (`pg_dump -C | zstd`).
fn dump(stack: &Stack, database: &str, dir: &Path) {
    let file = std::fs::File::create(dir.join(format!("{database}.sql.zstd"))).unwrap();
    let mut pg_dump = Command::new(stack.postgres.program("pg_dump"))
        .arg("-h")
        .arg(&stack.postgres.socket_dir)
        .args([
            "-p",
            &stack.postgres.port.to_string(),
            "-U",
            "postgres",
            "-C",
            database,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("pg_dump runs");
    let zstd = Command::new("zstd")
        .args(["-c", "-6"])
        .stdin(pg_dump.stdout.take().unwrap())
        .stdout(file)
        .status()
        .expect("zstd runs (scripts/setup.sh installs it)");
    assert!(pg_dump.wait().unwrap().success() && zstd.success());
}

fn ok<T: Clone>(reading: &Reading<T>, what: &str) -> T {
    match reading {
        Reading::Ok(value) => value.clone(),
        Reading::Error(why) => panic!("{what}: {why}"),
    }
}

/// `teipsum status --dev <state> --json`: its exit code and its JSON.
fn status_command(stack: &Stack) -> (Option<i32>, serde_json::Value) {
    let out = Command::new(teipsum_e2e::bin_dir().join("teipsum"))
        .args(["status", "--env", "prod", "--json", "--dev"])
        .arg(&stack.state_dir)
        .output()
        .expect("teipsum runs (cargo build --workspace)");
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), json)
}

async fn status(stack: &Stack, site: &Site<'_>) -> Status {
    let status = read(&stack.plan, site).await;
    eprintln!("{}", render(&status));
    status
}

#[tokio::test(flavor = "multi_thread")]
async fn status_reads_every_component_and_names_what_is_wrong() {
    let stack = start("prod", None);
    let shop = Shop::new(&stack);
    let admin = shop.admin().await;
    let ana = shop.account("ana@example.org").await;
    let mug = shop
        .create_product(&admin, "Status Mug", "S-MUG", 900)
        .await;
    shop.set_stock(&admin, &mug, 10).await;
    assert_eq!(
        shop.order_decided(&ana, &mug, 1).await["status"],
        "CONFIRMED"
    );

    let dir = std::env::temp_dir().join(format!("teipsum-e2e-status-{}", std::process::id()));
    let (backups, textfile) = (dir.join("backup"), dir.join("textfile"));
    std::fs::create_dir_all(&backups).unwrap();
    std::fs::create_dir_all(&textfile).unwrap();
    let order_db = stack.plan.service("order").unwrap().database.clone();
    dump(&stack, &order_db, &backups);
    record_certificate(&stack, &textfile);
    let units = DevUnits(&stack);
    let site = Site {
        units: Some(&units),
        superuser: Superuser {
            psql: stack.postgres.program("psql"),
            socket_dir: stack.postgres.socket_dir.clone(),
            port: stack.postgres.port,
            role: "postgres".to_owned(),
            run_as: None,
        },
        brokers: stack.bootstrap.clone(),
        backup_dir: Some(backups.clone()),
        textfile_dir: Some(textfile.clone()),
    };

    // `teipsum status --dev` on the same stack: nothing of a host to read
    // (units, dumps, the certificate record), and nothing wrong.
    let (code, json) = status_command(&stack);
    assert_eq!(code, Some(0), "{json:#}");
    assert_eq!(json["services"].as_array().unwrap().len(), 6);
    assert!(json["units"].as_array().unwrap().is_empty());

    // Healthy: the only problems are the units this machine lacks and the
    // dumps that were not taken.
    let healthy = status(&stack, &site).await;
    for row in &healthy.services {
        assert_eq!(ok(&row.ready, &row.service), 200, "{}", row.service);
    }
    let service_unit = |unit: &str| stack.plan.services.iter().any(|s| s.unit == unit);
    for row in healthy.units.iter().filter(|r| service_unit(&r.unit)) {
        assert_eq!(ok(&row.state, &row.unit).active, "active", "{}", row.unit);
    }
    let (max, used) = ok(&healthy.connections, "connections");
    assert_eq!(max, 300);
    assert!(used >= 6, "every service holds a connection: {used}");
    assert_eq!(healthy.databases.len(), stack.plan.postgres.databases.len());
    for row in &healthy.databases {
        assert!(ok(&row.connections, &row.database) >= 1, "{}", row.database);
        assert!(
            ok(&row.size_bytes, &row.database) > 1_000_000,
            "{}",
            row.database
        );
        assert_eq!(ok(&row.parked, &row.database), 0, "{}", row.database);
        ok(&row.outbox, &row.database);
    }
    let lags = ok(&healthy.consumer_groups, "consumer groups");
    for service in stack
        .plan
        .services
        .iter()
        .filter(|s| !s.consumes.is_empty())
    {
        let group = service.consumer_group.as_deref().unwrap();
        for topic in &service.consumes {
            let lag = lags
                .iter()
                .find(|l| l.group == group && &l.topic == topic)
                .unwrap_or_else(|| panic!("no lag of {group} on {topic}: {lags:?}"));
            let declared = stack
                .plan
                .kafka
                .topics
                .iter()
                .find(|t| &t.name == topic)
                .unwrap();
            assert_eq!(
                lag.partitions as u32, declared.partitions,
                "{group} {topic}"
            );
        }
    }
    let dumped = healthy
        .backups
        .iter()
        .find(|b| b.database == order_db)
        .unwrap();
    assert!(ok(&dumped.age_secs, "the order dump") < 600);
    let days = ok(&healthy.certificate.expires_in_secs, "certificate") / 86_400;
    assert!(
        days > 14,
        "the development certificate has {days} days left"
    );
    let not_dumped = stack.plan.postgres.backup.databases.len() - 1;
    let unknown_units = healthy
        .units
        .iter()
        .filter(|r| !service_unit(&r.unit))
        .count();
    assert!(
        healthy
            .problems
            .iter()
            .all(|p| p.starts_with("no dump of") || p.contains("no systemd here")),
        "{:#?}",
        healthy.problems
    );
    assert_eq!(
        healthy.problems.len(),
        not_dumped + unknown_units,
        "{:#?}",
        healthy.problems
    );

    // Broken: the catalog stopped, inventory's consumer held by a lock
    // while an order waits for its reservation.
    stack.service("catalog").stop();
    let inventory = stack.plan.service("inventory").unwrap();
    let lock = TableLock::take(&stack, &inventory.database, "inventory.inventory");
    let waiting = shop.place_order(&ana, &mug, 1).await;
    let group = inventory.consumer_group.clone().unwrap();
    let mut broken = status(&stack, &site).await;
    for _ in 0..50 {
        let behind = ok(&broken.consumer_groups, "consumer groups")
            .iter()
            .any(|l| l.group == group && l.topic == "order-events" && l.lag >= 1);
        if behind {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        broken = status(&stack, &site).await;
    }
    let lag = ok(&broken.consumer_groups, "consumer groups")
        .into_iter()
        .find(|l| l.group == group && l.topic == "order-events")
        .unwrap();
    assert!(lag.lag >= 1, "inventory waits on the order: {lag:?}");
    let catalog = broken
        .services
        .iter()
        .find(|s| s.service == "catalog")
        .unwrap();
    assert!(matches!(catalog.ready, Reading::Error(_)), "{catalog:?}");
    for expected in [
        "catalog does not answer",
        "teipsum-catalog.service is inactive",
    ] {
        assert!(
            broken.problems.iter().any(|p| p.starts_with(expected)),
            "{expected}: {:#?}",
            broken.problems
        );
    }
    let (code, json) = status_command(&stack);
    assert_eq!(code, Some(5), "{json:#}");
    let problems: Vec<&str> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("catalog does not answer")),
        "{problems:?}"
    );
    let text = render(&broken);
    assert!(
        text.contains("PROBLEMS") && text.contains("catalog does not answer"),
        "{text}"
    );
    let json = serde_json::to_value(&broken).unwrap();
    assert_eq!(json["environment"], "prod");
    assert!(
        json["services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["ready"]["error"].is_string())
    );

    // Mended, the waiting order goes through.
    drop(lock);
    stack.service("catalog").start().unwrap();
    let id = waiting["id"].as_str().unwrap();
    let decided = shop
        .until(
            &format!("/api/orders/{id}"),
            Some(&ana),
            "the waiting order",
            |_, b| b["status"] != "PLACED",
        )
        .await;
    assert_eq!(decided["status"], "CONFIRMED");
    let _ = std::fs::remove_dir_all(&dir);
    stack.stop();
}
