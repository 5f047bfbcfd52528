//! The catalog end to end: the real `teipsum-catalog` binary (and, for the
//! story from the admin's side, the real `teipsum-admin-product`), started
//! as their units start them, against PostgreSQL and tansu.
//!
//! Where a test needs events in an order no well-behaved producer would
//! send (older versions after newer ones, duplicates, stock before the
//! product), it produces them to the topics itself.
//!
//! `teipsum-admin-product` must be built: `cargo build -p teipsum-admin-product`
//! (scripts/test.sh builds the whole workspace first).

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use rdkafka::producer::{FutureProducer, FutureRecord};
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use teipsum_conventions::env as vars;
use teipsum_kit::{
    events::Envelope,
    jwt::{self, Claims, Role, Signer},
    kafka,
};
use teipsum_testkit::{Credentials, Postgres, ServiceProcess, Tansu, TestInstance};
use time::OffsetDateTime;
use uuid::Uuid;

const CATALOG_DB: &str = "teipsum_catalog";
const PRODUCTS: &str = "product-events";
const INVENTORY: &str = "inventory-events";

/// How long the first event may take to show: the catalog's consumer
/// joins its group first (seconds on a loaded test machine).
const FIRST_EVENT: Duration = Duration::from_secs(60);

/// How long any later change may take from admin-product to the catalog.
const PROPAGATION: Duration = Duration::from_secs(15);

/// Fields drop in order: services stop before the broker and database.
struct Stack {
    catalog: ServiceProcess,
    admin: Option<ServiceProcess>,
    pg: Postgres,
    broker: Tansu,
    credentials: Credentials,
    http: Client,
    signer: Signer,
    producer: FutureProducer,
}

/// `service`'s environment from the Plan (`teipsum_testkit::service_env`)
/// on this stack's database, broker and credentials; in consumer `group`
/// instead of the Plan's when one is given.
fn env(
    service: &str,
    conninfo: String,
    broker: &Tansu,
    credentials: &Credentials,
    group: Option<&str>,
) -> Vec<(String, String)> {
    let instance = TestInstance {
        database: conninfo,
        brokers: &broker.bootstrap,
        credentials: credentials.path(),
    };
    let mut env = teipsum_testkit::service_env(service, &instance)
        .unwrap_or_else(|e| panic!("the plan's environment of {service}: {e}"));
    if let Some(group) = group {
        env.insert(vars::KAFKA_GROUP.to_owned(), group.to_owned());
    }
    env.into_iter().collect()
}

/// The token issuer and audience the catalog checks, from the Plan.
fn issuer_and_audience() -> (&'static str, &'static str) {
    let setting =
        |name| teipsum_testkit::plan_setting("catalog", name).expect("the catalog checks tokens");
    (setting(vars::JWT_ISSUER), setting(vars::JWT_AUDIENCE))
}

impl Stack {
    /// The catalog, and admin-product too when `with_admin`.
    fn start(with_admin: bool) -> Stack {
        let pg = Postgres::start().expect("PostgreSQL starts");
        let broker = Tansu::start().expect("tansu starts");
        broker
            .create_topics(&teipsum_testkit::plan_topics(&["catalog"]).expect("the plan's topics"))
            .expect("the topics are created");
        let (private_pem, public_pem) = jwt::generate_keypair();
        let credentials = Credentials::new(&[("jwt-public-key", &public_pem)])
            .expect("the credential files are written");
        let catalog = ServiceProcess::spawn(
            "teipsum-catalog",
            env(
                "catalog",
                pg.create_database(CATALOG_DB)
                    .expect("the database is created"),
                &broker,
                &credentials,
                None,
            ),
        )
        .expect("the service starts");
        let admin = with_admin.then(|| {
            ServiceProcess::spawn(
                "teipsum-admin-product",
                env(
                    "admin-product",
                    pg.create_database("teipsum_admin_product")
                        .expect("the database is created"),
                    &broker,
                    &credentials,
                    None,
                ),
            )
            .expect("the service starts")
        });
        let producer = kafka::producer(&broker.bootstrap, "catalog-test").unwrap();
        Stack {
            catalog,
            admin,
            pg,
            broker,
            credentials,
            http: teipsum_testkit::http_client().expect("an HTTP client"),
            signer: Signer::new(private_pem.as_bytes()).unwrap(),
            producer,
        }
    }

