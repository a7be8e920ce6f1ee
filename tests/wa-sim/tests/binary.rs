//! The `wa-sim` binary: prints its URL when ready, serves, and stops cleanly on SIGTERM.
#![cfg(unix)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn binary_serves_and_stops_on_sigterm() {
    let mut child = match Command::new(env!("CARGO_BIN_EXE_wa-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--token",
            "bin-token",
            "--not-on-whatsapp",
            "5511900000000,5511900000001",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("cannot start wa-sim: {e}"),
    };
    let Some(stdout) = child.stdout.take() else {
        panic!("no stdout")
    };
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .ok()
        .and_then(Result::ok)
        .flatten()
        .unwrap_or_default();
    let Some(base) = line.strip_prefix("wa-sim listening on ") else {
        panic!("unexpected first line: {line:?}")
    };
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    let url = format!("{base}/v23.0/106540352242922/messages");
    let mut body = boas_vindas("5511987654321");
    let (status, answer) = read(
        client()
            .post(&url)
            .bearer_auth("bin-token")
            .json(&body)
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    body["to"] = json!("5511900000001");
    let (status, answer) = read(
        client()
            .post(&url)
            .bearer_auth("bin-token")
            .json(&body)
            .send()
            .await,
    )
    .await;
    assert_graph_error(status, &answer, 400, 131026);
    let (_, sends) = read(client().get(format!("{base}/_sim/sends")).send().await).await;
    assert_eq!(sends.as_array().map(Vec::len), Some(1));

    let pid = child.id().map(|p| p.to_string()).unwrap_or_default();
    // Through sh, so the shell's built-in kill works even where no kill binary is installed.
    let killed = Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .await;
    assert!(killed.is_ok_and(|s| s.success()));
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    assert!(
        matches!(status, Ok(Ok(s)) if s.success()),
        "exit: {status:?}"
    );
}
