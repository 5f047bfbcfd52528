//! The identity stack: the real `teipsum-auth` and `teipsum-user` binaries,
//! started as their units start them (settings in the environment, keys in
//! a credential directory), against PostgreSQL and tansu. Auth's tests
//! (`identity.rs`) and user's (`crates/services/user/tests/profiles.rs`)
//! both start it; each uses part of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use teipsum_testkit::{Credentials, Postgres, ServiceProcess, Tansu, TestInstance};

/// Fields drop in order: the services stop before the broker and database.
pub struct Stack {
    pub auth: ServiceProcess,
    /// Where the auth service serves `/metrics`.
    pub auth_metrics: std::net::SocketAddr,
    /// The auth database's connection string, for `promote-admin`.
    pub auth_db: String,
    pub user: ServiceProcess,
    pub pg: Postgres,
    pub _broker: Tansu,
    pub _credentials: Credentials,
    pub http: Client,
    pub private_pem: String,
    pub public_pem: String,
}

/// `service`'s environment from the Plan (`teipsum_testkit::service_env`)
/// on this stack's database, broker and credentials, with `extra` on top.
pub fn env(
    service: &str,
    conninfo: String,
    broker: &str,
    credentials: &Credentials,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let instance = TestInstance {
        database: conninfo,
        brokers: broker,
        credentials: credentials.path(),
    };
    let mut env = teipsum_testkit::service_env(service, &instance)
        .unwrap_or_else(|e| panic!("the plan's environment of {service}: {e}"));
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env.into_iter().collect()
}

impl Stack {
    pub fn start() -> Stack {
        Self::start_with(&[])
    }

    /// The stack with `auth_env` added to the auth service's environment.
    pub fn start_with(auth_env: &[(&str, &str)]) -> Stack {
        let pg = Postgres::start().expect("PostgreSQL starts");
        let broker = Tansu::start().expect("tansu starts");
        broker
            .create_topics(
                &teipsum_testkit::plan_topics(&["auth", "user"]).expect("the plan's topics"),
            )
            .expect("the topics are created");
        let (private_pem, public_pem) = teipsum_kit::jwt::generate_keypair();
        let credentials = Credentials::new(&[
            ("jwt-signing-key", &private_pem),
            ("jwt-public-key", &public_pem),
        ])
        .expect("the credential files are written");
        let auth_db = pg
            .create_database("teipsum_auth")
            .expect("the database is created");
        let mut auth_env: std::collections::BTreeMap<String, String> = env(
            "auth",
            auth_db.clone(),
            &broker.bootstrap,
            &credentials,
            auth_env,
        )
        .into_iter()
        .collect();
        let auth_metrics =
            teipsum_testkit::metrics_listen(&mut auth_env).expect("a port for /metrics");
        let auth = ServiceProcess::spawn("teipsum-auth", auth_env.into_iter().collect())
            .expect("the service starts");
        let user = ServiceProcess::spawn(
            "teipsum-user",
            env(
                "user",
                pg.create_database("teipsum_user")
                    .expect("the database is created"),
                &broker.bootstrap,
                &credentials,
                &[],
            ),
        )
        .expect("the service starts");
        Stack {
            auth,
            auth_metrics,
            auth_db,
            user,
            pg,
            _broker: broker,
            _credentials: credentials,
            http: teipsum_testkit::http_client().expect("an HTTP client"),
            private_pem,
            public_pem,
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.http
            .post(format!("{}{path}", self.auth.base))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn register(&self, email: &str) -> Value {
        let r = self
            .post("/api/auth/register", &json!({"email": email, "password": "correct horse battery", "display_name": "Ana"}))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.unwrap()
    }

    pub async fn login(&self, email: &str) -> Value {
        let r = self
            .post(
                "/api/auth/login",
                &json!({"email": email, "password": "correct horse battery"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    pub async fn user_get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.http.get(format!("{}{path}", self.user.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// The caller's profile, once the registration event has arrived.
    pub async fn profile(&self, token: &str) -> Value {
        let started = Instant::now();
        loop {
            let r = self.user_get("/api/users/me", Some(token)).await;
            if r.status() == StatusCode::OK {
                return r.json().await.unwrap();
            }
            assert_eq!(r.status(), StatusCode::NOT_FOUND);
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the profile never appeared"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `teipsum-auth promote-admin --email <email>` as an operator runs it
    /// on the host: the binary, the auth database; its exit status and output.
    pub fn promote_admin(&self, email: &str) -> (bool, String) {
        let out = std::process::Command::new(
            teipsum_testkit::binary("teipsum-auth").expect("the binary is built"),
        )
        .args(["promote-admin", "--email", email])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(teipsum_conventions::env::DATABASE, &self.auth_db)
        .output()
        .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    pub async fn refresh(&self, token: &str) -> Response {
        self.post("/api/auth/refresh", &json!({"refresh_token": token}))
            .await
    }

    pub async fn login_with(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    pub fn count(&self, database: &str, sql: &str) -> i64 {
        self.pg.psql(database, sql).unwrap().parse().unwrap()
    }
}

pub async fn error_of(response: Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("errors are JSON");
    assert!(body["message"].is_string(), "{body}");
    (
        status,
        body["error"].as_str().expect("an error code").to_owned(),
    )
}