    fn admin_token(&self) -> String {
        let now = jwt::now();
        let (iss, aud) = issuer_and_audience();
        self.signer.sign(&Claims {
            iss: iss.to_owned(),
            aud: aud.to_owned(),
            sub: Uuid::new_v4(),
            role: Role::Admin,
            iat: now,
            nbf: now,
            exp: now + 600,
            jti: Uuid::new_v4(),
        })
    }

    /// A request to admin-product as an administrator.
    async fn admin(
        &self,
        method: Method,
        path: &str,
        if_match: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let base = &self
            .admin
            .as_ref()
            .expect("started with admin-product")
            .base;
        let mut request = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(self.admin_token());
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }

    /// `GET` from the catalog, with `If-None-Match` when given.
    async fn get(&self, path: &str, if_none_match: Option<&str>) -> Response {
        let mut request = self.http.get(format!("{}{path}", self.catalog.base));
        if let Some(tag) = if_none_match {
            request = request.header("if-none-match", tag);
        }
        request.send().await.unwrap()
    }

    /// A page of the list; must be a 200.
    async fn list(&self, query: &str) -> Value {
        let r = self.get(&format!("/api/products?{query}"), None).await;
        assert_eq!(r.status(), StatusCode::OK, "{query}");
        r.json().await.unwrap()
    }

