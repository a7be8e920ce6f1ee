//! Typed configuration read from environment variables.
//!
//! Every function reads its settings once at start-up through [`EnvReader`], which collects
//! *all* missing or malformed variables and reports them together, so a broken deployment
//! says everything that is wrong in one log line instead of one variable per cold start.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::domain::intake::IntakeOptions;
use crate::domain::phone::Region;
use crate::sheet::{ReadOptions, SheetLimits};
use crate::whatsapp::client::CloudApiConfig;

#[derive(Debug, thiserror::Error)]
#[error("configuration is incomplete: {}", .problems.join("; "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

/// Reads variables from a snapshot of the environment, remembering every problem.
pub struct EnvReader {
    vars: HashMap<String, String>,
    problems: Vec<String>,
}

impl EnvReader {
    pub fn from_env() -> Self {
        Self::from_map(std::env::vars().collect())
    }

    pub fn from_map(vars: HashMap<String, String>) -> Self {
        Self {
            vars,
            problems: Vec::new(),
        }
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&mut self, name: &str) -> String {
        match self.raw(name) {
            Some(value) => value.to_owned(),
            None => {
                self.problems.push(format!("{name} is not set"));
                String::new()
            }
        }
    }

    pub fn optional(&self, name: &str) -> Option<String> {
        self.raw(name).map(str::to_owned)
    }

    pub fn or(&self, name: &str, default: &str) -> String {
        self.raw(name).unwrap_or(default).to_owned()
    }

    pub fn parsed_or<T>(&mut self, name: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.raw(name).map(|raw| (raw.to_owned(), raw.parse::<T>())) {
            None => default,
            Some((_, Ok(value))) => value,
            Some((raw, Err(e))) => {
                self.problems
                    .push(format!("{name}={raw:?} is invalid: {e}"));
                default
            }
        }
    }

    /// A number that must lie within `range`; out-of-range values are reported, not clamped.
    pub fn bounded_or(
        &mut self,
        name: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> u64 {
        let value = self.parsed_or(name, default);
        if !range.contains(&value) {
            self.problems.push(format!(
                "{name}={value} is out of range ({}..={})",
                range.start(),
                range.end()
            ));
            return default;
        }
        value
    }

    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }
}

/// The DynamoDB table every function shares.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub table: String,
    /// How long items are kept (DynamoDB TTL), in days.
    pub retention_days: u32,
}

impl StoreConfig {
    pub fn read(env: &mut EnvReader) -> Self {
        Self {
            table: env.required("ANNA_TABLE"),
            retention_days: env.bounded_or("ANNA_RETENTION_DAYS", 180, 1..=3650) as u32,
        }
    }
}

/// The WhatsApp Cloud API account the functions talk to.
pub fn read_cloud_api(env: &mut EnvReader) -> CloudApiConfig {
    CloudApiConfig {
        base_url: env.or("WA_API_BASE_URL", "https://graph.facebook.com"),
        api_version: env.or("WA_API_VERSION", "v23.0"),
        phone_number_id: env.required("WA_PHONE_NUMBER_ID"),
        waba_id: env.required("WA_WABA_ID"),
        access_token: env.required("WA_ACCESS_TOKEN"),
        timeout: Duration::from_millis(env.bounded_or("WA_TIMEOUT_MS", 10_000, 100..=60_000)),
    }
}

/// How long the template list fetched from WhatsApp is trusted before it is fetched again.
pub fn read_template_ttl(env: &mut EnvReader) -> Duration {
    Duration::from_secs(env.bounded_or("ANNA_TEMPLATE_CACHE_SECONDS", 300, 0..=86_400))
}

/// How spreadsheets and recipient lists are read and validated.
#[derive(Debug, Clone, Default)]
pub struct IntakeConfig {
    pub read: ReadOptions,
    pub intake: IntakeOptions,
}

