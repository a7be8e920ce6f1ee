//! Generated inputs: a spreadsheet of phone + 3 variables for the `lembrete_consulta`
//! template ({{nome}}, {{data}}, {{hora}}), as xlsx and as CSV (`;`, Windows-1252, CRLF, the
//! way Excel in Brazil saves it). Deterministic, written under `target/bench/inputs/` and
//! reused while the file for the same size and generator version exists.
//!
//! The rows look like a real list: phones written four ways (with and without punctuation and
//! country code; in the xlsx one in four is a number cell), names with accents, real date
//! cells, and a few bad rows — every 200th phone is invalid and every 500th row repeats the
//! previous phone — so the validation paths that reject rows run too (0.7 % rejected).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};

/// Bump when the generated content changes, so cached files are regenerated.
const GENERATOR_VERSION: u32 = 1;

pub const TEMPLATE: &str = "lembrete_consulta";
pub const LANGUAGE: &str = "pt_BR";
pub const HEADER: [&str; 4] = ["telefone", "nome", "data", "hora"];

const DDDS: [u32; 16] = [
    11, 21, 31, 41, 51, 61, 71, 81, 91, 19, 27, 48, 85, 62, 98, 34,
];
const FIRST: [&str; 20] = [
    "Maria",
    "José",
    "Ana",
    "João",
    "Antônio",
    "Francisca",
    "Conceição",
    "Luís",
    "Cecília",
    "Sebastião",
    "Fátima",
    "André",
    "Letícia",
    "Márcio",
    "Inês",
    "Raimundo",
    "Lúcia",
    "Vitória",
    "Caio",
    "Érica",
];
const LAST: [&str; 20] = [
    "da Silva",
    "dos Santos",
    "Araújo",
    "Gonçalves",
    "Conceição",
    "Simões",
    "Magalhães",
    "Brandão",
    "Assunção",
    "Falcão",
    "Pereira",
    "Lima",
    "Gomes",
    "Ribeiro",
    "Monção",
    "Sá",
    "Leão",
    "Damião",
    "Carvalho",
    "Guimarães",
];

/// The phone cell of data row `i` (0-based).
pub enum PhoneCell {
    Text(String),
    /// Digits stored as a number, as Excel does with a column of numbers.
    Number(f64),
}

fn phone_digits(i: usize) -> (u32, u64) {
    let i = if i % 500 == 499 { i - 1 } else { i };
    (DDDS[i % DDDS.len()], 900_000_000 + (i / DDDS.len()) as u64)
}

pub fn phone(i: usize) -> PhoneCell {
    if i % 200 == 199 {
        return PhoneCell::Text(format!("{}", 1000 + i % 9000));
    }
    let (ddd, local) = phone_digits(i);
    let (a, b) = (local / 10_000, local % 10_000);
    match i % 4 {
        0 => PhoneCell::Text(format!("({ddd}) {a}-{b:04}")),
        1 => PhoneCell::Text(format!("{ddd}{local}")),
        2 => PhoneCell::Text(format!("+55 {ddd} {a}-{b:04}")),
        _ => PhoneCell::Number(format!("55{ddd}{local}").parse().unwrap_or(0.0)),
    }
}

pub fn name(i: usize) -> String {
    format!(
        "{} {}",
        FIRST[i % FIRST.len()],
        LAST[(i / FIRST.len()) % LAST.len()]
    )
}

/// (year, month, day) of the appointment.
pub fn date(i: usize) -> (u16, u8, u8) {
    (2026, 1 + (i % 12) as u8, 1 + (i % 28) as u8)
}

pub fn time(i: usize) -> String {
    format!("{:02}:{:02}", 8 + i % 10, (i % 4) * 15)
}

/// How many data rows of `data_rows` are rejected by the intake.
pub fn expected_rejected(data_rows: usize) -> usize {
    (0..data_rows)
        .filter(|i| i % 200 == 199 || (i % 500 == 499 && (i - 1) % 200 != 199))
        .count()
}

fn cached(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let partial = dir.join(format!("{name}.partial"));
    write(&partial)?;
    std::fs::rename(&partial, &path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(path)
}

/// A CSV with a header row and `data_rows` rows.
pub fn csv(dir: &Path, data_rows: usize) -> anyhow::Result<PathBuf> {
    let file_name = format!("lembrete-{data_rows}-v{GENERATOR_VERSION}.csv");
    cached(dir, &file_name, |path| {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut line = String::with_capacity(128);
        line.push_str(&HEADER.join(";"));
        line.push_str("\r\n");
        for i in 0..data_rows {
            let phone = match phone(i) {
                PhoneCell::Text(text) => text,
                PhoneCell::Number(n) => format!("{n:.0}"),
            };
            let (y, m, d) = date(i);
            line.push_str(&format!(
                "{phone};{};{d:02}/{m:02}/{y};{}\r\n",
                name(i),
                time(i)
            ));
            if line.len() > 64 * 1024 || i + 1 == data_rows {
                let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&line);
                anyhow::ensure!(!unmappable, "a generated value is not in Windows-1252");
                out.write_all(&bytes)?;
                line.clear();
            }
        }
        if !line.is_empty() {
            let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&line);
            out.write_all(&bytes)?;
        }
        out.flush()?;
        Ok(())
    })
}

/// An xlsx with a header row and `data_rows` rows, written in rust_xlsxwriter's low-memory
/// mode: rows stream to a temporary file and strings go to the shared-string table, as Excel
/// writes them.
pub fn xlsx(dir: &Path, data_rows: usize) -> anyhow::Result<PathBuf> {
    let file_name = format!("lembrete-{data_rows}-v{GENERATOR_VERSION}.xlsx");
    cached(dir, &file_name, |path| {
        let mut workbook = Workbook::new();
        workbook.set_tempdir(dir)?;
        let date_format = Format::new().set_num_format("dd/mm/yyyy");
        let phone_format = Format::new().set_num_format("0");
        let sheet = workbook.add_worksheet_with_low_memory()?;
        for (column, title) in HEADER.iter().enumerate() {
            sheet.write_string(0, column as u16, *title)?;
        }
        for i in 0..data_rows {
            let row = (i + 1) as u32;
            match phone(i) {
                PhoneCell::Text(text) => sheet.write_string(row, 0, text)?,
                PhoneCell::Number(n) => sheet.write_number_with_format(row, 0, n, &phone_format)?,
            };
            sheet.write_string(row, 1, name(i))?;
            let (y, m, d) = date(i);
            sheet.write_datetime_with_format(
                row,
                2,
                ExcelDateTime::from_ymd(y, m, d)?,
                &date_format,
            )?;
            sheet.write_string(row, 3, time(i))?;
        }
        workbook.save(path)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_unique_except_the_planted_duplicates() {
        let mut seen = std::collections::HashSet::new();
        let (mut invalid, mut repeats) = (0, 0);
        for i in 0..20_000 {
            if i % 200 == 199 {
                invalid += 1;
                continue;
            }
            if !seen.insert(phone_digits(i)) {
                repeats += 1;
            }
        }
        // Every 500th row repeats its predecessor, unless the row is itself an invalid one
        // (every other 500th row is also a 200th).
        assert_eq!((invalid, repeats), (100, 20));
        assert_eq!(expected_rejected(20_000), invalid + repeats);
    }

    #[test]
    fn names_fit_windows_1252() {
        for i in 0..400 {
            let (_, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&name(i));
            assert!(!unmappable);
        }
    }
}
