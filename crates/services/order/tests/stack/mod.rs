//! The saga stack: the real `teipsum-order` and `teipsum-inventory`
//! binaries, PostgreSQL and tansu. Products arrive as `product-events`,
//! produced here as admin-product would. Order's tests (`saga.rs`) and
//! inventory's (`crates/services/inventory/tests/stock.rs`) both start it;
//! each uses part of it.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use rdkafka::producer::FutureRecord;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use teipsum_conventions::env as vars;
use teipsum_events::{Event, Product};
use teipsum_kit::{
    events::Envelope,
    jwt::{self, Claims, Role, Signer},
    kafka,
};
use teipsum_testkit::{Credentials, Postgres, ServiceProcess, Tansu, TestInstance};
use uuid::Uuid;

/// Fields drop in order: the services stop before the broker and database.
pub struct Saga {
    pub order: ServiceProcess,
    /// Where the order service serves `/metrics`.
    pub order_metrics: std::net::SocketAddr,
    pub inventory: ServiceProcess,
    pub pg: Postgres,
    pub broker: Tansu,
    pub _credentials: Credentials,
    pub signer: Signer,
    pub http: Client,
    pub admin: String,
}

/// `service`'s environment from the Plan (`teipsum_testkit::service_env`)
/// on this stack's database, broker and credentials.
pub fn env(
    service: &str,
    conninfo: String,
    broker: &str,
    credentials: &Credentials,
) -> BTreeMap<String, String> {
    let instance = TestInstance {
        database: conninfo,
        brokers: broker,
        credentials: credentials.path(),
    };
    teipsum_testkit::service_env(service, &instance)
        .unwrap_or_else(|e| panic!("the plan's environment of {service}: {e}"))
}

/// The token issuer and audience every service of the Plan checks.
pub fn issuer_and_audience() -> (&'static str, &'static str) {
    let setting = |name| teipsum_testkit::plan_setting("order", name).expect("order checks tokens");
    (setting(vars::JWT_ISSUER), setting(vars::JWT_AUDIENCE))
}

/// Limits loose enough for the tests that are not about them (one buyer
/// places 80 orders in one of them).
pub const LOOSE: Limits = Limits {
    max_units: 1_000,
    max_open: 1_000,
    confirm_within_secs: 3_600,
    open_for_secs: 86_400,
};

/// `services.order.order_limits` as the unit's environment carries them.
#[derive(Clone, Copy)]
pub struct Limits {
    pub max_units: i32,
    pub max_open: i64,
    pub confirm_within_secs: u64,
    pub open_for_secs: u64,
}

impl Saga {
    pub fn start() -> Saga {
        Saga::start_with(LOOSE)
    }

    pub fn start_with(limits: Limits) -> Saga {
        Saga::start_configured(limits, None)
    }

    /// The stack with inventory applying up to `batch` events per
    /// transaction (the spec's `consumer_batch`).
    pub fn start_batched(batch: usize) -> Saga {
        Saga::start_configured(LOOSE, Some(batch))
    }

    fn start_configured(limits: Limits, inventory_batch: Option<usize>) -> Saga {
        let pg = Postgres::start().expect("PostgreSQL starts");
        let broker = Tansu::start().expect("tansu starts");
        // The topics of both services, admin-product's `product-events` among them.
        broker
            .create_topics(
                &teipsum_testkit::plan_topics(&["order", "inventory"]).expect("the plan's topics"),
            )
            .expect("the topics are created");
        let (private, public) = jwt::generate_keypair();
        let credentials = Credentials::new(&[("jwt-public-key", &public)])
            .expect("the credential files are written");
        let mut order_env = env(
            "order",
            pg.create_database("teipsum_order")
                .expect("the database is created"),
            &broker.bootstrap,
            &credentials,
        );
        order_env.extend([
            (
                vars::ORDER_MAX_UNITS.to_owned(),
                limits.max_units.to_string(),
            ),
            (vars::ORDER_MAX_OPEN.to_owned(), limits.max_open.to_string()),
            (
                vars::ORDER_CONFIRM_WITHIN_SECS.to_owned(),
                limits.confirm_within_secs.to_string(),
            ),
            (
                vars::ORDER_OPEN_FOR_SECS.to_owned(),
                limits.open_for_secs.to_string(),
            ),
        ]);
        let order_metrics =
            teipsum_testkit::metrics_listen(&mut order_env).expect("a port for /metrics");
        let order = ServiceProcess::spawn("teipsum-order", order_env.into_iter().collect())
            .expect("the service starts");
        let mut inventory_env = env(
            "inventory",
            pg.create_database("teipsum_inventory")
                .expect("the database is created"),
            &broker.bootstrap,
            &credentials,
        );
        if let Some(batch) = inventory_batch {
            inventory_env.insert(vars::CONSUMER_BATCH.to_owned(), batch.to_string());
        }
        let inventory =
            ServiceProcess::spawn("teipsum-inventory", inventory_env.into_iter().collect())
                .expect("the service starts");
        let signer = Signer::new(private.as_bytes()).unwrap();
        let admin = token(&signer, Uuid::new_v4(), Role::Admin);
        Saga {
            order,
            order_metrics,
            inventory,
            pg,
            broker,
            _credentials: credentials,
            signer,
            http: teipsum_testkit::http_client().expect("an HTTP client"),
            admin,
        }
    }

