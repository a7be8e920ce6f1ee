//! Writing spreadsheets (xlsx and CSV) row by row: template layouts and results reports.
//!
//! Every cell is written as text, never as a formula. Cells that a spreadsheet application
//! would take for a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) are
//! neutralised against formula injection: in xlsx they are stored as quote-prefixed text
//! (shown as typed, never evaluated); in CSV they get a leading `'`. Plain numbers and phone
//! numbers (`+55 (11) 98765-4321`) are left alone: digits, spaces, parentheses, dots and
//! hyphens cannot make a formula that does anything.

use std::borrow::Cow;

use rust_xlsxwriter::{Format, Workbook, Worksheet};
use serde::Deserialize;
use utoipa::ToSchema;

/// Longest text an xlsx cell holds.
const XLSX_MAX_CELL_CHARS: usize = 32_767;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SheetFormat {
    #[default]
    Xlsx,
    Csv,
}

impl SheetFormat {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Xlsx => "xlsx",
            Self::Csv => "csv",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// True when a spreadsheet application could read the cell as a formula.
pub fn is_formula_like(cell: &str) -> bool {
    let mut chars = cell.chars();
    match chars.next() {
        Some('=' | '@' | '\t' | '\r') => true,
        Some('+' | '-') => !is_plain_number(cell),
        _ => false,
    }
}

/// `+5511987654321`, `-12.5`, `+55 (11) 98765-4321`.
fn is_plain_number(cell: &str) -> bool {
    let unsigned = cell.strip_prefix(['+', '-']).unwrap_or(cell);
    unsigned.starts_with(|c: char| c.is_ascii_digit())
        && unsigned
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '(' | ')' | '.' | '-'))
}

