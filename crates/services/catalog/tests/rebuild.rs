//! A catalog rebuilt from nothing after the topics' retention window: the
//! real `teipsum-admin-product`, `teipsum-inventory` and `teipsum-catalog`
//! binaries against PostgreSQL and tansu, then a fresh broker and a fresh
//! catalog database, as if every event had expired, and the producers'
//! `events announce` commands to bring the catalog back.
//!
//! `teipsum-admin-product` and `teipsum-inventory` must be built:
//! `cargo build -p teipsum-admin-product -p teipsum-inventory`
//! (scripts/test.sh builds the whole workspace first).

use std::{
    process::Command,
    time::{Duration, Instant},
};

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use teipsum_conventions::env as vars;
use teipsum_kit::jwt::{self, Claims, Role, Signer};
use teipsum_testkit::{Credentials, Postgres, ServiceProcess, Tansu, TestInstance};
use uuid::Uuid;

const ADMIN_DB: &str = "teipsum_admin_product";
const INVENTORY_DB: &str = "teipsum_inventory";

/// How long the first event may take to show: the consumers join their
/// groups first (seconds on a loaded test machine).
const FIRST_EVENT: Duration = Duration::from_secs(60);

/// `service`'s environment from the Plan (`teipsum_testkit::service_env`)
/// on `conninfo`, `broker` and `credentials`.
fn env(
    service: &str,
    conninfo: &str,
    broker: &Tansu,
    credentials: &Credentials,
) -> Vec<(String, String)> {
    let instance = TestInstance {
        database: conninfo.to_owned(),
        brokers: &broker.bootstrap,
        credentials: credentials.path(),
    };
    teipsum_testkit::service_env(service, &instance)
        .unwrap_or_else(|e| panic!("the plan's environment of {service}: {e}"))
        .into_iter()
        .collect()
}

/// A broker with the platform's topics, empty.
fn broker() -> Tansu {
    let broker = Tansu::start().expect("tansu starts");
    broker
        .create_topics(
            &teipsum_testkit::plan_topics(&["admin-product", "inventory", "catalog"])
                .expect("the plan's topics"),
        )
        .expect("the topics are created");
    broker
}

/// The three services against `broker`, the catalog on `catalog_db`.
/// Fields drop in order: the catalog stops first.
struct Services {
    catalog: ServiceProcess,
    admin: ServiceProcess,
    inventory: ServiceProcess,
}

fn services(
    pg: &Postgres,
    broker: &Tansu,
    credentials: &Credentials,
    catalog_db: &str,
) -> Services {
    Services {
        admin: ServiceProcess::spawn(
            "teipsum-admin-product",
            env("admin-product", &pg.conninfo(ADMIN_DB), broker, credentials),
        )
        .expect("the service starts"),
        inventory: ServiceProcess::spawn(
            "teipsum-inventory",
            env("inventory", &pg.conninfo(INVENTORY_DB), broker, credentials),
        )
        .expect("the service starts"),
        catalog: ServiceProcess::spawn(
            "teipsum-catalog",
            env("catalog", &pg.conninfo(catalog_db), broker, credentials),
        )
        .expect("the service starts"),
    }
}

fn admin_token(signer: &Signer) -> String {
    let now = jwt::now();
    let setting = |name| teipsum_testkit::plan_setting("admin-product", name).expect("a setting");
    signer.sign(&Claims {
        iss: setting(vars::JWT_ISSUER).to_owned(),
        aud: setting(vars::JWT_AUDIENCE).to_owned(),
        sub: Uuid::new_v4(),
        role: Role::Admin,
        iat: now,
        nbf: now,
        exp: now + 600,
        jti: Uuid::new_v4(),
    })
}

