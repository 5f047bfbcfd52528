//! Disaster recovery: the nightly dumps, taken as the host's backup units
//! take them, bring the whole shop back on a new, empty database cluster
//! with the code of `teipsum restore`, and the shop goes on selling.

use std::{
    collections::BTreeMap,
    fs::File,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use teipsum_cli::restore::{self, Compression, RestoreError, Superuser, Units};
use teipsum_dev::Stack;
use teipsum_e2e::{Shop, start};
use teipsum_spec::plan::{Plan, ServicePlan};

const SHOPPERS: [&str; 3] = ["ana@example.org", "ben@example.org", "chidi@example.org"];

/// The compressor of `services.postgresqlBackup.compression` and the file
/// suffix nixpkgs gives it (nixos/modules/services/backup/postgresql-backup.nix).
fn compressor(compression: &str) -> (Vec<&'static str>, &'static str) {
    match compression {
        "zstd" => (vec!["zstd", "-c", "-6", "--rsyncable"], ".zstd"),
        "gzip" => (vec!["gzip", "-c", "-6", "--rsyncable"], ".gz"),
        "none" => (vec!["cat"], ""),
        other => panic!("the plan compresses with {other}, which the backup module does not know"),
    }
}

/// What the backup unit of `database` runs:
/// `pg_dump -C <db> | <compressor> > <location>/<db>.sql<suffix>`, as the
/// superuser (`pg_dump`'s options are nixpkgs' default `pgdumpOptions`).
fn dump_as_the_backup_unit(stack: &Stack, database: &str, location: &Path) -> PathBuf {
    let (compress, suffix) = compressor(&stack.plan.postgres.backup.compression);
    let file = location.join(format!("{database}.sql{suffix}"));
    let mut pg_dump = Command::new(stack.postgres.program("pg_dump"))
        .arg("-h")
        .arg(&stack.postgres.socket_dir)
        .args(["-p", &stack.postgres.port.to_string(), "-U", "postgres"])
        .args(["-C", database])
        .stdout(Stdio::piped())
        .spawn()
        .expect("pg_dump runs");
    let compressed = Command::new(compress[0])
        .args(&compress[1..])
        .stdin(pg_dump.stdout.take().unwrap())
        .stdout(File::create(&file).unwrap())
        .status()
        .expect("the compressor runs (scripts/setup.sh installs it)");
    assert!(pg_dump.wait().unwrap().success(), "pg_dump {database}");
    assert!(compressed.success(), "compressing {database}");
    file
}

/// Every row of every table of every database, as a count and a digest per
/// table: equal fingerprints mean equal contents.
fn fingerprint(stack: &Stack, database: &str) -> BTreeMap<String, String> {
    let pg = &stack.postgres;
    let tables = pg
        .psql(
            database,
            "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables \
             WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
        )
        .unwrap();
    tables
        .lines()
        .map(|table| {
            let digest = pg
                .psql(
                    database,
                    &format!(
                        "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '-') FROM {table} t"
                    ),
                )
                .unwrap();
            (format!("{database} {table}"), digest)
        })
        .collect()
}

fn fingerprints(stack: &Stack) -> BTreeMap<String, String> {
    stack
        .plan
        .postgres
        .databases
        .iter()
        .flat_map(|d| fingerprint(stack, &d.name))
        .collect()
}

/// The dev stack's processes in place of systemd units; the contents a
/// restored database's services find when they start are recorded.
struct StackUnits<'a> {
    stack: &'a Stack,
    found: BTreeMap<String, String>,
}

impl Units for StackUnits<'_> {
    fn stop(&mut self, services: &[&ServicePlan]) -> Result<(), String> {
        for service in services {
            if !self.stack.service(&service.name).stop() {
                return Err(format!("{} did not stop cleanly on SIGTERM", service.name));
            }
        }
        Ok(())
    }

    fn start(&mut self, services: &[&ServicePlan]) -> Result<(), String> {
        for service in services {
            self.found
                .extend(fingerprint(self.stack, &service.database));
            self.stack
                .service(&service.name)
                .start()
                .map_err(|e| format!("{}: {e}", service.name))?;
        }
        Ok(())
    }
}

/// As a host's superuser: psql over the cluster's socket.
fn superuser(stack: &Stack) -> Superuser {
    Superuser {
        psql: stack.postgres.program("psql"),
        socket_dir: stack.postgres.socket_dir.clone(),
        port: stack.postgres.port,
        role: "postgres".to_owned(),
        run_as: None,
    }
}

async fn get(shop: &Shop, path: &str, token: &str) -> Value {
    let r = shop.call(Method::GET, path, Some(token), None).await;
    assert_eq!(r.status(), StatusCode::OK, "GET {path}");
    r.json().await.unwrap()
}

