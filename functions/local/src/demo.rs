//! `make demo`: drops the example spreadsheets into the inbox, waits until every row is in a
//! final state, and prints what happened to each row.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anna_shared::aws::dynamo::DynamoStore;
use anna_shared::domain::dispatch::{DispatchState, dispatch_id_for_object};
use anna_shared::domain::message::{MessageRecord, MessageStatus};
use anna_shared::domain::phone::mask_phone;
use anna_shared::ports::{DispatchStore, MessageStore};
use anyhow::{Context, bail};

/// One example file and where it goes in the inbox.
#[derive(Debug, Clone)]
pub struct Upload {
    pub path: PathBuf,
    pub key: String,
}

/// Example files are named `<template>[-anything].<ext>`; each is sent in `language`.
pub fn uploads_for(dir: &Path, language: &str) -> anyhow::Result<Vec<Upload>> {
    let mut uploads = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !path.is_file() || name.starts_with('.') || name.ends_with(".md") {
            continue;
        }
        let template: String = name
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if template.is_empty() {
            continue;
        }
        uploads.push(Upload {
            key: format!("inbox/{template}/{language}/{name}"),
            path,
        });
    }
    uploads.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(uploads)
}

/// Puts each file into the bucket; returns the dispatch id each upload becomes.
pub async fn put_uploads(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    uploads: &[Upload],
) -> anyhow::Result<Vec<(Upload, String)>> {
    let mut placed = Vec::new();
    for upload in uploads {
        let bytes = std::fs::read(&upload.path)
            .with_context(|| format!("reading {}", upload.path.display()))?;
        let output = s3
            .put_object()
            .bucket(bucket)
            .key(&upload.key)
            .body(bytes.into())
            .send()
            .await
            .with_context(|| format!("uploading {}", upload.key))?;
        let version = output
            .version_id
            .or_else(|| output.e_tag.map(|e| e.trim_matches('"').to_owned()))
            .unwrap_or_default();
        placed.push((
            upload.clone(),
            dispatch_id_for_object(bucket, &upload.key, &version),
        ));
    }
    Ok(placed)
}

/// Waits until the dispatch has left intake and all its messages are final.
pub async fn wait_until_settled(
    store: &DynamoStore,
    dispatch_id: &str,
    timeout: Duration,
) -> anyhow::Result<Vec<MessageRecord>> {
    let started = Instant::now();
    loop {
        if let Some(dispatch) = store.get_dispatch(dispatch_id).await? {
            match dispatch.state {
                DispatchState::Failed => return Ok(Vec::new()),
                DispatchState::Intake => {}
                _ => {
                    let messages = store.list_messages(dispatch_id).await?;
                    if messages.iter().all(|m| m.status.is_final()) {
                        return Ok(messages);
                    }
                }
            }
        }
        if started.elapsed() > timeout {
            bail!("dispatch {dispatch_id} did not settle within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The per-dispatch table `make demo` prints.
pub fn render_table(
    key: &str,
    dispatch_state: &str,
    reason: Option<&str>,
    messages: &[MessageRecord],
) -> String {
    let mut out = format!("\n{key}  [{dispatch_state}]\n");
    if let Some(reason) = reason {
        out.push_str(&format!("  reason: {reason}\n"));
    }
    if messages.is_empty() {
        return out;
    }
    out.push_str(&format!(
        "  {:>4}  {:<18} {:<9} {}\n",
        "row", "phone", "status", "WhatsApp id / reason"
    ));
    for m in messages {
        let phone = m.phone.as_deref().unwrap_or(&m.phone_input);
        let detail = match m.status {
            MessageStatus::Sent | MessageStatus::Delivered | MessageStatus::Read => {
                m.wamid.clone().unwrap_or_default()
            }
            _ => {
                let code = m.error_code.map(|c| format!("#{c} ")).unwrap_or_default();
                format!("{code}{}", m.reason.as_deref().unwrap_or(""))
            }
        };
        out.push_str(&format!(
            "  {:>4}  {:<18} {:<9} {}\n",
            m.id.row,
            mask_phone(phone),
            m.status.as_str(),
            detail
        ));
    }
    out
}

/// Counts by status over all the dispatches shown.
pub fn totals(messages: &[MessageRecord]) -> String {
    MessageStatus::ALL
        .iter()
        .map(|status| {
            (
                status,
                messages.iter().filter(|m| m.status == *status).count(),
            )
        })
        .filter(|(_, count)| *count > 0)
        .map(|(status, count)| format!("{status}: {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The runner's `GET /v1/metrics`, as the lines `make demo` prints: what the CloudWatch
/// dashboard would show on AWS.
pub async fn fetch_metrics(api: &str, key: &str) -> anyhow::Result<String> {
    let response = reqwest::Client::new()
        .get(format!("{api}/v1/metrics"))
        .bearer_auth(key)
        .timeout(Duration::from_secs(5))
        .send()
        .await?
        .error_for_status()?;
    let body: serde_json::Value = response.json().await?;
    Ok(render_metrics(&body))
}

fn render_metrics(body: &serde_json::Value) -> String {
    let mut lines: Vec<String> = body["metrics"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|metric| {
            let dimensions = metric["dimensions"]
                .as_object()
                .map(|d| {
                    d.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let name = metric["name"].as_str().unwrap_or_default();
            let sum = metric["sum"].as_f64().unwrap_or_default();
            match metric["unit"].as_str() {
                Some("Count") => format!("  {name:<22} {dimensions:<34} {sum:>10.0}"),
                unit => {
                    let samples = metric["samples"].as_f64().unwrap_or(1.0).max(1.0);
                    let max = metric["max"].as_f64().unwrap_or_default();
                    format!(
                        "  {name:<22} {dimensions:<34} {:>10.1} mean, {max:.1} max {}",
                        sum / samples,
                        unit.unwrap_or_default()
                    )
                }
            }
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_counts_as_sums_and_timings_as_means() {
        let body = serde_json::json!({"metrics": [
            {"name": "Sent", "unit": "Count", "dimensions": {"Function": "sender"}, "samples": 2, "sum": 7.0, "max": 4.0},
            {"name": "SendLatency", "unit": "Milliseconds", "dimensions": {"Function": "sender"}, "samples": 4, "sum": 100.0, "max": 40.0},
        ]});
        let text = render_metrics(&body);
        assert!(
            text.contains("Sent") && text.contains("         7"),
            "{text}"
        );
        assert!(text.contains("25.0 mean, 40.0 max Milliseconds"), "{text}");
    }
}
