//! One intake for spreadsheet rows and API recipient lists: rows of cells in, accepted
//! messages and rejected rows (with a reason) out.
//!
//! Column 1 is the phone number; the other columns fill the template's variables: by header
//! name for named templates, by position for positional ones. Without a header row, columns
//! follow [`Template::column_names`] (column 2 → first variable's column, …).

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::phone::{PhoneError, PhoneNumber, Region};
use crate::domain::template::{
    Component, MEDIA_VARIABLE, ParameterFormat, Template, TemplateStatus,
};
use crate::error::Retryable;

/// The label of the phone column when the input had no header row.
pub const PHONE_COLUMN: &str = "phone";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeOptions {
    /// Region for numbers written without a country code.
    pub region: Region,
    /// Longest body (and URL-button, media-link) value, in characters. WhatsApp: 1024.
    pub max_value_chars: usize,
    /// Longest header text value, in characters. WhatsApp: 60.
    pub max_header_value_chars: usize,
    /// Most characters all of a row's values may have together. WhatsApp bounds each value
    /// (above); this bounds what one row costs to store, queue and send.
    pub max_total_value_chars: usize,
}

impl Default for IntakeOptions {
    fn default() -> Self {
        Self {
            region: Region::default(),
            max_value_chars: 1024,
            max_header_value_chars: 60,
            max_total_value_chars: 4096,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    #[error("template {name} ({language}) is {status}, not APPROVED: it cannot be sent")]
    TemplateNotApproved {
        name: String,
        language: String,
        status: TemplateStatus,
    },
    #[error("template {name} ({language}) cannot be sent by anna-notify: {why}")]
    UnsupportedTemplate {
        name: String,
        language: String,
        why: String,
    },
    #[error(
        "the header row has no column for {} (found: {})",
        quoted_list(missing),
        quoted_list(found)
    )]
    HeaderMismatch {
        missing: Vec<String>,
        found: Vec<String>,
    },
    #[error(
        "the header row has more than one column for {name:?}: {}",
        quoted_list(columns)
    )]
    DuplicateColumn { name: String, columns: Vec<String> },
}

fn quoted_list(items: &[String]) -> String {
    if items.is_empty() {
        return "no columns".to_owned();
    }
    items
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Retryable for IntakeError {
    fn is_retryable(&self) -> bool {
        false
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowOutcome {
    Accepted(AcceptedRow),
    Rejected(RejectedRow),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedRow {
    pub row: u32,
    pub phone: PhoneNumber,
    /// Trimmed values, aligned with the template's variables.
    pub variables: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRow {
    pub row: u32,
    /// The phone cell as given (trimmed). Mask it before logging.
    pub phone_input: String,
    pub reason: RejectReason,
}

impl fmt::Display for RejectedRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {}: {}", self.row, self.reason)
    }
}

/// Why a row was refused. `name` fields carry the column label as the operator sees it (the
/// header cell, or the generated column name when there was no header row).
///
/// Serialized with the [`RejectReason::code`] in a "code" field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum RejectReason {
    InvalidPhone {
        input: String,
        why: String,
    },
    MissingVariable {
        name: String,
    },
    ValueTooLong {
        name: String,
        max: usize,
        len: usize,
    },
    /// `what`: "a line break", "a tab", "more than 4 consecutive spaces", "a control character".
    InvalidCharacters {
        name: String,
        what: String,
    },
    #[serde(rename = "duplicate")]
    DuplicatePhone {
        first_row: u32,
    },
    /// The value for a media header is not an http(s) link.
    InvalidLink {
        name: String,
    },
    /// The cell holds a spreadsheet error (`#REF!`, `#DIV/0!`, …): a formula that failed.
    FormulaError {
        name: String,
        value: String,
    },
    /// The row's values together are longer than [`IntakeOptions::max_total_value_chars`].
    ValuesTooLong {
        max: usize,
        len: usize,
    },
}

impl RejectReason {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidPhone { .. } => "invalid_phone",
            Self::MissingVariable { .. } => "missing_variable",
            Self::ValueTooLong { .. } => "value_too_long",
            Self::InvalidCharacters { .. } => "invalid_characters",
            Self::DuplicatePhone { .. } => "duplicate",
            Self::InvalidLink { .. } => "invalid_link",
            Self::FormulaError { .. } => "formula_error",
            Self::ValuesTooLong { .. } => "values_too_long",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidPhone { input, .. } if input.is_empty() => {
                f.write_str("the phone number is missing")
            }
            Self::InvalidPhone { input, why } => write!(f, "phone {input:?} is {why}"),
            Self::MissingVariable { name } => write!(f, "no value for {name:?}"),
            Self::ValueTooLong { name, max, len } => write!(
                f,
                "the value for {name:?} is too long ({len} characters, at most {max})"
            ),
            Self::InvalidCharacters { name, what } => {
                write!(
                    f,
                    "the value for {name:?} contains {what}, which WhatsApp does not allow"
                )
            }
            Self::DuplicatePhone { first_row } => {
                write!(f, "the phone number is the same as in row {first_row}")
            }
            Self::InvalidLink { name } => {
                write!(f, "the value for {name:?} is not a link (https://…)")
            }
            Self::FormulaError { name, value } => write!(
                f,
                "the value for {name:?} is the spreadsheet error {value}: fix the formula in that cell"
            ),
            Self::ValuesTooLong { max, len } => write!(
                f,
                "the row's values have {len} characters together, more than the limit of {max}; shorten them"
            ),
        }
    }
}

