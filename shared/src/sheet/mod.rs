//! Reading spreadsheets into rows of cells as a person sees them.
//!
//! [`read_sheet`] takes the bytes of an uploaded file and returns its rows:
//!
//! - The format comes from the bytes, never from the file name ([`detect_format`]): xlsx,
//!   xlsm, xlsb, xls and ods through calamine (first worksheet only), anything else that is
//!   text as CSV (comma, semicolon or tab, sniffed; UTF-8 with or without BOM, UTF-16 with a
//!   BOM, otherwise Windows-1252 as Excel in Brazil writes it).
//! - Every cell is the text a person sees: `5.511987654321E12` stored as a float is
//!   `5511987654321`, a date cell is `25/12/2026` (see [`ReadOptions::date_format`]), text is
//!   trimmed.
//! - Rows whose cells are all empty are skipped; the rows returned keep the number a
//!   spreadsheet app shows for them ([`SheetRow::number`]), so a rejected row can be pointed
//!   at. Trailing empty cells are dropped, so rows may have different lengths.
//! - Nothing here panics on any input: a file that cannot be read gives a [`SheetError`]
//!   whose message tells the operator what to do.
//!
//! Deciding which row is the header and which column fills which template variable is the
//! intake's job, not this module's.

mod archive;
mod detect;
mod ods_guard;
mod render;
mod text;
mod workbook;
mod xls_guard;

/// Zip archives built in memory, for the tests of the readers that look inside them.
#[cfg(test)]
pub(crate) mod test_zip {
    use std::io::{Cursor, Write};

    use zip::write::SimpleFileOptions;

    pub fn zip_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut out);
            for (name, data) in entries {
                zip.start_file(*name, SimpleFileOptions::default()).unwrap();
                zip.write_all(data).unwrap();
            }
            zip.finish().unwrap();
        }
        out.into_inner()
    }
}

use std::fmt;

use serde::{Deserialize, Serialize};

pub use detect::detect_format;

/// A spreadsheet format, as found from the file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SheetFormat {
    /// Office Open XML workbook (Excel 2007 and later).
    Xlsx,
    /// Office Open XML workbook with macros enabled.
    Xlsm,
    /// Excel binary workbook (BIFF12).
    Xlsb,
    /// Excel 97-2003 workbook (BIFF8 in an OLE compound file).
    Xls,
    /// OpenDocument spreadsheet (LibreOffice, Google Sheets export).
    Ods,
    /// Delimited text.
    Csv,
}

impl SheetFormat {
    /// The lower-case name, which is also the usual file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            SheetFormat::Xlsx => "xlsx",
            SheetFormat::Xlsm => "xlsm",
            SheetFormat::Xlsb => "xlsb",
            SheetFormat::Xls => "xls",
            SheetFormat::Ods => "ods",
            SheetFormat::Csv => "csv",
        }
    }
}

impl fmt::Display for SheetFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Limits that keep one upload from exhausting a function's memory or time. Each one is
/// checked before the work it guards: the file size before anything, the zip limits before
/// calamine opens a workbook, the sheet count before a sheet is read, rows, columns, cell and
/// line lengths as the cells arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetLimits {
    /// Largest file accepted, in bytes. Checked before anything else.
    pub max_bytes: usize,
    /// Most non-empty rows (the header row included) in the sheet.
    pub max_rows: usize,
    /// Most columns: a non-empty cell to the right of this column is an error.
    pub max_columns: usize,
    /// Most sheets in a workbook (the first worksheet is looked for among them).
    pub max_sheets: usize,
    /// Longest cell, in characters. Excel itself holds at most 32,767.
    pub max_cell_chars: usize,
    /// Longest CSV record, in bytes as written in the file (quotes and delimiters included).
    pub max_line_bytes: usize,
    /// Most bytes the parts of an xlsx, xlsm, xlsb or ods file may unpack to, together.
    pub max_unzipped_bytes: u64,
    /// Highest compression ratio (unpacked ÷ packed) of a part larger than 1 MiB.
    pub max_zip_ratio: u32,
    /// Most parts (zip entries) in a workbook.
    pub max_zip_entries: usize,
    /// Most cells an ods or xls sheet may expand to (rows × columns between its first and
    /// last values, ods repeats included; for xls also the area it declares): calamine holds
    /// them all in memory at once.
    pub max_cells: usize,
}

