//! Bad input against the running platform: generated requests to every
//! public and authenticated route (path, query, headers and body), as nobody,
//! a customer, an administrator and with a forged token, straight to the
//! services of a stack that `teipsum dev`'s own code started.
//!
//! The property: never a 5xx, and a refused request (4xx) writes nothing:
//! every table of every service database has the same contents afterwards.
//! Bounded in cases and in time so that it runs with the other tests.

use std::{
    cell::RefCell,
    collections::BTreeMap,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use teipsum_conventions::env;
use teipsum_dev::Stack;
use teipsum_e2e::start;
use teipsum_kit::jwt::{self, Claims, Role, Signer};
use uuid::Uuid;

/// How many requests, at most.
const CASES: u32 = 1_500;

/// How long the generated requests may take, after the stack is up.
const BUDGET: Duration = Duration::from_secs(35);

/// One route: method, service, path (`{id}` is generated), the body's
/// field names, the query's parameter names. The routes are those of the
/// OpenAPI document (docs/openapi.json, made from the services' code), each
/// sent to the service the Plan routes its path to: one route table.
struct Route {
    method: Method,
    service: String,
    path: String,
    fields: Vec<String>,
    query: Vec<String>,
}

/// The API's OpenAPI document.
fn document() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("docs/openapi.json"))
        .expect("docs/openapi.json is JSON")
}

/// Every property name in `schema`, following `$ref`s into `doc`'s components.
fn field_names(doc: &Value, schema: &Value, depth: u32, names: &mut Vec<String>) {
    if depth > 4 {
        return;
    }
    if let Some(name) = schema["$ref"].as_str().and_then(|r| r.rsplit('/').next()) {
        field_names(doc, &doc["components"]["schemas"][name], depth + 1, names);
    }
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            if !names.contains(name) {
                names.push(name.clone());
            }
            field_names(doc, property, depth + 1, names);
        }
    }
    field_names(doc, &schema["items"], depth + 1, names);
    for key in ["oneOf", "anyOf", "allOf"] {
        for alternative in schema[key].as_array().into_iter().flatten() {
            field_names(doc, alternative, depth + 1, names);
        }
    }
}

/// The service the edge sends `path` to: the longest route prefix of the
/// Plan it is under.
fn service_of(plan: &teipsum_spec::Plan, path: &str) -> String {
    plan.nginx
        .routes
        .iter()
        .filter(|r| {
            if r.prefix.ends_with('/') {
                path.starts_with(&r.prefix)
            } else {
                path == r.prefix || path.starts_with(&format!("{}/", r.prefix))
            }
        })
        .max_by_key(|r| r.prefix.len())
        .map(|r| r.service.clone())
        .unwrap_or_else(|| panic!("no route of the Plan serves {path}"))
}

/// `/api/admin/inventory/{product_id}` as `/api/admin/inventory/{id}`.
fn with_id(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .expect("a closed {");
        out.push_str(&rest[..open]);
        out.push_str("{id}");
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Whether `path` is an instance of `template` (`{id}` is any one segment).
fn matches_template(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| *t == "{id}" || t == p)
}

fn routes(plan: &teipsum_spec::Plan) -> Vec<Route> {
    let doc = document();
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let mut fields = Vec::new();
            field_names(
                &doc,
                &operation["requestBody"]["content"]["application/json"]["schema"],
                0,
                &mut fields,
            );
            let query = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str())
                .map(str::to_owned)
                .collect();
            routes.push(Route {
                method: Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                    .expect("an HTTP method"),
                service: service_of(plan, path),
                path: with_id(path),
                fields,
                query,
            });
        }
    }
    assert!(routes.len() >= 20, "the document has the platform's routes");
    routes
}