    /// Wait at most `within` until `GET path` satisfies `done`.
    async fn until(
        &self,
        what: &str,
        path: &str,
        within: Duration,
        done: impl Fn(StatusCode, &Value) -> bool,
    ) {
        let started = Instant::now();
        loop {
            let r = self.get(path, None).await;
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if done(status, &body) {
                println!("{what}: after {:?}", started.elapsed());
                return;
            }
            assert!(
                started.elapsed() < within,
                "{what}: not within {within:?}; last answer {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Produce `event` to `topic`, keyed by its subject as the relay does.
    async fn produce(&self, topic: &str, event: &Envelope) {
        let payload = serde_json::to_vec(event).unwrap();
        self.producer
            .send(
                FutureRecord::to(topic)
                    .key(&event.subject)
                    .payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
    }

    fn sql(&self, sql: &str) -> String {
        self.pg.psql(CATALOG_DB, sql).unwrap()
    }

    /// Wait until the catalog has applied (or skipped as not its business)
    /// `events` distinct events.
    async fn until_processed(&self, events: usize) {
        let started = Instant::now();
        loop {
            let done: usize = self
                .sql("SELECT count(*) FROM kit_processed_events")
                .parse()
                .unwrap();
            if done >= events {
                assert_eq!(done, events, "more events processed than produced");
                return;
            }
            assert!(
                started.elapsed() < FIRST_EVENT,
                "only {done} of {events} events processed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A product as admin-product would describe it in an event.
#[derive(Clone)]
struct Spec {
    name: String,
    description: String,
    price_minor: i64,
    category: String,
    active: bool,
}

fn spec(name: &str, price_minor: i64, category: &str) -> Spec {
    Spec {
        name: name.to_owned(),
        description: String::new(),
        price_minor,
        category: category.to_owned(),
        active: true,
    }
}

fn product_event(kind: &str, id: Uuid, version: i64, spec: &Spec) -> Envelope {
    Envelope::new(
        "admin-product",
        kind,
        1,
        id,
        json!({
            "product_id": id, "version": version, "name": spec.name,
            "description": spec.description, "sku": format!("SKU-{}", &id.simple().to_string()[..12]),
            "price_minor": spec.price_minor, "currency": "EUR", "category": spec.category,
            "image_urls": ["https://cdn.teipsum.test/p.jpg"], "active": spec.active,
        }),
    )
}

fn deleted_event(id: Uuid, version: i64) -> Envelope {
    Envelope::new(
        "admin-product",
        "product-deleted",
        1,
        id,
        json!({"product_id": id, "version": version}),
    )
}

fn stock_event(id: Uuid, quantity: i64) -> Envelope {
    Envelope::new(
        "inventory",
        "stock-changed",
        1,
        id,
        json!({"product_id": id, "quantity": quantity}),
    )
}

async fn error_of(response: Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("errors are JSON");
    assert!(body["message"].is_string(), "{body}");
    (
        status,
        body["error"].as_str().expect("an error code").to_owned(),
    )
}

fn header(response: &Response, name: &str) -> String {
    response.headers()[name].to_str().unwrap().to_owned()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_catalog_reflects_what_admins_create_update_and_delete_within_seconds() {
    let stack = Stack::start(true);
    let tee = json!({
        "name": "Red tee",
        "description": "Organic cotton, made to last.",
        "sku": "TEE-RED-M",
        "price": {"amount_minor": 1999, "currency": "EUR"},
        "category": "t-shirts",
        "image_urls": ["https://cdn.teipsum.test/tee.jpg"],
        "active": true
    });
    let created = stack
        .admin(Method::POST, "/api/admin/products/", None, Some(&tee))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/products/{id}");
    let admin_path = format!("/api/admin/products/{id}");

    stack
        .until("the created product", &path, FIRST_EVENT, |s, _| {
            s == StatusCode::OK
        })
        .await;
    let shown = stack.get(&path, None).await;
    assert_eq!(header(&shown, "cache-control"), "public, max-age=5");
    assert_eq!(header(&shown, "etag"), "\"1-out_of_stock\"");
    let body: Value = shown.json().await.unwrap();
    assert_eq!(body["name"], "Red tee");
    assert_eq!(body["sku"], "TEE-RED-M");
    assert_eq!(
        body["price"],
        json!({"amount_minor": 1999, "currency": "EUR"})
    );
    assert_eq!(body["category"], "t-shirts");
    assert_eq!(
        body["image_urls"],
        json!(["https://cdn.teipsum.test/tee.jpg"])
    );
    assert_eq!(
        body["stock"],
        json!({"status": "out_of_stock"}),
        "no stock news yet"
    );
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "category",
            "description",
            "id",
            "image_urls",
            "name",
            "price",
            "sku",
            "stock",
            "updated_at"
        ]
    );

    // A browser revalidating what it has gets a 304 without a body.
    let again = stack.get(&path, Some("\"1-out_of_stock\"")).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&again, "etag"), "\"1-out_of_stock\"");
    assert_eq!(header(&again, "cache-control"), "public, max-age=5");
    assert!(again.bytes().await.unwrap().is_empty());

    // Stock from inventory: low, then plenty.
    stack
        .produce(INVENTORY, &stock_event(id.parse().unwrap(), 3))
        .await;
    stack
        .until("low stock", &path, PROPAGATION, |_, b| {
            b["stock"] == json!({"status": "low_stock"})
        })
        .await;
    stack
        .produce(INVENTORY, &stock_event(id.parse().unwrap(), 50))
        .await;
    stack
        .until("in stock", &path, PROPAGATION, |_, b| {
            b["stock"] == json!({"status": "in_stock"})
        })
        .await;
    let stale = stack.get(&path, Some("\"1-out_of_stock\"")).await;
    assert_eq!(stale.status(), StatusCode::OK, "stock changed the ETag");
    assert_eq!(header(&stale, "etag"), "\"1-in_stock\"");
    // Neither the body nor the tag tells the count.
    assert!(!stale.text().await.unwrap().contains("quantity"));

    // A new price.
    let mut edit = tee.clone();
    edit["price"]["amount_minor"] = 2499.into();
    let r = stack
        .admin(Method::PUT, &admin_path, Some("\"1\""), Some(&edit))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    stack
        .until("the new price", &path, PROPAGATION, |_, b| {
            b["price"]["amount_minor"] == 2499
        })
        .await;
    assert_eq!(
        header(&stack.get(&path, None).await, "etag"),
        "\"2-in_stock\""
    );

    // The list shows it, with its own ETag and 304.
    let listed = stack.get("/api/products", None).await;
    assert_eq!(header(&listed, "cache-control"), "public, max-age=5");
    let list_tag = header(&listed, "etag");
    let page: Value = listed.json().await.unwrap();
    assert_eq!(ids(&page), [id.as_str()]);
    assert!(page["next_cursor"].is_null());
    assert_eq!(page["items"][0]["stock"], json!({"status": "in_stock"}));
    assert_eq!(
        stack.get("/api/products", Some(&list_tag)).await.status(),
        StatusCode::NOT_MODIFIED
    );

    // Deactivated: gone from the shop; active again: back.
    edit["active"] = false.into();
    let r = stack
        .admin(Method::PUT, &admin_path, Some("\"2\""), Some(&edit))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    stack
        .until("hidden when inactive", &path, PROPAGATION, |s, _| {
            s == StatusCode::NOT_FOUND
        })
        .await;
    assert!(ids(&stack.list("").await).is_empty());
    assert_ne!(
        stack.get("/api/products", Some(&list_tag)).await.status(),
        StatusCode::NOT_MODIFIED,
        "the list changed"
    );
    edit["active"] = true.into();
    let r = stack
        .admin(Method::PUT, &admin_path, Some("\"3\""), Some(&edit))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    stack
        .until("shown again", &path, PROPAGATION, |s, _| {
            s == StatusCode::OK
        })
        .await;

    let r = stack
        .admin(Method::DELETE, &admin_path, Some("\"4\""), None)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    stack
        .until("removed when deleted", &path, PROPAGATION, |s, b| {
            s == StatusCode::NOT_FOUND && b["error"] == "NOT_FOUND"
        })
        .await;
    assert!(ids(&stack.list("").await).is_empty());
    assert_eq!(
        stack.sql(&format!(
            "SELECT deleted, version, name IS NULL FROM products WHERE id = '{id}'"
        )),
        "t|5|t",
        "a tombstone remembers the version"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_order_and_duplicated_events_leave_the_read_model_correct() {
    let stack = Stack::start(false);
    let (reordered, deleted, deleted_first, stocked_first, ignored) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let one = spec("Version one", 1000, "mugs");
    let two = spec("Version two", 2000, "mugs");
    let early_stock = {
        let mut event = stock_event(reordered, 2);
        event.occurred_at = OffsetDateTime::now_utc() - time::Duration::minutes(1);
        event
    };
    let updated_to_two = product_event("product-updated", reordered, 2, &two);
    let events: Vec<(&str, Envelope)> = vec![
        // v2 before v1, v2 twice (a redelivery), v1 replayed under a new id.
        (PRODUCTS, updated_to_two.clone()),
        (
            PRODUCTS,
            product_event("product-created", reordered, 1, &one),
        ),
        (PRODUCTS, updated_to_two),
        (
            PRODUCTS,
            product_event("product-created", reordered, 1, &one),
        ),
        // Deleted at v3; then an older update and the creation come back.
        (PRODUCTS, product_event("product-created", deleted, 1, &one)),
        (PRODUCTS, product_event("product-updated", deleted, 2, &two)),
        (PRODUCTS, deleted_event(deleted, 3)),
        (PRODUCTS, product_event("product-updated", deleted, 2, &two)),
        (PRODUCTS, product_event("product-created", deleted, 1, &one)),
        // The deletion arrives before the product it deletes.
        (PRODUCTS, deleted_event(deleted_first, 2)),
        (
            PRODUCTS,
            product_event("product-created", deleted_first, 1, &one),
        ),
        // Stock for a product not heard of yet.
        (INVENTORY, stock_event(stocked_first, 7)),
        (
            PRODUCTS,
            product_event("product-created", stocked_first, 1, &one),
        ),
        // Inventory's other events are not the catalog's business. Keyed
        // like the stock events after them, they share their partition, so
        // they have been read once those are applied.
        (
            INVENTORY,
            Envelope::new(
                "inventory",
                "stock-reserved",
                1,
                reordered,
                json!({"order_id": Uuid::now_v7()}),
            ),
        ),
        (
            INVENTORY,
            Envelope::new(
                "inventory",
                "reservation-rejected",
                1,
                reordered,
                json!({"order_id": Uuid::now_v7(), "product_id": ignored, "reason": "out of stock"}),
            ),
        ),
        // A newer stock level, then an older one arriving late.
        (INVENTORY, stock_event(reordered, 10)),
        (INVENTORY, early_stock),
    ];
    // Events of the kinds the catalog acts on each leave a ledger row; the
    // others are skipped without one.
    let distinct: BTreeSet<Uuid> = events
        .iter()
        .filter(|(topic, e)| teipsum_events::Subscription::CATALOG.acts_on(topic, &e.kind))
        .map(|(_, e)| e.id)
        .collect();
    let all: BTreeSet<Uuid> = events.iter().map(|(_, e)| e.id).collect();
    assert_eq!(
        all.len() - distinct.len(),
        2,
        "the two events of other kinds"
    );
    for (topic, event) in &events {
        stack.produce(topic, event).await;
    }
    stack.until_processed(distinct.len()).await;

    let shown: Value = stack
        .get(&format!("/api/products/{reordered}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["name"], "Version two", "v1 never overwrites v2");
    assert_eq!(shown["price"]["amount_minor"], 2000);
    assert_eq!(
        shown["stock"],
        json!({"status": "in_stock"}),
        "an older stock level never overwrites a newer one"
    );
    for gone in [deleted, deleted_first] {
        let r = stack.get(&format!("/api/products/{gone}"), None).await;
        assert_eq!(
            error_of(r).await,
            (StatusCode::NOT_FOUND, "NOT_FOUND".into()),
            "older events never resurrect a deleted product"
        );
    }
    let stocked: Value = stack
        .get(&format!("/api/products/{stocked_first}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        stocked["stock"],
        json!({"status": "in_stock"}),
        "stock that came first is kept"
    );
    let mut listed = ids(&stack.list("limit=100").await);
    listed.sort();
    let mut expected = vec![reordered.to_string(), stocked_first.to_string()];
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(
        stack.sql(&format!(
            "SELECT count(*) FROM stock WHERE product_id = '{ignored}'"
        )),
        "0"
    );
    assert_eq!(stack.sql("SELECT count(*) FROM kit_parked_events"), "0");

    // Replaying both topics from the start (a new consumer group, the
    // ledger forgotten) applies every event again, in order: the version
    // and time guards leave the read model exactly as it was.
    let snapshot = "SELECT string_agg(concat_ws('|', id, version, deleted, name, price_minor, active, \
                    created_at, updated_at), E'\\n' ORDER BY id) FROM products";
    let stock_snapshot = "SELECT string_agg(concat_ws('|', product_id, quantity, as_of), E'\\n' ORDER BY product_id) FROM stock";
    let before = (stack.sql(snapshot), stack.sql(stock_snapshot));
    let mut stack = stack;
    assert!(stack.catalog.stop());
    stack.sql("DELETE FROM kit_processed_events");
    stack.catalog = ServiceProcess::spawn(
        "teipsum-catalog",
        env(
            "catalog",
            stack.pg.conninfo(CATALOG_DB),
            &stack.broker,
            &stack.credentials,
            Some("teipsum-catalog-replay"),
        ),
    )
    .expect("the service starts");
    stack.until_processed(distinct.len()).await;
    assert_eq!((stack.sql(snapshot), stack.sql(stock_snapshot)), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_stay_stable_while_products_are_added() {
    let stack = Stack::start(false);
    let mut produced = 0;
    // 24 products, prices with ties (the id breaks them), names of letters
    // only (every collation orders those alike).
    let mut originals = Vec::new();
    for i in 0..24_i64 {
        let id = Uuid::now_v7();
        let name = format!(
            "widget{}{}",
            (b'a' + (i * 7 % 24) as u8) as char,
            (b'a' + (i % 3) as u8) as char
        );
        stack
            .produce(
                PRODUCTS,
                &product_event(
                    "product-created",
                    id,
                    1,
                    &spec(&name, (i % 6) * 500, "widgets"),
                ),
            )
            .await;
        produced += 1;
        originals.push(id.to_string());
    }
    stack.until_processed(produced).await;

    for sort in ["newest", "price_asc", "price_desc", "name"] {
        let mut seen: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let query = match &cursor {
                None => format!("sort={sort}&limit=5"),
                Some(c) => format!("sort={sort}&limit=5&cursor={c}"),
            };
            let page = stack.list(&query).await;
            pages += 1;
            seen.extend(page["items"].as_array().unwrap().iter().cloned());
            // Between pages, more products arrive: some sort before the
            // cursor, some after it.
            if pages <= 2 {
                for price in [0, 1250, 2500] {
                    let id = Uuid::now_v7();
                    let name = format!("widget{}", ["aaa", "mmm", "zzz"][(price / 1250) as usize]);
                    stack
                        .produce(
                            PRODUCTS,
                            &product_event(
                                "product-created",
                                id,
                                1,
                                &spec(&name, price, "widgets"),
                            ),
                        )
                        .await;
                    produced += 1;
                }
                stack.until_processed(produced).await;
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let seen_ids: Vec<String> = seen
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect();
        let distinct: BTreeSet<&String> = seen_ids.iter().collect();
        assert_eq!(
            distinct.len(),
            seen_ids.len(),
            "{sort}: a product shown twice"
        );
        for id in &originals {
            assert!(seen_ids.contains(id), "{sort}: {id} was skipped");
        }
        // Each page continues the order of the one before.
        let keys: Vec<(i64, String, Uuid)> = seen
            .iter()
            .map(|p| {
                (
                    p["price"]["amount_minor"].as_i64().unwrap(),
                    p["name"].as_str().unwrap().to_owned(),
                    p["id"].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect();
        let ordered = keys.windows(2).all(|w| match sort {
            "price_asc" => (w[0].0, w[0].2) < (w[1].0, w[1].2),
            "price_desc" => (w[0].0, w[0].2) > (w[1].0, w[1].2),
            "name" => (&w[0].1, w[0].2) < (&w[1].1, w[1].2),
            _ => true,
        });
        assert!(ordered, "{sort}: out of order: {keys:?}");
        if sort == "newest" {
            let shown_originals: Vec<&String> = seen_ids
                .iter()
                .filter(|id| originals.contains(id))
                .collect();
            let newest_first: Vec<&String> = originals.iter().rev().collect();
            assert_eq!(shown_originals, newest_first, "newest first");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn search_and_filters_return_the_right_products() {
    let stack = Stack::start(false);
    let described = |name: &str, description: &str, price: i64, category: &str| Spec {
        description: description.to_owned(),
        ..spec(name, price, category)
    };
    let products = [
        (
            "red-tee",
            described(
                "Red cotton T-shirt",
                "Soft organic cotton.",
                1999,
                "t-shirts",
            ),
        ),
        (
            "green-tee",
            described("Green T-shirt", "Bright and light.", 1499, "t-shirts"),
        ),
        (
            "jacket",
            described(
                "Blue denim jacket",
                "Heavy denim, brass buttons.",
                8999,
                "jackets",
            ),
        ),
        (
            "scarf",
            described("Red wool scarf", "Warm for winter.", 2999, "accessories"),
        ),
        (
            "hidden",
            Spec {
                active: false,
                ..described("Red hidden shirt", "Not for sale.", 999, "t-shirts")
            },
        ),
        (
            "gone",
            described("Red gone shirt", "Deleted.", 500, "t-shirts"),
        ),
    ];
    let mut by_name = std::collections::BTreeMap::new();
    let mut produced = 0;
    for (key, spec) in &products {
        let id = Uuid::now_v7();
        stack
            .produce(PRODUCTS, &product_event("product-created", id, 1, spec))
            .await;
        produced += 1;
        if *key == "gone" {
            stack.produce(PRODUCTS, &deleted_event(id, 2)).await;
            produced += 1;
        }
        by_name.insert(*key, id.to_string());
    }
    stack.until_processed(produced).await;

    let found = |query: &'static str| {
        let stack = &stack;
        let by_name = &by_name;
        async move {
            let page = stack.list(query).await;
            let mut keys: Vec<&str> = ids(&page)
                .iter()
                .map(|id| {
                    *by_name
                        .iter()
                        .find(|(_, v)| *v == id)
                        .expect("a known product")
                        .0
                })
                .collect();
            keys.sort();
            keys
        }
    };
    assert_eq!(
        found("q=red").await,
        ["red-tee", "scarf"],
        "inactive and deleted are not found"
    );
    assert_eq!(found("q=cot").await, ["red-tee"], "words match as prefixes");
    assert_eq!(
        found("q=RED%20Wool").await,
        ["scarf"],
        "every word must match, in any case"
    );
    assert_eq!(
        found("q=brass").await,
        ["jacket"],
        "descriptions are searched"
    );
    assert_eq!(found("q=t-shirt").await, ["green-tee", "red-tee"]);
    assert_eq!(found("q=red&category=t-shirts").await, ["red-tee"]);
    assert_eq!(found("category=t-shirts").await, ["green-tee", "red-tee"]);
    assert_eq!(found("category=T-Shirts").await, ["green-tee", "red-tee"]);
    assert_eq!(found("category=jackets&sort=price_desc").await, ["jacket"]);
    assert!(found("q=nothing").await.is_empty());
    assert!(found("category=shoes").await.is_empty());
    assert!(
        found("q=%27%3B%20DROP%20TABLE%20products%3B%20--")
            .await
            .is_empty()
    );
    assert_eq!(
        found("q=&category=").await.len(),
        4,
        "empty filters filter nothing"
    );

    let prices = |page: &Value| -> Vec<i64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["price"]["amount_minor"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(
        prices(&stack.list("sort=price_asc").await),
        [1499, 1999, 2999, 8999]
    );
    assert_eq!(
        prices(&stack.list("sort=price_desc").await),
        [8999, 2999, 1999, 1499]
    );
    let names: Vec<String> = stack.list("sort=name").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "Blue denim jacket",
            "Green T-shirt",
            "Red cotton T-shirt",
            "Red wool scarf"
        ]
    );
    let newest = ids(&stack.list("sort=newest").await);
    let expected: Vec<String> = ["scarf", "jacket", "green-tee", "red-tee"]
        .iter()
        .map(|k| by_name[k].clone())
        .collect();
    assert_eq!(newest, expected);
    assert_eq!(ids(&stack.list("").await), newest, "newest is the default");
    // A page of one, then the rest: the cursor carries the search along
    // with the order.
    let first = stack.list("q=red&sort=price_asc&limit=1").await;
    assert_eq!(ids(&first), [by_name["red-tee"].clone()]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = stack.list(&format!("q=red&limit=1&cursor={cursor}")).await;
    assert_eq!(ids(&rest), [by_name["scarf"].clone()]);
    assert!(rest["next_cursor"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_are_4xx_json_errors() {
    let stack = Stack::start(false);
    let id = Uuid::now_v7();
    stack
        .produce(
            PRODUCTS,
            &product_event("product-created", id, 1, &spec("Mug", 900, "mugs")),
        )
        .await;
    stack.until_processed(1).await;
    let price_cursor = stack.list("sort=price_asc&limit=1").await;
    assert!(
        price_cursor["next_cursor"].is_null(),
        "one product, one page"
    );
    // A cursor made for another order, by hand as a client might.
    let name_cursor = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(json!({"sort": "name", "name": "mug", "id": id}).to_string())
    };
    let cases: Vec<(String, StatusCode)> = vec![
        ("/api/products?limit=101".into(), StatusCode::BAD_REQUEST),
        (
            "/api/products?limit=1000000".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/products?limit=99999999999999999999999".into(),
            StatusCode::BAD_REQUEST,
        ),
        ("/api/products?limit=0".into(), StatusCode::BAD_REQUEST),
        ("/api/products?limit=-1".into(), StatusCode::BAD_REQUEST),
        ("/api/products?limit=ten".into(), StatusCode::BAD_REQUEST),
        (
            "/api/products?sort=cheapest".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/products?cursor=not-a-cursor".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/products?cursor=eyJzb3J0IjoibmV3ZXN0In0".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/products?cursor={name_cursor}&sort=price_asc"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/products?cursor={}", "A".repeat(5000)),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/products?category=Shoes%20%26%20Boots".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/api/products?q={}", "word%20".repeat(60)),
            StatusCode::BAD_REQUEST,
        ),
        ("/api/products?q=%21%21%21".into(), StatusCode::BAD_REQUEST),
        ("/api/products?catgory=mugs".into(), StatusCode::BAD_REQUEST),
        (
            "/api/products?limit=5&limit=6".into(),
            StatusCode::BAD_REQUEST,
        ),
        ("/api/products/not-a-uuid".into(), StatusCode::BAD_REQUEST),
        ("/api/products/%27%3B--".into(), StatusCode::BAD_REQUEST),
        (format!("/api/products/{id}x"), StatusCode::BAD_REQUEST),
        (
            format!("/api/products/{}", Uuid::now_v7()),
            StatusCode::NOT_FOUND,
        ),
        (format!("/api/products/{id}/reviews"), StatusCode::NOT_FOUND),
    ];
    for (path, expected) in cases {
        let (status, code) = error_of(stack.get(&path, None).await).await;
        assert_eq!(status, expected, "{path}: {code}");
    }
    let posted = stack
        .http
        .post(format!("{}/api/products", stack.catalog.base))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(posted).await.0, StatusCode::METHOD_NOT_ALLOWED);
    // The name cursor works with its own order (and without `sort=`).
    let page = stack.list(&format!("cursor={name_cursor}")).await;
    assert!(
        ids(&page).is_empty(),
        "nothing sorts after the only product"
    );
    assert_eq!(
        stack.sql("SELECT count(*) FROM products"),
        "1",
        "nothing written"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_with_a_nul_is_a_400_not_a_500() {
    let stack = Stack::start(false);
    let id = Uuid::now_v7();
    stack
        .produce(
            PRODUCTS,
            &product_event("product-created", id, 1, &spec("Mug", 900, "mugs")),
        )
        .await;
    stack.until_processed(1).await;
    // Well-formed JSON in well-formed base64: only the NUL is wrong, and
    // PostgreSQL refuses a NUL in text (SQLSTATE 22021).
    let cursor = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(json!({"sort": "name", "name": "m\u{0}ug", "id": id}).to_string())
    };
    let response = stack
        .get(&format!("/api/products?cursor={cursor}"), None)
        .await;
    assert_eq!(
        header(&response, "content-type"),
        "application/json",
        "a JSON error"
    );
    let (status, code) = error_of(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "INVALID_INPUT")
    );
}

/// The ETag and body of `GET /api/products/{id}`, which must be a 200.
async fn page(stack: &Stack, id: Uuid) -> (String, Value) {
    let r = stack.get(&format!("/api/products/{id}"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let tag = header(&r, "etag");
    (tag, r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_product_page_served_from_memory_shows_each_change_after_its_event_and_survives_a_restart()
 {
    let mut stack = Stack::start(false);
    let id = Uuid::now_v7();
    let path = format!("/api/products/{id}");
    let lamp = spec("Lamp", 1500, "home");
    stack
        .produce(
            "product-events",
            &product_event("product-created", id, 1, &lamp),
        )
        .await;
    stack
        .until("the new product", &path, FIRST_EVENT, |s, _| {
            s == StatusCode::OK
        })
        .await;
    let (tag, body) = page(&stack, id).await;
    assert_eq!(tag, "\"1-out_of_stock\"");
    assert_eq!(body["name"], "Lamp");

    // Each change shows after its event, with the tag of what is shown; a
    // generous bound: the point is that it shows, not how fast.
    let within = Duration::from_secs(30);
    stack.produce("inventory-events", &stock_event(id, 3)).await;
    stack
        .until("the stock level", &path, within, |_, b| {
            b["stock"]["status"] == "low_stock"
        })
        .await;
    assert_eq!(page(&stack, id).await.0, "\"1-low_stock\"");
    let brighter = spec("Brighter lamp", 1700, "home");
    stack
        .produce(
            "product-events",
            &product_event("product-updated", id, 2, &brighter),
        )
        .await;
    stack
        .until("the update", &path, within, |_, b| {
            b["name"] == "Brighter lamp"
        })
        .await;
    let (tag, body) = page(&stack, id).await;
    assert_eq!(tag, "\"2-low_stock\"");
    assert_eq!(body["price"]["amount_minor"], 1700);
    let old = stack.get(&path, Some("\"1-low_stock\"")).await;
    assert_eq!(old.status(), StatusCode::OK, "an old tag gets the new body");
    let same = stack.get(&path, Some(&tag)).await;
    assert_eq!(same.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&same, "etag"), tag);

    // A stale event changes nothing, in memory as in the table.
    stack
        .produce(
            "product-events",
            &product_event("product-updated", id, 1, &lamp),
        )
        .await;
    let other = Uuid::now_v7();
    stack
        .produce(
            "product-events",
            &product_event("product-created", other, 1, &lamp),
        )
        .await;
    stack
        .until(
            "a later product",
            &format!("/api/products/{other}"),
            within,
            |s, _| s == StatusCode::OK,
        )
        .await;
    assert_eq!(page(&stack, id).await.0, tag, "version 1 lost to version 2");

    // After a restart the snapshot comes from the table.
    stack.catalog.stop();
    stack.catalog.start().expect("the catalog starts again");
    let (again, body) = page(&stack, id).await;
    assert_eq!(again, tag);
    assert_eq!(body["name"], "Brighter lamp");

    stack.produce("product-events", &deleted_event(id, 3)).await;
    stack
        .until("the deletion", &path, within, |s, _| {
            s == StatusCode::NOT_FOUND
        })
        .await;
}