/// What a shopper and the administrator see: accounts, products, orders
/// with their states, stock levels.
async fn the_shop_as_seen(shop: &Shop, products: &[String]) -> Value {
    let admin = shop.admin().await;
    let mut seen = serde_json::Map::new();
    for email in SHOPPERS {
        let token = shop.login(email).await;
        let orders = get(shop, "/api/orders/", &token).await;
        let mut states: Vec<(String, String)> = orders["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["id"].as_str().unwrap().to_owned(),
                    o["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        states.sort();
        seen.insert(email.to_owned(), json!(states));
    }
    for product in products {
        let row = get(shop, &format!("/api/admin/products/{product}"), &admin).await;
        let level = get(shop, &format!("/api/admin/inventory/{product}"), &admin).await;
        seen.insert(
            product.clone(),
            json!({
                "name": row["name"], "sku": row["sku"], "price": row["price"],
                "quantity": level["quantity"], "reserved": level["reserved"],
            }),
        );
    }
    Value::Object(seen)
}

/// A copy of a dump, decoded, with `edit` applied to its SQL.
fn edited_plain_copy(dump: &Path, to: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let sql = Command::new("zstd")
        .args(["-d", "-c"])
        .arg(dump)
        .output()
        .unwrap();
    assert!(sql.status.success());
    std::fs::write(to, edit(String::from_utf8(sql.stdout).unwrap())).unwrap();
    to.to_owned()
}

fn refused(plan: &Plan, database: &str, file: &Path) -> RestoreError {
    match restore::database(plan, database).and_then(|_| restore::read_dump(file, database)) {
        Ok(_) => panic!("{} was taken for a dump of {database}", file.display()),
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_nightly_dumps_bring_back_every_account_product_order_and_stock_level() {
    let state = std::env::temp_dir().join(format!("teipsum-e2e-restore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let backups = state.join("backup");
    std::fs::create_dir_all(&backups).unwrap();

    // A shop with customers, products, stock and orders the saga decided.
    let stack = start("prod", Some(state.clone()));
    assert_eq!(stack.plan.postgres.backup.compression, "zstd");
    let shop = Shop::new(&stack);
    let admin = shop.admin().await;
    let mut tokens = Vec::new();
    for email in SHOPPERS {
        tokens.push(shop.account(email).await);
    }
    let mut products = Vec::new();
    for (name, sku, price, on_hand) in [
        ("Restored Mug", "R-MUG", 1_200, 10),
        ("Restored Teapot", "R-POT", 3_500, 2),
    ] {
        let id = shop.create_product(&admin, name, sku, price).await;
        shop.set_stock(&admin, &id, on_hand).await;
        products.push(id);
    }
    let (mug, teapot) = (&products[0], &products[1]);
    assert_eq!(
        shop.order_decided(&tokens[0], mug, 2).await["status"],
        "CONFIRMED"
    );
    assert_eq!(
        shop.order_decided(&tokens[1], mug, 3).await["status"],
        "CONFIRMED"
    );
    assert_eq!(
        shop.order_decided(&tokens[1], teapot, 1).await["status"],
        "CONFIRMED"
    );
    assert_eq!(
        shop.order_decided(&tokens[2], teapot, 5).await["status"],
        "REJECTED"
    );
    let before = the_shop_as_seen(&shop, &products).await;
    assert_eq!(before[mug.as_str()]["quantity"], 5, "{before}");

    // The nightly dumps, taken with the shop quiet so that the digests
    // below describe exactly what was dumped.
    stack.stop_services();
    let dumped = fingerprints(&stack);
    assert!(
        dumped.keys().any(|k| k.starts_with("teipsum_order ")),
        "{dumped:?}"
    );
    let dumps: BTreeMap<String, PathBuf> = stack
        .plan
        .postgres
        .backup
        .databases
        .iter()
        .map(|db| (db.clone(), dump_as_the_backup_unit(&stack, db, &backups)))
        .collect();
    assert_eq!(
        dumps.len(),
        stack.plan.postgres.databases.len(),
        "every database is backed up"
    );
    stack.stop();

    // The cluster is lost; a rebuilt host has empty databases and roles of
    // the plan, and services that started on them.
    let cluster = state.join("postgres");
    assert!(cluster.join("data/PG_VERSION").is_file());
    std::fs::remove_dir_all(&cluster).unwrap();
    let stack = start("prod", Some(state.clone()));
    let shop = Shop::new(&stack);
    let lost = shop
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": SHOPPERS[0], "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(
        lost.status(),
        StatusCode::UNAUTHORIZED,
        "the accounts are gone"
    );
    let plan = stack.plan.clone();
    let empty = fingerprints(&stack);
    assert_ne!(empty, dumped);

    // Bad input is refused before anything changes.
    let order_dump = &dumps["teipsum_order"];
    assert!(matches!(
        refused(&plan, "teipsum_orders", order_dump),
        RestoreError::UnknownDatabase { .. }
    ));
    assert!(matches!(
        refused(
            &plan,
            "teipsum_order",
            &backups.join("teipsum_order.prev.sql.zstd")
        ),
        RestoreError::Unreadable { .. }
    ));
    let not_a_dump = backups.join("notes.sql.zstd");
    std::fs::write(&not_a_dump, "PK\u{3}\u{4} a zip file").unwrap();
    assert!(matches!(
        refused(&plan, "teipsum_order", &not_a_dump),
        RestoreError::UnknownCompression { .. }
    ));
    let bytes = std::fs::read(order_dump).unwrap();
    let truncated = backups.join("truncated.sql.zstd");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(
        refused(&plan, "teipsum_order", &truncated),
        RestoreError::Decode {
            compression: Compression::Zstd,
            ..
        }
    ));
    let error = refused(&plan, "teipsum_user", order_dump);
    assert!(
        error.to_string().contains("it is a dump of teipsum_order"),
        "{error}"
    );
    let cut = edited_plain_copy(order_dump, &backups.join("cut.sql"), |sql| {
        sql[..sql.find("-- PostgreSQL database dump complete").unwrap()].to_owned()
    });
    assert!(
        refused(&plan, "teipsum_order", &cut)
            .to_string()
            .contains("cut short")
    );
    // A dump that fails half-way through loading leaves the database and
    // its services as they were: the load is one transaction, into a
    // staging database, before any service is stopped.
    let failing = edited_plain_copy(order_dump, &backups.join("failing.sql"), |sql| {
        let at = sql.find("COPY ").unwrap();
        format!("{}SELECT 1 / 0;\n{}", &sql[..at], &sql[at..])
    });
    let dump = restore::read_dump(&failing, "teipsum_order").unwrap();
    assert_eq!(dump.compression, Compression::None);
    let mut units = StackUnits {
        stack: &stack,
        found: BTreeMap::new(),
    };
    let error = restore::restore(&plan, &dump, &superuser(&stack), &mut units, &mut |_| {})
        .expect_err("a failing dump is not restored");
    assert!(error.to_string().contains("division by zero"), "{error}");
    assert!(error.to_string().contains("unchanged"), "{error}");
    assert!(units.found.is_empty(), "no service was stopped or started");
    assert!(stack.service("order").is_running());
    assert_eq!(fingerprints(&stack), empty, "nothing changed");
    assert_eq!(
        stack
            .postgres
            .psql(
                "postgres",
                "SELECT count(*) FROM pg_database WHERE datname LIKE '%restoring'"
            )
            .unwrap(),
        "0",
        "no staging database is left behind"
    );

    // Each database restored with the code of `teipsum restore`.
    let mut said = Vec::new();
    for (database, file) in &dumps {
        let dump = restore::read_dump(file, database).unwrap();
        restore::restore(&plan, &dump, &superuser(&stack), &mut units, &mut |line| {
            said.push(line)
        })
        .unwrap_or_else(|e| panic!("restoring {database}: {e}"));
    }
    assert_eq!(
        units.found, dumped,
        "the services started on what was dumped"
    );
    assert!(
        said.iter().any(|l| l == "stopped teipsum-order.service"),
        "{said:?}"
    );
    for database in &plan.postgres.databases {
        assert_eq!(
            stack
                .postgres
                .psql(
                    "postgres",
                    &format!(
                        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{}'",
                        database.name
                    )
                )
                .unwrap(),
            database.role,
            "the service's role owns {}",
            database.name
        );
    }

    // Everyone and everything is back, and the saga goes on.
    let shop = Shop::new(&stack);
    let after = the_shop_as_seen(&shop, &products).await;
    assert_eq!(after, before);
    let ana = shop.login(SHOPPERS[0]).await;
    assert_eq!(
        shop.order_decided(&ana, mug, 1).await["status"],
        "CONFIRMED"
    );
    let admin = shop.admin().await;
    shop.until(
        &format!("/api/admin/inventory/{mug}"),
        Some(&admin),
        "the new order's unit taken from stock",
        |s, b| s == StatusCode::OK && b["quantity"] == 4,
    )
    .await;
    stack.stop();
    let _ = std::fs::remove_dir_all(&state);
}