/// Turns rows into accepted messages and rejected rows for one template.
#[derive(Debug)]
pub struct Intake<'t> {
    template: &'t Template,
    options: IntakeOptions,
    /// For each template variable, the index of the cell it is read from.
    mapping: Vec<usize>,
    columns: Vec<String>,
    /// Whether the header question has been settled (by `header` or by the first `row`).
    settled: bool,
    had_header: bool,
    /// E.164 digits → row of the first accepted row with that number.
    seen: HashMap<u64, u32>,
    accepted: u32,
    rejected: u32,
}

impl<'t> Intake<'t> {
    pub fn new(template: &'t Template, options: IntakeOptions) -> Result<Self, IntakeError> {
        if !template.is_sendable() {
            return Err(IntakeError::TemplateNotApproved {
                name: template.name.clone(),
                language: template.language.clone(),
                status: template.status.clone(),
            });
        }
        if let Some(why) = template.unsupported_reason() {
            return Err(IntakeError::UnsupportedTemplate {
                name: template.name.clone(),
                language: template.language.clone(),
                why,
            });
        }
        let mut intake = Self {
            template,
            options,
            mapping: Vec::new(),
            columns: Vec::new(),
            settled: false,
            had_header: false,
            seen: HashMap::new(),
            accepted: 0,
            rejected: 0,
        };
        intake.generated_mapping();
        Ok(intake)
    }

    /// Offered the first non-empty row: if its first cell is not a phone number (it has
    /// letters and does not parse as one) it is a header, and builds the column → variable
    /// mapping.
    ///
    /// Named templates: header cells match variable names case-insensitively, ignoring
    /// surrounding spaces, accents, `{{ }}`, and spaces/hyphens versus underscores. Positional
    /// templates: by position (column 2 → first variable, …).
    ///
    /// Returns Ok(true) when the row was a header (do not pass it to [`Intake::row`]),
    /// Ok(false) otherwise (pass it to `row`). Only the first call decides; later calls and
    /// calls after `row` return Ok(false).
    pub fn header(&mut self, first_row: &[String]) -> Result<bool, IntakeError> {
        if self.settled {
            return Ok(false);
        }
        let first = first_row.first().map(|c| c.trim()).unwrap_or_default();
        let is_header = first.chars().any(char::is_alphabetic)
            && PhoneNumber::parse(first, &self.options.region).is_err();
        if !is_header {
            self.settled = true;
            return Ok(false);
        }

        let mut labels: Vec<String> = first_row.iter().map(|c| c.trim().to_owned()).collect();
        while labels.len() > 1 && labels.last().is_some_and(String::is_empty) {
            labels.pop();
        }
        let found: Vec<String> = labels.iter().skip(1).cloned().collect();

        let mapping = match self.template.parameter_format {
            ParameterFormat::Named => self.map_by_name(&labels, &found)?,
            ParameterFormat::Positional => self.map_by_position(&found)?,
        };
        self.mapping = mapping;
        self.columns = labels;
        self.settled = true;
        self.had_header = true;
        Ok(true)
    }

