//! Services started again when they die, as systemd's `Restart=on-failure`
//! does on a host: a process that exits non-zero or by a signal is logged,
//! started again after the restart delay, and given up on when it has been
//! started `StartLimitBurst` times within `StartLimitIntervalSec`. A process
//! stopped on purpose ([`ServiceProcess::stop`], Ctrl-C) is not restarted,
//! and a stop during the restart delay cancels the restart.

use std::{
    collections::BTreeMap,
    process::ExitStatus,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use teipsum_testkit::ServiceProcess;

/// systemd's `Restart=`, as the Plan's unit profiles carry it: `No` leaves a
/// dead service dead, `OnFailure` starts it again after a non-zero exit or a
/// signal (a clean exit is left alone), `Always` after any exit.
pub use teipsum_spec::plan::RestartPolicy as Restart;

/// When a dead service is started again: the unit's `Restart=`,
/// `RestartSec=`, `StartLimitIntervalSec=` and `StartLimitBurst=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Whether to restart at all.
    pub restart: Restart,
    /// `RestartSec=`: the wait between the exit and the new start.
    pub delay: Duration,
    /// `StartLimitIntervalSec=`: the window in which starts are counted.
    pub start_limit_interval: Duration,
    /// `StartLimitBurst=`: starts allowed in that window; one more and the
    /// service is given up on (a crash loop stops).
    pub start_limit_burst: u32,
}

impl RestartPolicy {
    /// systemd's defaults for the start limit (`DefaultStartLimitIntervalSec=10s`,
    /// `DefaultStartLimitBurst=5`), which the generated units do not override.
    pub const SYSTEMD_START_LIMIT_INTERVAL: Duration = Duration::from_secs(10);
    /// See [`Self::SYSTEMD_START_LIMIT_INTERVAL`].
    pub const SYSTEMD_START_LIMIT_BURST: u32 = 5;
}

/// One supervised service.
struct Supervised {
    process: Arc<Mutex<ServiceProcess>>,
    policy: RestartPolicy,
    /// When the pending restart is due, after a failure, and the process's
    /// stop count then: a stop in the meantime cancels the restart.
    restart_at: Option<(Instant, u64)>,
    /// Recent starts, for the start limit (the first start counts, as in systemd).
    starts: Vec<Instant>,
}

/// The processes of the stack and the thread that watches them.
pub struct Supervisor {
    processes: BTreeMap<String, Arc<Mutex<ServiceProcess>>>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// How often the supervisor looks at its processes.
const POLL: Duration = Duration::from_millis(100);

fn lock(process: &Mutex<ServiceProcess>) -> MutexGuard<'_, ServiceProcess> {
    process.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Supervisor {
    /// Watch `services` (already started) with their policies, until [`stop`](Self::stop).
    pub fn start(services: Vec<(ServiceProcess, RestartPolicy)>) -> Supervisor {
        let started = Instant::now();
        let supervised: Vec<Supervised> = services
            .into_iter()
            .map(|(process, policy)| Supervised {
                process: Arc::new(Mutex::new(process)),
                policy,
                restart_at: None,
                starts: vec![started],
            })
            .collect();
        let processes = supervised
            .iter()
            .map(|s| (lock(&s.process).name().to_owned(), Arc::clone(&s.process)))
            .collect();
        let stopping = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stopping);
        let thread = std::thread::Builder::new()
            .name("teipsum-dev-supervisor".to_owned())
            .spawn(move || watch(supervised, &flag))
            .ok();
        if thread.is_none() {
            eprintln!("teipsum dev: no supervisor thread; dead services will not be restarted");
        }
        Supervisor {
            processes,
            stopping,
            thread,
        }
    }

