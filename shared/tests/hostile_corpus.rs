//! The hostile-input corpus (`tests/fixtures/hostile/`, written by `scripts/make-hostile`):
//! every file through the real intake, each in its own child process, with its expected
//! outcome met and its peak memory under [`RSS_LIMIT_KB`].
//!
//! One child per file, because peak memory (`VmHWM` in `/proc/self/status`) only ever grows:
//! measured in one process, the first big file would hide every later one. The child is this
//! test binary again, running only [`hostile_child`] with the case named in the environment,
//! under an address-space limit so that a regression cannot take the machine down with it.
//! The parent collects every mismatch and fails once with the whole table.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anna_shared::config::{EnvReader, IntakeConfig};
use anna_shared::domain::template::Template;
use anna_shared::intake_pipeline::check_file;
use serde_json::{Value, json};

/// Peak resident memory one file may cost the process, in KiB. The test binary itself sits
/// at about 8 MiB; the costliest accepted case is an ods with a million empty rows between
/// two rows of four columns, which calamine holds as 4 million cells (about 260 MiB). A
/// case over this is a file the limits let through that should not have been.
const RSS_LIMIT_KB: u64 = 384 * 1024;
/// The child's address-space cap (`ulimit -v`), in KiB: far above the RSS limit (thread
/// stacks and allocator arenas reserve address space they never touch), far below the
/// machine.
const ADDRESS_SPACE_KB: u64 = 4 * 1024 * 1024;
/// Wall time one file may take in a debug build on a busy machine.
const TIME_LIMIT: Duration = Duration::from_secs(60);

const CHILD_ENV: &str = "ANNA_HOSTILE_CASE";
const MARKER: &str = "HOSTILE-OUTCOME ";

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hostile")
}

