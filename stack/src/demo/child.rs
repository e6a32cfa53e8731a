//! One supervised child process of the demo: its log file, a check for an unexpected exit and a
//! bounded stop (SIGTERM, then SIGKILL).

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::DemoError;
use crate::broker::{die_with_parent, own_process_group, send_sigterm};

/// A running child. Dropping it kills the process.
#[derive(Debug)]
pub struct Child {
    name: String,
    log: PathBuf,
    process: Option<std::process::Child>,
}

impl Child {
    /// Starts `binary args…` with stdout and stderr appended to `log`.
    ///
    /// Like [`crate::Broker::start`], call it from a thread that outlives the child (the child is
    /// killed when the spawning thread exits). The child gets a process group of its own, so a
    /// Ctrl-C in the terminal reaches only the demo, which then stops the children in order.
    pub fn spawn(
        name: &str,
        binary: &Path,
        args: &[String],
        log: &Path,
    ) -> Result<Self, DemoError> {
        let io_error = |source| DemoError::Io {
            what: format!("cannot open {}", log.display()),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(io_error)?;
        let mut command = Command::new(binary);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().map_err(io_error)?)
            .stderr(file);
        die_with_parent(&mut command);
        own_process_group(&mut command);
        let process = command.spawn().map_err(|source| DemoError::Io {
            what: format!("cannot start {name} ({})", binary.display()),
            source,
        })?;
        Ok(Self {
            name: name.to_owned(),
            log: log.to_owned(),
            process: Some(process),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// `Some(status)` once the child has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.process
            .as_mut()
            .and_then(|p| p.try_wait().ok().flatten())
    }

    /// Sends SIGTERM without waiting; returns the exit status instead if it had already exited.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        let process = self.process.as_mut()?;
        match process.try_wait() {
            Ok(None) => {
                send_sigterm(process.id());
                None
            }
            Ok(Some(status)) => Some(status),
            Err(_) => None,
        }
    }

    /// Waits until `deadline` for the child to exit after [`Child::terminate`], then kills it.
    /// Returns whether it exited by itself.
    pub fn reap(&mut self, deadline: Instant) -> bool {
        let Some(mut process) = self.process.take() else {
            return true;
        };
        while Instant::now() < deadline {
            if let Ok(Some(_)) = process.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = process.kill();
        let _ = process.wait();
        false
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

/// Stops a group of children together: SIGTERM to all, then each gets until `grace` is over.
pub fn stop_all(children: &mut [Child], grace: Duration) {
    let before: Vec<Option<ExitStatus>> = children.iter_mut().map(Child::terminate).collect();
    let deadline = Instant::now() + grace;
    for (child, before) in children.iter_mut().zip(before) {
        if let Some(status) = before {
            println!("  {} had already exited ({status})", child.name());
            child.reap(deadline);
        } else if child.reap(deadline) {
            println!("  stopped {}", child.name());
        } else {
            println!(
                "  {} did not stop within {grace:?}; killed (see {})",
                child.name(),
                child.log().display()
            );
        }
    }
}