impl Default for SheetLimits {
    fn default() -> Self {
        SheetLimits {
            max_bytes: 50 * 1024 * 1024,
            max_rows: 1_000_000,
            max_columns: 64,
            max_sheets: 256,
            max_cell_chars: 32_767,
            max_line_bytes: 256 * 1024,
            // A legitimate 50 MiB, million-row xlsx unpacks to a few hundred MiB.
            max_unzipped_bytes: 1 << 30,
            // Spreadsheet XML compresses 5 to 50 times; deflate's ceiling is about 1,032.
            max_zip_ratio: 200,
            max_zip_entries: 10_000,
            // About 450 MiB in calamine's dense ranges; the upload function has 2 GB.
            max_cells: 8_000_000,
        }
    }
}

/// How to read a spreadsheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// How a date cell is written, as a chrono `strftime` pattern (default `%d/%m/%Y`). A date
    /// with a time of day other than midnight gets ` %H:%M` appended (` %H:%M:%S` when it has
    /// seconds); a cell holding only a time of day is written `%H:%M`.
    pub date_format: String,
    pub limits: SheetLimits,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            date_format: "%d/%m/%Y".to_string(),
            limits: SheetLimits::default(),
        }
    }
}

/// One non-empty row of the sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetRow {
    /// The 1-based row number a spreadsheet app shows for this row. For CSV it is the
    /// 1-based record number, counting blank lines as empty records (which is what a
    /// spreadsheet app shows when it opens the file).
    pub number: u32,
    /// The cells from column A on, as a person sees them; empty cells are `""`, trailing
    /// empty cells are dropped, and at least one cell is non-empty.
    pub cells: Vec<String>,
}

/// Why a spreadsheet could not be read. Every message is a sentence an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SheetError {
    #[error("the file is empty; upload a spreadsheet with a header row and one row per recipient")]
    Empty,

    #[error(
        "the file is {size} bytes, more than the limit of {max} bytes; split it into smaller files and upload each one"
    )]
    TooLarge { size: usize, max: usize },

    #[error(
        "the file is {what}, not a spreadsheet; save the data as xlsx, xlsm, xlsb, xls, ods or csv and upload that file"
    )]
    NotASpreadsheet {
        /// What the file looks like instead, e.g. "a PDF document".
        what: String,
    },

    #[error("the file is password-protected; save it without a password and upload again")]
    Encrypted,

    #[error(
        "the {} file is damaged and cannot be read ({detail}); open it in a spreadsheet app, save it again and upload the new file",
        format.map_or("spreadsheet", SheetFormat::as_str)
    )]
    Corrupt {
        /// The format the file claims to be, when that could be told.
        format: Option<SheetFormat>,
        /// What the reader reported.
        detail: String,
    },

    #[error("the workbook has no worksheet; put the data on the first sheet and upload again")]
    NoWorksheet,

    #[error(
        "the sheet has more than {max} non-empty rows; split it into files of at most {max} rows and upload each one"
    )]
    TooManyRows { max: usize },

    #[error(
        "row {row} has a value in column {column}, but a sheet may use at most {max} columns; delete the columns to the right of the data and upload again"
    )]
    TooManyColumns {
        /// The row number a spreadsheet app shows.
        row: u32,
        /// The column letters, e.g. "BM".
        column: String,
        max: usize,
    },

    #[error(
        "the workbook unpacks to more than {max} bytes; split the data over smaller files and upload each one"
    )]
    UnpackedTooLarge { max: u64 },

    #[error(
        "the workbook part {part:?} unpacks to {ratio} times its packed size, more than the limit of {max}, so the file is refused as a possible zip bomb; open it in a spreadsheet app, save it again and upload the new file"
    )]
    CompressionRatio { part: String, ratio: u64, max: u32 },

    #[error(
        "the workbook has {parts} parts, more than the limit of {max}; save it again from a spreadsheet app and upload the new file"
    )]
    TooManyParts { parts: usize, max: usize },

    #[error(
        "the sheet spans {cells} cells (rows times columns, empty ones between the values included), more than the limit of {max}; delete the empty rows and columns between the data, or split it into smaller files"
    )]
    TooManyCells { cells: u64, max: usize },

    #[error(
        "the workbook has {sheets} sheets, more than the limit of {max}; keep the recipients on the first sheet, delete the other sheets and upload again"
    )]
    TooManySheets { sheets: usize, max: usize },

    #[error(
        "row {row} has {chars} characters in column {column}, more than the limit of {max}; shorten that cell and upload again"
    )]
    CellTooLong {
        row: u32,
        column: String,
        chars: usize,
        max: usize,
    },

    #[error(
        "row {row} is {bytes} bytes long, more than the limit of {max} bytes for a line; check that the file has one recipient per line (an unbalanced quote joins lines) and upload again"
    )]
    LineTooLong { row: u32, bytes: usize, max: usize },

    #[error(
        "the configured date format {format:?} is not a valid strftime pattern; fix the date format setting (for example %d/%m/%Y)"
    )]
    InvalidDateFormat { format: String },
}

