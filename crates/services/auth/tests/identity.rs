//! Auth end to end: registration, login, refresh families, lockout, the
//! first administrator, with the real `teipsum-auth` (and `teipsum-user`
//! where a token must be accepted) on the identity stack.

mod stack;

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use stack::{Stack, env, error_of};
use teipsum_conventions::env as vars;
use teipsum_testkit::{Credentials, Postgres, Tansu};

#[tokio::test(flavor = "multi_thread")]
async fn the_identity_story_from_registration_to_logout() {
    let stack = Stack::start();
    let registered = stack.register("Ana@Teipsum.test").await;
    assert_eq!(registered["email"], "ana@teipsum.test");
    assert_eq!(registered["role"], "customer");

    let tokens = stack.login("ana@teipsum.test").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["expires_in"].as_u64().unwrap() <= 900);

    let profile = stack.profile(access).await;
    assert_eq!(profile["email"], "ana@teipsum.test");
    assert_eq!(profile["display_name"], "Ana");
    // The login event follows the registration on another topic.
    let started = Instant::now();
    loop {
        let p: Value = stack
            .user_get("/api/users/me", Some(access))
            .await
            .json()
            .await
            .unwrap();
        if p["login_count"] == 1 {
            assert!(p["last_login_at"].is_string());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the login never counted: {p}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let edit = json!({
        "display_name": "Ana Lima",
        "shipping_address": {"line1": "Rua Augusta 1", "city": "Lisboa", "postal_code": "1100-053", "country": "pt"},
        "phone": "+351 21 000 0000",
        "preferences": {"newsletter": true, "language": "pt"}
    });
    let updated = stack
        .http
        .put(format!("{}/api/users/me", stack.user.base))
        .bearer_auth(access)
        .json(&edit)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), StatusCode::OK);
    let profile = stack.profile(access).await;
    assert_eq!(profile["display_name"], "Ana Lima");
    assert_eq!(profile["shipping_address"]["country"], "PT");
    assert_eq!(profile["preferences"]["newsletter"], true);

    let first_refresh = tokens["refresh_token"].as_str().unwrap();
    let refreshed: Value = stack
        .post(
            "/api/auth/refresh",
            &json!({"refresh_token": first_refresh}),
        )
        .await
        .json()
        .await
        .unwrap();
    let second_refresh = refreshed["refresh_token"].as_str().unwrap();
    assert_ne!(second_refresh, first_refresh, "refresh tokens rotate");
    assert_eq!(
        stack
            .profile(refreshed["access_token"].as_str().unwrap())
            .await["id"],
        registered["id"]
    );

    let logout = stack
        .post(
            "/api/auth/logout",
            &json!({"refresh_token": second_refresh}),
        )
        .await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let after = stack
        .post(
            "/api/auth/refresh",
            &json!({"refresh_token": second_refresh}),
        )
        .await;
    assert_eq!(
        error_of(after).await,
        (StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN".into())
    );

    // Stopping is clean (SIGTERM → drain → exit 0), as systemd would stop them.
    let mut stack = stack;
    assert!(stack.user.stop());
    assert!(stack.auth.stop());
}

