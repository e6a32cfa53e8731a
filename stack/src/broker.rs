//! Starting, stopping and killing a Tansu broker process.

use std::fs::{self, OpenOptions};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// Environment variable naming the `tansu` binary to use.
pub const TANSU_ENV: &str = "EMBERLINE_TANSU";

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(
        "the tansu broker is not installed: run ./scripts/install-tools (or set {TANSU_ENV} to its path)"
    )]
    NotInstalled,
    #[error("cannot prepare broker data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("port {0} on 127.0.0.1 is already in use; choose another with --kafka-port")]
    PortInUse(u16),
    #[error("cannot start {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("the broker exited during start-up ({status}); see {log}")]
    Exited { status: String, log: PathBuf },
    #[error("the broker at {address} did not answer within {waited:?}; see {log}")]
    NotReady {
        address: SocketAddr,
        waited: Duration,
        log: PathBuf,
    },
}

/// Where the `tansu` binary is: `$EMBERLINE_TANSU`, then the project's tool cache
/// (`~/.cache/emberline/tools/bin`, where `scripts/install-tools` puts it), then `$PATH`.
pub fn find_tansu() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(TANSU_ENV) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let cached = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cache/emberline/tools/bin/tansu"));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("tansu"));
    cached.into_iter().chain(on_path).find(|p| p.is_file())
}

/// How to run one broker.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub binary: PathBuf,
    /// Holds `tansu.db` (the SQLite storage) and `broker.log`.
    pub data_dir: PathBuf,
    pub port: u16,
    pub ready_timeout: Duration,
}

impl BrokerConfig {
    /// A broker on `port` keeping its data in `data_dir`, using the installed `tansu`.
    pub fn new(data_dir: impl Into<PathBuf>, port: u16) -> Result<Self, BrokerError> {
        Ok(Self {
            binary: find_tansu().ok_or(BrokerError::NotInstalled)?,
            data_dir: data_dir.into(),
            port,
            ready_timeout: Duration::from_secs(30),
        })
    }

    pub fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join("broker.log")
    }
}

/// A running broker. Dropping it kills the process.
#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    child: Option<Child>,
}

impl Broker {
    /// Starts the broker and waits until it answers a metadata request.
    ///
    /// The broker is killed when the *thread* that called this exits (`PR_SET_PDEATHSIG`), so
    /// call it from a thread that outlives the broker: a test's own thread, `main`, or
    /// `tokio::task::block_in_place` — never `spawn_blocking`, whose pool threads retire when
    /// idle. The same holds for [`Broker::restart`].
    pub fn start(config: BrokerConfig) -> Result<Self, BrokerError> {
        let mut broker = Self {
            config,
            child: None,
        };
        broker.spawn()?;
        Ok(broker)
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.config.address().to_string()
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `kill -9`: no chance to flush or close anything, as in a crash or an OOM kill.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port and data directory after [`Broker::kill9`] or
    /// [`Broker::stop`].
    pub fn restart(&mut self) -> Result<(), BrokerError> {
        self.kill9();
        self.spawn()
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        send_sigterm(child.id());
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn spawn(&mut self) -> Result<(), BrokerError> {
        let config = &self.config;
        let data_dir_error = |source| BrokerError::DataDir {
            path: config.data_dir.clone(),
            source,
        };
        fs::create_dir_all(&config.data_dir).map_err(data_dir_error)?;
        wait_port_free(config.port, Duration::from_secs(5))?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(config.log_path())
            .map_err(data_dir_error)?;
        let url = format!("tcp://{}", config.address());
        let mut command = Command::new(&config.binary);
        command
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://tansu.db"])
            // Tansu resolves `sqlite://` paths against its working directory.
            .current_dir(&config.data_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(data_dir_error)?)
            .stderr(log);
        die_with_parent(&mut command);
        // A Ctrl-C in the terminal goes to the supervisor, which stops the broker last.
        own_process_group(&mut command);
        let child = command.spawn().map_err(|source| BrokerError::Spawn {
            binary: config.binary.clone(),
            source,
        })?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), BrokerError> {
        let started = Instant::now();
        let address = self.config.address();
        while started.elapsed() < self.config.ready_timeout {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(BrokerError::Exited {
                    status: status.to_string(),
                    log: self.config.log_path(),
                });
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
                && answers_metadata(&self.bootstrap(), Duration::from_secs(2))
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(BrokerError::NotReady {
            address,
            waited: started.elapsed(),
            log: self.config.log_path(),
        })
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Whether a Kafka-protocol broker at `bootstrap` answers a metadata request within `timeout`.
pub fn answers_metadata(bootstrap: &str, timeout: Duration) -> bool {
    let consumer: Result<BaseConsumer, _> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "0")
        .create();
    consumer.is_ok_and(|consumer| consumer.fetch_metadata(None, timeout).is_ok())
}

/// A port on 127.0.0.1 that was free a moment ago (the OS picked it).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A restarted broker may find its old port briefly held; wait a little before giving up.
fn wait_port_free(port: u16, patience: Duration) -> Result<(), BrokerError> {
    let started = Instant::now();
    loop {
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if started.elapsed() > patience {
            return Err(BrokerError::PortInUse(port));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn send_sigterm(pid: u32) {
    #[allow(unsafe_code)]
    // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped) and a valid signal.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
}

/// Asks the kernel to SIGKILL the child when the thread that spawned it exits.
pub(crate) fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    #[allow(unsafe_code)]
    // SAFETY: the closure runs between fork and exec and only calls prctl(2), which is
    // async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Puts the child in a process group of its own, so a terminal's Ctrl-C reaches only its parent.
pub(crate) fn own_process_group(command: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    command.process_group(0);
}
