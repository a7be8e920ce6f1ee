//! The one intake path (DESIGN.md section 1): rows in — from a spreadsheet or an API
//! recipient list — and every row recorded as a `queued` or `rejected` message, the queued
//! ones fanned out to the send queue while the rows are still being read.
//!
//! The upload function and `POST /v1/dispatches` both call [`record_rows`]; they differ only
//! in where the rows come from and in what they do with the dispatch around it.

use tokio::task::JoinSet;
use tracing::Instrument;

use crate::aws::dynamo::now_rfc3339;
use crate::domain::dispatch::{Dispatch, DispatchSource, IntakeSummary};
use crate::domain::intake::{Intake, IntakeOptions, RejectedRow, RowOutcome};
use crate::domain::message::{MessageId, MessageRecord, MessageStatus};
use crate::domain::phone::mask_phone;
use crate::domain::template::Template;
use crate::error::Retryable;
use crate::metrics::MetricSet;
use crate::ports::{MessageStore, QueueError, SendQueue, StoreError, WriteMode};
use crate::sheet::SheetRow;

/// Rows written and queued together: four BatchWriteItem calls and ten SendMessageBatch calls.
pub const CHUNK_ROWS: usize = 100;
/// Chunks written concurrently while the input is still being read.
pub const CHUNKS_IN_FLIGHT: usize = 8;

/// Why recording rows must be tried again later. Anything that makes the *input* unusable is
/// not an error here but an `Err(reason)` inside an `Ok`.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("an intake task stopped: {0}")]
    Task(String),
}

impl Retryable for PipelineError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Queue(e) => e.is_retryable(),
            Self::Task(_) => true,
        }
    }
}

/// Whether the first row may be a header row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderRow {
    /// A spreadsheet: the first row is a header when its first cell is not a phone number.
    Detect,
    /// An API list: every row is a recipient, cells in the template's column order.
    Absent,
}

/// Whether accepted messages go on the send queue now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Enqueue,
    /// A scheduled dispatch: recorded `queued`, queued when it is released.
    Hold,
}

#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub mode: WriteMode,
    pub header: HeaderRow,
    pub delivery: Delivery,
    /// Keep every rejected row in the answer (an API list, bounded by its size limit).
    pub keep_rejected: bool,
}

/// What intake recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    pub summary: IntakeSummary,
    /// The rejected rows, when [`Plan::keep_rejected`].
    pub rejected: Vec<RejectedRow>,
}

/// Validates and records every row of `rows` as messages of `dispatch`. The outer error is
/// "try again later"; the inner `Err(reason)` is "this input can never be used", with a reason
/// an operator can act on. Rows written before a fatal error stay written (their messages are
/// skipped by the sender once the dispatch is failed).
pub async fn record_rows<S, Q, R, E>(
    store: &S,
    queue: &Q,
    dispatch: &Dispatch,
    template: &Template,
    options: &IntakeOptions,
    rows: R,
    plan: Plan,
) -> Result<Result<Recorded, String>, PipelineError>
where
    S: MessageStore + Clone + 'static,
    Q: SendQueue + Clone + 'static,
    R: IntoIterator<Item = Result<SheetRow, E>>,
    E: std::fmt::Display,
{
    let mut intake = match Intake::new(template, options.clone()) {
        Ok(intake) => intake,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let mut writer = ChunkWriter::new(store.clone(), queue.clone(), plan.mode, plan.delivery);
    let mut recorded = Recorded::default();
    let mut first = plan.header == HeaderRow::Detect;
    for row in rows {
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                writer.finish().await?;
                return Ok(Err(e.to_string()));
            }
        };
        if first {
            first = false;
            match intake.header(&row.cells) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => return Ok(Err(e.to_string())),
            }
        }
        recorded.summary.rows += 1;
        let outcome = intake.row(row.number, &row.cells);
        if plan.keep_rejected
            && let RowOutcome::Rejected(rejected) = &outcome
        {
            recorded.rejected.push(rejected.clone());
        }
        writer
            .push(record_for(dispatch, outcome, row.cells))
            .await?;
    }
    writer.finish().await?;
    let (accepted, rejected) = intake.counts();
    recorded.summary.accepted = accepted;
    recorded.summary.rejected = rejected;
    recorded.summary.columns = intake.columns().to_vec();
    let mut set = MetricSet::new().dimension(
        "Source",
        match dispatch.source {
            DispatchSource::Upload { .. } => "upload",
            DispatchSource::Api => "api",
        },
    );
    set.count("IntakeAccepted", u64::from(accepted));
    set.count("IntakeRejected", u64::from(rejected));
    set.emit();
    Ok(Ok(recorded))
}