#[tokio::test(flavor = "multi_thread")]
async fn reusing_a_spent_refresh_token_revokes_the_whole_family() {
    let stack = Stack::start();
    stack.register("eve@teipsum.test").await;
    let tokens = stack.login("eve@teipsum.test").await;
    let stolen = tokens["refresh_token"].as_str().unwrap().to_owned();
    let legit: Value = stack
        .post("/api/auth/refresh", &json!({"refresh_token": stolen}))
        .await
        .json()
        .await
        .unwrap();
    // The thief replays the old token: refused, and the family is burnt.
    let replay = stack
        .post("/api/auth/refresh", &json!({"refresh_token": stolen}))
        .await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    let victim = stack
        .post(
            "/api/auth/refresh",
            &json!({"refresh_token": legit["refresh_token"]}),
        )
        .await;
    assert_eq!(
        victim.status(),
        StatusCode::UNAUTHORIZED,
        "the family must be revoked"
    );
    // Another login starts a new family.
    stack.login("eve@teipsum.test").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_4xx_json_error_and_writes_nothing() {
    let stack = Stack::start();
    stack.register("taken@teipsum.test").await;
    let users_before = stack.count("teipsum_auth", "SELECT count(*) FROM users");
    let outbox_before = stack.count("teipsum_auth", "SELECT count(*) FROM kit_outbox");
    let long = "x".repeat(10_000);
    let cases: Vec<(&str, String)> = vec![
        ("malformed JSON", "{\"email\": ".to_owned()),
        ("not JSON", "email=a@b.c".to_owned()),
        ("wrong types", json!({"email": 42, "password": true, "display_name": []}).to_string()),
        ("missing fields", json!({"email": "a@teipsum.test"}).to_string()),
        ("unknown field", json!({"email": "a@teipsum.test", "password": "correct horse battery", "display_name": "A", "role": "admin"}).to_string()),
        ("short password", json!({"email": "a@teipsum.test", "password": "short", "display_name": "A"}).to_string()),
        ("long password", json!({"email": "a@teipsum.test", "password": "p".repeat(129), "display_name": "A"}).to_string()),
        ("bad e-mail", json!({"email": "not an address", "password": "correct horse battery", "display_name": "A"}).to_string()),
        ("SQL metacharacters", json!({"email": "x'); DROP TABLE users; --@teipsum.test", "password": "correct horse battery", "display_name": "A"}).to_string()),
        ("odd Unicode", json!({"email": "u@teipsum.test", "password": "correct horse battery", "display_name": "admin\u{202E}txt.exe"}).to_string()),
        ("zero-width name", json!({"email": "z@teipsum.test", "password": "correct horse battery", "display_name": "\u{200B}"}).to_string()),
        ("very long strings", json!({"email": format!("{long}@teipsum.test"), "password": "correct horse battery", "display_name": long}).to_string()),
        ("taken e-mail in other case", json!({"email": "TAKEN@teipsum.test", "password": "correct horse battery", "display_name": "A"}).to_string()),
        ("oversized body", format!("{{\"email\": \"{}\"}}", "y".repeat(64 * 1024))),
    ];
    for (what, body) in cases {
        // The server answers an oversized body without reading it and then
        // closes the connection; a pooled connection would race that close
        // on the next request (hyper's IncompleteMessage), so none is kept.
        let r = stack
            .http
            .post(format!("{}/api/auth/register", stack.auth.base))
            .header("content-type", "application/json")
            .header("connection", "close")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, code) = error_of(r).await;
        assert!(status.is_client_error(), "{what}: {status}");
        println!("{what}: {status} {code}");
    }
    let wrong_type = stack
        .http
        .post(format!("{}/api/auth/login", stack.auth.base))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(wrong_type).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let tokens = stack.login("taken@teipsum.test").await;
    let token = tokens["access_token"].as_str().unwrap();
    stack.profile(token).await;
    for (what, body) in [
        (
            "bad phone",
            json!({"display_name": "A", "phone": "call me", "preferences": {"newsletter": false, "language": "en"}}),
        ),
        (
            "bad country",
            json!({"display_name": "A", "shipping_address": {"line1": "x", "city": "y", "postal_code": "1", "country": "Narnia"}, "preferences": {"newsletter": false, "language": "en"}}),
        ),
        ("missing preferences", json!({"display_name": "A"})),
    ] {
        let r = stack
            .http
            .put(format!("{}/api/users/me", stack.user.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.0, StatusCode::BAD_REQUEST, "{what}");
    }
    assert_eq!(
        stack.count("teipsum_auth", "SELECT count(*) FROM users"),
        users_before,
        "nothing written"
    );
    assert_eq!(
        stack.count(
            "teipsum_auth",
            "SELECT count(*) FROM kit_outbox WHERE topic = 'user-registered'"
        ),
        outbox_before,
        "no event for a refused registration"
    );
    assert_eq!(
        stack.profile(token).await["display_name"],
        "Ana",
        "a refused edit changes nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn passwords_are_stored_as_argon2id_and_failures_look_alike() {
    let stack = Stack::start();
    stack.register("ana@teipsum.test").await;
    let hash = stack
        .pg
        .psql("teipsum_auth", "SELECT password_hash FROM users")
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains("correct horse"), "no plain text");

    // Wall-clock time on a shared machine only ever grows with load, so the
    // fastest of many interleaved attempts is the work itself. Three
    // accounts take turns, four failures each, so that none reaches the
    // throttle after five (a 429 would show below as a second answer).
    let accounts = ["ana@teipsum.test", "bea@teipsum.test", "cid@teipsum.test"];
    for email in &accounts[1..] {
        stack.register(email).await;
    }
    let rounds = 4 * accounts.len();
    let mut fastest = [f64::INFINITY; 2];
    let mut answers = Vec::new();
    for round in 0..rounds {
        let unknown = format!("nobody{round}@teipsum.test");
        let attempts = [accounts[round % accounts.len()], unknown.as_str()];
        for (i, email) in attempts.into_iter().enumerate() {
            let started = Instant::now();
            let r = stack
                .post(
                    "/api/auth/login",
                    &json!({"email": email, "password": "wrong password!!"}),
                )
                .await;
            fastest[i] = fastest[i].min(started.elapsed().as_secs_f64());
            answers.push((r.status(), r.text().await.unwrap()));
        }
    }
    answers.dedup();
    assert_eq!(
        answers.len(),
        1,
        "unknown user and wrong password answer alike: {answers:?}"
    );
    let [wrong, unknown] = fastest;
    println!("fastest login failure: wrong password {wrong:.3}s, unknown user {unknown:.3}s");
    assert!(
        wrong / unknown < 2.0 && unknown / wrong < 2.0,
        "both failures take one argon2 verification: {wrong} vs {unknown}"
    );
}

// --- The first administrator -------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_stranger_registering_a_formerly_configured_admin_address_is_a_customer() {
    // The setting the spec used to write into the unit; a unit or an old
    // deployment may still carry it. It must not matter.
    let stack = Stack::start_with(&[("TEIPSUM_ADMIN_EMAILS", "admin@teipsum.test")]);
    let ana = stack.register("ana@teipsum.test").await;
    let stranger = stack.register("admin@teipsum.test").await;
    assert_eq!(stranger["role"], "customer");
    let tokens = stack.login("admin@teipsum.test").await;
    assert_eq!(tokens["user"]["role"], "customer");
    let token = tokens["access_token"].as_str().unwrap();
    stack.profile(token).await;
    let other = format!("/api/users/{}", ana["id"].as_str().unwrap());
    assert_eq!(
        error_of(stack.user_get(&other, Some(token)).await).await,
        (StatusCode::FORBIDDEN, "FORBIDDEN".into()),
        "no admin route for a stranger"
    );
    assert_eq!(
        stack.count(
            "teipsum_auth",
            "SELECT count(*) FROM users WHERE role = 'admin'"
        ),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn promote_admin_makes_an_existing_account_admin_and_refuses_an_unknown_one() {
    let stack = Stack::start();
    let (ok, output) = stack.promote_admin("nobody@teipsum.test");
    assert!(!ok, "an unknown account is refused: {output}");
    assert!(
        output.contains("no account for nobody@teipsum.test"),
        "{output}"
    );
    assert_eq!(
        stack.count("teipsum_auth", "SELECT count(*) FROM users"),
        0,
        "nothing created"
    );
    let (ok, output) = stack.promote_admin("not an address");
    assert!(!ok, "{output}");

    let ana = stack.register("ana@teipsum.test").await;
    stack.register("ops@teipsum.test").await;
    let before = stack.login("ops@teipsum.test").await;
    assert_eq!(before["user"]["role"], "customer");
    let (ok, output) = stack.promote_admin("OPS@teipsum.test");
    assert!(ok, "{output}");
    assert!(
        output.contains("ops@teipsum.test is now an administrator"),
        "{output}"
    );
    let after = stack.login("ops@teipsum.test").await;
    assert_eq!(after["user"]["role"], "admin");
    let token = after["access_token"].as_str().unwrap();
    let ana_tokens = stack.login("ana@teipsum.test").await;
    stack
        .profile(ana_tokens["access_token"].as_str().unwrap())
        .await;
    let seen = stack
        .user_get(
            &format!("/api/users/{}", ana["id"].as_str().unwrap()),
            Some(token),
        )
        .await;
    assert_eq!(seen.status(), StatusCode::OK, "the admin route opens");
    assert_eq!(
        stack.count(
            "teipsum_auth",
            "SELECT count(*) FROM users WHERE role = 'admin'"
        ),
        1,
        "only the promoted account"
    );
}

// --- Sessions: races and lifetime --------------------------------------

/// The refresh token of `response` if it succeeded.
async fn refreshed(response: Response) -> Option<String> {
    if response.status() == StatusCode::OK {
        let body: Value = response.json().await.unwrap();
        Some(body["refresh_token"].as_str().unwrap().to_owned())
    } else {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        None
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_racing_a_refresh_leaves_no_token_of_the_family_valid() {
    let stack = Stack::start();
    stack.register("ana@teipsum.test").await;
    let mut issued_during_logout = 0;
    for round in 0..50 {
        let tokens = stack.login("ana@teipsum.test").await;
        let token = tokens["refresh_token"].as_str().unwrap();
        let body = json!({"refresh_token": token});
        let (refresh, logout) =
            tokio::join!(stack.refresh(token), stack.post("/api/auth/logout", &body));
        assert_eq!(logout.status(), StatusCode::NO_CONTENT);
        if let Some(next) = refreshed(refresh).await {
            issued_during_logout += 1;
            assert_eq!(
                stack.refresh(&next).await.status(),
                StatusCode::UNAUTHORIZED,
                "round {round}: the token a racing refresh issued outlived the logout"
            );
        }
        assert_eq!(
            stack.refresh(token).await.status(),
            StatusCode::UNAUTHORIZED,
            "round {round}"
        );
    }
    println!("{issued_during_logout} of 50 refreshes won the race against logout");
}

#[tokio::test(flavor = "multi_thread")]
async fn reuse_detection_racing_a_refresh_revokes_the_token_it_issues() {
    let stack = Stack::start();
    stack.register("eve@teipsum.test").await;
    let mut issued = 0;
    for round in 0..50 {
        let tokens = stack.login("eve@teipsum.test").await;
        let stolen = tokens["refresh_token"].as_str().unwrap().to_owned();
        let current = refreshed(stack.refresh(&stolen).await).await.unwrap();
        // The owner rotates while the thief replays the spent token.
        let (legit, replay) = tokio::join!(stack.refresh(&current), stack.refresh(&stolen));
        assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
        if let Some(next) = refreshed(legit).await {
            issued += 1;
            assert_eq!(
                stack.refresh(&next).await.status(),
                StatusCode::UNAUTHORIZED,
                "round {round}: the family survived the replay"
            );
        }
    }
    println!("{issued} of 50 rotations won the race against reuse detection");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_ends_at_its_absolute_lifetime_even_with_rotation() {
    let stack = Stack::start();
    stack.register("ana@teipsum.test").await;
    let login = stack.login("ana@teipsum.test").await;
    let family_expiry = || {
        stack
            .pg
            .psql("teipsum_auth", "SELECT expires_at FROM refresh_families")
            .unwrap()
    };
    let at_login = family_expiry();
    // Rotation keeps the expiry fixed at login (30 days from then).
    let mut token = login["refresh_token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        token = refreshed(stack.refresh(&token).await).await.unwrap();
    }
    assert_eq!(family_expiry(), at_login, "rotation slid the session's end");
    // Bring the end of the session near, as if it had been 30 days.
    stack
        .pg
        .psql(
            "teipsum_auth",
            "UPDATE refresh_families SET expires_at = now() + interval '2 seconds'",
        )
        .unwrap();
    token = refreshed(stack.refresh(&token).await)
        .await
        .expect("still inside the lifetime");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        error_of(stack.refresh(&token).await).await,
        (StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN".into()),
        "a refresh after the family's lifetime"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_long_over_are_pruned_and_recent_ones_stay() {
    let stack = Stack::start();
    stack.register("ana@teipsum.test").await;
    for _ in 0..3 {
        let t = stack.login("ana@teipsum.test").await;
        // Spent tokens are kept with their family (reuse detection needs them).
        stack.refresh(t["refresh_token"].as_str().unwrap()).await;
    }
    let families = stack
        .pg
        .psql(
            "teipsum_auth",
            "SELECT id FROM refresh_families ORDER BY created_at",
        )
        .unwrap();
    let families: Vec<&str> = families.lines().collect();
    assert_eq!(families.len(), 3);
    let age = |id: &str, days: i32| {
        stack
            .pg
            .psql(
                "teipsum_auth",
                &format!(
                    "UPDATE refresh_families SET expires_at = now() - interval '{days} days' WHERE id = '{id}'"
                ),
            )
            .unwrap();
    };
    age(families[0], 8); // over for longer than the retention: goes
    age(families[1], 1); // just over: stays a while, for the record
    stack.login("ana@teipsum.test").await; // logins prune
    let count_of = |id: &str| {
        (
            stack.count(
                "teipsum_auth",
                &format!("SELECT count(*) FROM refresh_families WHERE id = '{id}'"),
            ),
            stack.count(
                "teipsum_auth",
                &format!("SELECT count(*) FROM refresh_tokens WHERE family_id = '{id}'"),
            ),
        )
    };
    assert_eq!(
        count_of(families[0]),
        (0, 0),
        "the old session and its tokens"
    );
    assert_eq!(count_of(families[1]), (1, 2));
    assert_eq!(count_of(families[2]), (1, 2));
    assert_eq!(
        stack.count("teipsum_auth", "SELECT count(*) FROM refresh_families"),
        3
    );
}

#[test]
fn a_refresh_lifetime_out_of_bounds_is_refused_at_start() {
    let pg = Postgres::start().expect("PostgreSQL starts");
    let broker = Tansu::start().expect("tansu starts");
    let (private_pem, public_pem) = teipsum_kit::jwt::generate_keypair();
    let credentials = Credentials::new(&[
        ("jwt-signing-key", &private_pem),
        ("jwt-public-key", &public_pem),
    ])
    .expect("the credential files are written");
    let conninfo = pg
        .create_database("teipsum_auth")
        .expect("the database is created");
    for bad in ["5", "99999999999"] {
        let mut command = std::process::Command::new(
            teipsum_testkit::binary("teipsum-auth").expect("the binary is built"),
        );
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in env(
            "auth",
            conninfo.clone(),
            &broker.bootstrap,
            &credentials,
            &[(vars::REFRESH_TTL_SECS, bad)],
        ) {
            command.env(k, v);
        }
        let mut child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("TEIPSUM_REFRESH_TTL_SECS={bad}: the service started");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert_eq!(status.code(), Some(78), "{bad}: EX_CONFIG");
        assert!(
            stderr.contains("TEIPSUM_REFRESH_TTL_SECS must be 3600 to 7776000 seconds"),
            "{bad}: {stderr}"
        );
    }
}

// --- Brute force and load ----------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn failed_logins_make_the_account_wait_and_a_success_resets_it() {
    let stack = Stack::start();
    stack.register("ana@teipsum.test").await;
    stack.register("bob@teipsum.test").await;
    for _ in 0..5 {
        let r = stack
            .login_with("ana@teipsum.test", "wrong password!!")
            .await;
        assert_eq!(
            error_of(r).await,
            (StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS".into())
        );
    }
    assert_eq!(
        stack.count(
            "teipsum_auth",
            "SELECT failed_logins FROM users WHERE email = 'ana@teipsum.test'"
        ),
        5
    );
    // Now even the right password waits: it is not looked at.
    let refused = stack
        .login_with("ana@teipsum.test", "correct horse battery")
        .await;
    let retry_after: u64 = refused
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry_after, 1, "the first wait is a second");
    assert_eq!(
        error_of(refused).await,
        (StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_ATTEMPTS".into())
    );
    // Another account is not affected.
    stack.login("bob@teipsum.test").await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    // A sixth failure doubles the wait.
    let r = stack
        .login_with("ana@teipsum.test", "wrong password!!")
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let refused = stack
        .login_with("ana@teipsum.test", "correct horse battery")
        .await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "2");
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    stack.login("ana@teipsum.test").await;
    assert_eq!(
        stack.count(
            "teipsum_auth",
            "SELECT failed_logins FROM users WHERE email = 'ana@teipsum.test' AND locked_until IS NULL"
        ),
        0,
        "a success resets the count"
    );
    let r = stack
        .login_with("ana@teipsum.test", "wrong password!!")
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "one failure is free again"
    );
    let r = stack
        .login_with("nobody@teipsum.test", "correct horse battery")
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Every attempt counted by its outcome; an unknown address and a wrong
    // password alike are `rejected`, and no label names anyone.
    let (_, text) = teipsum_testkit::metrics::scrape(stack.auth_metrics)
        .await
        .expect("/metrics answers");
    let metrics =
        teipsum_testkit::metrics::Scrape::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let logins = "teipsum_auth_logins_total";
    for (outcome, n) in [
        ("rejected", 8.0),
        ("throttled", 2.0),
        ("success", 2.0),
        ("busy", 0.0),
        ("error", 0.0),
    ] {
        assert_eq!(
            metrics.value(logins, &[("outcome", outcome)]),
            Some(n),
            "{outcome}: {text}"
        );
    }
    assert!(
        !text.contains("teipsum.test"),
        "an address in a label: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hashing_beyond_its_bound_is_503_with_retry_after_and_never_500() {
    let stack = Stack::start_with(&[(vars::PASSWORD_HASH_CONCURRENCY, "1")]);
    stack.register("ana@teipsum.test").await;
    // Owned requests, spawned at once: 24 hashes wanted together.
    let send = |path: &str, body: Value| {
        let request = stack
            .http
            .post(format!("{}{path}", stack.auth.base))
            .json(&body);
        tokio::spawn(async move { request.send().await.unwrap() })
    };
    let registrations: Vec<_> = (0..12)
        .map(|i| send("/api/auth/register", json!({"email": format!("u{i}@teipsum.test"), "password": "correct horse battery", "display_name": "U"})))
        .collect();
    let logins: Vec<_> = (0..12)
        .map(|_| {
            send(
                "/api/auth/login",
                json!({"email": "ana@teipsum.test", "password": "correct horse battery"}),
            )
        })
        .collect();
    let mut registrations_done = Vec::new();
    for handle in registrations {
        registrations_done.push(handle.await.unwrap());
    }
    let mut logins_done = Vec::new();
    for handle in logins {
        logins_done.push(handle.await.unwrap());
    }
    let (registrations, logins) = (registrations_done, logins_done);
    let mut busy = 0;
    for (what, responses, ok) in [
        ("register", registrations, StatusCode::CREATED),
        ("login", logins, StatusCode::OK),
    ] {
        for r in responses {
            let status = r.status();
            if status == ok {
                continue;
            }
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}");
            assert_eq!(r.headers()["retry-after"], "1", "{what}");
            assert_eq!(
                error_of(r).await,
                (StatusCode::SERVICE_UNAVAILABLE, "BUSY".into()),
                "{what}"
            );
            busy += 1;
        }
    }
    println!("{busy} of 24 requests found every hashing slot taken");
    assert!(
        busy > 0,
        "24 concurrent hashes with one slot, and none was refused"
    );
    // The refusals left nothing behind: the next ones go through.
    stack.register("late@teipsum.test").await;
    stack.login("late@teipsum.test").await;
}