/// `GET` from the catalog until `done` holds, at most `within`.
async fn until(
    http: &Client,
    url: &str,
    within: Duration,
    done: impl Fn(StatusCode, &Value) -> bool,
) {
    let started = Instant::now();
    loop {
        let r = http.get(url).send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if done(status, &body) {
            return;
        }
        assert!(
            started.elapsed() < within,
            "{url}: not within {within:?}; last answer {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Run `binary events announce` against `conninfo`; its report line.
fn announce(binary: &str, conninfo: &str) -> String {
    let out = Command::new(teipsum_testkit::binary(binary).expect("the binary is built"))
        .args(["events", "announce"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(vars::DATABASE, conninfo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{binary}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_built_from_an_empty_database_after_the_retention_window_shows_every_product_and_its_stock()
 {
    let pg = Postgres::start().expect("PostgreSQL starts");
    pg.create_database(ADMIN_DB)
        .expect("the database is created");
    pg.create_database(INVENTORY_DB)
        .expect("the database is created");
    pg.create_database("teipsum_catalog")
        .expect("the database is created");
    let (private_pem, public_pem) = jwt::generate_keypair();
    let credentials = Credentials::new(&[("jwt-public-key", &public_pem)])
        .expect("the credential files are written");
    let signer = Signer::new(private_pem.as_bytes()).unwrap();
    let http = teipsum_testkit::http_client().expect("an HTTP client");
    let token = admin_token(&signer);

    let first_broker = broker();
    let running = services(&pg, &first_broker, &credentials, "teipsum_catalog");

    // Products with plenty, a few and no units; and one deleted.
    let stocks = [
        ("TEE-RED-M", 50, "in_stock"),
        ("TEE-BLU-M", 3, "low_stock"),
        ("MUG-BLK", 0, "out_of_stock"),
        ("CAP-GRN", 12, "in_stock"),
    ];
    let mut products = Vec::new();
    for (sku, on_hand, status) in stocks {
        let body = json!({
            "name": format!("Product {sku}"),
            "description": "Made to last.",
            "sku": sku,
            "price": {"amount_minor": 1999, "currency": "EUR"},
            "category": "goods",
            "image_urls": [],
            "active": true
        });
        let created = http
            .request(
                Method::POST,
                format!("{}/api/admin/products/", running.admin.base),
            )
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let id = created.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        products.push((id, sku, on_hand, status));
    }
    let gone = http
        .post(format!("{}/api/admin/products/", running.admin.base))
        .bearer_auth(&token)
        .json(&json!({
            "name": "Discontinued", "description": "", "sku": "OLD-1",
            "price": {"amount_minor": 100, "currency": "EUR"},
            "category": "goods", "image_urls": [], "active": true
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::CREATED);
    let gone = gone.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted = http
        .delete(format!("{}/api/admin/products/{gone}", running.admin.base))
        .bearer_auth(&token)
        .header("if-match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());

    // Inventory learns of each product from product-events, then takes stock.
    for (id, sku, on_hand, _) in &products {
        let started = Instant::now();
        loop {
            let r = http
                .put(format!(
                    "{}/api/admin/inventory/{id}",
                    running.inventory.base
                ))
                .bearer_auth(&token)
                .json(&json!({"on_hand": on_hand}))
                .send()
                .await
                .unwrap();
            if r.status() == StatusCode::OK {
                break;
            }
            assert!(
                started.elapsed() < FIRST_EVENT,
                "stock of {sku}: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    for (id, _, _, status) in &products {
        let url = format!("{}/api/products/{id}", running.catalog.base);
        until(&http, &url, FIRST_EVENT, |s, b| {
            s == StatusCode::OK && b["stock"] == json!({"status": status})
        })
        .await;
    }

    // The retention window passes: the topics' history is gone (a new
    // broker), the producers' sent outbox rows are pruned, and the catalog
    // starts over on an empty database.
    drop(running);
    drop(first_broker);
    for db in [ADMIN_DB, INVENTORY_DB] {
        pg.psql(db, "DELETE FROM kit_outbox").unwrap();
    }
    pg.create_database("teipsum_catalog_rebuilt")
        .expect("the database is created");
    let second_broker = broker();
    let running = services(&pg, &second_broker, &credentials, "teipsum_catalog_rebuilt");
    let list_url = format!("{}/api/products", running.catalog.base);
    let empty: Value = http
        .get(&list_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(empty["items"], json!([]), "the new catalog starts empty");

    // The operator re-announces the producers' current state.
    let said = announce("teipsum-admin-product", &pg.conninfo(ADMIN_DB));
    assert!(said.contains("queued 5 events"), "{said}");
    let said = announce("teipsum-inventory", &pg.conninfo(INVENTORY_DB));
    assert!(said.contains("queued 4 events"), "{said}");

    for (id, sku, _, status) in &products {
        let url = format!("{}/api/products/{id}", running.catalog.base);
        until(&http, &url, FIRST_EVENT, |s, b| {
            s == StatusCode::OK && b["sku"] == *sku && b["stock"] == json!({"status": status})
        })
        .await;
    }
    let page: Value = http
        .get(&list_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut listed: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    listed.sort();
    let mut expected: Vec<&str> = products.iter().map(|(id, ..)| id.as_str()).collect();
    expected.sort();
    assert_eq!(listed, expected, "every product, and not the deleted one");
    let r = http
        .get(format!("{}/api/products/{gone}", running.catalog.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
