//! The authentication rate limit in real nginx: the zone's key, as the edge
//! renders it, groups IPv6 clients by /64 and IPv4 clients by address.
//!
//! Clients on many addresses need no network set-up: the test's server takes
//! the client address from a header (nginx's realip module, trusted from
//! 127.0.0.1 only), so `$binary_remote_addr` is the address the test names,
//! exactly as it would be for a connection from that address. Everything
//! else at `http` level is the edge's own lines.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use teipsum_spec::load_spec;

fn nginx() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The status of `GET /ok` as a client at `address`.
fn status_as(port: u16, address: &str) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET /ok HTTP/1.1\r\nHost: localhost\r\nX-Test-Client: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {response}"))
}

fn start(binary: &Path) -> (Nginx, u16) {
    let spec = load_spec(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.ncl")).unwrap();
    let plan = &spec.plans["prod"];
    let dir = std::env::temp_dir().join(format!("teipsum-edge-limit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("cache")).unwrap();
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/ok"), "ok\n").unwrap();
    let _ = Command::new("chmod")
        .arg("-R")
        .arg("0777")
        .arg(&dir)
        .status();
    let mut plan = plan.clone();
    if let Some(cache) = &mut plan.nginx.micro_cache {
        cache.path = dir.join("cache").display().to_string();
    }
    let edge = teipsum_nixgen::edge::edge(&plan);
    let zone = &plan.nginx.rate_limits[0].zone;
    let port = free_port();
    let d = dir.display();
    let mut conf = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n"
    );
    for line in &edge.http {
        conf.push_str(line);
        conf.push('\n');
    }
    // burst=0: a second request of one key within the rate's interval
    // (100 ms at 10r/s) is refused, so sharing a key shows at once. A file,
    // not `return`: `return` answers before limit_req's phase.
    conf.push_str(&format!(
        "  server {{\n    listen 127.0.0.1:{port};\n    set_real_ip_from 127.0.0.1;\n    real_ip_header X-Test-Client;\n    location / {{ limit_req zone={zone} nodelay; root {d}/www; }}\n  }}\n}}\n"
    ));
    std::fs::write(dir.join("nginx.conf"), &conf).unwrap();
    let test = Command::new(binary)
        .args(["-t", "-q", "-p"])
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "nginx -t: {}\n{conf}",
        String::from_utf8_lossy(&test.stderr)
    );
    let child = Command::new(binary)
        .args(["-p"])
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let nginx = Nginx { child, dir };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nginx does not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (nginx, port)
}

/// Whether `second` is refused right after `first` was let through:
/// whether the two share a key. A pair that took longer than the zone's
/// interval proves nothing and is tried again.
fn share_a_key(port: u16, first: &str, second: &str) -> bool {
    for _ in 0..20 {
        // Let every earlier request's slot pass.
        std::thread::sleep(Duration::from_millis(250));
        let started = Instant::now();
        let a = status_as(port, first);
        let b = status_as(port, second);
        if started.elapsed() < Duration::from_millis(80) {
            assert_eq!(a, 200, "{first} after a pause");
            return b == 429;
        }
    }
    panic!("no pair of requests within 80 ms");
}

#[test]
fn the_auth_limit_keys_ipv6_clients_by_their_64_and_ipv4_clients_by_address() {
    let Some(binary) = nginx() else {
        eprintln!("SKIPPED: no nginx (apt-get install nginx)");
        return;
    };
    let (_nginx, port) = start(&binary);
    assert!(
        share_a_key(port, "2001:db8:1:1::1", "2001:db8:1:1:ffff:ffff:ffff:ffff"),
        "two addresses of one /64 must share the limit"
    );
    assert!(
        share_a_key(port, "2001:db8:1:1::1", "2001:db8:1:1::1"),
        "control: one address shares with itself"
    );
    assert!(
        !share_a_key(port, "2001:db8:1:1::1", "2001:db8:1:2::1"),
        "another /64 has its own limit"
    );
    assert!(
        !share_a_key(port, "192.0.2.1", "192.0.2.2"),
        "IPv4 clients are limited per address"
    );
    assert!(
        !share_a_key(port, "::ffff:192.0.2.1", "::ffff:192.0.2.2"),
        "IPv4-mapped addresses are not lumped into one /64"
    );
    assert!(share_a_key(port, "192.0.2.1", "192.0.2.1"), "control");
}
