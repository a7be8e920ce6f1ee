//! Fuzzing by property tests (proptest): the spreadsheet reader in every format, CSV sniffing
//! and decoding, template parsing and rendering, webhook parsing and signatures, the JSON
//! nesting guard.
//!
//! `make test` runs a short pass (64 cases per property); `make fuzz` runs the same
//! properties with `PROPTEST_CASES` in the tens of thousands. Seeds: the spreadsheets in
//! `tests/fixtures/sheets/` and `tests/fixtures/hostile/`, mutated (bytes flipped, cut,
//! spliced) — the mutational half of what a coverage-guided fuzzer would do. A failing input
//! is shrunk and its seed saved under `shared/tests/fuzz_props.proptest-regressions`
//! (committed, replayed first on every run).
//!
//! The properties are the contract of each parser: no panic on any input, an answer within
//! the limits, and what is accepted is well-formed (rows numbered in order, no trailing empty
//! cells, nothing wider or longer than the limits; a signature that verifies only for the
//! body and secret it was made with).

use std::path::PathBuf;
use std::sync::OnceLock;

use anna_shared::config::IntakeConfig;
use anna_shared::domain::template::Template;
use anna_shared::intake_pipeline::check_file;
use anna_shared::json_guard::nesting_depth;
use anna_shared::sheet::{ReadOptions, SheetFormat, SheetLimits, SheetRow, read_sheet};
use anna_shared::webhook::{status_events, verify_signature};
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Value, json};
use sha2::Sha256;

/// Cases per property: `PROPTEST_CASES` when set (make fuzz), else a short pass.
fn cases(short: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(short);
    Config {
        cases,
        // Shrinking a spreadsheet byte by byte can take long; a few thousand steps finds a
        // small enough input.
        max_shrink_iters: 2048,
        ..Config::default()
    }
}

fn repo(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// Every committed spreadsheet under 64 KiB: the seeds the mutations start from.
fn seeds() -> &'static [(String, Vec<u8>)] {
    static SEEDS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut seeds = Vec::new();
        for dir in [
            "tests/fixtures/sheets",
            "tests/fixtures/hostile",
            "tests/fixtures/fuzz-found",
            "examples",
        ] {
            let Ok(entries) = std::fs::read_dir(repo(dir)) else {
                continue;
            };
            let mut paths: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for path in paths {
                let name = path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                if name.ends_with(".md") || name.ends_with(".json") {
                    continue;
                }
                if let Ok(bytes) = std::fs::read(&path)
                    && bytes.len() <= 64 * 1024
                {
                    seeds.push((name, bytes));
                }
            }
        }
        assert!(seeds.len() > 20, "seed spreadsheets missing");
        seeds
    })
}

/// Small limits, so that the limit paths are reached by small inputs too.
fn small_limits() -> ReadOptions {
    ReadOptions {
        limits: SheetLimits {
            max_rows: 50,
            max_columns: 8,
            max_cell_chars: 200,
            max_line_bytes: 2048,
            max_unzipped_bytes: 8 << 20,
            ..SheetLimits::default()
        },
        ..ReadOptions::default()
    }
}