impl crate::error::Retryable for SheetError {
    fn is_retryable(&self) -> bool {
        false
    }
}

/// Reads the first worksheet of a spreadsheet (or a CSV file) from its bytes.
///
/// The format is found with [`detect_format`]. Workbooks are parsed up-front, so limit and
/// corruption errors come from this call; CSV is parsed as the rows are pulled, so a CSV
/// over [`SheetLimits::max_rows`] or [`SheetLimits::max_columns`] yields an `Err` item (after
/// which the iterator ends).
pub fn read_sheet<'a>(bytes: &'a [u8], options: &ReadOptions) -> Result<SheetRows<'a>, SheetError> {
    let limits = &options.limits;
    if bytes.len() > limits.max_bytes {
        return Err(SheetError::TooLarge {
            size: bytes.len(),
            max: limits.max_bytes,
        });
    }
    render::check_date_format(&options.date_format)?;
    let format = detect_format(bytes)?;
    if matches!(
        format,
        SheetFormat::Xlsx | SheetFormat::Xlsm | SheetFormat::Xlsb | SheetFormat::Ods
    ) {
        archive::check_zip(bytes, limits)?;
    }
    match format {
        SheetFormat::Ods => ods_guard::check_ods(bytes, limits)?,
        SheetFormat::Xls => xls_guard::check_xls(bytes, limits)?,
        _ => {}
    }
    let inner = match format {
        SheetFormat::Csv => Inner::Csv(Box::new(text::CsvRows::new(bytes, options)?)),
        _ => Inner::Rows(workbook::read_rows(bytes, format, options)?.into_iter()),
    };
    Ok(SheetRows { format, inner })
}

/// The non-empty rows of a sheet, in order. Returned by [`read_sheet`].
pub struct SheetRows<'a> {
    format: SheetFormat,
    inner: Inner<'a>,
}

enum Inner<'a> {
    Csv(Box<text::CsvRows<'a>>),
    Rows(std::vec::IntoIter<SheetRow>),
}

impl SheetRows<'_> {
    /// The format the file was read as.
    pub fn format(&self) -> SheetFormat {
        self.format
    }
}

impl Iterator for SheetRows<'_> {
    type Item = Result<SheetRow, SheetError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Csv(rows) => rows.next(),
            Inner::Rows(rows) => rows.next().map(Ok),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.inner {
            Inner::Csv(_) => (0, None),
            Inner::Rows(rows) => rows.size_hint(),
        }
    }
}

impl fmt::Debug for SheetRows<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SheetRows")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// The column letters a spreadsheet app shows for a 0-based column index: 0 is "A", 26 "AA".
pub(crate) fn column_name(index: u32) -> String {
    let mut n = u64::from(index) + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = ((n - 1) % 26) as u8;
        letters.push(char::from(b'A' + rem));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}

/// A cell's text as a person sees it: surrounding white space and byte-order marks (U+FEFF,
/// invisible, left in the middle of a file by concatenated exports) removed.
pub(crate) fn clean_text(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}')
}

