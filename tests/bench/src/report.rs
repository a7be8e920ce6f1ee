//! Figures, their targets, the table and `results.json`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// What a figure must be to meet its target.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Target {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl Target {
    pub fn at_most(max: f64) -> Self {
        Self {
            min: None,
            max: Some(max),
        }
    }

    pub fn between(min: f64, max: f64) -> Self {
        Self {
            min: Some(min),
            max: Some(max),
        }
    }

    pub fn met(&self, value: f64) -> bool {
        self.min.is_none_or(|m| value >= m) && self.max.is_none_or(|m| value <= m)
    }

    pub fn text(&self, unit: &str) -> String {
        match (self.min, self.max) {
            (Some(lo), Some(hi)) => format!("{} – {} {unit}", num(lo), num(hi)),
            (None, Some(hi)) => format!("≤ {} {unit}", num(hi)),
            (Some(lo), None) => format!("≥ {} {unit}", num(lo)),
            (None, None) => "—".to_owned(),
        }
    }
}

/// A number as the table shows it: four significant digits, no trailing zeros.
pub fn num(x: f64) -> String {
    let a = x.abs();
    let text = if a >= 1000.0 || a == 0.0 {
        format!("{x:.0}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 10.0 {
        format!("{x:.2}")
    } else if a >= 1.0 {
        format!("{x:.3}")
    } else {
        format!("{x:.4}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// One figure of one scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// Stable identifier, e.g. `intake_xlsx_1m.seconds`.
    pub name: String,
    /// The scenario as the issue words it.
    pub scenario: String,
    /// The median over `runs`.
    pub value: f64,
    pub unit: String,
    /// `None` for figures reported for context, without a target.
    pub target: Option<Target>,
    pub target_text: String,
    pub met: Option<bool>,
    /// Every run's value, in run order.
    pub runs: Vec<f64>,
    /// How it was measured, and by what it is limited.
    pub note: String,
}

impl Entry {
    pub fn new(
        name: &str,
        scenario: &str,
        unit: &str,
        target: Option<Target>,
        runs: Vec<f64>,
        note: impl Into<String>,
    ) -> Self {
        let value = median(&runs);
        Self {
            name: name.to_owned(),
            scenario: scenario.to_owned(),
            value,
            unit: unit.to_owned(),
            target,
            target_text: target.map_or_else(|| "—".to_owned(), |t| t.text(unit)),
            met: target.map(|t| t.met(value)),
            runs,
            note: note.into(),
        }
    }
}

pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    pub generated_at: String,
    pub machine: Machine,
    pub scale: String,
    pub entries: Vec<Entry>,
    /// Per-scenario details: breakdowns, request counts by operation, configurations.
    pub details: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub rustc: String,
}

impl Machine {
    pub fn probe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map_or_else(|| "unknown".to_owned(), |s| s.trim().to_owned());
        let memory_kib: f64 = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("MemTotal"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        let rustc = std::process::Command::new("rustc")
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        Self {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model,
            memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            rustc,
        }
    }
}

/// The readable table: one line per figure.
pub fn table(entries: &[Entry]) -> String {
    let rows: Vec<[String; 5]> = entries
        .iter()
        .map(|e| {
            let runs = if e.runs.len() > 1 {
                format!(" (n={})", e.runs.len())
            } else {
                String::new()
            };
            [
                e.scenario.clone(),
                format!("{} {}{runs}", num(e.value), e.unit),
                e.target_text.clone(),
                match e.met {
                    Some(true) => "met".to_owned(),
                    Some(false) => "MISSED".to_owned(),
                    None => "info".to_owned(),
                },
                e.name.clone(),
            ]
        })
        .collect();
    let headers = ["scenario", "median", "target", "", "id"];
    let mut widths = headers.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String]| {
        let mut text = String::new();
        for (cell, w) in cells.iter().zip(widths) {
            let pad = w.saturating_sub(cell.chars().count());
            let _ = write!(text, "{cell}{}  ", " ".repeat(pad));
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(&mut out, &headers.map(str::to_owned));
    line(&mut out, &widths.map(|w| "-".repeat(w)));
    for row in &rows {
        line(&mut out, row);
    }
    out
}

pub fn write(dir: &Path, results: &Results) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = serde_json::to_string_pretty(results)?;
    std::fs::write(dir.join("results.json"), json + "\n")
        .with_context(|| format!("writing {}", dir.join("results.json").display()))?;
    std::fs::write(dir.join("results.txt"), table(&results.entries))
        .with_context(|| format!("writing {}", dir.join("results.txt").display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn targets() {
        assert!(Target::at_most(5.0).met(5.0));
        assert!(!Target::at_most(5.0).met(5.01));
        assert!(Target::between(76.0, 84.0).met(80.0));
        assert!(!Target::between(76.0, 84.0).met(75.9));
        assert_eq!(Target::at_most(5.0).text("s"), "≤ 5 s");
    }

    #[test]
    fn numbers() {
        assert_eq!(num(4.2), "4.2");
        assert_eq!(num(123.456), "123.5");
        assert_eq!(num(0.0421), "0.0421");
        assert_eq!(num(40.02), "40.02");
        assert_eq!(num(2500.0), "2500");
    }
}