/// The services mount the document's routes and no other method on their
/// paths: each documented route, sent straight to its service (as an
/// administrator, with a random id and no body), is answered by a handler
/// (not warp's `404 "no such resource"` nor `405`); every other method on a
/// documented path, and a segment more, is not.
fn routes_are_mounted(
    runtime: &tokio::runtime::Runtime,
    http: &reqwest::Client,
    stack: &Stack,
    routes: &[Route],
    admin: &str,
) {
    let unmatched = |status: StatusCode, body: &Value| {
        status == StatusCode::METHOD_NOT_ALLOWED
            || (status == StatusCode::NOT_FOUND && body["message"] == "no such resource")
    };
    let send = |method: Method, service: &str, path: &str| {
        let url = format!(
            "{}{}",
            stack.service(service).base,
            path.replace("{id}", &Uuid::new_v4().to_string())
        );
        runtime.block_on(async {
            let response = http
                .request(method, &url)
                .bearer_auth(admin)
                .header("content-type", "application/json")
                .send()
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        })
    };
    for route in routes {
        let (status, body) = send(route.method.clone(), &route.service, &route.path);
        assert!(
            !unmatched(status, &body),
            "{} {} is documented but {} does not mount it: {status} {body}",
            route.method,
            route.path,
            route.service
        );
    }
    let methods = [
        Method::GET,
        Method::PUT,
        Method::POST,
        Method::DELETE,
        Method::PATCH,
    ];
    for route in routes {
        for method in &methods {
            if routes
                .iter()
                .any(|r| r.path == route.path && r.method == *method)
            {
                continue;
            }
            let (status, body) = send(method.clone(), &route.service, &route.path);
            assert!(
                unmatched(status, &body),
                "{method} {} is mounted by {} but not in docs/openapi.json: {status} {body}",
                route.path,
                route.service
            );
        }
        let deeper = format!("{}/{}", route.path.trim_end_matches('/'), "x");
        if routes.iter().any(|r| matches_template(&r.path, &deeper)) {
            continue;
        }
        let (status, body) = send(route.method.clone(), &route.service, &deeper);
        assert!(
            unmatched(status, &body),
            "{} {deeper} is mounted by {} but not in docs/openapi.json: {status} {body}",
            route.method,
            route.service
        );
    }
}

/// Who sends the request.
#[derive(Debug, Clone, Copy)]
enum Who {
    Nobody,
    Customer,
    Admin,
    /// A token that is not one (or no longer one).
    Forged,
}

/// A request body.
#[derive(Debug, Clone)]
enum Body {
    Json(Value),
    Bytes(Vec<u8>),
}

/// One generated request.
#[derive(Debug, Clone)]
struct Request {
    route: usize,
    who: Who,
    /// The `{id}` segment, percent-encoded.
    id: String,
    /// The query string, percent-encoded.
    query: String,
    body: Option<Body>,
    content_type: Option<&'static str>,
    if_match: Option<String>,
}

