//! Telling bloud-proxy to reload: SIGHUP to the pid in its pid file.
//!
//! The proxy also watches its directory, so a missed signal delays a reload but loses nothing.
//! That is why a missing, unreadable or stale pid file is a warning, not an error. A stale pid
//! may since belong to another process, for which SIGHUP's default action is to terminate: on
//! Linux we check `/proc/<pid>/comm` before signalling.

use std::io;
use std::path::Path;

use super::RoutesError;

/// Name the proxy's process carries (`/proc/<pid>/comm`, also for a Nix `-wrapped` binary).
pub const PROXY_PROCESS_NAME: &str = "bloud-proxy";

/// What [`signal_proxy`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalOutcome {
    /// SIGHUP delivered to this pid.
    Signalled(i32),
    /// No pid file: the proxy is not running (or not yet).
    NoPidFile,
    /// The pid file does not hold a usable pid.
    InvalidPidFile(String),
    /// No process with this pid any more.
    NotRunning(i32),
    /// The pid belongs to another program (stale pid file, pid reused).
    NotTheProxy { pid: i32, name: String },
}

/// Sends SIGHUP to the bloud-proxy whose pid is in `pid_file`. Only a failure to signal a live
/// proxy (e.g. permission denied) is an error; the other outcomes are logged as warnings.
pub fn signal_proxy(pid_file: &Path) -> Result<SignalOutcome, RoutesError> {
    signal_pid_file(pid_file, Some(PROXY_PROCESS_NAME))
}

/// Like [`signal_proxy`], checking the process name contains `expected_name` when given.
pub fn signal_pid_file(
    pid_file: &Path,
    expected_name: Option<&str>,
) -> Result<SignalOutcome, RoutesError> {
    let outcome = signal_inner(pid_file, expected_name)?;
    match &outcome {
        SignalOutcome::Signalled(pid) => {
            tracing::info!(pid, pid_file = %pid_file.display(), "sent SIGHUP to bloud-proxy")
        }
        SignalOutcome::NoPidFile => tracing::warn!(
            pid_file = %pid_file.display(),
            "no proxy pid file; the proxy will pick up the routes through its file watch"
        ),
        SignalOutcome::InvalidPidFile(why) => tracing::warn!(
            pid_file = %pid_file.display(),
            why,
            "unusable proxy pid file; not signalling"
        ),
        SignalOutcome::NotRunning(pid) => tracing::warn!(
            pid,
            pid_file = %pid_file.display(),
            "stale proxy pid file: no such process (or hidden from the agent by /proc hidepid)"
        ),
        SignalOutcome::NotTheProxy { pid, name } => tracing::warn!(
            pid,
            name,
            pid_file = %pid_file.display(),
            "stale proxy pid file: the pid belongs to another program; not signalling"
        ),
    }
    Ok(outcome)
}

fn signal_inner(
    pid_file: &Path,
    expected_name: Option<&str>,
) -> Result<SignalOutcome, RoutesError> {
    let text = match std::fs::read_to_string(pid_file) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(SignalOutcome::NoPidFile),
        Err(e) => {
            return Ok(SignalOutcome::InvalidPidFile(format!(
                "cannot read it: {e}"
            )))
        }
    };
    let trimmed = text.trim();
    let pid = match trimmed.parse::<i32>() {
        // 0 and negative pids address process groups, 1 is init: never signal those.
        Ok(pid) if pid > 1 => pid,
        _ => {
            return Ok(SignalOutcome::InvalidPidFile(format!(
                "`{trimmed}` is not a process id"
            )))
        }
    };
    if let Some(expected) = expected_name {
        if Path::new("/proc/self").exists() {
            match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
                Ok(name) => {
                    let name = name.trim().to_string();
                    if !name.contains(expected) {
                        return Ok(SignalOutcome::NotTheProxy { pid, name });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Ok(SignalOutcome::NotRunning(pid))
                }
                // Visible but unreadable (/proc mounted with hidepid=1): cannot verify the name;
                // the pid came from the proxy's own pid file, so signal it.
                Err(e) => tracing::debug!(pid, error = %e, "cannot read the process name"),
            }
        }
    }
    // SAFETY: kill(2) with a positive pid and a valid signal number has no memory effects.
    let rc = unsafe { libc::kill(pid, libc::SIGHUP) };
    if rc == 0 {
        return Ok(SignalOutcome::Signalled(pid));
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        return Ok(SignalOutcome::NotRunning(pid));
    }
    Err(RoutesError::Signal { pid, source: err })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// `sleep` with SIGHUP at its default action (end the process), whatever the test runner
    /// inherited: under `nohup` or a service manager SIGHUP may be ignored, and an ignored
    /// disposition survives exec.
    fn sleep_with_default_sighup(program: &Path) -> Command {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(program);
        cmd.arg("30");
        // SAFETY: `signal` is async-signal-safe, so it may run between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGHUP, libc::SIG_DFL);
                Ok(())
            });
        }
        cmd
    }

    fn wait_exit(child: &mut std::process::Child) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    #[test]
    fn missing_and_garbage_pid_files_are_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("proxy.pid");
        assert_eq!(signal_proxy(&pid_file).unwrap(), SignalOutcome::NoPidFile);
        for garbage in ["", "abc", "0", "-1", "1", "99999999999"] {
            std::fs::write(&pid_file, garbage).unwrap();
            assert!(
                matches!(
                    signal_proxy(&pid_file).unwrap(),
                    SignalOutcome::InvalidPidFile(_)
                ),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn stale_pid_of_an_exited_process_is_not_running() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("proxy.pid");
        std::fs::write(&pid_file, format!("{pid}\n")).unwrap();
        // The pid may already be reused by a process of a concurrent test: never signalled.
        let outcome = signal_proxy(&pid_file).unwrap();
        assert!(
            matches!(outcome, SignalOutcome::NotRunning(p) | SignalOutcome::NotTheProxy { pid: p, .. } if p == pid),
            "{outcome:?}"
        );
    }

    #[test]
    fn another_program_is_never_signalled() {
        let mut child = sleep_with_default_sighup(Path::new("sleep"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("proxy.pid");
        std::fs::write(&pid_file, pid.to_string()).unwrap();
        let outcome = signal_proxy(&pid_file).unwrap();
        assert!(
            matches!(outcome, SignalOutcome::NotTheProxy { pid: p, .. } if p == pid),
            "{outcome:?}"
        );
        // Still alive: SIGHUP would have killed sleep.
        assert!(child.try_wait().unwrap().is_none());
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_process_named_bloud_proxy_gets_sighup() {
        // A `sleep` started under the proxy's name: SIGHUP's default action ends it.
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("bloud-proxy");
        let sleep = ["/bin/sleep", "/usr/bin/sleep"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("sleep binary");
        std::os::unix::fs::symlink(sleep, &fake).unwrap();
        let mut child = sleep_with_default_sighup(&fake).spawn().unwrap();
        let pid = child.id() as i32;
        // spawn() may return before the child has exec'd; a real proxy writes its pid file
        // only once running. Wait (bounded) for the name to appear.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|n| n.trim() != PROXY_PROCESS_NAME)
            .unwrap_or(false)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let pid_file = dir.path().join("proxy.pid");
        std::fs::write(&pid_file, format!("{pid}\n")).unwrap();
        assert_eq!(
            signal_proxy(&pid_file).unwrap(),
            SignalOutcome::Signalled(pid)
        );
        let status = wait_exit(&mut child).expect("child ended after SIGHUP");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGHUP));
    }
}
