//! Driving a running stack through nginx: an HTTPS client that trusts the
//! development CA, and the shop's API as a customer or an admin would use it.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
pub use teipsum_dev::ExtraRoute;
use teipsum_dev::{DevAdmin, MonitoringOptions, Options, Stack};
use teipsum_spec::Plan;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Start the whole stack of config.ncl's `env` on free ports.
pub fn start(env: &str, state_dir: Option<PathBuf>) -> Stack {
    start_with(env, state_dir, vec![])
}

/// [`start`], with extra (uncached) routes behind nginx.
pub fn start_with(env: &str, state_dir: Option<PathBuf>, extra_routes: Vec<ExtraRoute>) -> Stack {
    start_spec(&root().join("config.ncl"), env, state_dir, extra_routes)
}

/// [`start_with`] from the spec at `spec` (a benchmark's variant of
/// config.ncl, say) instead of config.ncl.
pub fn start_spec(
    spec: &Path,
    env: &str,
    state_dir: Option<PathBuf>,
    extra_routes: Vec<ExtraRoute>,
) -> Stack {
    let spec = teipsum_spec::load_spec(spec)
        .unwrap_or_else(|e| panic!("{} is not valid: {e}", spec.display()));
    let plan = spec.plans[env].clone();
    let options = options(&plan, state_dir, extra_routes);
    Stack::start(&plan, &options)
        .unwrap_or_else(|e| panic!("the stack does not start: {}", teipsum_dev::chain(&e)))
}

/// How the tests run `plan`: every port free, the services' logs shown
/// with `E2E_LOGS` set, no monitoring (the monitoring test asks for it).
pub fn options(plan: &Plan, state_dir: Option<PathBuf>, extra_routes: Vec<ExtraRoute>) -> Options {
    let edge = teipsum_dev::free_ports(2, &[]).expect("two free ports");
    Options {
        http_port: edge[0],
        https_port: edge[1],
        state_dir,
        bin_dir: Some(bin_dir()),
        frontend: root().join(&plan.frontend.root),
        api_document: root().join(&plan.nginx.api_document.file),
        show_logs: std::env::var_os("E2E_LOGS").is_some(),
        free_ports: true,
        extra_routes,
        monitoring: MonitoringOptions {
            disable: true,
            ..MonitoringOptions::default()
        },
    }
}

/// Where the service binaries were built (next to this test).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    if deps.ends_with("deps") {
        deps.parent().unwrap().to_owned()
    } else {
        deps.to_owned()
    }
}

