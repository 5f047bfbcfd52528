//! The development administrator, made the way an operator makes the first
//! one on a host.

use std::{collections::BTreeMap, path::Path, process::Command, time::Duration};

use teipsum_testkit::ServiceProcess;

use crate::{DevError, step};

/// The address of the development administrator.
pub const DEV_ADMIN_EMAIL: &str = "admin@teipsum.test";

/// The file in the state directory with the development administrator's
/// address and password (JSON, mode 0600), for scripts that drive the stack.
pub const ADMIN_FILE: &str = "admin.json";

/// The development administrator's credentials.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DevAdmin {
    /// Its address ([`DEV_ADMIN_EMAIL`]).
    pub email: String,
    /// Its password: random, made when the state directory was.
    pub password: String,
}

/// Create the development administrator the way an operator creates the
/// first one on a host: register a customer over HTTP, then promote it with
/// `teipsum-auth promote-admin` run with the auth unit's environment. A kept
/// state directory keeps its administrator and password ([`ADMIN_FILE`]);
/// a fresh one gets a new random password.
pub(crate) fn create(
    root: &Path,
    auth: &ServiceProcess,
    binary: &Path,
    environment: &BTreeMap<String, String>,
) -> Result<DevAdmin, DevError> {
    let file = root.join(ADMIN_FILE);
    let kept: Option<DevAdmin> = std::fs::read_to_string(&file)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let admin = match &kept {
        Some(admin) => admin.clone(),
        None => DevAdmin {
            email: DEV_ADMIN_EMAIL.to_owned(),
            password: random_password().map_err(DevError::AdminPassword)?,
        },
    };
    let body = serde_json::json!({
        "email": admin.email,
        "password": admin.password,
        "display_name": "Development admin",
    });
    let status = post_json(auth.port, "/api/auth/register", &body.to_string())
        .map_err(DevError::AdminRegister)?;
    match (status, &kept) {
        (201, _) | (409, Some(_)) => {}
        (409, None) => {
            return Err(DevError::AdminWithoutFile {
                email: admin.email,
                file,
            });
        }
        (status, _) => return Err(DevError::AdminRegisterStatus { status }),
    }
    step(&format!(
        "teipsum-auth promote-admin --email {}",
        admin.email
    ));
    let promoted = Command::new(binary)
        .args(["promote-admin", "--email", &admin.email])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(environment)
        .output()
        .map_err(|source| DevError::PromoteSpawn {
            program: binary.to_owned(),
            source,
        })?;
    if !promoted.status.success() {
        return Err(DevError::PromoteFailed {
            status: promoted.status,
            stderr: String::from_utf8_lossy(&promoted.stderr).trim().to_owned(),
        });
    }
    if kept.is_none() {
        use std::os::unix::fs::OpenOptionsExt;
        let text = serde_json::to_string_pretty(&admin).map_err(DevError::AdminJson)?;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .map_err(|source| DevError::AdminFile {
                path: file.clone(),
                source,
            })?;
    }
    Ok(admin)
}

/// 144 random bits as 36 hexadecimal digits.
fn random_password() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 18];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `POST path` with a JSON body to 127.0.0.1:`port`; the status.
fn post_json(port: u16, path: &str, body: &str) -> std::io::Result<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {response:.80}")))
}