    fn map_by_name(&self, labels: &[String], found: &[String]) -> Result<Vec<usize>, IntakeError> {
        let normalized: Vec<String> = labels.iter().map(|l| normalize_label(l)).collect();
        let mut mapping = Vec::with_capacity(self.template.variables.len());
        let mut missing: Vec<String> = Vec::new();
        for variable in &self.template.variables {
            let column = variable.column_name();
            let wanted = label_aliases(&column, variable.is_media());
            let matches: Vec<usize> = (1..labels.len())
                .filter(|&i| wanted.iter().any(|w| *w == normalized[i]))
                .collect();
            match matches.as_slice() {
                [] => {
                    if !missing.contains(&column) {
                        missing.push(column);
                    }
                }
                [index] => mapping.push(*index),
                several => {
                    return Err(IntakeError::DuplicateColumn {
                        name: column,
                        columns: several.iter().map(|&i| labels[i].clone()).collect(),
                    });
                }
            }
        }
        if missing.is_empty() {
            Ok(mapping)
        } else {
            Err(IntakeError::HeaderMismatch {
                missing,
                found: found.to_vec(),
            })
        }
    }

    fn map_by_position(&self, found: &[String]) -> Result<Vec<usize>, IntakeError> {
        let columns = self.template.column_names();
        if found.len() < columns.len() {
            return Err(IntakeError::HeaderMismatch {
                missing: columns[found.len()..].to_vec(),
                found: found.to_vec(),
            });
        }
        Ok(self.generated_indexes(&columns))
    }

    fn generated_indexes(&self, columns: &[String]) -> Vec<usize> {
        self.template
            .variables
            .iter()
            .map(|v| {
                let name = v.column_name();
                columns.iter().position(|c| *c == name).unwrap_or(0) + 1
            })
            .collect()
    }

    fn generated_mapping(&mut self) {
        let columns = self.template.column_names();
        self.mapping = self.generated_indexes(&columns);
        self.columns = std::iter::once(PHONE_COLUMN.to_owned())
            .chain(columns)
            .collect();
    }

    /// Validates one row (`number` is the row number the operator sees).
    pub fn row(&mut self, number: u32, cells: &[String]) -> RowOutcome {
        self.settled = true;
        match self.check(number, cells) {
            Ok(accepted) => {
                self.accepted += 1;
                RowOutcome::Accepted(accepted)
            }
            Err(reason) => {
                self.rejected += 1;
                RowOutcome::Rejected(RejectedRow {
                    row: number,
                    phone_input: cell(cells, 0).to_owned(),
                    reason,
                })
            }
        }
    }

