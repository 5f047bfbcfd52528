//! Why the stack could not start: one variant per cause, each naming what
//! failed; the underlying error is the `source`, printed after it by
//! [`crate::chain`].

use std::{path::PathBuf, process::ExitStatus, time::Duration};

use teipsum_testkit::Error as Kit;

/// Why the stack could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// A program the stack needs is not installed.
    #[error("{program} is missing: {hint}")]
    Missing {
        /// What.
        program: String,
        /// How to install it.
        hint: String,
    },
    /// The PostgreSQL server binaries were not found.
    #[error("PostgreSQL")]
    PostgresMissing(#[source] Kit),
    /// A port the plan needs is taken.
    #[error(
        "port {port} ({what}) is already in use; stop what listens there or choose another port"
    )]
    PortTaken {
        /// The port.
        port: u16,
        /// Who needs it.
        what: String,
    },
    /// No free port was to be had for a service or the broker.
    #[error("picking a free port")]
    FreePort(#[source] Kit),
    /// The storefront's path cannot be written into nginx.conf.
    #[error("the storefront path {} has a space or quote", path.display())]
    StorefrontPathUnquotable {
        /// The path.
        path: PathBuf,
    },
    /// The storefront's directory is not there.
    #[error("storefront {}", path.display())]
    Storefront {
        /// The path.
        path: PathBuf,
        /// Why it cannot be used.
        #[source]
        source: std::io::Error,
    },
    /// The kept state directory cannot be created.
    #[error("state directory {}", path.display())]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The temporary state directory cannot be created.
    #[error("temporary state directory")]
    TempDir(#[source] Kit),
    /// A directory's mode cannot be set (PostgreSQL or nginx workers may run
    /// as another user).
    #[error("permissions")]
    Permissions(#[source] Kit),
    /// The database cluster did not start.
    #[error("PostgreSQL")]
    Postgres(#[source] Kit),
    /// A database of the plan could not be created.
    #[error("database {name}")]
    Database {
        /// The database.
        name: String,
        /// Why.
        #[source]
        source: Kit,
    },
    /// The broker did not start.
    #[error("tansu")]
    Broker(#[source] Kit),
    /// A topic of the plan is not one `topics apply` accepts.
    #[error("topic {topic}: {message}")]
    TopicSpec {
        /// The topic.
        topic: String,
        /// What is wrong with it.
        message: String,
    },
    /// The thread applying the topics failed.
    #[error("topics")]
    TopicsThread(#[source] Kit),
    /// The broker refused the topics.
    #[error("topics")]
    Topics(#[source] teipsum_kit::kafka::AdminError),
    /// The plan asks for a credential `teipsum dev` cannot make up.
    #[error("service {service} needs credential `{name}`, which teipsum dev cannot generate")]
    UnknownCredential {
        /// Service.
        service: String,
        /// Credential.
        name: String,
    },
    /// A key or credential file could not be written.
    #[error("credential file {}", path.display())]
    Credentials {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A service did not start or did not become ready.
    #[error("starting the services")]
    Service(#[source] Kit),
    /// The development certificate could not be made.
    #[error("development certificate")]
    Certificate(#[source] rcgen::Error),
    /// A development certificate file could not be read or written.
    #[error("development certificate file {}", path.display())]
    CertificateFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A benchmark route needs an API route of the plan to copy.
    #[error("extra route {location}: the plan has no API route to copy")]
    NoApiRoute {
        /// The route's location.
        location: String,
    },
    /// nginx's state directories could not be made.
    #[error("nginx directory {}", path.display())]
    NginxDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// nginx.conf could not be written.
    #[error("writing {}", path.display())]
    NginxConf {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// nginx could not be run.
    #[error("running {}", program.display())]
    NginxSpawn {
        /// The nginx executable.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `nginx -t` rejected the rendered configuration.
    #[error("nginx -t rejected the rendered configuration ({}):\n{stderr}", conf.display())]
    NginxRejected {
        /// The configuration.
        conf: PathBuf,
        /// What nginx said.
        stderr: String,
    },
    /// nginx started but did not listen.
    #[error("nginx did not listen on port {port} within {waited:?}")]
    NginxNotListening {
        /// The plain HTTP port.
        port: u16,
        /// How long we waited.
        waited: Duration,
    },
    /// The stack's description for `teipsum status --dev` could not be written.
    #[error("writing {}", path.display())]
    StackFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file of the monitoring stack could not be written.
    #[error("monitoring: {}", path.display())]
    MonitoringFile {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A monitoring program could not be started.
    #[error("monitoring: starting {program}")]
    MonitoringSpawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A monitoring program exited while the stack started.
    #[error("monitoring: {program} exited ({status}); its log is in <state>/monitoring/")]
    MonitoringExited {
        /// The program.
        program: String,
        /// How it ended.
        status: ExitStatus,
    },
    /// Prometheus or Alertmanager did not become ready.
    #[error(
        "monitoring: {what} on port {port} was not ready within {waited:?}; its log is in <state>/monitoring/"
    )]
    MonitoringNotReady {
        /// Which.
        what: String,
        /// Its port.
        port: u16,
        /// How long we waited.
        waited: Duration,
    },
    /// No randomness for the development administrator's password.
    #[error("the development admin's password: /dev/urandom")]
    AdminPassword(#[source] std::io::Error),
    /// Registering the development administrator failed on the way.
    #[error("the development admin: registering with auth")]
    AdminRegister(#[source] std::io::Error),
    /// auth answered the registration with an unexpected status.
    #[error("the development admin: registering answered HTTP {status}")]
    AdminRegisterStatus {
        /// The status.
        status: u16,
    },
    /// The state directory has the administrator's account but not its password.
    #[error(
        "the development admin: {email} exists in this state directory without {}; remove the state directory",
        file.display()
    )]
    AdminWithoutFile {
        /// The address.
        email: String,
        /// The file that should hold the password.
        file: PathBuf,
    },
    /// `teipsum-auth promote-admin` could not be run.
    #[error("the development admin: running {} promote-admin", program.display())]
    PromoteSpawn {
        /// The auth binary.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `teipsum-auth promote-admin` failed.
    #[error("the development admin: promote-admin {status}: {stderr}")]
    PromoteFailed {
        /// How it ended.
        status: ExitStatus,
        /// What it printed.
        stderr: String,
    },
    /// The administrator's file could not be written.
    #[error("the development admin: writing {}", path.display())]
    AdminFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The administrator's record could not be serialised.
    #[error("the development admin: JSON")]
    AdminJson(#[source] serde_json::Error),
}
