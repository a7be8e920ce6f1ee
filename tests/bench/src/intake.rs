//! Intake without AWS: the upload function's own pipeline (`anna_upload::process_object`:
//! read the sheet, validate and normalise every row, build its record, chunk, write, queue)
//! with the store, the queue and the bucket swapped for in-memory ports, so the figure is our
//! code's CPU and memory and nothing else.
//!
//! Stages, for the profile: `read` only reads the sheet's rows; `phones` also parses each
//! row's phone number and nothing else; `validate` runs every row
//! through the intake (phone parsing, variables, duplicates); `pipeline` is the whole handler.

use std::path::Path;
use std::time::Instant;

use anna_shared::config::IntakeConfig;
use anna_shared::domain::intake::{Intake, RowOutcome};
use anna_shared::domain::phone::PhoneNumber;
use anna_shared::ports::{DispatchStore, WhatsApp};
use anna_shared::sheet::read_sheet;
use anna_upload::{ObjectCreated, Upload, process_object};
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::inputs::{LANGUAGE, TEMPLATE};
use crate::memory::{MemObjects, MemQueue, MemStore, StaticWhatsApp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Read,
    /// Read, and parse each row's phone cell (`PhoneNumber::parse`) and nothing else.
    Phones,
    Validate,
    Pipeline,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub seconds: f64,
    /// Data rows (header excluded).
    pub rows: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Messages the pipeline wrote to the (in-memory) store.
    pub written: u64,
    /// Records it put on the (in-memory) send queue.
    pub enqueued: u64,
    /// From the start of the handler to the first record on the send queue.
    pub first_enqueue_seconds: Option<f64>,
    pub file_bytes: u64,
}

pub fn object_for(file: &Path) -> ObjectCreated {
    let name = file
        .file_name()
        .map_or_else(|| "input".to_owned(), |n| n.to_string_lossy().into_owned());
    ObjectCreated {
        bucket: "anna-bench-uploads".to_owned(),
        key: format!("inbox/{TEMPLATE}/{LANGUAGE}/{name}"),
        version: "bench-1".to_owned(),
    }
}

pub async fn run(file: &Path, stage: Stage) -> anyhow::Result<Outcome> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let file_bytes = bytes.len() as u64;
    let config = IntakeConfig::default();
    let whatsapp = StaticWhatsApp::with_sim_templates()?;
    let mut outcome = match stage {
        Stage::Read => {
            let started = Instant::now();
            let mut rows = 0u64;
            for row in read_sheet(&bytes, &config.read)? {
                row?;
                rows += 1;
            }
            Outcome {
                seconds: started.elapsed().as_secs_f64(),
                rows: rows.saturating_sub(1),
                ..Outcome::default()
            }
        }
        Stage::Phones => {
            let started = Instant::now();
            let (mut rows, mut valid) = (0u64, 0u64);
            for row in read_sheet(&bytes, &config.read)? {
                let row = row?;
                rows += 1;
                let phone = row.cells.first().map_or("", |c| c.as_str());
                if PhoneNumber::parse(phone, &config.intake.region).is_ok() {
                    valid += 1;
                }
            }
            Outcome {
                seconds: started.elapsed().as_secs_f64(),
                rows: rows.saturating_sub(1),
                accepted: valid,
                ..Outcome::default()
            }
        }
        Stage::Validate => {
            let template = whatsapp
                .template(TEMPLATE, LANGUAGE)
                .await?
                .context("template missing from wa-sim's fixtures")?;
            let started = Instant::now();
            let mut intake = Intake::new(&template, config.intake.clone())?;
            let mut first = true;
            let (mut accepted, mut rejected, mut rows) = (0u64, 0u64, 0u64);
            for row in read_sheet(&bytes, &config.read)? {
                let row = row?;
                if std::mem::take(&mut first) && intake.header(&row.cells)? {
                    continue;
                }
                rows += 1;
                match intake.row(row.number, &row.cells) {
                    RowOutcome::Accepted(_) => accepted += 1,
                    RowOutcome::Rejected(_) => rejected += 1,
                }
            }
            Outcome {
                seconds: started.elapsed().as_secs_f64(),
                rows,
                accepted,
                rejected,
                ..Outcome::default()
            }
        }
        Stage::Pipeline => {
            let store = MemStore::counting();
            let queue = MemQueue::new(false);
            let ctx = Upload {
                store: store.clone(),
                queue: queue.clone(),
                objects: MemObjects::new(bytes, "bench-1"),
                whatsapp,
                intake: config,
            };
            let object = object_for(file);
            let started = Instant::now();
            let id = process_object(&ctx, &object)
                .await
                .map_err(|e| anyhow::anyhow!("intake failed: {e}"))?;
            let seconds = started.elapsed().as_secs_f64();
            let dispatch = store.get_dispatch(&id).await?.context("no dispatch")?;
            if let Some(reason) = &dispatch.reason {
                bail!("the dispatch {} with reason: {reason}", dispatch.state);
            }
            Outcome {
                seconds,
                rows: u64::from(dispatch.rows),
                accepted: u64::from(dispatch.accepted),
                rejected: u64::from(dispatch.rejected),
                written: store.written(),
                enqueued: queue.enqueued(),
                first_enqueue_seconds: queue
                    .first_at()
                    .map(|at| at.saturating_duration_since(started).as_secs_f64()),
                ..Outcome::default()
            }
        }
    };
    outcome.file_bytes = file_bytes;
    Ok(outcome)
}