    fn check(&mut self, number: u32, cells: &[String]) -> Result<AcceptedRow, RejectReason> {
        let input = cell(cells, 0);
        let phone = PhoneNumber::parse(input, &self.options.region).map_err(|e| {
            RejectReason::InvalidPhone {
                input: input.to_owned(),
                why: match e {
                    PhoneError::Empty => "missing".to_owned(),
                    other => other.to_string(),
                },
            }
        })?;

        let mut variables = Vec::with_capacity(self.mapping.len());
        for (variable, &index) in self.template.variables.iter().zip(&self.mapping) {
            let name = self
                .columns
                .get(index)
                .filter(|label| !label.is_empty())
                .cloned()
                .unwrap_or_else(|| variable.column_name());
            let value = cell(cells, index);
            if value.is_empty() {
                return Err(RejectReason::MissingVariable { name });
            }
            if is_spreadsheet_error(value) {
                return Err(RejectReason::FormulaError {
                    name,
                    value: value.to_owned(),
                });
            }
            let len = value.chars().count();
            if variable.is_media() {
                if !is_link(value) {
                    return Err(RejectReason::InvalidLink { name });
                }
                if len > self.options.max_value_chars {
                    return Err(RejectReason::ValueTooLong {
                        name,
                        max: self.options.max_value_chars,
                        len,
                    });
                }
            } else {
                let max = if variable.component == Component::Header {
                    self.options.max_header_value_chars
                } else {
                    self.options.max_value_chars
                };
                if let Some(what) = forbidden_characters(value) {
                    return Err(RejectReason::InvalidCharacters {
                        name,
                        what: what.to_owned(),
                    });
                }
                if len > max {
                    return Err(RejectReason::ValueTooLong { name, max, len });
                }
            }
            variables.push(value.to_owned());
        }

        let total: usize = variables.iter().map(|v| v.chars().count()).sum();
        if total > self.options.max_total_value_chars {
            return Err(RejectReason::ValuesTooLong {
                max: self.options.max_total_value_chars,
                len: total,
            });
        }

        // E.164 has at most 15 digits, so the digits fit a u64 (a smaller map for big lists).
        let key = phone.digits().parse::<u64>().unwrap_or(0);
        if let Some(&first_row) = self.seen.get(&key) {
            return Err(RejectReason::DuplicatePhone { first_row });
        }
        self.seen.insert(key, number);
        Ok(AcceptedRow {
            row: number,
            phone,
            variables,
        })
    }

    /// The column labels: the header row as found (trimmed, trailing empty cells dropped), or
    /// "phone" and [`Template::column_names`] when there was no header row.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Whether the input had a header row.
    pub fn had_header(&self) -> bool {
        self.had_header
    }

    pub fn template(&self) -> &'t Template {
        self.template
    }

    /// (accepted, rejected) so far.
    pub fn counts(&self) -> (u32, u32) {
        (self.accepted, self.rejected)
    }
}

fn cell(cells: &[String], index: usize) -> &str {
    cells.get(index).map(|c| c.trim()).unwrap_or_default()
}

/// The error values a spreadsheet shows for a formula that failed. Sent as a variable they
/// would reach the customer as "Olá #REF!".
fn is_spreadsheet_error(value: &str) -> bool {
    const ERRORS: [&str; 11] = [
        "#NULL!",
        "#DIV/0!",
        "#VALUE!",
        "#REF!",
        "#NAME?",
        "#NUM!",
        "#N/A",
        "#GETTING_DATA",
        "#SPILL!",
        "#CALC!",
        "#FIELD!",
    ];
    value.starts_with('#') && ERRORS.iter().any(|e| value.eq_ignore_ascii_case(e))
}

/// What WhatsApp refuses in a text parameter, if the value has it.
fn forbidden_characters(value: &str) -> Option<&'static str> {
    let mut spaces = 0;
    for c in value.chars() {
        match c {
            '\n' | '\r' | '\u{2028}' | '\u{2029}' => return Some("a line break"),
            '\t' => return Some("a tab"),
            c if c.is_control() => return Some("a control character"),
            ' ' => {
                spaces += 1;
                if spaces > 4 {
                    return Some("more than 4 consecutive spaces");
                }
            }
            _ => spaces = 0,
        }
    }
    None
}