/// The cell as a CSV file carries it.
pub fn csv_cell(cell: &str) -> Cow<'_, str> {
    if is_formula_like(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SheetError(String);

/// Writes a header row and then data rows, in either format.
pub enum SheetWriter {
    Xlsx {
        worksheet: Box<Worksheet>,
        row: u32,
        header: Format,
        quoted: Format,
        widths: Vec<usize>,
    },
    Csv(csv::Writer<Vec<u8>>),
}

impl SheetWriter {
    pub fn new(format: SheetFormat, header: &[String]) -> Result<Self, SheetError> {
        let mut writer = match format {
            SheetFormat::Xlsx => {
                let mut worksheet = Worksheet::new();
                worksheet
                    .set_name("dados")
                    .map_err(|e| SheetError(e.to_string()))?;
                Self::Xlsx {
                    worksheet: Box::new(worksheet),
                    row: 0,
                    header: Format::new().set_bold(),
                    quoted: Format::new().set_quote_prefix(),
                    widths: Vec::new(),
                }
            }
            SheetFormat::Csv => {
                // A byte-order mark, so Excel opens the accents of a UTF-8 file correctly.
                let mut bytes = Vec::with_capacity(64 * 1024);
                bytes.extend_from_slice(b"\xEF\xBB\xBF");
                Self::Csv(csv::Writer::from_writer(bytes))
            }
        };
        writer.write_cells(header, true)?;
        Ok(writer)
    }

    pub fn write_row(&mut self, cells: &[String]) -> Result<(), SheetError> {
        self.write_cells(cells, false)
    }

    fn write_cells(&mut self, cells: &[String], is_header: bool) -> Result<(), SheetError> {
        match self {
            Self::Xlsx {
                worksheet,
                row,
                header,
                quoted,
                widths,
            } => {
                for (column, cell) in cells.iter().enumerate() {
                    let text: Cow<'_, str> = if cell.chars().count() > XLSX_MAX_CELL_CHARS {
                        Cow::Owned(cell.chars().take(XLSX_MAX_CELL_CHARS).collect())
                    } else {
                        Cow::Borrowed(cell)
                    };
                    let column_index =
                        u16::try_from(column).map_err(|_| SheetError("too many columns".into()))?;
                    let result = if is_header {
                        worksheet.write_string_with_format(
                            *row,
                            column_index,
                            text.as_ref(),
                            header,
                        )
                    } else if is_formula_like(&text) {
                        worksheet.write_string_with_format(
                            *row,
                            column_index,
                            text.as_ref(),
                            quoted,
                        )
                    } else {
                        worksheet.write_string(*row, column_index, text.as_ref())
                    };
                    result.map_err(|e| SheetError(e.to_string()))?;
                    if widths.len() <= column {
                        widths.resize(column + 1, 0);
                    }
                    widths[column] = widths[column].max(text.chars().count().min(60));
                }
                *row += 1;
                Ok(())
            }
            Self::Csv(writer) => writer
                .write_record(cells.iter().map(|cell| csv_cell(cell).into_owned()))
                .map_err(|e| SheetError(e.to_string())),
        }
    }

    /// The file's bytes.
    pub fn finish(self) -> Result<Vec<u8>, SheetError> {
        match self {
            Self::Xlsx {
                mut worksheet,
                widths,
                ..
            } => {
                for (column, width) in widths.iter().enumerate() {
                    let column = u16::try_from(column).unwrap_or(u16::MAX);
                    worksheet
                        .set_column_width(column, (*width as f64 + 2.0).max(8.0))
                        .map_err(|e| SheetError(e.to_string()))?;
                }
                worksheet
                    .set_freeze_panes(1, 0)
                    .map_err(|e| SheetError(e.to_string()))?;
                let mut workbook = Workbook::new();
                workbook.push_worksheet(*worksheet);
                workbook
                    .save_to_buffer()
                    .map_err(|e| SheetError(e.to_string()))
            }
            Self::Csv(writer) => writer
                .into_inner()
                .map_err(|e| SheetError(e.error().to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn formula_like_cells_are_recognised() {
        for risky in [
            "=1+1",
            "@SUM(A1)",
            "+1+cmd|' /C calc'!A0",
            "-2+3",
            "=HYPERLINK(\"http://x\")",
            "\t=1",
            "\r=1",
            "+",
            "-",
        ] {
            assert!(is_formula_like(risky), "{risky:?}");
        }
        for plain in [
            "Maria",
            "+5511987654321",
            "+55 (11) 98765-4321",
            "-12.5",
            "5511987654321",
            "",
            "a=b",
        ] {
            assert!(!is_formula_like(plain), "{plain:?}");
        }
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("+5511987654321"), "+5511987654321");
    }

    #[test]
    fn csv_has_a_bom_and_neutralised_cells() {
        let mut writer =
            SheetWriter::new(SheetFormat::Csv, &strings(&["phone", "nome"])).expect("writer");
        writer
            .write_row(&strings(&["+5511987654321", "=cmd|' /C calc'!A0"]))
            .expect("row");
        let bytes = writer.finish().expect("bytes");
        let text = String::from_utf8(bytes).expect("utf-8");
        assert_eq!(
            text,
            "\u{feff}phone,nome\n+5511987654321,'=cmd|' /C calc'!A0\n"
        );
    }

    #[test]
    fn xlsx_holds_text_never_formulas() {
        use calamine::{Data, Reader, Xlsx};
        let mut writer =
            SheetWriter::new(SheetFormat::Xlsx, &strings(&["phone", "nome"])).expect("writer");
        writer
            .write_row(&strings(&["+5511987654321", "=1+1"]))
            .expect("row");
        let bytes = writer.finish().expect("bytes");
        let mut book: Xlsx<_> =
            calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).expect("xlsx");
        let range = book.worksheet_range_at(0).expect("a sheet").expect("range");
        let rows: Vec<Vec<Data>> = range.rows().map(<[Data]>::to_vec).collect();
        assert_eq!(
            rows[0],
            [Data::String("phone".into()), Data::String("nome".into())]
        );
        assert_eq!(
            rows[1],
            [
                Data::String("+5511987654321".into()),
                Data::String("=1+1".into())
            ]
        );
        let formulas = book.worksheet_formula("dados").expect("formulas");
        assert!(
            formulas.cells().all(|(_, _, f)| f.is_empty()),
            "no formulas"
        );
    }
}