    pub fn customer(&self) -> String {
        token(&self.signer, Uuid::new_v4(), Role::Customer)
    }

    /// Announce a product as admin-product would, and wait until the order
    /// and inventory services know it.
    pub async fn product(&self, price_minor: i64, currency: &str) -> Uuid {
        let id = Uuid::new_v4();
        self.emit(Event::ProductCreated(Product {
            product_id: id,
            version: 1,
            name: format!("Product {id}"),
            description: String::new(),
            sku: "SKU-1".to_owned(),
            price_minor,
            currency: currency.to_owned(),
            category: "tests".to_owned(),
            image_urls: vec![],
            active: true,
        }))
        .await;
        let sql = format!("SELECT count(*) FROM products WHERE id = '{id}'");
        self.wait("the order service to know the product", || {
            self.count("teipsum_order", &sql) == 1
        })
        .await;
        let sql = format!("SELECT count(*) FROM inventory.products WHERE product_id = '{id}'");
        self.wait("inventory to know the product", || {
            self.count("teipsum_inventory", &sql) == 1
        })
        .await;
        id
    }

    /// Publish `event` on its topic as its producer would.
    pub async fn emit(&self, event: Event) {
        self.publish(&event.envelope(), event.kind().topic()).await;
    }

    pub async fn publish(&self, event: &Envelope, topic: &str) {
        let producer = kafka::producer(&self.broker.bootstrap, "saga-test").unwrap();
        producer
            .send(
                FutureRecord::to(topic)
                    .key(&event.subject)
                    .payload(&serde_json::to_vec(event).unwrap()),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
    }

    pub async fn set_stock(&self, product: Uuid, on_hand: i64) {
        let r = self.put_stock(product, json!({"on_hand": on_hand})).await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }

    pub async fn put_stock(&self, product: Uuid, body: Value) -> reqwest::Response {
        self.http
            .put(format!(
                "{}/api/admin/inventory/{product}",
                self.inventory.base
            ))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn adjust_stock(&self, product: Uuid, delta: Value) -> reqwest::Response {
        self.http
            .post(format!(
                "{}/api/admin/inventory/{product}/adjust",
                self.inventory.base
            ))
            .bearer_auth(&self.admin)
            .json(&json!({"delta": delta}))
            .send()
            .await
            .unwrap()
    }

    pub async fn stock(&self, product: Uuid) -> (i64, i64) {
        let level: Value = self
            .http
            .get(format!(
                "{}/api/admin/inventory/{product}",
                self.inventory.base
            ))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            level["quantity"].as_i64().unwrap(),
            level["reserved"].as_i64().unwrap(),
        )
    }

    pub async fn place(&self, token: &str, items: Value, key: Option<&str>) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/api/orders/", self.order.base))
            .bearer_auth(token)
            .json(&json!({"items": items}));
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.unwrap()
    }

    pub async fn get_order(&self, token: &str, id: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/api/orders/{id}", self.order.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Poll the order until it leaves PLACED.
    pub async fn settled(&self, id: &str) -> Value {
        let started = Instant::now();
        loop {
            let order: Value = self.get_order(&self.admin, id).await.json().await.unwrap();
            if order["status"] != "PLACED" {
                return order;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "order {id} stuck in PLACED"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the order service's `/metrics` answers now, parsed.
    pub async fn order_metrics(&self) -> teipsum_testkit::metrics::Scrape {
        let (_, text) = teipsum_testkit::metrics::scrape(self.order_metrics)
            .await
            .expect("/metrics answers");
        teipsum_testkit::metrics::Scrape::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    /// The order service's `/metrics` once `done` holds of it (within 30 s:
    /// a completion is observed just after its transaction commits).
    pub async fn order_metrics_once(
        &self,
        done: impl Fn(&teipsum_testkit::metrics::Scrape) -> bool,
    ) -> teipsum_testkit::metrics::Scrape {
        let started = Instant::now();
        loop {
            let metrics = self.order_metrics().await;
            if done(&metrics) || started.elapsed() > Duration::from_secs(30) {
                return metrics;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn count(&self, database: &str, sql: &str) -> i64 {
        self.pg.psql(database, sql).unwrap().parse().unwrap()
    }

    pub async fn wait(&self, what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn token(signer: &Signer, user: Uuid, role: Role) -> String {
    let now = jwt::now();
    let (iss, aud) = issuer_and_audience();
    signer.sign(&Claims {
        iss: iss.into(),
        aud: aud.into(),
        sub: user,
        role,
        iat: now,
        nbf: now,
        exp: now + 900,
        jti: Uuid::new_v4(),
    })
}

pub async fn placed(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["status"], "PLACED");
    order
}

pub async fn error_code(response: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].is_string(), "{body}");
    body["error"].as_str().unwrap().to_owned()
}
