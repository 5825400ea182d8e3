//! Child processes for tests (e.g. `lattice host`, `lattice controller`): output to a
//! log file the test can show when it fails, a polite stop (SIGINT) or a crash
//! (SIGKILL), and a kill on drop so no test leaves processes behind.

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running child process; killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
    /// Keeps the log folder until the process value is gone.
    _dir: tempfile::TempDir,
}

impl Process {
    /// Start `command` with stdin closed and stdout and stderr in a log file. `name`
    /// says which process this is in messages.
    pub fn spawn(name: &str, mut command: Command) -> anyhow::Result<Process> {
        let dir = tempfile::Builder::new()
            .prefix("lattice-proc-")
            .tempdir()
            .context("creating a folder for a test process's log")?;
        let log = dir.path().join(format!("{name}.log"));
        let file = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().context("cloning the log handle")?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        Ok(Process {
            name: name.to_string(),
            child,
            log,
            _dir: dir,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// What the process wrote so far (stdout and stderr).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Crash it: SIGKILL, then reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Ask it to stop (SIGINT, as Ctrl-C) and wait up to `deadline` for it to exit.
    pub fn interrupt(&mut self, deadline: Duration) -> anyhow::Result<ExitStatus> {
        self.signal(Signal::SIGINT)?;
        self.wait(deadline)
    }

    /// Ask it to stop with SIGTERM and wait up to `deadline` for it to exit.
    pub fn terminate(&mut self, deadline: Duration) -> anyhow::Result<ExitStatus> {
        self.signal(Signal::SIGTERM)?;
        self.wait(deadline)
    }

    fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        let pid = i32::try_from(self.child.id()).context("pid out of range")?;
        kill(Pid::from_raw(pid), signal)
            .with_context(|| format!("sending {signal} to {}", self.name))
    }

    /// Whether it has exited (and how), without waiting.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Wait up to `deadline` for it to exit.
    pub fn wait(&mut self, deadline: Duration) -> anyhow::Result<ExitStatus> {
        let until = Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= until {
                anyhow::bail!(
                    "{} did not exit within {deadline:?}; its log:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// CPU time (user + system) a process has used, from `/proc/<pid>/stat` (`None`:
/// this process), in 10 ms ticks; zero where it cannot be read. Benchmarks
/// report it per operation beside wall-clock rates.
pub fn cpu_time(pid: Option<u32>) -> Duration {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = fs::read_to_string(path).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}
