//! `anna-bench`: the figures behind `make bench` (issue #8).
//!
//! `anna-bench run` generates its inputs under `target/bench/inputs/` (kept between runs),
//! runs every scenario several times — each in a child process of its own (`anna-bench
//! child …`) so its peak RSS is its own — and prints a table of medians against the targets,
//! written with every run's value to `target/bench/results.json` and `results.txt`.
//! `docs/performance.md` says how each figure is measured.

mod child;
mod coldstart;
mod counting;
mod inputs;
mod intake;
mod memory;
mod pacing;
mod report;
mod stack;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::report::{Entry, Target};

#[derive(Parser)]
#[command(about = "anna-notify benchmarks: figures against the targets of issue #8")]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the scenarios and write target/bench/results.json (the default).
    Run(RunArgs),
    /// Internal: one scenario run, in a child process of `run`.
    #[command(hide = true)]
    Child {
        #[command(subcommand)]
        scenario: ChildCmd,
    },
}

#[derive(Parser, Clone)]
struct RunArgs {
    /// `full` is the sizes; `quick` a tenth of the rows and shorter runs, to check
    /// the harness.
    #[arg(long, value_enum, default_value = "full")]
    scale: Scale,
    /// Runs per scenario (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Only these scenarios (comma-separated): intake-xlsx, intake-csv, requests,
    /// first-message, pacing, status, cold-start.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where inputs and results go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Sender pacing: emulated invocations (the event source's MaximumConcurrency) per rate,
    /// as rate:concurrency:sends_in_flight:batch; default: the sender's defaults.
    #[arg(long, value_delimiter = ',')]
    pacing: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scale {
    Full,
    Quick,
}

#[derive(Subcommand)]
enum ChildCmd {
    Intake {
        #[arg(long)]
        file: PathBuf,
        #[arg(long, value_enum)]
        stage: intake::Stage,
    },
    Requests {
        #[arg(long)]
        file: PathBuf,
        #[arg(long, default_value_t = 0)]
        run: usize,
    },
    FirstMessage {
        #[arg(long)]
        file: PathBuf,
        #[arg(long, default_value_t = 0)]
        run: usize,
    },
    Pacing {
        #[arg(long)]
        config: String,
    },
    Status {
        #[arg(long)]
        messages: u32,
        #[arg(long)]
        reads: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Cmd::Child { scenario }) => run_child(scenario),
        Some(Cmd::Run(args)) => run_all(args),
        None => run_all(RunArgs::parse_from(["anna-bench"])),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run_child(scenario: ChildCmd) -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        anna_shared::telemetry::init();
    }
    let rt = runtime()?;
    match scenario {
        ChildCmd::Intake { file, stage } => child::emit(&rt.block_on(intake::run(&file, stage))?),
        ChildCmd::Requests { file, run } => child::emit(&rt.block_on(stack::requests(&file, run))?),
        ChildCmd::FirstMessage { file, run } => {
            child::emit(&rt.block_on(stack::first_message(&file, run))?)
        }
        ChildCmd::Pacing { config } => {
            let config: pacing::PacingConfig = serde_json::from_str(&config)?;
            child::emit(&rt.block_on(pacing::run(config))?)
        }
        ChildCmd::Status { messages, reads } => {
            child::emit(&rt.block_on(stack::status(messages, reads))?)
        }
    }
}

struct Sizes {
    /// Data rows of the "1,000,000-row" sheet: with its header row, the sheet has exactly
    /// 1,000,000 rows, the default `ANNA_MAX_ROWS`, which counts the header.
    big_rows: usize,
    request_rows: usize,
    status_messages: u32,
    pacing_seconds: u32,
    cold_start_runs: usize,
}

impl Sizes {
    fn of(scale: Scale) -> Self {
        match scale {
            Scale::Full => Self {
                big_rows: 999_999,
                request_rows: 100_000,
                status_messages: 1_000_000,
                pacing_seconds: 15,
                cold_start_runs: 20,
            },
            Scale::Quick => Self {
                big_rows: 99_999,
                request_rows: 10_000,
                status_messages: 1_000_000,
                pacing_seconds: 4,
                cold_start_runs: 5,
            },
        }
    }
}

const MB: f64 = 1_000_000.0;

