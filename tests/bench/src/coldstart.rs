//! Cold start: each function's release binary started the way Lambda starts a custom runtime
//! (`bootstrap` with the `AWS_LAMBDA_*` variables and the function's configuration), timed
//! from spawn until its first `GET /2018-06-01/runtime/invocation/next` reaches a minimal
//! Lambda Runtime API served here — the moment it is ready for its first event. The process
//! is then killed. The AWS endpoint and WhatsApp point at a closed local port: start-up must
//! not talk to either.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

const NEXT_PATH: &str = "/2018-06-01/runtime/invocation/next";

/// The functions to start, with the configuration each one reads at start-up.
pub fn functions() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    let whatsapp = [
        ("WA_PHONE_NUMBER_ID", "106540352242922"),
        ("WA_WABA_ID", "100000000000001"),
        ("WA_ACCESS_TOKEN", "bench-token"),
    ];
    let mut upload = vec![
        ("ANNA_TABLE", "anna"),
        (
            "ANNA_SEND_QUEUE_URL",
            "http://127.0.0.1:9/000000000000/anna-send",
        ),
    ];
    upload.extend(whatsapp);
    let mut sender = vec![
        ("ANNA_TABLE", "anna"),
        ("ANNA_SEND_RATE", "80"),
        (
            "ANNA_SEND_QUEUE_URL",
            "http://127.0.0.1:9/000000000000/anna-send",
        ),
    ];
    sender.extend(whatsapp);
    let mut api = vec![
        ("ANNA_TABLE", "anna"),
        (
            "ANNA_SEND_QUEUE_URL",
            "http://127.0.0.1:9/000000000000/anna-send",
        ),
        ("ANNA_UPLOAD_BUCKET", "anna-uploads"),
        ("ANNA_API_KEYS", "bench-key"),
        ("ANNA_API_KEY", "bench-key"),
        ("WA_APP_SECRET", "bench-secret"),
        ("WA_VERIFY_TOKEN", "bench-verify"),
    ];
    api.extend(whatsapp);
    let mut review = vec![
        ("ANNA_TABLE", "anna"),
        (
            "ANNA_SEND_QUEUE_URL",
            "http://127.0.0.1:9/000000000000/anna-send",
        ),
    ];
    review.extend(whatsapp);
    vec![
        ("anna-upload", upload),
        ("anna-sender", sender),
        ("anna-api", api),
        ("anna-review", review),
    ]
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ColdStart {
    pub function: String,
    pub binary: PathBuf,
    pub binary_bytes: u64,
    pub runs_ms: Vec<f64>,
}

/// Where the release binaries are: beside this (release) bench binary.
pub fn binary_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe
        .parent()
        .context("bench binary has no directory")?
        .to_path_buf())
}

pub fn measure(
    name: &str,
    binary: &Path,
    env: &[(&str, &str)],
    runs: usize,
) -> anyhow::Result<ColdStart> {
    let binary_bytes = std::fs::metadata(binary)
        .with_context(|| format!("{} (build it with cargo build --release)", binary.display()))?
        .len();
    // Once untimed, so every timed run finds the binary in the page cache alike.
    start_once(binary, env)?;
    let runs_ms = (0..runs)
        .map(|_| start_once(binary, env).map(|d| d.as_secs_f64() * 1e3))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(ColdStart {
        function: name.to_owned(),
        binary: binary.to_path_buf(),
        binary_bytes,
        runs_ms,
    })
}

fn start_once(binary: &Path, env: &[(&str, &str)]) -> anyhow::Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let runtime_api = listener.local_addr()?.to_string();
    // A port nothing listens on: any network call at start-up would fail (and show).
    let dead = TcpListener::bind("127.0.0.1:0")?;
    let dead_url = format!("http://{}", dead.local_addr()?);
    drop(dead);
    listener.set_nonblocking(true)?;
    let stderr = tempfile_path(binary)?;
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_SESSION_TOKEN", "bench")
        .env("AWS_ENDPOINT_URL", &dead_url)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("WA_API_BASE_URL", &dead_url)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr)?);
    for (key, value) in env {
        command.env(key, value);
    }
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let deadline = started + Duration::from_secs(10);
    let result = loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = read_next_request(stream) {
                    break Err(e);
                }
                break Ok(started.elapsed());
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Some(status) = child.try_wait()? {
                    let log = std::fs::read_to_string(&stderr).unwrap_or_default();
                    break Err(anyhow::anyhow!(
                        "{} exited ({status}) before asking for an event:\n{log}",
                        binary.display()
                    ));
                }
                if Instant::now() > deadline {
                    break Err(anyhow::anyhow!(
                        "{} did not ask for an event within 10 s",
                        binary.display()
                    ));
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            Err(e) => break Err(e.into()),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&stderr);
    result
}

/// Reads the request line and checks it is the runtime's `next`.
fn read_next_request(mut stream: TcpStream) -> anyhow::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 1024];
    let mut seen = Vec::new();
    while !seen.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&seen);
    let line = text.lines().next().unwrap_or_default();
    if !line.starts_with("GET ") || !line.contains(NEXT_PATH) {
        bail!("first request to the runtime API was {line:?}, not GET {NEXT_PATH}");
    }
    Ok(())
}

fn tempfile_path(binary: &Path) -> anyhow::Result<PathBuf> {
    let name = binary
        .file_name()
        .context("binary has no name")?
        .to_string_lossy()
        .into_owned();
    Ok(std::env::temp_dir().join(format!(
        "anna-bench-{name}-{}-stderr.log",
        std::process::id()
    )))
}