/// What [`record_rows`] would find, without writing anything: the accepted count and every
/// rejected row. Lets an API answer "nothing could be accepted" before creating a dispatch.
pub fn check_rows(
    template: &Template,
    options: &IntakeOptions,
    rows: &[SheetRow],
    header: HeaderRow,
) -> Result<(u32, Vec<RejectedRow>), String> {
    let mut intake = Intake::new(template, options.clone()).map_err(|e| e.to_string())?;
    let mut rejected = Vec::new();
    let mut first = header == HeaderRow::Detect;
    for row in rows {
        if first {
            first = false;
            if intake.header(&row.cells).map_err(|e| e.to_string())? {
                continue;
            }
        }
        if let RowOutcome::Rejected(row) = intake.row(row.number, &row.cells) {
            rejected.push(row);
        }
    }
    Ok((intake.counts().0, rejected))
}

/// Why a file whose every row was empty (or that held only a header) cannot be a dispatch.
pub const NO_DATA_ROWS: &str = "the file has no data rows";

/// What the upload function would record for a file, without writing anything: the accepted
/// count and every rejected row, or the reason the whole file fails (the dispatch's `failed`
/// reason). Same reading, same intake, same rules as [`record_rows`]; rows are not kept, so a
/// file of any size is checked in the memory its reader needs.
pub fn check_file(
    bytes: &[u8],
    template: &Template,
    config: &crate::config::IntakeConfig,
) -> Result<(u32, Vec<RejectedRow>), String> {
    let mut intake = Intake::new(template, config.intake.clone()).map_err(|e| e.to_string())?;
    let rows = crate::sheet::read_sheet(bytes, &config.read).map_err(|e| e.to_string())?;
    let mut rejected = Vec::new();
    let mut first = true;
    let mut data_rows = 0u64;
    for row in rows {
        let row = row.map_err(|e| e.to_string())?;
        if first {
            first = false;
            if intake.header(&row.cells).map_err(|e| e.to_string())? {
                continue;
            }
        }
        data_rows += 1;
        if let RowOutcome::Rejected(row) = intake.row(row.number, &row.cells) {
            rejected.push(row);
        }
    }
    if data_rows == 0 {
        return Err(NO_DATA_ROWS.to_owned());
    }
    Ok((intake.counts().0, rejected))
}

/// The message recorded for one row's outcome.
pub fn record_for(dispatch: &Dispatch, outcome: RowOutcome, cells: Vec<String>) -> MessageRecord {
    let now = now_rfc3339();
    match outcome {
        RowOutcome::Accepted(row) => {
            let phone_input = cells.first().cloned().unwrap_or_default();
            MessageRecord::queued(
                MessageId::new(dispatch.id.clone(), row.row),
                &dispatch.template,
                &dispatch.language,
                row.phone.e164().to_owned(),
                phone_input,
                row.variables,
                cells,
                &now,
            )
        }
        RowOutcome::Rejected(row) => {
            tracing::debug!(row = row.row, phone = %mask_phone(&row.phone_input), reason = %row.reason, "row rejected");
            MessageRecord::rejected(
                MessageId::new(dispatch.id.clone(), row.row),
                &dispatch.template,
                &dispatch.language,
                row.phone_input,
                row.reason.code(),
                row.reason.to_string(),
                cells,
                &now,
            )
        }
    }
}