fn manifest() -> Vec<Value> {
    let path = corpus_dir().join("expected.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/make-hostile)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn template(name: &str) -> Template {
    let graph = match name {
        "boas_vindas" => json!({
            "name": "boas_vindas", "language": "pt_BR", "status": "APPROVED",
            "category": "UTILITY", "parameter_format": "POSITIONAL",
            "components": [
              { "type": "HEADER", "format": "TEXT", "text": "{{1}}" },
              { "type": "BODY", "text": "Olá {{1}}, sua consulta é em {{2}}." } ]
        }),
        "lembrete_consulta" => json!({
            "name": "lembrete_consulta", "language": "pt_BR", "status": "APPROVED",
            "category": "UTILITY", "parameter_format": "NAMED",
            "components": [
              { "type": "BODY", "text": "Oi, {{nome}}! Sua consulta é dia {{data}} às {{hora}}." } ]
        }),
        other => panic!("no template {other} in the corpus test"),
    };
    Template::from_graph(&graph).expect("template")
}

/// The files too large to commit, built here from their recipe.
fn synth(recipe: &str) -> Vec<u8> {
    let header = "telefone,loja,nome,data\n";
    let good = |i: u32| {
        format!(
            "55119{:08},Loja Centro,Cliente {i},25/12/2026\n",
            87_650_000 + i
        )
    };
    match recipe {
        "csv_line_1mb" => format!("{header}{}{}\n{}", good(1), "x".repeat(1 << 20), good(2)),
        "csv_quoted_1mb" => format!(
            "{header}{}5511987650002,Loja,\"{}\",25/12/2026\n{}",
            good(1),
            "ab\n".repeat((1 << 20) / 3),
            good(3)
        ),
        "csv_million_blank" => format!("{header}{}{}{}", good(1), "\n".repeat(1_000_000), good(2)),
        other => panic!("unknown synth recipe {other}"),
    }
    .into_bytes()
}

fn case_bytes(case: &Value) -> Vec<u8> {
    match case["synth"].as_str() {
        Some(recipe) => synth(recipe),
        None => {
            let path = corpus_dir().join(case["file"].as_str().expect("file"));
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        }
    }
}

fn config(case: &Value) -> IntakeConfig {
    let vars = case["env"]
        .as_object()
        .map(|env| {
            env.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let mut env = EnvReader::from_map(vars);
    let config = IntakeConfig::read(&mut env);
    env.finish().expect("the case's limits are valid");
    config
}

/// Peak resident set of this process so far, in KiB.
fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Runs one case when started by [`hostile_corpus`]; does nothing in an ordinary test run.
#[test]
fn hostile_child() {
    let Ok(index) = std::env::var(CHILD_ENV) else {
        return;
    };
    let index: usize = index.parse().expect("case index");
    let case = &manifest()[index];
    let bytes = case_bytes(case);
    let template = template(case["template"].as_str().unwrap_or("boas_vindas"));
    let config = config(case);
    let started = Instant::now();
    let outcome = match check_file(&bytes, &template, &config) {
        Ok((accepted, rejected)) => {
            let mut by_code: BTreeMap<String, u32> = BTreeMap::new();
            for row in &rejected {
                *by_code.entry(row.reason.code().to_owned()).or_default() += 1;
            }
            let reasons: Vec<String> = rejected.iter().take(5).map(|r| r.to_string()).collect();
            json!({ "accepted": accepted, "rejected": by_code, "reasons": reasons })
        }
        Err(reason) => json!({ "failed": reason }),
    };
    drop(bytes);
    let report = json!({
        "outcome": outcome,
        "ms": started.elapsed().as_millis() as u64,
        "peak_rss_kb": peak_rss_kb(),
    });
    // On a line of its own: libtest has already written "test hostile_child ... ".
    println!("\n{MARKER}{report}");
}

/// Whether `actual` meets `expected`; `None` when it does, else what differs.
fn mismatch(expected: &Value, actual: &Value) -> Option<String> {
    if let Some(reason) = expected["failed"].as_str() {
        return match actual["failed"].as_str() {
            Some(got) if got.contains(reason) => None,
            _ => Some(format!(
                "expected a failure containing {reason:?}, got {actual}"
            )),
        };
    }
    let accepted_ok = actual["accepted"] == expected["accepted"];
    let rejected_expected = expected["rejected"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let rejected_actual = actual["rejected"].as_object().cloned().unwrap_or_default();
    if accepted_ok && rejected_expected == rejected_actual {
        None
    } else {
        Some(format!("expected {expected}, got {actual}"))
    }
}

#[test]
fn hostile_corpus() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let cases = manifest();
    let distinct: std::collections::BTreeSet<&str> =
        cases.iter().filter_map(|c| c["file"].as_str()).collect();
    assert!(
        distinct.len() >= 50,
        "the corpus must hold at least 50 files, it has {}",
        distinct.len()
    );
    let exe = std::env::current_exe().expect("test binary");
    // Two children at a time: the machine (and CI's) has two cores.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let count = cases.len();
    let reports: Vec<(usize, Duration, std::process::Output)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (next, exe) = (&next, &exe);
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        if index >= count {
                            return done;
                        }
                        let started = Instant::now();
                        let output = Command::new("sh")
                            .arg("-c")
                            .arg(format!(
                                "ulimit -v {ADDRESS_SPACE_KB} && exec \"$0\" \"$@\""
                            ))
                            .arg(exe)
                            .args([
                                "hostile_child",
                                "--exact",
                                "--nocapture",
                                "--test-threads=1",
                            ])
                            .env(CHILD_ENV, index.to_string())
                            .output()
                            .expect("start the child");
                        done.push((index, started.elapsed(), output));
                    }
                })
            })
            .collect();
        let mut all: Vec<_> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect();
        all.sort_by_key(|(index, _, _)| *index);
        all
    });
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for (index, elapsed, output) in reports {
        let case = &cases[index];
        let file = case["file"].as_str().unwrap_or("?");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let Some(report) = stdout
            .lines()
            .find_map(|line| line.find(MARKER).map(|at| &line[at + MARKER.len()..]))
            .and_then(|json| serde_json::from_str::<Value>(json).ok())
        else {
            failures.push(format!(
                "{file}: the child died ({}) without an outcome; stderr: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .take(8)
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
            continue;
        };
        let outcome = &report["outcome"];
        let rss = report["peak_rss_kb"].as_u64().unwrap_or(u64::MAX);
        table.push(format!(
            "{file:<32} {:>6} ms {:>7} KiB  {outcome}",
            report["ms"], rss
        ));
        if let Some(why) = mismatch(&case["expect"], outcome) {
            failures.push(format!("{file}: {why}"));
        }
        if rss > RSS_LIMIT_KB {
            failures.push(format!(
                "{file}: peak memory {rss} KiB, above the limit of {RSS_LIMIT_KB} KiB"
            ));
        }
        if elapsed > TIME_LIMIT {
            failures.push(format!(
                "{file}: took {elapsed:?}, more than {TIME_LIMIT:?}"
            ));
        }
    }
    println!("{}", table.join("\n"));
    assert!(
        failures.is_empty(),
        "{} of {} hostile cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_committed_file_is_in_the_manifest() {
    let cases = manifest();
    let named: std::collections::BTreeSet<String> = cases
        .iter()
        .filter(|c| c["synth"].is_null())
        .filter_map(|c| c["file"].as_str().map(str::to_owned))
        .collect();
    for entry in std::fs::read_dir(corpus_dir()).expect("corpus dir") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name == "expected.json" || name == "README.md" {
            continue;
        }
        assert!(named.contains(&name), "{name} has no expected outcome");
    }
    for name in &named {
        assert!(corpus_dir().join(name).is_file(), "{name} is missing");
    }
}
