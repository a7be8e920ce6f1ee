//! Each scenario runs in a child process (this binary re-invoked with `child …`), so one
//! scenario's memory and threads never colour another's figures, and the child's peak RSS is
//! the kernel's own count (`wait4`'s `ru_maxrss`).

use std::io::Read;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The line prefix a child prints its result after.
const RESULT_PREFIX: &str = "ANNA-BENCH-RESULT ";

/// What a child run gave back.
pub struct ChildRun<T> {
    pub result: T,
    /// Peak resident set of the child, in bytes.
    pub peak_rss: u64,
}

/// Runs `anna-bench child <args…>` and reads its result.
pub fn run<T: DeserializeOwned>(args: &[String]) -> anyhow::Result<ChildRun<T>> {
    let exe = std::env::current_exe().context("locating the bench binary")?;
    let mut child = Command::new(exe)
        .arg("child")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting a bench child")?;
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .context("child stdout")?
        .read_to_string(&mut stdout)
        .context("reading child stdout")?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value for the kernel to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for; both pointers are valid for writes.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if waited != pid {
        bail!(
            "wait4 on the bench child: {}",
            std::io::Error::last_os_error()
        );
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("bench child {args:?} failed (wait status {status}); its output:\n{stdout}");
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(RESULT_PREFIX))
        .with_context(|| format!("bench child {args:?} printed no result:\n{stdout}"))?;
    let result = serde_json::from_str(line).context("reading the child's result")?;
    Ok(ChildRun {
        result,
        // Linux reports ru_maxrss in KiB.
        peak_rss: (usage.ru_maxrss.max(0) as u64) * 1024,
    })
}

/// Called in the child: prints the result line the parent looks for.
pub fn emit<T: Serialize>(result: &T) -> anyhow::Result<()> {
    println!("{RESULT_PREFIX}{}", serde_json::to_string(result)?);
    Ok(())
}