/// Writes rows in chunks and queues the accepted ones, several chunks in flight on other
/// tasks while the caller keeps reading: the first message reaches the send queue long before
/// a large file is fully read.
struct ChunkWriter<S, Q> {
    store: S,
    queue: Q,
    mode: WriteMode,
    delivery: Delivery,
    chunk: Vec<MessageRecord>,
    in_flight: JoinSet<Result<(), PipelineError>>,
}

impl<S, Q> ChunkWriter<S, Q>
where
    S: MessageStore + Clone + 'static,
    Q: SendQueue + Clone + 'static,
{
    fn new(store: S, queue: Q, mode: WriteMode, delivery: Delivery) -> Self {
        Self {
            store,
            queue,
            mode,
            delivery,
            chunk: Vec::with_capacity(CHUNK_ROWS),
            in_flight: JoinSet::new(),
        }
    }

    async fn push(&mut self, record: MessageRecord) -> Result<(), PipelineError> {
        self.chunk.push(record);
        if self.chunk.len() >= CHUNK_ROWS {
            self.flush();
            while self.in_flight.len() >= CHUNKS_IN_FLIGHT {
                self.join_one().await?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) {
        if self.chunk.is_empty() {
            return;
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK_ROWS));
        let (store, queue, mode, delivery) = (
            self.store.clone(),
            self.queue.clone(),
            self.mode,
            self.delivery,
        );
        self.in_flight.spawn(
            async move {
                // The item must exist before its record can be claimed: write, then queue.
                store.put_messages(&chunk, mode).await?;
                if delivery == Delivery::Enqueue {
                    let queued: Vec<MessageId> = chunk
                        .iter()
                        .filter(|m| m.status == MessageStatus::Queued)
                        .map(|m| m.id.clone())
                        .collect();
                    queue.enqueue(&queued).await?;
                }
                Ok(())
            }
            .in_current_span(),
        );
    }

    async fn join_one(&mut self) -> Result<(), PipelineError> {
        match self.in_flight.join_next().await {
            Some(Ok(result)) => result,
            Some(Err(e)) => Err(PipelineError::Task(e.to_string())),
            None => Ok(()),
        }
    }

    async fn finish(&mut self) -> Result<(), PipelineError> {
        self.flush();
        let mut first_error = None;
        while !self.in_flight.is_empty() {
            if let Err(e) = self.join_one().await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::template::tests::{boas_vindas_json, parse};

    fn row(number: u32, cells: &[&str]) -> SheetRow {
        SheetRow {
            number,
            cells: cells.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    #[test]
    fn an_api_list_has_no_header_row() {
        let template = parse(boas_vindas_json());
        let options = IntakeOptions::default();
        // A first recipient whose phone has letters is a rejected recipient, not a header.
        let rows = [
            row(1, &["Maria", "Loja", "Maria", "25/12/2026"]),
            row(2, &["11987654321", "Loja", "Ana", "25/12/2026"]),
        ];
        let (accepted, rejected) =
            check_rows(&template, &options, &rows, HeaderRow::Absent).expect("sendable");
        assert_eq!(accepted, 1);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].row, 1);
        assert_eq!(rejected[0].reason.code(), "invalid_phone");
        // The same rows as a spreadsheet: the first one is its header.
        let (accepted, rejected) =
            check_rows(&template, &options, &rows, HeaderRow::Detect).expect("sendable");
        assert_eq!((accepted, rejected.len()), (1, 0));
    }

    #[test]
    fn unsendable_templates_are_refused_before_any_row() {
        let mut template = parse(boas_vindas_json());
        template.status = crate::domain::template::TemplateStatus::Paused;
        let err = check_rows(&template, &IntakeOptions::default(), &[], HeaderRow::Absent)
            .expect_err("paused");
        assert!(err.contains("PAUSED"), "{err}");
    }
}