/// An HTTPS client trusting the stack's development CA, HTTP/2 by ALPN.
pub fn client(ca_pem: &str) -> Client {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Client::builder()
        .use_preconfigured_tls(config)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A product as the admin API takes it (`POST`, or `PUT` to edit).
pub fn product_body(name: &str, sku: &str, price: i64) -> Value {
    json!({
        "name": name,
        "description": format!("{name}, made for a test"),
        "sku": sku,
        "price": {"amount_minor": price, "currency": "EUR"},
        "category": "kitchen",
        "image_urls": ["https://img.teipsum.store/mug.png"],
        "active": true
    })
}

/// The shop's API over one stack.
pub struct Shop {
    /// The client.
    pub http: Client,
    /// `https://localhost:<port>`.
    pub base: String,
    /// The administrator `teipsum dev` created and promoted.
    pub admin: DevAdmin,
}

impl Shop {
    /// A shop for `stack`.
    pub fn new(stack: &Stack) -> Shop {
        Shop {
            http: client(&stack.ca_pem),
            base: stack.https_base.clone(),
            admin: stack
                .admin
                .clone()
                .expect("the plan has an auth service, so the stack has an admin"),
        }
    }

    /// Send a request.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("nginx answers")
    }

    /// Register and log in; returns the access token.
    pub async fn account(&self, email: &str) -> String {
        let r = self
            .call(Method::POST, "/api/auth/register", None, Some(json!({"email": email, "password": "correct horse battery", "display_name": "Shopper"})))
            .await;
        assert!(
            r.status() == StatusCode::CREATED || r.status() == StatusCode::CONFLICT,
            "{}",
            r.status()
        );
        self.login(email).await
    }

    /// Log in; returns the access token.
    pub async fn login(&self, email: &str) -> String {
        self.login_with(email, "correct horse battery").await
    }

    /// Log in as the stack's administrator; returns the access token.
    pub async fn admin(&self) -> String {
        self.login_with(&self.admin.email, &self.admin.password)
            .await
    }

    async fn login_with(&self, email: &str, password: &str) -> String {
        let r = self
            .call(
                Method::POST,
                "/api/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Create a product as `admin`; returns its id.
    pub async fn create_product(&self, admin: &str, name: &str, sku: &str, price: i64) -> String {
        let r = self
            .call(
                Method::POST,
                "/api/admin/products/",
                Some(admin),
                Some(product_body(name, sku, price)),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Set the units on hand, retrying while inventory has not yet heard of
    /// the product (its list is built from product-events).
    pub async fn set_stock(&self, admin: &str, product: &str, on_hand: i64) {
        for _ in 0..300 {
            let r = self
                .call(
                    Method::PUT,
                    &format!("/api/admin/inventory/{product}"),
                    Some(admin),
                    Some(json!({"on_hand": on_hand})),
                )
                .await;
            match r.status() {
                StatusCode::OK => return,
                StatusCode::NOT_FOUND => tokio::time::sleep(Duration::from_millis(100)).await,
                other => panic!("setting stock: {other} {}", r.text().await.unwrap()),
            }
        }
        panic!("inventory never learnt of product {product}");
    }

    /// Place an order, retrying while the order service has not yet heard
    /// of the product (its view is built from product-events), and while
    /// the edge's placement limit holds the retries back; returns the order.
    pub async fn place_order(&self, token: &str, product: &str, quantity: i64) -> Value {
        for _ in 0..300 {
            let r = self
                .call(
                    Method::POST,
                    "/api/orders/",
                    Some(token),
                    Some(json!({"items": [{"product_id": product, "quantity": quantity}]})),
                )
                .await;
            match r.status() {
                StatusCode::CREATED => return r.json().await.unwrap(),
                StatusCode::UNPROCESSABLE_ENTITY => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                StatusCode::TOO_MANY_REQUESTS => tokio::time::sleep(Duration::from_secs(1)).await,
                other => panic!("placing an order: {other} {}", r.text().await.unwrap()),
            }
        }
        panic!("the order service never learnt of product {product}");
    }

    /// [`place_order`](Self::place_order), then wait until the saga has
    /// decided it; returns the decided order.
    pub async fn order_decided(&self, token: &str, product: &str, quantity: i64) -> Value {
        let id = self.place_order(token, product, quantity).await["id"]
            .as_str()
            .expect("an order has an id")
            .to_owned();
        self.until(
            &format!("/api/orders/{id}"),
            Some(token),
            "a decision",
            |_, b| b["status"] != "PLACED",
        )
        .await
    }

    /// Poll `path` until `done` holds for its JSON body (or fail after 60 s).
    pub async fn until(
        &self,
        path: &str,
        token: Option<&str>,
        what: &str,
        done: impl Fn(StatusCode, &Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let r = self.call(Method::GET, path, token, None).await;
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if done(status, &body) {
                return body;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A psql session holding `LOCK TABLE` on `table` until it is dropped.
pub struct TableLock(Child);

impl TableLock {
    /// Take the lock, as the superuser, in `database`; returns once it is held.
    pub fn take(stack: &Stack, database: &str, table: &str) -> TableLock {
        let pg = &stack.postgres;
        let mut psql = Command::new(pg.program("psql"))
            .arg("-h")
            .arg(&pg.socket_dir)
            .args(["-p", &pg.port.to_string(), "-U", "postgres", "-d", database])
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("psql runs");
        let stdin = psql.stdin.as_mut().unwrap();
        writeln!(
            stdin,
            "BEGIN;\nLOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';"
        )
        .unwrap();
        stdin.flush().unwrap();
        let mut out = BufReader::new(psql.stdout.take().unwrap());
        let mut line = String::new();
        while line.trim() != "locked" {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "psql ended before it held the lock"
            );
        }
        TableLock(psql)
    }
}

impl Drop for TableLock {
    /// Closing psql's input ends the session; its transaction rolls back.
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}