    /// The process of service `name`, locked: the supervisor waits while it is held.
    pub fn service(&self, name: &str) -> Option<MutexGuard<'_, ServiceProcess>> {
        self.processes.get(name).map(|p| lock(p))
    }

    /// The names of the supervised services, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.processes.keys().map(String::as_str)
    }

    /// Stop restarting services, and wait until the watching thread has
    /// finished: from now on an exit is final (the stack is being stopped).
    pub fn stop_watching(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Stop watching, then stop every service (SIGTERM, drained) in order.
    pub fn stop(&mut self) {
        self.stop_watching();
        for process in self.processes.values() {
            lock(process).stop();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

fn watch(mut services: Vec<Supervised>, stopping: &AtomicBool) {
    while !stopping.load(Ordering::SeqCst) {
        for service in &mut services {
            check(service, Instant::now());
        }
        std::thread::sleep(POLL);
    }
}

/// Notice an exit and schedule the restart, or make a restart that is due.
fn check(service: &mut Supervised, now: Instant) {
    let mut process = lock(&service.process);
    if let Some(status) = process.exited() {
        let name = process.name().to_owned();
        match (service.policy.restart, failed(status)) {
            (Restart::OnFailure, true) | (Restart::Always, _) => {
                eprintln!(
                    "teipsum dev: {name} {}; restarting in {:?} (Restart={})",
                    describe(status),
                    service.policy.delay,
                    service.policy.restart.as_str()
                );
                service.restart_at = Some((now + service.policy.delay, process.stops()));
            }
            (Restart::No, _) | (_, false) => {
                eprintln!("teipsum dev: {name} {}; not restarted", describe(status));
            }
        }
    }
    let Some((at, stops)) = service.restart_at else {
        return;
    };
    if now < at {
        return;
    }
    service.restart_at = None;
    if process.is_running() || process.stops() != stops {
        // Started or stopped by hand in the meantime.
        return;
    }
    let window = service.policy.start_limit_interval;
    service
        .starts
        .retain(|start| now.duration_since(*start) < window);
    if service.starts.len() >= service.policy.start_limit_burst as usize {
        eprintln!(
            "teipsum dev: {} was started {} times within {window:?}; start limit hit, not restarted again (systemd: StartLimitBurst)",
            process.name(),
            service.starts.len()
        );
        return;
    }
    service.starts.push(now);
    match process.launch() {
        Ok(()) => eprintln!(
            "teipsum dev: {} restarted (pid {})",
            process.name(),
            process.pid().unwrap_or_default()
        ),
        Err(e) => eprintln!(
            "teipsum dev: {} could not be restarted: {}",
            process.name(),
            crate::chain(&e)
        ),
    }
}

/// Whether systemd's `on-failure` counts this exit as a failure: a non-zero
/// status or a signal (systemd's clean signals, SIGTERM and friends, only
/// reach a service we stopped, and then it is not watched any more).
fn failed(status: ExitStatus) -> bool {
    !status.success()
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended ({status})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A "service" that records each start in `runs` and exits with `code`.
    fn script(dir: &std::path::Path, code: i32) -> ServiceProcess {
        use std::os::unix::fs::PermissionsExt;
        let runs = dir.join("runs");
        let path = dir.join("service.sh");
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho run >> '{}'\nexit {code}\n", runs.display()),
        )
        .expect("the script is written");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("the script is executable");
        let env = vec![("TEIPSUM_LISTEN".to_owned(), "127.0.0.1:9".to_owned())];
        ServiceProcess::new("flaky", path, env, Some(String::new())).expect("a process")
    }

    fn runs(dir: &std::path::Path) -> usize {
        std::fs::read_to_string(dir.join("runs"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    fn policy(restart: Restart) -> RestartPolicy {
        RestartPolicy {
            restart,
            delay: Duration::from_millis(50),
            start_limit_interval: Duration::from_secs(60),
            start_limit_burst: 3,
        }
    }

    #[test]
    fn a_crash_loop_is_restarted_until_the_start_limit() {
        let dir = teipsum_testkit::TempDir::new("supervisor").expect("a directory");
        let mut process = script(dir.path(), 1);
        process.launch().expect("the script starts");
        let mut supervisor = Supervisor::start(vec![(process, policy(Restart::OnFailure))]);
        std::thread::sleep(Duration::from_secs(2));
        supervisor.stop();
        assert_eq!(
            runs(dir.path()),
            3,
            "the first start and two restarts, then the limit"
        );
    }

    #[test]
    fn a_clean_exit_is_not_restarted() {
        let dir = teipsum_testkit::TempDir::new("supervisor").expect("a directory");
        let mut process = script(dir.path(), 0);
        process.launch().expect("the script starts");
        let mut supervisor = Supervisor::start(vec![(process, policy(Restart::OnFailure))]);
        std::thread::sleep(Duration::from_millis(600));
        supervisor.stop();
        assert_eq!(runs(dir.path()), 1);
    }

    #[test]
    fn restart_no_leaves_a_failed_service_dead() {
        let dir = teipsum_testkit::TempDir::new("supervisor").expect("a directory");
        let mut process = script(dir.path(), 3);
        process.launch().expect("the script starts");
        let mut supervisor = Supervisor::start(vec![(process, policy(Restart::No))]);
        std::thread::sleep(Duration::from_millis(600));
        supervisor.stop();
        assert_eq!(runs(dir.path()), 1);
    }
}