fn run_all(args: RunArgs) -> anyhow::Result<()> {
    let sizes = Sizes::of(args.scale);
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let inputs_dir = args.out.join("inputs");
    let mut entries: Vec<Entry> = Vec::new();
    let mut details = serde_json::Map::new();
    let runs = args.runs.max(1);
    let started = Instant::now();
    let label = if sizes.big_rows >= 999_999 {
        "1,000,000".to_owned()
    } else {
        format!("{}", sizes.big_rows + 1)
    };

    let step = |what: &str| {
        eprintln!(
            "[anna-bench {:>5.0} s] {what}",
            started.elapsed().as_secs_f64()
        )
    };

    for (format, name) in [("xlsx", "intake-xlsx"), ("csv", "intake-csv")] {
        // The CSV is also the first-message scenario's input.
        let needed = wanted(name) || (format == "csv" && wanted("first-message"));
        if !needed {
            continue;
        }
        step(&format!("generating the {label}-row {format}"));
        let file = if format == "xlsx" {
            inputs::xlsx(&inputs_dir, sizes.big_rows)?
        } else {
            inputs::csv(&inputs_dir, sizes.big_rows)?
        };
        step(&format!(
            "intake of the {format}: {runs} runs of the whole pipeline"
        ));
        let mut seconds = Vec::new();
        let mut rss = Vec::new();
        let mut first = Vec::new();
        let mut last = None;
        for _ in 0..runs {
            let run: child::ChildRun<intake::Outcome> = child::run(&[
                "intake".into(),
                "--file".into(),
                file.display().to_string(),
                "--stage".into(),
                "pipeline".into(),
            ])?;
            check_intake(&run.result, sizes.big_rows)?;
            seconds.push(run.result.seconds);
            rss.push(run.peak_rss as f64 / MB);
            if let Some(f) = run.result.first_enqueue_seconds {
                first.push(f);
            }
            last = Some(run.result);
        }
        let mut stages = serde_json::Map::new();
        for stage in ["read", "phones", "validate"] {
            step(&format!(
                "intake of the {format}: stage {stage}, for the profile"
            ));
            let run: child::ChildRun<intake::Outcome> = child::run(&[
                "intake".into(),
                "--file".into(),
                file.display().to_string(),
                "--stage".into(),
                stage.into(),
            ])?;
            stages.insert(
                stage.to_owned(),
                json!({"seconds": run.result.seconds, "peak_rss_mb": run.peak_rss as f64 / MB}),
            );
        }
        let (time_target, rss_target, scenario) = if format == "xlsx" {
            (5.0, 500.0, format!("intake {label}-row xlsx"))
        } else {
            (
                2.0,
                100.0,
                format!("intake {label}-row CSV (;, Windows-1252)"),
            )
        };
        let note = "upload handler pipeline (read, validate, normalise, build records, chunk) \
                    with in-memory store/queue/bucket; no AWS";
        if wanted(name) {
            entries.push(Entry::new(
                &format!("intake_{format}.seconds"),
                &format!("{scenario}: time"),
                "s",
                Some(Target::at_most(time_target)),
                seconds,
                note,
            ));
            entries.push(Entry::new(
                &format!("intake_{format}.peak_rss"),
                &format!("{scenario}: peak RSS"),
                "MB",
                Some(Target::at_most(rss_target)),
                rss,
                "peak RSS of the child process (wait4 ru_maxrss), file bytes included",
            ));
        }
        if format == "csv" && wanted("first-message") {
            entries.push(Entry::new(
                "first_message.in_memory_seconds",
                &format!("S3 event → first message on the send queue, {label}-row CSV, our code"),
                "s",
                Some(Target::at_most(1.0)),
                first,
                "handler start → first SendQueue::enqueue, in-memory store/queue/bucket: \
                 our code alone",
            ));
        }
        details.insert(
            format!("intake_{format}"),
            json!({"file": file, "last_run": last, "stages": stages}),
        );
    }

    if wanted("requests") {
        step(&format!(
            "intake of {} rows into the local stack (moto), counting requests",
            sizes.request_rows
        ));
        let file = inputs::csv(&inputs_dir, sizes.request_rows)?;
        let mut sqs = Vec::new();
        let mut dynamo = Vec::new();
        let mut last = None;
        for run in 0..runs {
            let outcome: child::ChildRun<stack::RequestsOutcome> = child::run(&[
                "requests".into(),
                "--file".into(),
                file.display().to_string(),
                "--run".into(),
                run.to_string(),
            ])?;
            let per = outcome.result.rows as f64 / 1000.0;
            sqs.push(outcome.result.sqs as f64 / per);
            dynamo.push(outcome.result.dynamodb as f64 / per);
            last = Some(outcome.result);
        }
        let scenario = format!("intake of {} rows into the local stack", sizes.request_rows);
        entries.push(Entry::new(
            "requests.sqs_per_1000_rows",
            &format!("{scenario}: SQS requests / 1,000 rows"),
            "req",
            Some(Target::at_most(100.0)),
            sqs,
            "counted by an SDK interceptor on the handler's clients (every HTTP attempt)",
        ));
        entries.push(Entry::new(
            "requests.dynamodb_per_1000_rows",
            &format!("{scenario}: DynamoDB requests / 1,000 rows"),
            "req",
            Some(Target::at_most(40.0)),
            dynamo,
            "counted by an SDK interceptor on the handler's clients (every HTTP attempt)",
        ));
        details.insert(
            "requests".to_owned(),
            json!({"file": file, "last_run": last}),
        );
    }

    if wanted("first-message") {
        step("S3 event → first message, through moto");
        let file = inputs::csv(&inputs_dir, sizes.big_rows)?;
        let mut seconds = Vec::new();
        let mut all = Vec::new();
        for run in 0..runs {
            let outcome: child::ChildRun<stack::FirstMessageOutcome> = child::run(&[
                "first-message".into(),
                "--file".into(),
                file.display().to_string(),
                "--run".into(),
                run.to_string(),
            ])?;
            seconds.push(outcome.result.seconds);
            all.push(outcome.result);
        }
        entries.push(Entry::new(
            "first_message.moto_seconds",
            &format!("S3 event → first message on the send queue, {label}-row CSV, via moto"),
            "s",
            Some(Target::at_most(1.0)),
            seconds,
            "handler start → first SendMessageBatch answered, real clients against moto \
             (GetObject of the whole file from moto included)",
        ));
        details.insert("first_message_moto".to_owned(), json!({"runs": all}));
    }

    if wanted("pacing") {
        let configs = pacing_configs(&args.pacing, sizes.pacing_seconds)?;
        let mut pacing_details = Vec::new();
        for config in configs {
            step(&format!(
                "sender pacing at {}/s: {} invocations × {} in flight, batches of {}",
                config.rate, config.concurrency, config.sends_in_flight, config.batch
            ));
            let mut rates = Vec::new();
            let mut windows = Vec::new();
            let mut outcomes = Vec::new();
            for _ in 0..runs {
                let outcome: child::ChildRun<pacing::PacingOutcome> = child::run(&[
                    "pacing".into(),
                    "--config".into(),
                    serde_json::to_string(&config)?,
                ])?;
                rates.push(outcome.result.achieved_rate);
                windows.push(outcome.result.max_window as f64);
                outcomes.push(outcome.result);
            }
            let r = f64::from(config.rate);
            let setup = format!(
                "C={} S={} B={}",
                config.concurrency, config.sends_in_flight, config.batch
            );
            entries.push(Entry::new(
                &format!(
                    "pacing_{}.achieved_rate.c{}_s{}_b{}",
                    config.rate, config.concurrency, config.sends_in_flight, config.batch
                ),
                &format!("sender pacing {}/s ({setup}): achieved", config.rate),
                "msg/s",
                Some(Target::between(r * 0.95, r * 1.05)),
                rates,
                "real sender handler + Cloud API client → wa-sim (150 ms), in-memory store, \
                 from wa-sim's accepted_at",
            ));
            entries.push(Entry::new(
                &format!(
                    "pacing_{}.max_1s_window.c{}_s{}_b{}",
                    config.rate, config.concurrency, config.sends_in_flight, config.batch
                ),
                &format!("sender pacing {}/s ({setup}): busiest second", config.rate),
                "msg",
                Some(Target::at_most((r * 1.05).floor())),
                windows,
                "most sends wa-sim accepted within any 1-second window",
            ));
            pacing_details.push(json!({"config": config, "runs": outcomes}));
        }
        details.insert("pacing".to_owned(), json!(pacing_details));
    }

    if wanted("status") {
        step("progress read of a 1,000,000-message dispatch");
        let outcome: child::ChildRun<stack::StatusOutcome> = child::run(&[
            "status".into(),
            "--messages".into(),
            sizes.status_messages.to_string(),
            "--reads".into(),
            (runs * 10).to_string(),
        ])?;
        let scenario = format!(
            "GET /v1/dispatches/{{id}}, {} messages",
            sizes.status_messages
        );
        entries.push(Entry::new(
            "status.api_ms.moto",
            &format!("{scenario}: server time"),
            "ms",
            Some(Target::at_most(50.0)),
            outcome.result.api_ms.clone(),
            "the API's router (key check, dispatch item + 16 counter shards read \
             concurrently, JSON) against moto",
        ));
        entries.push(Entry::new(
            "status.store_read_ms.moto",
            &format!("{scenario}: store read via moto"),
            "ms",
            None,
            outcome.result.moto_ms.clone(),
            "DynamoStore::get_dispatch + settled_counts (16 counter shards) concurrently, \
             against moto",
        ));
        entries.push(Entry::new(
            "status.store_read_ms.in_memory",
            &format!("{scenario}: store read, in-memory"),
            "ms",
            None,
            outcome.result.memory_ms.clone(),
            "the same read on the in-memory store",
        ));
        details.insert("status".to_owned(), json!(outcome.result));
    }

    if wanted("cold-start") {
        step("cold start of each function's release binary");
        let dir = coldstart::binary_dir()?;
        let mut starts = Vec::new();
        for (function, env) in coldstart::functions() {
            let binary = dir.join(function);
            if !binary.exists() {
                eprintln!("  {function}: no binary at {}, skipped", binary.display());
                continue;
            }
            let measured = coldstart::measure(function, &binary, &env, sizes.cold_start_runs)
                .with_context(|| format!("cold start of {function}"))?;
            entries.push(Entry::new(
                &format!("cold_start.{function}.ms"),
                &format!("cold start {function}"),
                "ms",
                Some(Target::at_most(30.0)),
                measured.runs_ms.clone(),
                "spawn → first GET /runtime/invocation/next on a local Runtime API",
            ));
            entries.push(Entry::new(
                &format!("cold_start.{function}.binary_mb"),
                &format!("release binary {function}"),
                "MB",
                Some(Target::at_most(10.0)),
                vec![measured.binary_bytes as f64 / MB],
                "size of the stripped release binary",
            ));
            starts.push(measured);
        }
        details.insert("cold_start".to_owned(), json!(starts));
    }

    let results = report::Results {
        generated_at: anna_shared::aws::dynamo::now_rfc3339(),
        machine: report::Machine::probe(),
        scale: match args.scale {
            Scale::Full => "full".to_owned(),
            Scale::Quick => "quick".to_owned(),
        },
        entries,
        details,
    };
    report::write(&args.out, &results)?;
    println!();
    print!("{}", report::table(&results.entries));
    println!();
    let missed = results
        .entries
        .iter()
        .filter(|e| e.met == Some(false))
        .count();
    println!(
        "{} figures, {missed} targets missed; {} s in all. Written to {}",
        results.entries.len(),
        started.elapsed().as_secs(),
        args.out.join("results.json").display()
    );
    Ok(())
}