/// Reads everything; checks what a successful read promises.
///
/// With `ANNA_FUZZ_LAST=<path>` every input is written there first, so an input that takes
/// the whole process down (an abort on a failed allocation under `ulimit -v`, which no
/// property can catch) is left behind to reproduce with.
fn read_and_check(bytes: &[u8], options: &ReadOptions) -> Result<(), TestCaseError> {
    if let Ok(path) = std::env::var("ANNA_FUZZ_LAST") {
        let _ = std::fs::write(path, bytes);
    }
    let Ok(rows) = read_sheet(bytes, options) else {
        return Ok(());
    };
    let limits = &options.limits;
    let mut previous = 0u32;
    let mut count = 0usize;
    for row in rows {
        let Ok(SheetRow { number, cells }) = row else {
            break;
        };
        count += 1;
        prop_assert!(count <= limits.max_rows, "more rows than the limit");
        prop_assert!(number > previous, "row {number} after row {previous}");
        previous = number;
        prop_assert!(!cells.is_empty() && cells.last().is_some_and(|c| !c.is_empty()));
        prop_assert!(cells.len() <= limits.max_columns);
        for cell in &cells {
            prop_assert!(cell.chars().count() <= limits.max_cell_chars);
            prop_assert_eq!(cell.trim(), cell.as_str(), "cells are trimmed");
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: usize,
        mask: u8,
    },
    Truncate {
        keep: usize,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    Delete {
        at: usize,
        len: usize,
    },
    /// Copies a run of the file elsewhere in it (duplicates XML elements, zip records).
    Splice {
        from: usize,
        len: usize,
        to: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        1 => any::<usize>().prop_map(|keep| Mutation::Truncate { keep }),
        2 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        1 => (any::<usize>(), 1usize..256, any::<usize>())
            .prop_map(|(from, len, to)| Mutation::Splice { from, len, to }),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let len = bytes.len();
    match mutation {
        Mutation::Flip { at, mask } => bytes[at % len] ^= mask,
        Mutation::Truncate { keep } => bytes.truncate(keep % len),
        Mutation::Insert { at, bytes: new } => {
            let at = at % len;
            bytes.splice(at..at, new.iter().copied());
        }
        Mutation::Delete { at, len: n } => {
            let at = at % len;
            let end = (at + n).min(len);
            bytes.drain(at..end);
        }
        Mutation::Splice { from, len: n, to } => {
            let from = from % len;
            let end = (from + n).min(len);
            let run: Vec<u8> = bytes[from..end].to_vec();
            let to = to % bytes.len();
            bytes.splice(to..to, run);
        }
    }
}

/// A mutated seed whose format is `format` (before mutation).
fn mutated(format: Option<SheetFormat>) -> impl Strategy<Value = Vec<u8>> {
    let pool: Vec<Vec<u8>> = seeds()
        .iter()
        .filter(|(_, bytes)| {
            format.is_none_or(|f| {
                anna_shared::sheet::detect_format(bytes).is_ok_and(|found| found == f)
            })
        })
        .map(|(_, bytes)| bytes.clone())
        .collect();
    assert!(!pool.is_empty(), "no seed of format {format:?}");
    (
        prop::sample::select(pool),
        prop::collection::vec(mutation(), 1..6),
    )
        .prop_map(|(mut bytes, mutations)| {
            for m in &mutations {
                apply(&mut bytes, m);
            }
            bytes
        })
}

fn boas_vindas() -> Template {
    Template::from_graph(&json!({
        "name": "boas_vindas", "language": "pt_BR", "status": "APPROVED",
        "category": "UTILITY", "parameter_format": "POSITIONAL",
        "components": [
          { "type": "HEADER", "format": "TEXT", "text": "{{1}}" },
          { "type": "BODY", "text": "Olá {{1}}, sua consulta é em {{2}}." } ]
    }))
    .expect("template")
}

// ---------------------------------------------------------------- the spreadsheet reader

/// Inputs the fuzzing found that took the process down (aborts cannot be saved by proptest
/// as regressions): each must now read to an answer.
#[test]
fn fuzz_findings_replay() {
    let dir = repo("tests/fixtures/fuzz-found");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/fuzz-found")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e != "md"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    for path in paths {
        let bytes = std::fs::read(&path).expect("finding");
        for options in [ReadOptions::default(), small_limits()] {
            read_and_check(&bytes, &options).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

macro_rules! reader_property {
    ($name:ident, $format:expr) => {
        proptest! {
            #![proptest_config(cases(64))]
            #[test]
            fn $name(bytes in mutated($format)) {
                read_and_check(&bytes, &ReadOptions::default())?;
                read_and_check(&bytes, &small_limits())?;
            }
        }
    };
}

reader_property!(xlsx_reader_survives_mutations, Some(SheetFormat::Xlsx));
reader_property!(xlsm_reader_survives_mutations, Some(SheetFormat::Xlsm));
reader_property!(xlsb_reader_survives_mutations, Some(SheetFormat::Xlsb));
reader_property!(xls_reader_survives_mutations, Some(SheetFormat::Xls));
reader_property!(ods_reader_survives_mutations, Some(SheetFormat::Ods));
reader_property!(csv_reader_survives_mutations, Some(SheetFormat::Csv));

proptest! {
    #![proptest_config(cases(64))]

    /// Anything at all, under a spreadsheet's name: an answer, never a panic.
    #[test]
    fn reader_survives_arbitrary_bytes(
        prefix in prop::sample::select(vec![
            &b""[..], b"PK\x03\x04", b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", b"\xEF\xBB\xBF",
            b"\xFF\xFE", b"\xFE\xFF", b"sep=;\n", b"<?xml ",
        ]),
        body in prop::collection::vec(any::<u8>(), 0..4096),
    ) {
        let bytes = [prefix, &body[..]].concat();
        read_and_check(&bytes, &ReadOptions::default())?;
        read_and_check(&bytes, &small_limits())?;
    }

    /// The whole intake (reader, header detection, row validation) on mutated files.
    #[test]
    fn intake_survives_mutations(bytes in mutated(None)) {
        let template = boas_vindas();
        let config = IntakeConfig {
            read: small_limits(),
            ..IntakeConfig::default()
        };
        if let Ok((accepted, rejected)) = check_file(&bytes, &template, &config) {
            prop_assert!(accepted as usize + rejected.len() <= config.read.limits.max_rows);
            for row in &rejected {
                prop_assert!(!row.reason.to_string().is_empty());
            }
        }
    }
}

// ---------------------------------------------------------------- CSV sniffing and decoding

/// Cells a person types: letters (accented too), digits, spaces, punctuation, quotes, and
/// now and then a line break inside the cell.
fn cell_text() -> impl Strategy<Value = String> {
    prop::string::string_regex("[A-Za-z0-9À-ÿ .,;:!?'\"()\\-/@#%&+=\n]{0,24}")
        .expect("regex")
        .prop_map(|s| s.trim().to_owned())
}

#[derive(Debug, Clone, Copy)]
enum TextEncoding {
    Utf8,
    Utf8Bom,
    Utf16Le,
    Utf16Be,
    Windows1252,
}

fn encode(text: &str, encoding: TextEncoding) -> Vec<u8> {
    let utf16 = |be: bool| -> Vec<u8> {
        let mut out = if be {
            vec![0xFE, 0xFF]
        } else {
            vec![0xFF, 0xFE]
        };
        for unit in text.encode_utf16() {
            out.extend_from_slice(&if be {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            });
        }
        out
    };
    match encoding {
        TextEncoding::Utf8 => text.as_bytes().to_vec(),
        TextEncoding::Utf8Bom => [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(),
        TextEncoding::Utf16Le => utf16(false),
        TextEncoding::Utf16Be => utf16(true),
        // Only Latin-1 letters are generated, all of which Windows-1252 has.
        TextEncoding::Windows1252 => encoding_rs::WINDOWS_1252.encode(text).0.into_owned(),
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// A table written the way Excel or LibreOffice writes CSV (any of the three delimiters,
    /// quoting as needed, any supported encoding, LF or CRLF) reads back cell for cell.
    #[test]
    fn csv_round_trips_through_sniffing_and_decoding(
        header_width in 2usize..6,
        rows in prop::collection::vec(prop::collection::vec(cell_text(), 6), 1..30),
        delimiter in prop::sample::select(vec![b',', b';', b'\t']),
        encoding in prop::sample::select(vec![
            TextEncoding::Utf8, TextEncoding::Utf8Bom, TextEncoding::Utf16Le,
            TextEncoding::Utf16Be, TextEncoding::Windows1252,
        ]),
        crlf in any::<bool>(),
    ) {
        // Every row as wide as the header, the first cell never empty: the shape the
        // sniffer is promised (a phone number in column 1, the same columns on every line).
        let mut table: Vec<Vec<String>> = vec![(0..header_width).map(|i| format!("col{i}")).collect()];
        for row in rows {
            let mut row: Vec<String> = row.into_iter().take(header_width).collect();
            if row[0].is_empty() {
                row[0] = "x".to_owned();
            }
            table.push(row);
        }
        let mut writer = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .terminator(if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
            .from_writer(Vec::new());
        for row in &table {
            writer.write_record(row).expect("write");
        }
        let text = String::from_utf8(writer.into_inner().expect("flush")).expect("utf-8");
        let bytes = encode(&text, encoding);
        let rows = read_sheet(&bytes, &ReadOptions::default())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(rows.format(), SheetFormat::Csv);
        let read: Vec<Vec<String>> = rows
            .map(|r| r.map(|r| r.cells))
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected: Vec<Vec<String>> = table
            .into_iter()
            .map(|mut row| {
                while row.last().is_some_and(String::is_empty) {
                    row.pop();
                }
                row
            })
            .collect();
        prop_assert_eq!(read, expected, "{:?} {:?}\n{}", delimiter as char, encoding, text);
    }

    /// Text of any shape (delimiters, quotes, line breaks, controls, BOMs in any place).
    #[test]
    fn csv_reader_survives_any_text(
        text in prop::string::string_regex("[a-z0-9 ,;\t\"\r\n\u{FEFF}\u{0}\u{7}é€]{0,400}").expect("regex"),
        encoding in prop::sample::select(vec![TextEncoding::Utf8, TextEncoding::Utf8Bom, TextEncoding::Utf16Le]),
    ) {
        let bytes = encode(&text, encoding);
        read_and_check(&bytes, &ReadOptions::default())?;
        read_and_check(&bytes, &small_limits())?;
    }
}

// ---------------------------------------------------------------- templates

fn placeholder_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => "[A-Za-zéã ,.!?]{0,12}",
            2 => (1u8..6).prop_map(|n| format!("{{{{{n}}}}}")),
            1 => "[a-z_]{1,8}".prop_map(|name| format!("{{{{{name}}}}}")),
            1 => prop::sample::select(vec!["{{", "}}", "{{{", "{{}}", "{{ 1 }}", "{{1", "1}}"])
                .prop_map(str::to_owned),
        ],
        0..10,
    )
    .prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(cases(128))]

    /// Templates as the Graph API might return them, rendered with any values: no panic,
    /// and a value that is not itself a placeholder appears in the body it was meant for.
    #[test]
    fn templates_parse_and_render(
        body in placeholder_text(),
        header in proptest::option::of(placeholder_text()),
        named in any::<bool>(),
        values in prop::collection::vec("[A-Za-z0-9 🎉ش\u{202E}]{0,20}", 0..8),
    ) {
        let mut components = vec![json!({ "type": "BODY", "text": body })];
        if let Some(header) = &header {
            components.insert(0, json!({ "type": "HEADER", "format": "TEXT", "text": header }));
        }
        let graph = json!({
            "name": "t", "language": "pt_BR", "status": "APPROVED", "category": "UTILITY",
            "parameter_format": if named { "NAMED" } else { "POSITIONAL" },
            "components": components,
        });
        let Ok(template) = Template::from_graph(&graph) else {
            return Ok(());
        };
        let rendered = template.render(&values);
        let columns = template.column_names();
        prop_assert!(columns.len() <= template.variables.len());
        for (variable, value) in template.variables.iter().zip(&values) {
            if value.is_empty() {
                continue;
            }
            let target = match variable.component {
                anna_shared::domain::template::Component::Body => Some(&rendered.body),
                anna_shared::domain::template::Component::Header => rendered.header.as_ref(),
                _ => None,
            };
            if let Some(text) = target {
                prop_assert!(text.contains(value.as_str()), "{value:?} missing from {text:?}");
            }
        }
    }

    /// Arbitrary JSON where a template is expected: an error, never a panic.
    #[test]
    fn template_parsing_survives_any_json(value in json_value(4)) {
        let _ = Template::from_graph(&value);
        let _ = Template::from_graph(&json!({
            "name": "t", "language": "pt_BR", "status": "APPROVED", "components": value,
        }));
    }
}

// ---------------------------------------------------------------- JSON, webhooks

fn json_value(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-zA-Z0-9_ .:{}\"\\\\]{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "sent",
            "delivered",
            "read",
            "failed",
            "statuses",
            "entry",
            "changes",
            "value",
            "1750857384",
            "d-1:7",
            "wamid.X",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(depth, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "entry",
                    "changes",
                    "value",
                    "statuses",
                    "id",
                    "status",
                    "timestamp",
                    "recipient_id",
                    "biz_opaque_callback_data",
                    "errors",
                    "code",
                    "title",
                    "error_data",
                    "details",
                    "object",
                    "x",
                ])
                .prop_map(str::to_owned),
                inner,
                0..6,
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A notification of the documented shape with arbitrary statuses.
fn notification() -> impl Strategy<Value = Value> {
    let status = (
        "[a-zA-Z0-9.=]{1,20}",
        prop::sample::select(vec!["sent", "delivered", "read", "failed", "deleted", ""]),
        proptest::option::of(prop_oneof!["[0-9]{1,12}", "[a-z-]{0,5}"]),
        proptest::option::of(prop_oneof![
            (1u32..100, 1u32..100_000).prop_map(|(d, r)| format!("d-{d}:{r}")),
            "[ -~]{0,20}",
        ]),
        proptest::option::of((any::<i64>(), "[ -~]{0,20}")),
    )
        .prop_map(|(id, status, timestamp, callback, error)| {
            let mut s = json!({ "id": id, "status": status });
            if let Some(t) = timestamp {
                s["timestamp"] = json!(t);
            }
            if let Some(c) = callback {
                s["biz_opaque_callback_data"] = json!(c);
            }
            if let Some((code, title)) = error {
                s["errors"] = json!([{ "code": code, "title": title }]);
            }
            s
        });
    prop::collection::vec(status, 0..5).prop_map(|statuses| {
        json!({ "object": "whatsapp_business_account", "entry": [ { "id": "1", "changes": [
            { "field": "messages", "value": { "messaging_product": "whatsapp", "statuses": statuses } } ] } ] })
    })
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

proptest! {
    #![proptest_config(cases(256))]

    /// Any bytes, any JSON: parsed or refused, never a panic.
    #[test]
    fn webhook_parsing_survives_anything(
        value in json_value(6),
        bytes in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let _ = status_events(&bytes);
        let _ = status_events(value.to_string().as_bytes());
    }

    /// The documented shape: one event per known status, each carrying its id.
    #[test]
    fn webhook_statuses_are_read(value in notification()) {
        let body = value.to_string();
        let events = status_events(body.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let statuses = value["entry"][0]["changes"][0]["value"]["statuses"].as_array().cloned().unwrap_or_default();
        let known: Vec<&Value> = statuses
            .iter()
            .filter(|s| matches!(s["status"].as_str(), Some("sent" | "delivered" | "read" | "failed")))
            .collect();
        prop_assert_eq!(events.len(), known.len());
        for (event, raw) in events.iter().zip(known) {
            prop_assert_eq!(Some(event.wamid.as_str()), raw["id"].as_str());
            prop_assert!(chrono::DateTime::parse_from_rfc3339(&event.at).is_ok());
        }
    }

    /// A signature verifies for exactly the body and secret it was made with.
    #[test]
    fn webhook_signatures(
        secret in "[ -~]{1,40}",
        body in prop::collection::vec(any::<u8>(), 0..256),
        flip in any::<prop::sample::Index>(),
        header in "[ -~]{0,80}",
    ) {
        let good = sign(&secret, &body);
        prop_assert!(verify_signature(&secret, &body, Some(&good)).is_ok());
        prop_assert!(verify_signature(&secret, &body, Some(&good.to_uppercase().replace("SHA256=", "sha256="))).is_ok());
        if !body.is_empty() {
            let mut other = body.clone();
            other[flip.index(body.len())] ^= 1;
            prop_assert!(verify_signature(&secret, &other, Some(&good)).is_err());
        }
        let wrong_secret = format!("{secret}x");
        prop_assert!(verify_signature(&wrong_secret, &body, Some(&good)).is_err());
        if header != good {
            prop_assert!(verify_signature(&secret, &body, Some(&header)).is_err());
        }
        prop_assert!(verify_signature(&secret, &body, None).is_err());
    }

    /// The nesting guard agrees with the JSON it measures.
    #[test]
    fn nesting_depth_matches_the_value(value in json_value(8)) {
        fn depth(v: &Value) -> usize {
            match v {
                Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
                Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
                _ => 0,
            }
        }
        let text = value.to_string();
        prop_assert_eq!(nesting_depth(text.as_bytes(), 1000), depth(&value));
        let pretty = serde_json::to_string_pretty(&value).expect("json");
        prop_assert_eq!(nesting_depth(pretty.as_bytes(), 1000), depth(&value));
    }
}
