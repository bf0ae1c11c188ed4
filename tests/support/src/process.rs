//! Child processes that die with the test process.
//!
//! The Rust test harness never runs destructors of statics and a panicking or killed test process
//! runs none at all, so "stop it in Drop" is not enough to leave no process behind. Every
//! long-running helper is therefore started under a guard that holds the read end of a pipe whose
//! write end only this process has: when this process ends, however it ends, the kernel closes
//! the pipe and the guard stops the helper's whole process group.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Runs `"$@"` in a session of its own (setsid execs in place, so the helper leads the session's
/// process group). A watcher, all bash builtins so it is one process, stops the whole group once
/// the lifeline (standard input, kept on fd 3 because bash gives background jobs /dev/null)
/// closes; the guard itself ends with the helper and reports its exit status.
const GUARD: &str = r#"
exec 3<&0
setsid "$@" </dev/null 3<&- &
child=$!
{ while read -r -u 3 _; do :; done; kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null; } >/dev/null 2>&1 &
watcher=$!
exec 3<&-
wait "$child"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

/// A helper process under a guard. Dropping it stops the helper and waits for it.
#[derive(Debug)]
pub(crate) struct Guarded {
    name: String,
    guard: Child,
    lifeline: Option<ChildStdin>,
}

/// What a started helper printed, line by line (stdout and stderr merged), as it runs.
pub(crate) type Output = mpsc::Receiver<String>;

impl Guarded {
    /// Starts `command` under the guard; its stdout and stderr arrive as lines on the receiver.
    pub(crate) fn spawn(name: &str, command: &mut Command) -> Result<(Self, Output)> {
        let program = command.get_program().to_owned();
        let mut guard = Command::new("bash");
        guard
            .arg("-c")
            .arg(GUARD)
            .arg("guard")
            .arg(&program)
            .args(command.get_args())
            .envs(
                command
                    .get_envs()
                    .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = command.get_current_dir() {
            guard.current_dir(dir);
        }
        let mut child = guard
            .spawn()
            .with_context(|| format!("start {name} ({})", program.to_string_lossy()))?;
        let (tx, rx) = mpsc::channel();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(|l| l.ok()) {
                    if tx.send(line).is_err() {
                        // Nobody listens any more; keep draining so the helper never blocks.
                        continue;
                    }
                }
            });
        }
        let lifeline = child.stdin.take();
        Ok((
            Self {
                name: name.to_owned(),
                guard: child,
                lifeline,
            },
            rx,
        ))
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Whether the helper (through its guard) is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.guard.try_wait(), Ok(None))
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.lifeline.take();
        let _ = self.guard.wait();
    }
}

/// Reads `output` until a line satisfies `ready`, the helper exits, or `timeout` passes. Returns
/// the lines seen, for error messages.
pub(crate) fn wait_for_line(
    helper: &mut Guarded,
    output: &Output,
    timeout: Duration,
    ready: impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    let deadline = std::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match output.recv_timeout(left.min(Duration::from_millis(500))) {
            Ok(line) => {
                let done = ready(&line);
                seen.push(line);
                if done {
                    return Ok(seen);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if !helper.is_running() {
                    bail!(
                        "{} exited before it was ready:\n{}",
                        helper.name(),
                        tail(&seen)
                    );
                }
                if left.is_zero() {
                    bail!(
                        "{} was not ready after {timeout:?}:\n{}",
                        helper.name(),
                        tail(&seen)
                    );
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!(
                    "{} exited before it was ready:\n{}",
                    helper.name(),
                    tail(&seen)
                );
            }
        }
    }
}

fn tail(lines: &[String]) -> String {
    let start = lines.len().saturating_sub(30);
    lines[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_stops_the_helper_and_its_children() {
        // The background `sleep` inherits the helper's output pipe, so the output channel only
        // disconnects once every process of the helper's group is gone.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 600 & echo started; wait"]);
        let (mut helper, output) = Guarded::spawn("sleeper", &mut cmd).unwrap();
        wait_for_line(&mut helper, &output, Duration::from_secs(10), |l| {
            l == "started"
        })
        .unwrap();
        drop(helper);
        loop {
            match output.recv_timeout(Duration::from_secs(30)) {
                Ok(_) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("a process of the helper survived"),
            }
        }
    }

    #[test]
    fn a_helper_that_exits_early_is_reported_with_its_output() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo 'bad flag --nope'; exit 3"]);
        let (mut helper, output) = Guarded::spawn("broken", &mut cmd).unwrap();
        let err = wait_for_line(&mut helper, &output, Duration::from_secs(10), |l| {
            l == "ready"
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("broken exited before it was ready"), "{err}");
        assert!(err.contains("bad flag --nope"), "{err}");
    }
}