fn check_intake(outcome: &intake::Outcome, data_rows: usize) -> anyhow::Result<()> {
    let rejected = inputs::expected_rejected(data_rows) as u64;
    anyhow::ensure!(
        outcome.rows == data_rows as u64
            && outcome.rejected == rejected
            && outcome.accepted == data_rows as u64 - rejected
            && outcome.written == data_rows as u64
            && outcome.enqueued == outcome.accepted,
        "intake counts are off (expected {data_rows} rows, {rejected} rejected): {outcome:?}"
    );
    Ok(())
}

/// The pacing configurations: given on the command line, or for each of 80, 500 and 1,000
/// msg/s what the SAM template deploys (its `Throughput` mapping: the event source's maximum
/// concurrency and batch size) with the sender's default of 10 sends in flight.
fn pacing_configs(given: &[String], seconds: u32) -> anyhow::Result<Vec<pacing::PacingConfig>> {
    let parse = |spec: &String| -> anyhow::Result<pacing::PacingConfig> {
        let parts: Vec<&str> = spec.split(':').collect();
        anyhow::ensure!(
            parts.len() == 4,
            "pacing spec {spec:?} is not rate:concurrency:sends_in_flight:batch"
        );
        Ok(pacing::PacingConfig {
            rate: parts[0].parse()?,
            concurrency: parts[1].parse()?,
            sends_in_flight: parts[2].parse()?,
            batch: parts[3].parse()?,
            latency_ms: 150,
            seconds,
        })
    };
    if given.is_empty() {
        // infra/template.yaml, Mappings.Throughput: rate → (MaximumConcurrency, BatchSize).
        return Ok([(80, 4, 100), (500, 20, 125), (1000, 40, 125)]
            .into_iter()
            .map(|(rate, concurrency, batch)| pacing::PacingConfig {
                rate,
                concurrency,
                sends_in_flight: 10,
                batch,
                latency_ms: 150,
                seconds,
            })
            .collect());
    }
    given.iter().map(parse).collect()
}