/// Every byte but the unreserved ones as `%XX`.
fn encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Strings that have broken parsers before: NUL and other controls, SQL and
/// tsquery syntax, numbers out of range, very long text, odd Unicode.
fn nasty_string(known: Vec<String>) -> impl Strategy<Value = String> {
    let fixed: Vec<String> = [
        "",
        "\u{0}",
        "a\u{0}b",
        "\u{1b}[2J",
        "'; DROP TABLE products; --",
        "!():*&|'",
        "-1",
        "0",
        "9223372036854775808",
        "-9223372036854775809",
        "1e309",
        "NaN",
        "null",
        "../../etc/passwd",
        "%00",
        "\u{202e}\u{fffd}\u{10ffff}",
        "ß🦀",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain(["x".repeat(5_000), "é".repeat(300)])
    .chain(known)
    .collect();
    prop_oneof![
        3 => proptest::sample::select(fixed),
        2 => any::<String>(),
        2 => control_string(),
        1 => "[a-z0-9@.+-]{0,40}",
    ]
}

/// Text with control characters (`any::<String>()` has none).
fn control_string() -> impl Strategy<Value = String> {
    "[a-z\\x00-\\x1f\\x7f]{0,12}[\\x00-\\x1f][a-z]{0,4}"
}

/// Any JSON, with the route's field names as likely keys.
fn json_value(mut fields: Vec<String>, strings: BoxedStrategy<String>) -> BoxedStrategy<Value> {
    if fields.is_empty() {
        fields.push("x".to_owned());
    }
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(i32::MAX as i64 + 1),
            -3i64..1_000
        ]
        .prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        strings.clone().prop_map(Value::from),
    ];
    let keys = prop_oneof![
        3 => proptest::sample::select(fields),
        1 => "[a-z_]{1,12}",
    ];
    leaf.prop_recursive(3, 24, 5, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(keys.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Base64url of a JSON object shaped like a catalog cursor: its sort
/// orders and field names, with values of any kind.
fn cursor_like(
    known: Vec<String>,
    strings: BoxedStrategy<String>,
) -> impl Strategy<Value = String> {
    let sorts = ["newest", "price_asc", "price_desc", "name"]
        .map(str::to_owned)
        .to_vec();
    let value = json_value(vec![], strings.clone());
    let text = |choices: Vec<String>| {
        prop_oneof![
            5 => proptest::sample::select(choices).prop_map(Value::from),
            1 => strings.clone().prop_map(Value::from),
        ]
    };
    let uuid = prop_oneof![
        2 => text(known),
        1 => Just(Value::from(Uuid::new_v4().to_string())),
    ];
    (
        text(sorts),
        proptest::option::weighted(
            0.9,
            prop_oneof![
                2 => control_string().prop_map(Value::from),
                1 => strings.clone().prop_map(Value::from),
            ],
        ),
        proptest::option::weighted(0.9, uuid),
        proptest::option::of(prop_oneof![
            any::<i64>().prop_map(Value::from),
            value.clone()
        ]),
        proptest::option::of(prop_oneof![
            Just(Value::from("2026-01-01T00:00:00Z")),
            value
        ]),
    )
        .prop_map(|(sort, name, id, price, created)| {
            let mut cursor = serde_json::Map::new();
            cursor.insert("sort".to_owned(), sort);
            for (key, value) in [
                ("name", name),
                ("id", id),
                ("price_minor", price),
                ("created_at", created),
            ] {
                if let Some(value) = value {
                    cursor.insert(key.to_owned(), value);
                }
            }
            URL_SAFE_NO_PAD.encode(Value::Object(cursor).to_string())
        })
}

fn request(routes: &[Route], known: Vec<String>) -> impl Strategy<Value = Request> {
    let strings = nasty_string(known.clone()).boxed();
    let id = prop_oneof![
        3 => proptest::sample::select(known.clone()).prop_map(|s| encode(s.as_bytes())),
        1 => Just(Uuid::new_v4().to_string()),
        3 => strings.clone().prop_map(|s| encode(s.as_bytes())),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(|b| encode(&b)),
    ];
    let shapes: Vec<(Vec<String>, Vec<String>)> = routes
        .iter()
        .map(|r| (r.fields.clone(), r.query.clone()))
        .collect();
    // Routes with a query string are asked more often: they have more to get wrong.
    let weighted: Vec<usize> = routes
        .iter()
        .enumerate()
        .flat_map(|(i, r)| std::iter::repeat_n(i, if r.query.is_empty() { 1 } else { 4 }))
        .collect();
    proptest::sample::select(weighted)
        .prop_flat_map(move |route| {
            let (fields, query_keys) = shapes[route].clone();
            let mut keys = query_keys;
            keys.push("x".to_owned());
            // A cursor is the parameter with the most inside it.
            if keys.iter().any(|k| k == "cursor") {
                keys.extend(["cursor".to_owned(), "cursor".to_owned()]);
            }
            let value = prop_oneof![
                3 => strings.clone().prop_map(|s| encode(s.as_bytes())),
                1 => (-5i64..200).prop_map(|n| n.to_string()),
            ];
            let cursor = prop_oneof![
                3 => cursor_like(known.clone(), strings.clone()),
                1 => value.clone(),
            ];
            let pair = proptest::sample::select(keys).prop_flat_map(move |key| {
                let value = if key == "cursor" { cursor.clone().boxed() } else { value.clone().boxed() };
                (Just(key), value)
            });
            let query = proptest::collection::vec(pair, 0..3)
            .prop_map(|pairs| {
                pairs
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&")
            });
            let shaped = json_value(fields.clone(), strings.clone());
            let body = prop_oneof![
                1 => Just(None),
                5 => proptest::collection::btree_map(
                    proptest::sample::select(if fields.is_empty() { vec!["x".to_owned()] } else { fields }),
                    shaped.clone(),
                    0..6,
                )
                .prop_map(|m| Some(Body::Json(Value::Object(m.into_iter().collect())))),
                2 => shaped.prop_map(|v| Some(Body::Json(v))),
                1 => proptest::collection::vec(any::<u8>(), 0..200).prop_map(|b| Some(Body::Bytes(b))),
            ];
            (
                Just(route),
                prop_oneof![
                    Just(Who::Nobody),
                    Just(Who::Customer),
                    Just(Who::Admin),
                    Just(Who::Forged)
                ],
                id.clone(),
                query,
                body,
                prop_oneof![
                    6 => Just(Some("application/json")),
                    1 => Just(None),
                    1 => Just(Some("text/plain")),
                ],
                proptest::option::of(prop_oneof![
                    Just("\"1\"".to_owned()),
                    Just("*".to_owned()),
                    "[ -~]{0,20}"
                ]),
            )
        })
        .prop_map(
            |(route, who, id, query, body, content_type, if_match)| Request {
                route,
                who,
                id,
                query,
                body,
                content_type,
                if_match,
            },
        )
}

/// Every table of every service database, to tell whether one changed.
struct Databases {
    /// Per database: a connection and its tables (`schema.table`).
    databases: BTreeMap<String, (postgres::Client, Vec<String>)>,
}

/// `db.schema.table` → md5 of the table's rows in a fixed order.
type Digest = BTreeMap<String, String>;

impl Databases {
    fn open(stack: &Stack) -> Databases {
        let databases = stack
            .plan
            .postgres
            .databases
            .iter()
            .map(|d| {
                let conninfo = stack.postgres.conninfo(&d.name);
                let mut client = postgres::Client::connect(&conninfo, postgres::NoTls)
                    .unwrap_or_else(|e| panic!("{}: {e}", d.name));
                let tables = client
                    .query(
                        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables \
                         WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
                        &[],
                    )
                    .unwrap()
                    .iter()
                    .map(|row| row.get::<_, String>(0))
                    .collect();
                (d.name.clone(), (client, tables))
            })
            .collect();
        Databases { databases }
    }

    fn digest(&mut self) -> Digest {
        let mut digest = Digest::new();
        for (name, (client, tables)) in &mut self.databases {
            for table in tables.iter() {
                let sql = format!(
                    "SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM {table} t"
                );
                let row = client.query_one(&sql, &[]).unwrap();
                digest.insert(format!("{name}.{table}"), row.get::<_, String>(0));
            }
        }
        digest
    }

    /// The digest once nothing changes any more (the events of an accepted
    /// write have reached every service).
    fn settled(&mut self) -> Digest {
        let started = Instant::now();
        let mut last = self.digest();
        loop {
            std::thread::sleep(Duration::from_millis(400));
            let now = self.digest();
            if now == last || started.elapsed() > Duration::from_secs(20) {
                return now;
            }
            last = now;
        }
    }
}

fn changed_tables(before: &Digest, after: &Digest) -> String {
    after
        .iter()
        .filter(|(table, hash)| before.get(*table) != Some(hash))
        .map(|(table, _)| table.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn no_request_to_any_route_gets_a_5xx_or_writes_when_refused() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let stack = start("prod", None);
    let http = teipsum_testkit::http_client().expect("an HTTP client");
    let base = |service: &str| stack.service(service).base.clone();

    // Tokens: an administrator's, signed with the stack's own key as the
    // auth service signs them, and a registered customer's.
    let auth = stack.plan.service("auth").expect("an auth service");
    let (issuer, audience) = (
        auth.environment[env::JWT_ISSUER].clone(),
        auth.environment[env::JWT_AUDIENCE].clone(),
    );
    let key = std::fs::read(stack.state_dir.join("keys/jwt-ed25519.key")).unwrap();
    let signer = Signer::new(&key).unwrap();
    let token = |role: Role, exp: i64| {
        let now = jwt::now();
        signer.sign(&Claims {
            iss: issuer.clone(),
            aud: audience.clone(),
            sub: Uuid::new_v4(),
            role,
            iat: now,
            nbf: now,
            exp: (now as i64 + exp) as u64,
            jti: Uuid::new_v4(),
        })
    };
    let admin = token(Role::Admin, 3_600);
    let expired = token(Role::Admin, -3_600);
    let (customer, product, order) = runtime.block_on(async {
        let register = http
            .post(format!("{}/api/auth/register", base("auth")))
            .json(&json!({"email": "fuzz@example.org", "password": "correct horse battery", "display_name": "Fuzz"}))
            .send()
            .await
            .unwrap();
        assert_eq!(register.status(), StatusCode::CREATED);
        let login: Value = http
            .post(format!("{}/api/auth/login", base("auth")))
            .json(&json!({"email": "fuzz@example.org", "password": "correct horse battery"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let customer = login["access_token"].as_str().unwrap().to_owned();
        let created: Value = http
            .post(format!("{}/api/admin/products/", base("admin-product")))
            .bearer_auth(&admin)
            .json(&json!({
                "name": "Fuzz Mug", "description": "A mug for the fuzzer", "sku": "FUZZ-1",
                "price": {"amount_minor": 900, "currency": "EUR"}, "category": "kitchen",
                "image_urls": [], "active": true
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let product = created["id"].as_str().expect("a product").to_owned();
        // Stock, once inventory has heard of the product (404 until then).
        let mut stocked = StatusCode::NOT_FOUND;
        for _ in 0..300 {
            stocked = http
                .put(format!("{}/api/admin/inventory/{product}", base("inventory")))
                .bearer_auth(&admin)
                .json(&json!({"on_hand": 10}))
                .send()
                .await
                .unwrap()
                .status();
            if stocked != StatusCode::NOT_FOUND {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(stocked, StatusCode::OK);
        // An order, once the order service has heard of the product.
        let mut order = None;
        for _ in 0..300 {
            let r = http
                .post(format!("{}/api/orders/", base("order")))
                .bearer_auth(&customer)
                .json(&json!({"items": [{"product_id": product, "quantity": 1}]}))
                .send()
                .await
                .unwrap();
            if r.status() == StatusCode::CREATED {
                order = Some(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (customer, product, order.expect("an order is placed"))
    });

    let routes = routes(&stack.plan);
    routes_are_mounted(&runtime, &http, &stack, &routes, &admin);
    let known = vec![product.clone(), order.clone()];
    let mut databases = Databases::open(&stack);
    let baseline = RefCell::new(databases.settled());
    let databases = RefCell::new(databases);
    let started = Instant::now();
    let sent = RefCell::new(BTreeMap::<u16, u32>::new());
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        max_shrink_iters: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&request(&routes, known), |request| {
        if started.elapsed() > BUDGET {
            return Ok(());
        }
        let route = &routes[request.route];
        let url = format!(
            "{}{}{}{}",
            base(&route.service),
            route.path.replace("{id}", &request.id),
            if request.query.is_empty() { "" } else { "?" },
            request.query
        );
        let status = runtime.block_on(async {
            let mut builder = http.request(route.method.clone(), &url);
            builder = match request.who {
                Who::Nobody => builder,
                Who::Customer => builder.bearer_auth(&customer),
                Who::Admin => builder.bearer_auth(&admin),
                Who::Forged => builder.bearer_auth(&expired),
            };
            if let Some(content_type) = request.content_type {
                builder = builder.header("content-type", content_type);
            }
            if let Some(tag) = &request.if_match {
                builder = builder.header("if-match", tag);
            }
            builder = match &request.body {
                None => builder,
                Some(Body::Json(v)) => builder.body(v.to_string()),
                Some(Body::Bytes(b)) => builder.body(b.clone()),
            };
            match builder.send().await {
                Ok(response) => Some(response.status()),
                // A URL reqwest refuses to send is no request.
                Err(e) if e.is_builder() => None,
                Err(e) => panic!("{} {url}: {e}", route.method),
            }
        });
        let Some(status) = status else {
            return Ok(());
        };
        *sent.borrow_mut().entry(status.as_u16()).or_default() += 1;
        if status.is_server_error() {
            return Err(TestCaseError::fail(format!(
                "{status} for {} {url} as {:?}, body {:?}",
                route.method, request.who, request.body
            )));
        }
        if status.is_client_error() {
            let now = databases.borrow_mut().digest();
            let before = baseline.borrow();
            if now != *before {
                return Err(TestCaseError::fail(format!(
                    "{status} for {} {url} as {:?}, body {:?}, yet it wrote: {}",
                    route.method,
                    request.who,
                    request.body,
                    changed_tables(&before, &now)
                )));
            }
        } else if route.method != Method::GET {
            // An accepted write: its effects spread by events; start again
            // from where they settle.
            *baseline.borrow_mut() = databases.borrow_mut().settled();
        }
        Ok(())
    });
    eprintln!(
        "fuzz: {} requests in {:.1} s, by status: {:?}",
        sent.borrow().values().sum::<u32>(),
        started.elapsed().as_secs_f64(),
        sent.borrow()
    );
    if let Err(e) = outcome {
        panic!("{e}");
    }
    assert!(
        sent.borrow().values().sum::<u32>() >= 100,
        "too few requests to mean anything"
    );
    stack.stop();
}