fn is_link(value: &str) -> bool {
    let lower = value.get(..8).unwrap_or(value).to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && value.len() > 8
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Labels a header cell may have for a column: the column name and, for the media link, a few
/// obvious spellings.
fn label_aliases(column: &str, media: bool) -> Vec<String> {
    let mut aliases = vec![normalize_label(column)];
    if media {
        for alias in [
            MEDIA_VARIABLE,
            "header_image",
            "header_video",
            "header_document",
            "media",
            "media_link",
        ] {
            aliases.push(normalize_label(alias));
        }
    }
    aliases
}

/// "  {{Endereço Número}} " → "endereco_numero".
fn normalize_label(label: &str) -> String {
    let trimmed = label.trim();
    let inner = trimmed
        .strip_prefix("{{")
        .and_then(|s| s.strip_suffix("}}"))
        .unwrap_or(trimmed);
    let mut out = String::with_capacity(inner.len());
    for c in inner.chars().flat_map(char::to_lowercase) {
        let c = fold_accent(c);
        if c.is_alphanumeric() {
            out.push(c);
        } else if (c.is_whitespace() || matches!(c, '_' | '-' | '.')) && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_owned()
}

fn fold_accent(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ã' | 'ä' | 'å' => 'a',
        'ç' => 'c',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' => 'i',
        'ñ' => 'n',
        'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
        'ú' | 'ù' | 'û' | 'ü' => 'u',
        'ý' | 'ÿ' => 'y',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::template::tests::{boas_vindas_json, lembrete_json, parse, pedido_json};
    use serde_json::json;

    fn cells(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn accepted(outcome: RowOutcome) -> AcceptedRow {
        match outcome {
            RowOutcome::Accepted(a) => a,
            RowOutcome::Rejected(r) => panic!("rejected: {r}"),
        }
    }

    fn rejected(outcome: RowOutcome) -> RejectedRow {
        match outcome {
            RowOutcome::Rejected(r) => r,
            RowOutcome::Accepted(a) => panic!("accepted: {a:?}"),
        }
    }

    #[test]
    fn positional_with_header_row() {
        let t = parse(boas_vindas_json());
        let mut intake = Intake::new(&t, IntakeOptions::default()).unwrap();
        let header = cells(&["Telefone", "Loja", "Nome", "Data", ""]);
        assert_eq!(intake.header(&header), Ok(true));
        assert!(intake.had_header());
        assert_eq!(intake.columns(), ["Telefone", "Loja", "Nome", "Data"]);
        let row = accepted(intake.row(
            2,
            &cells(&[
                "(11) 98765-4321",
                " Loja Centro ",
                "Maria",
                "25/12/2026",
                "extra",
            ]),
        ));
        assert_eq!(row.row, 2);
        assert_eq!(row.phone.e164(), "+5511987654321");
        assert_eq!(row.variables, ["Loja Centro", "Maria", "25/12/2026"]);
        assert_eq!(intake.counts(), (1, 0));
    }

    #[test]
    fn positional_without_header_row() {
        let t = parse(boas_vindas_json());
        let mut intake = Intake::new(&t, IntakeOptions::default()).unwrap();
        let first = cells(&["11987654321", "Loja", "Maria", "25/12"]);
        assert_eq!(intake.header(&first), Ok(false));
        assert!(!intake.had_header());
        assert_eq!(
            intake.columns(),
            ["phone", "header {{1}}", "{{1}}", "{{2}}"]
        );
        let row = accepted(intake.row(1, &first));
        assert_eq!(row.variables, ["Loja", "Maria", "25/12"]);
        // Later calls to header() do nothing.
        assert_eq!(
            intake.header(&cells(&["telefone", "a", "b", "c"])),
            Ok(false)
        );
    }

    #[test]
    fn positional_header_with_too_few_columns() {
        let t = parse(boas_vindas_json());
        let mut intake = Intake::new(&t, IntakeOptions::default()).unwrap();
        let err = intake.header(&cells(&["telefone", "loja"])).unwrap_err();
        assert_eq!(
            err,
            IntakeError::HeaderMismatch {
                missing: vec!["{{1}}".into(), "{{2}}".into()],
                found: vec!["loja".into()],
            }
        );
        assert_eq!(
            err.to_string(),
            "the header row has no column for \"{{1}}\", \"{{2}}\" (found: \"loja\")"
        );
        assert!(!err.is_retryable());
    }

    #[test]
    fn named_matches_header_by_name_in_any_order() {
        let t = parse(lembrete_json());
        let mut intake = Intake::new(&t, IntakeOptions::default()).unwrap();
        let header = cells(&["celular", " HORA ", "Observação", "{{data}}", "Nome"]);
        assert_eq!(intake.header(&header), Ok(true));
        let row = accepted(intake.row(
            2,
            &cells(&["+55 21 99876-5432", "14:30", "x", "25/12/2026", "Maria"]),
        ));
        assert_eq!(row.variables, ["Maria", "25/12/2026", "14:30"]);
    }

    #[test]
    fn named_header_tolerates_accents_and_spaces() {
        let t = parse(json!({
            "name": "t", "language": "pt_BR", "status": "APPROVED", "parameter_format": "NAMED",
            "components": [ { "type": "BODY", "text": "{{endereco_numero}} {{cidade}}" } ]
        }));
        let mut intake = Intake::new(&t, IntakeOptions::default()).unwrap();
        assert_eq!(
            intake.header(&cells(&["Fone", "Endereço Número", "CIDADE"])),
            Ok(true)
        );
        let row = accepted(intake.row(2, &cells(&["11987654321", "Rua A, 10", "SP"])));
        assert_eq!(row.variables, ["Rua A, 10", "SP"]);
    }

    #[test]
    fn named_header_missing_a_variable() {
        let t = parse(lembrete_json());
        let mut intake = Intake::new(&t, IntakeOptions::default()).unwrap();
        let err = intake
            .header(&cells(&["telefone", "nome", "dia"]))
            .unwrap_err();
        assert_eq!(
            err,
            IntakeError::HeaderMismatch {
                missing: vec!["data".into(), "hora".into()],
                found: vec!["nome".into(), "dia".into()],
            }
        );
    }

    #[test]
    fn named_header_with_two_columns_for_one_variable() {
        let t = parse(lembrete_json());
        let mut intake = Intake::new(&t, IntakeOptions::default()).unwrap();
        let err = intake
            .header(&cells(&["telefone", "nome", "Nome ", "data", "hora"]))
            .unwrap_err();
        assert!(matches!(err, IntakeError::DuplicateColumn { ref name, .. } if name == "nome"));
    }

    #[test]
    fn named_without_header_uses_template_order() {
        let t = parse(lembrete_json());
        let mut intake = Intake::new(&t, IntakeOptions::default()).unwrap();
        let first = cells(&["11987654321", "Maria", "25/12", "14:30"]);
        assert_eq!(intake.header(&first), Ok(false));
        assert_eq!(intake.columns(), ["phone", "nome", "data", "hora"]);
        assert_eq!(
            accepted(intake.row(1, &first)).variables,
            ["Maria", "25/12", "14:30"]
        );
    }

    #[test]
    fn named_variable_in_header_and_body_shares_a_column() {
        let t = parse(json!({
            "name": "t", "language": "pt_BR", "status": "APPROVED", "parameter_format": "NAMED",
            "components": [ { "type": "HEADER", "format": "TEXT", "text": "Oi {{nome}}" },
                            { "type": "BODY", "text": "{{nome}}, dia {{data}}" } ]
        }));
        let mut intake = Intake::new(&t, IntakeOptions::default()).unwrap();
        assert_eq!(intake.columns(), ["phone", "nome", "data"]);
        let row = accepted(intake.row(1, &cells(&["11987654321", "Ana", "2/2"])));
        assert_eq!(row.variables, ["Ana", "Ana", "2/2"]);
        let mut with_header = Intake::new(&t, IntakeOptions::default()).unwrap();
        assert_eq!(
            with_header.header(&cells(&["tel", "data", "nome"])),
            Ok(true)
        );
        let row = accepted(with_header.row(2, &cells(&["11987654321", "2/2", "Ana"])));
        assert_eq!(row.variables, ["Ana", "Ana", "2/2"]);
    }

    #[test]
    fn first_cell_that_looks_like_a_bad_phone_is_a_data_row() {
        let t = parse(boas_vindas_json());
        let mut intake = Intake::new(&t, IntakeOptions::default()).unwrap();
        let first = cells(&["12345", "a", "b", "c"]);
        assert_eq!(intake.header(&first), Ok(false));
        let r = rejected(intake.row(1, &first));
        assert_eq!(r.reason.code(), "invalid_phone");
        assert_eq!(
            r.to_string(),
            "row 1: phone \"12345\" is not a valid number for BR (too short)"
        );
        let mut empty_first = Intake::new(&t, IntakeOptions::default()).unwrap();
        assert_eq!(empty_first.header(&cells(&["", "a", "b", "c"])), Ok(false));
    }

    #[test]
    fn rejects_with_reasons() {
        let t = parse(boas_vindas_json());
        let mut intake = Intake::new(&t, IntakeOptions::default()).unwrap();
        intake
            .header(&cells(&["telefone", "loja", "nome", "data"]))
            .unwrap();

        let r = rejected(intake.row(2, &cells(&["", "l", "n", "d"])));
        assert_eq!(r.reason.code(), "invalid_phone");
        assert_eq!(r.to_string(), "row 2: the phone number is missing");

        let r = rejected(intake.row(3, &cells(&["Maria", "l", "n", "d"])));
        assert_eq!(
            r.reason,
            RejectReason::InvalidPhone {
                input: "Maria".into(),
                why: "not a phone number".into()
            }
        );
        assert_eq!(r.phone_input, "Maria");

        let r = rejected(intake.row(4, &cells(&["11987654321", "l", "  ", "d"])));
        assert_eq!(
            r.reason,
            RejectReason::MissingVariable {
                name: "nome".into()
            }
        );
        assert_eq!(r.reason.code(), "missing_variable");

        let r = rejected(intake.row(5, &cells(&["11987654321", "l", "n"])));
        assert_eq!(
            r.reason,
            RejectReason::MissingVariable {
                name: "data".into()
            }
        );

        let long_header = "x".repeat(61);
        let r = rejected(intake.row(6, &cells(&["11987654321", &long_header, "n", "d"])));
        assert_eq!(
            r.reason,
            RejectReason::ValueTooLong {
                name: "loja".into(),
                max: 60,
                len: 61
            }
        );
        assert_eq!(r.reason.code(), "value_too_long");

        let long_body = "é".repeat(1025);
        let r = rejected(intake.row(7, &cells(&["11987654321", "l", &long_body, "d"])));
        assert!(matches!(
            r.reason,
            RejectReason::ValueTooLong {
                max: 1024,
                len: 1025,
                ..
            }
        ));
        let ok_body = "é".repeat(1024);
        accepted(intake.row(8, &cells(&["11987654321", "l", &ok_body, "d"])));

        for (value, what) in [
            ("a\nb", "a line break"),
            ("a\r\nb", "a line break"),
            ("a\tb", "a tab"),
            ("a     b", "more than 4 consecutive spaces"),
            ("a\u{7}b", "a control character"),
        ] {
            let r = rejected(intake.row(9, &cells(&["11987654321", "l", value, "d"])));
            assert_eq!(
                r.reason,
                RejectReason::InvalidCharacters {
                    name: "nome".into(),
                    what: what.into()
                },
                "{value:?}"
            );
            assert_eq!(r.reason.code(), "invalid_characters");
        }
        accepted(intake.row(10, &cells(&["11 98888-7777", "l", "a    b", "d"])));

        for error in ["#REF!", "#DIV/0!", "#n/a"] {
            let r = rejected(intake.row(12, &cells(&["11 97777-6666", "l", error, "d"])));
            assert_eq!(
                r.reason,
                RejectReason::FormulaError {
                    name: "nome".into(),
                    value: error.into()
                }
            );
            assert_eq!(r.reason.code(), "formula_error");
        }

        let r = rejected(intake.row(11, &cells(&["+55 11 98765-4321", "l", "n", "d"])));
        assert_eq!(r.reason, RejectReason::DuplicatePhone { first_row: 8 });
        assert_eq!(r.reason.code(), "duplicate");
        assert_eq!(
            r.to_string(),
            "row 11: the phone number is the same as in row 8"
        );

        assert_eq!(intake.counts(), (2, 15));

        let mut tight = Intake::new(
            &t,
            IntakeOptions {
                max_total_value_chars: 10,
                ..IntakeOptions::default()
            },
        )
        .unwrap();
        let r = rejected(tight.row(2, &cells(&["11987654321", "Loja", "Maria", "25/12"])));
        assert_eq!(r.reason, RejectReason::ValuesTooLong { max: 10, len: 14 });
        assert_eq!(r.reason.code(), "values_too_long");
    }

    #[test]
    fn rejected_rows_do_not_count_for_duplicates() {
        let t = parse(lembrete_json());
        let mut intake = Intake::new(&t, IntakeOptions::default()).unwrap();
        rejected(intake.row(1, &cells(&["11987654321", "", "d", "h"])));
        accepted(intake.row(2, &cells(&["11987654321", "n", "d", "h"])));
        let r = rejected(intake.row(3, &cells(&["5511987654321", "n", "d", "h"])));
        assert_eq!(r.reason, RejectReason::DuplicatePhone { first_row: 2 });
    }

    #[test]
    fn media_header_needs_a_link_column() {
        let t = parse(pedido_json());
        let mut intake = Intake::new(&t, IntakeOptions::default()).unwrap();
        assert_eq!(
            intake.columns(),
            ["phone", "header_media", "{{1}}", "button 1 {{1}}"]
        );
        let row = accepted(intake.row(
            1,
            &cells(&["11987654321", "https://cdn.example/p.jpg", "#42", "ABC123"]),
        ));
        assert_eq!(
            row.variables,
            ["https://cdn.example/p.jpg", "#42", "ABC123"]
        );
        let r = rejected(intake.row(2, &cells(&["11988887777", "foto.jpg", "#42", "A"])));
        assert_eq!(
            r.reason,
            RejectReason::InvalidLink {
                name: "header_media".into()
            }
        );
        assert_eq!(r.reason.code(), "invalid_link");
        // A link is not held to the 60-character header text limit.
        let long_link = format!("https://cdn.example/{}.jpg", "a".repeat(100));
        accepted(intake.row(3, &cells(&["11988887777", &long_link, "#42", "A"])));
    }

    #[test]
    fn refuses_unapproved_and_unsupported_templates() {
        let mut t = parse(boas_vindas_json());
        t.status = TemplateStatus::Paused;
        let err = Intake::new(&t, IntakeOptions::default()).unwrap_err();
        assert_eq!(
            err,
            IntakeError::TemplateNotApproved {
                name: "boas_vindas".into(),
                language: "pt_BR".into(),
                status: TemplateStatus::Paused
            }
        );
        assert_eq!(
            err.to_string(),
            "template boas_vindas (pt_BR) is PAUSED, not APPROVED: it cannot be sent"
        );
        let location = parse(json!({
            "name": "loc", "language": "pt_BR", "status": "APPROVED",
            "components": [ { "type": "HEADER", "format": "LOCATION" },
                            { "type": "BODY", "text": "Aqui" } ]
        }));
        assert!(matches!(
            Intake::new(&location, IntakeOptions::default()),
            Err(IntakeError::UnsupportedTemplate { .. })
        ));
    }

    #[test]
    fn template_without_variables() {
        let t = parse(json!({
            "name": "oi", "language": "pt_BR", "status": "APPROVED",
            "components": [ { "type": "BODY", "text": "Oi!" } ]
        }));
        let mut intake = Intake::new(&t, IntakeOptions::default()).unwrap();
        assert_eq!(intake.header(&cells(&["Telefone"])), Ok(true));
        assert_eq!(intake.columns(), ["Telefone"]);
        let row = accepted(intake.row(2, &cells(&["11987654321"])));
        assert!(row.variables.is_empty());
    }

    #[test]
    fn reject_reason_serializes_with_its_code() {
        let reason = RejectReason::DuplicatePhone { first_row: 3 };
        let json = serde_json::to_value(&reason).unwrap();
        assert_eq!(json, json!({"code": "duplicate", "first_row": 3}));
        let back: RejectReason = serde_json::from_value(json).unwrap();
        assert_eq!(back, reason);
        let reason = RejectReason::MissingVariable {
            name: "nome".into(),
        };
        assert_eq!(
            serde_json::to_value(&reason).unwrap()["code"],
            reason.code()
        );
    }

    #[test]
    fn labels_normalize() {
        assert_eq!(normalize_label("  {{Endereço Número}} "), "endereco_numero");
        assert_eq!(normalize_label("Data-Hora"), "data_hora");
        assert_eq!(normalize_label("header {{1}}"), "header_1");
    }
}