impl IntakeConfig {
    pub fn read(env: &mut EnvReader) -> Self {
        let defaults = SheetLimits::default();
        let limits = SheetLimits {
            max_bytes: env.bounded_or(
                "ANNA_MAX_FILE_BYTES",
                defaults.max_bytes as u64,
                1..=1 << 30,
            ) as usize,
            max_rows: env.bounded_or("ANNA_MAX_ROWS", defaults.max_rows as u64, 1..=5_000_000)
                as usize,
            max_columns: env.bounded_or("ANNA_MAX_COLUMNS", defaults.max_columns as u64, 2..=1024)
                as usize,
            max_sheets: env.bounded_or("ANNA_MAX_SHEETS", defaults.max_sheets as u64, 1..=65_535)
                as usize,
            max_cell_chars: env.bounded_or(
                "ANNA_MAX_CELL_CHARS",
                defaults.max_cell_chars as u64,
                64..=1 << 20,
            ) as usize,
            max_line_bytes: env.bounded_or(
                "ANNA_MAX_LINE_BYTES",
                defaults.max_line_bytes as u64,
                1024..=64 << 20,
            ) as usize,
            max_unzipped_bytes: env.bounded_or(
                "ANNA_MAX_UNZIPPED_BYTES",
                defaults.max_unzipped_bytes,
                1 << 20..=16 << 30,
            ),
            max_zip_ratio: env.bounded_or(
                "ANNA_MAX_ZIP_RATIO",
                u64::from(defaults.max_zip_ratio),
                10..=10_000,
            ) as u32,
            max_zip_entries: env.bounded_or(
                "ANNA_MAX_ZIP_ENTRIES",
                defaults.max_zip_entries as u64,
                16..=1_000_000,
            ) as usize,
            max_cells: env.bounded_or(
                "ANNA_MAX_CELLS",
                defaults.max_cells as u64,
                1000..=100_000_000,
            ) as usize,
        };
        let read = ReadOptions {
            date_format: env.or("ANNA_DATE_FORMAT", "%d/%m/%Y"),
            limits,
        };
        let region: Region = env.parsed_or("ANNA_DEFAULT_REGION", Region::default());
        let intake_defaults = IntakeOptions::default();
        let intake = IntakeOptions {
            region,
            max_total_value_chars: env.bounded_or(
                "ANNA_MAX_ROW_VALUE_CHARS",
                intake_defaults.max_total_value_chars as u64,
                64..=1 << 20,
            ) as usize,
            ..intake_defaults
        };
        Self { read, intake }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvReader {
        EnvReader::from_map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn names_every_missing_and_malformed_variable_at_once() {
        let mut reader = env(&[("ANNA_RETENTION_DAYS", "many"), ("WA_TIMEOUT_MS", "5")]);
        let _ = StoreConfig::read(&mut reader);
        let _ = read_cloud_api(&mut reader);
        let err = reader.finish().expect_err("config must be rejected");
        let text = err.to_string();
        for name in [
            "ANNA_TABLE",
            "ANNA_RETENTION_DAYS",
            "WA_PHONE_NUMBER_ID",
            "WA_WABA_ID",
            "WA_ACCESS_TOKEN",
            "WA_TIMEOUT_MS",
        ] {
            assert!(text.contains(name), "{name} missing from {text}");
        }
    }

    #[test]
    fn complete_environment_is_accepted() {
        let mut reader = env(&[
            ("ANNA_TABLE", "anna"),
            ("WA_PHONE_NUMBER_ID", "1"),
            ("WA_WABA_ID", "2"),
            ("WA_ACCESS_TOKEN", "t"),
            ("ANNA_DEFAULT_REGION", "PT"),
        ]);
        let store = StoreConfig::read(&mut reader);
        let api = read_cloud_api(&mut reader);
        let intake = IntakeConfig::read(&mut reader);
        reader.finish().expect("complete config");
        assert_eq!(store.table, "anna");
        assert_eq!(store.retention_days, 180);
        assert_eq!(api.api_version, "v23.0");
        assert_eq!(intake.intake.region.to_string(), "PT");
        assert_eq!(intake.read.limits, SheetLimits::default());
    }

    #[test]
    fn every_input_limit_is_configurable() {
        let mut reader = env(&[
            ("ANNA_MAX_SHEETS", "3"),
            ("ANNA_MAX_CELL_CHARS", "100"),
            ("ANNA_MAX_LINE_BYTES", "2048"),
            ("ANNA_MAX_UNZIPPED_BYTES", "2097152"),
            ("ANNA_MAX_ZIP_RATIO", "50"),
            ("ANNA_MAX_ZIP_ENTRIES", "20"),
            ("ANNA_MAX_ROW_VALUE_CHARS", "500"),
            ("ANNA_MAX_CELLS", "5000"),
        ]);
        let intake = IntakeConfig::read(&mut reader);
        reader.finish().expect("valid limits");
        let limits = &intake.read.limits;
        assert_eq!(
            (
                limits.max_sheets,
                limits.max_cell_chars,
                limits.max_line_bytes
            ),
            (3, 100, 2048)
        );
        assert_eq!(
            (
                limits.max_unzipped_bytes,
                limits.max_zip_ratio,
                limits.max_zip_entries
            ),
            (2 << 20, 50, 20)
        );
        assert_eq!(intake.intake.max_total_value_chars, 500);
        assert_eq!(limits.max_cells, 5000);
        let mut reader = env(&[("ANNA_MAX_ZIP_RATIO", "1"), ("ANNA_MAX_SHEETS", "x")]);
        let _ = IntakeConfig::read(&mut reader);
        let err = reader.finish().expect_err("out of range").to_string();
        assert!(
            err.contains("ANNA_MAX_ZIP_RATIO") && err.contains("ANNA_MAX_SHEETS"),
            "{err}"
        );
    }
}