/// Drops the trailing empty cells of a row; `None` when the row is all empty.
fn finish_cells(mut cells: Vec<String>) -> Option<Vec<String>> {
    while cells.last().is_some_and(|c| c.is_empty()) {
        cells.pop();
    }
    if cells.is_empty() { None } else { Some(cells) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Retryable;

    #[test]
    fn format_names() {
        let all = [
            (SheetFormat::Xlsx, "xlsx"),
            (SheetFormat::Xlsm, "xlsm"),
            (SheetFormat::Xlsb, "xlsb"),
            (SheetFormat::Xls, "xls"),
            (SheetFormat::Ods, "ods"),
            (SheetFormat::Csv, "csv"),
        ];
        for (format, name) in all {
            assert_eq!(format.to_string(), name);
            assert_eq!(
                serde_json::to_string(&format).unwrap(),
                format!("\"{name}\"")
            );
            let back: SheetFormat = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(back, format);
        }
    }

    #[test]
    fn defaults() {
        let options = ReadOptions::default();
        assert_eq!(options.date_format, "%d/%m/%Y");
        assert_eq!(options.limits.max_bytes, 50 * 1024 * 1024);
        assert_eq!(options.limits.max_rows, 1_000_000);
        assert_eq!(options.limits.max_columns, 64);
    }

    #[test]
    fn column_names() {
        assert_eq!(column_name(0), "A");
        assert_eq!(column_name(25), "Z");
        assert_eq!(column_name(26), "AA");
        assert_eq!(column_name(64), "BM");
        assert_eq!(column_name(16_383), "XFD");
        assert!(!column_name(u32::MAX).is_empty());
    }

    #[test]
    fn errors_are_sentences_and_not_retryable() {
        let errors = [
            SheetError::Empty,
            SheetError::TooLarge { size: 10, max: 5 },
            SheetError::NotASpreadsheet {
                what: "a PDF document".into(),
            },
            SheetError::Encrypted,
            SheetError::Corrupt {
                format: Some(SheetFormat::Xlsx),
                detail: "zip error".into(),
            },
            SheetError::Corrupt {
                format: None,
                detail: "zip error".into(),
            },
            SheetError::NoWorksheet,
            SheetError::TooManyRows { max: 3 },
            SheetError::TooManyColumns {
                row: 2,
                column: "BM".into(),
                max: 64,
            },
            SheetError::InvalidDateFormat {
                format: "%Q".into(),
            },
            SheetError::UnpackedTooLarge { max: 1 },
            SheetError::CompressionRatio {
                part: "xl/sharedStrings.xml".into(),
                ratio: 900,
                max: 200,
            },
            SheetError::TooManyParts { parts: 2, max: 1 },
            SheetError::TooManySheets { sheets: 2, max: 1 },
            SheetError::TooManyCells { cells: 2, max: 1 },
            SheetError::CellTooLong {
                row: 1,
                column: "A".into(),
                chars: 2,
                max: 1,
            },
            SheetError::LineTooLong {
                row: 1,
                bytes: 2,
                max: 1,
            },
        ];
        for e in errors {
            assert!(!e.is_retryable());
            let text = e.to_string();
            assert!(
                text.starts_with("the ") || text.starts_with("row "),
                "{text}"
            );
        }
        assert_eq!(
            SheetError::Encrypted.to_string(),
            "the file is password-protected; save it without a password and upload again"
        );
        assert!(
            SheetError::Corrupt {
                format: Some(SheetFormat::Xls),
                detail: "x".into()
            }
            .to_string()
            .starts_with("the xls file is damaged")
        );
    }

    #[test]
    fn too_large_is_checked_first() {
        let options = ReadOptions {
            limits: SheetLimits {
                max_bytes: 4,
                ..SheetLimits::default()
            },
            ..ReadOptions::default()
        };
        let err = read_sheet(b"%PDF-1.7 garbage", &options).unwrap_err();
        assert_eq!(err, SheetError::TooLarge { size: 16, max: 4 });
    }

    #[test]
    fn invalid_date_format_is_reported() {
        let options = ReadOptions {
            date_format: "%d/%m/%Q".into(),
            ..ReadOptions::default()
        };
        let err = read_sheet(b"a,b\n", &options).unwrap_err();
        assert!(matches!(err, SheetError::InvalidDateFormat { .. }));
    }

    #[test]
    fn rows_report_their_format() {
        let rows = read_sheet(
            b"telefone;nome\n5511987654321;Ana\n",
            &ReadOptions::default(),
        )
        .unwrap();
        assert_eq!(rows.format(), SheetFormat::Csv);
        let rows: Vec<_> = rows.collect::<Result<_, _>>().unwrap();
        assert_eq!(rows.len(), 2);
    }
}
