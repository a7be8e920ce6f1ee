//! CloudWatch metrics as Embedded Metric Format (EMF) log lines: one JSON line on stdout that
//! CloudWatch Logs turns into metrics, with no API call and no extra latency on the hot path.
//!
//! Dimensions are kept to a bounded set (function name, error code, finding): never phone
//! numbers or message ids, which would create a metric per customer.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use serde::Serialize;
use serde_json::{Map, Value, json};

pub const NAMESPACE: &str = "anna-notify";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
            Self::Seconds => "Seconds",
        }
    }
}

/// One EMF document: a set of dimension values and the metrics measured under them.
#[derive(Debug, Clone, Default)]
pub struct MetricSet {
    dimensions: Vec<(String, String)>,
    metrics: Vec<(String, Unit, Vec<f64>)>,
}

impl MetricSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn dimension(mut self, name: &str, value: impl Into<String>) -> Self {
        self.dimensions.push((name.to_owned(), value.into()));
        self
    }

    /// Adds a value; several values of one metric become one EMF array (up to 100 values).
    pub fn add(&mut self, name: &str, unit: Unit, value: f64) {
        match self.metrics.iter_mut().find(|(n, _, _)| n == name) {
            Some((_, _, values)) if values.len() < 100 => values.push(value),
            Some(_) => {}
            None => self.metrics.push((name.to_owned(), unit, vec![value])),
        }
    }

    pub fn count(&mut self, name: &str, value: u64) {
        if value > 0 {
            self.add(name, Unit::Count, value as f64);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// The EMF document, timestamped `timestamp_ms`.
    pub fn to_json(&self, timestamp_ms: i64) -> Value {
        let dimension_names: Vec<&str> = self.dimensions.iter().map(|(n, _)| n.as_str()).collect();
        let definitions: Vec<Value> = self
            .metrics
            .iter()
            .map(|(name, unit, _)| json!({ "Name": name, "Unit": unit.as_str() }))
            .collect();
        let mut document = Map::new();
        document.insert(
            "_aws".to_owned(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [dimension_names],
                    "Metrics": definitions,
                }],
            }),
        );
        for (name, value) in &self.dimensions {
            document.insert(name.clone(), Value::String(value.clone()));
        }
        for (name, _, values) in &self.metrics {
            let value = match values.as_slice() {
                [one] => json!(one),
                many => json!(many),
            };
            document.insert(name.clone(), value);
        }
        Value::Object(document)
    }

    /// Writes the document as one line on stdout (nothing when there is nothing to say), and
    /// adds it to this process's totals where they are kept ([`keep_totals`]).
    pub fn emit(&self) {
        if self.is_empty() {
            return;
        }
        let line = self
            .to_json(chrono::Utc::now().timestamp_millis())
            .to_string();
        let mut out = std::io::stdout().lock();
        // Metrics must never fail the work they describe.
        let _ = writeln!(out, "{line}");
        drop(out);
        if let Some(totals) = TOTALS.get() {
            let mut totals = totals
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let dimensions: BTreeMap<String, String> = self.dimensions.iter().cloned().collect();
            for (name, unit, values) in &self.metrics {
                let total = totals
                    .entry((name.clone(), dimensions.clone()))
                    .or_insert_with(|| MetricTotal {
                        name: name.clone(),
                        unit: unit.as_str(),
                        dimensions: dimensions.clone(),
                        samples: 0,
                        sum: 0.0,
                        max: f64::MIN,
                    });
                for value in values {
                    total.samples += 1;
                    total.sum += value;
                    total.max = total.max.max(*value);
                }
            }
        }
    }
}

/// Everything one metric (under one set of dimension values) added up since the process
/// started: what CloudWatch would show, for the local stack where there is no CloudWatch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricTotal {
    pub name: String,
    pub unit: &'static str,
    pub dimensions: BTreeMap<String, String>,
    /// Values emitted (a count metric emits one per batch or run).
    pub samples: u64,
    pub sum: f64,
    pub max: f64,
}

type TotalsByKey = BTreeMap<(String, BTreeMap<String, String>), MetricTotal>;

static TOTALS: OnceLock<Mutex<TotalsByKey>> = OnceLock::new();

/// From now on every emitted metric is also added up in this process. The local stack turns
/// it on (one process runs every function there); on Lambda the EMF lines are the record and
/// CloudWatch adds them up, so nothing is kept.
pub fn keep_totals() {
    TOTALS.get_or_init(Mutex::default);
}

/// The totals so far, by name and dimensions; `None` where they are not kept.
pub fn totals() -> Option<Vec<MetricTotal>> {
    let totals = TOTALS.get()?;
    let totals = totals
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Some(totals.values().cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_follow_the_embedded_metric_format() {
        let mut set = MetricSet::new().dimension("Function", "sender");
        set.count("Sent", 3);
        set.count("Failed", 0);
        set.add("SendLatency", Unit::Milliseconds, 120.0);
        set.add("SendLatency", Unit::Milliseconds, 80.0);
        let doc = set.to_json(1_700_000_000_000);
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "anna-notify");
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name":"Sent","Unit":"Count"},{"Name":"SendLatency","Unit":"Milliseconds"}])
        );
        assert_eq!(doc["Function"], "sender");
        assert_eq!(doc["Sent"], json!(3.0));
        assert_eq!(doc["SendLatency"], json!([120.0, 80.0]));
        assert!(doc.get("Failed").is_none(), "zero counts are left out");
    }

    #[test]
    fn kept_totals_add_up_every_emitted_value() {
        keep_totals();
        let name = "TotalsTestSends";
        for values in [[3.0, 4.0], [5.0, 1.0]] {
            let mut set = MetricSet::new().dimension("Function", "totals-test");
            for value in values {
                set.add(name, Unit::Count, value);
            }
            set.emit();
        }
        let totals = totals().expect("kept");
        let total = totals
            .iter()
            .find(|t| t.name == name)
            .expect("the metric is totalled");
        assert_eq!((total.samples, total.sum, total.max), (4, 13.0, 5.0));
        assert_eq!(total.dimensions["Function"], "totals-test");
    }

    #[test]
    fn empty_sets_emit_nothing() {
        assert!(MetricSet::new().dimension("Function", "x").is_empty());
    }
}
