//! The ods pre-scan: repeated rows and columns, checked before calamine expands them.
//!
//! An ods file says "this row, a million times" (`table:number-rows-repeated`) or "this
//! cell, 16,000 times to the right" (`table:number-columns-repeated`) in a few bytes.
//! calamine reads the sheet into a dense range: every repeat becomes cells in memory (about
//! 56 bytes each, value and formula), so a one-kilobyte file can ask for gigabytes long
//! before the row and column limits see a single row. This streams `content.xml` once (the
//! zip limits bound it), counts what the expansion would produce, and refuses the file when
//! it is over the limits: more non-empty rows than [`SheetLimits::max_rows`], a value right
//! of [`SheetLimits::max_columns`], or a dense area over [`SheetLimits::max_cells`].
//!
//! Every table is checked, not only the one that will be read: telling which one that is
//! needs the styles, and a workbook with a huge hidden table is not one to accept anyway.
//! A file this cannot parse is left to calamine, which reports it damaged.

use std::io::{BufReader, Cursor};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use zip::ZipArchive;

use super::{SheetError, SheetLimits, column_name};

pub(crate) fn check_ods(bytes: &[u8], limits: &SheetLimits) -> Result<(), SheetError> {
    let Ok(mut archive) = ZipArchive::new(Cursor::new(bytes)) else {
        return Ok(());
    };
    let Ok(content) = archive.by_name("content.xml") else {
        return Ok(());
    };
    let mut reader = Reader::from_reader(BufReader::new(content));
    let mut buf = Vec::new();
    let mut table = Table::default();
    loop {
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            // Damaged XML: calamine says so in its own words.
            Err(_) => return Ok(()),
        };
        match event {
            Event::Eof => return Ok(()),
            Event::Start(e) => match e.name().as_ref() {
                "table:table" => table = Table::default(),
                "table:table-row" => table.start_row(&e),
                "table:table-cell" | "table:covered-table-cell" => {
                    // A cell with content (text, a value) counts as non-empty even when it
                    // has no value type: calamine reads its text.
                    table.cell(&e, true, limits)?;
                }
                _ => {}
            },
            Event::Empty(e) => match e.name().as_ref() {
                "table:table-row" => {
                    table.start_row(&e);
                    table.end_row(limits)?;
                }
                "table:table-cell" | "table:covered-table-cell" => {
                    let has_value = attribute(&e, "office:value-type").is_some()
                        || attribute(&e, "table:formula").is_some();
                    table.cell(&e, has_value, limits)?;
                }
                _ => {}
            },
            Event::End(e) if e.name().as_ref() == "table:table-row" => table.end_row(limits)?,
            _ => {}
        }
        buf.clear();
    }
}

fn attribute(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.try_get_attribute(name)
        .ok()
        .flatten()
        .map(|a| a.value.into_owned())
}

/// A repeat count; calamine refuses what does not parse, so an unreadable one counts once.
fn repeats(e: &BytesStart<'_>, name: &str) -> u64 {
    attribute(e, name)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .max(1)
}

#[derive(Default)]
struct Table {
    /// Rows so far, repeats expanded.
    rows: u64,
    non_empty_rows: u64,
    /// The first non-empty row, and the end (exclusive) of the last one.
    first: Option<u64>,
    end: u64,
    min_column: u64,
    max_column: u64,
    /// The row being read: its repeat count, the next column, its non-empty columns.
    row_repeats: u64,
    column: u64,
    row_columns: Option<(u64, u64)>,
}

impl Table {
    fn start_row(&mut self, e: &BytesStart<'_>) {
        self.row_repeats = repeats(e, "table:number-rows-repeated");
        self.column = 0;
        self.row_columns = None;
    }

    fn cell(
        &mut self,
        e: &BytesStart<'_>,
        non_empty: bool,
        limits: &SheetLimits,
    ) -> Result<(), SheetError> {
        let span = repeats(e, "table:number-columns-repeated");
        if non_empty {
            let last = self.column.saturating_add(span - 1);
            if last >= limits.max_columns as u64 {
                return Err(SheetError::TooManyColumns {
                    row: u32::try_from(self.rows.saturating_add(1)).unwrap_or(u32::MAX),
                    column: column_name(u32::try_from(last).unwrap_or(u32::MAX)),
                    max: limits.max_columns,
                });
            }
            let (lo, hi) = self.row_columns.unwrap_or((self.column, last));
            self.row_columns = Some((lo.min(self.column), hi.max(last)));
        }
        self.column = self.column.saturating_add(span);
        Ok(())
    }

    fn end_row(&mut self, limits: &SheetLimits) -> Result<(), SheetError> {
        let start = self.rows;
        self.rows = self.rows.saturating_add(self.row_repeats);
        let Some((lo, hi)) = self.row_columns.take() else {
            return Ok(());
        };
        self.non_empty_rows = self.non_empty_rows.saturating_add(self.row_repeats);
        if self.non_empty_rows > limits.max_rows as u64 {
            return Err(SheetError::TooManyRows {
                max: limits.max_rows,
            });
        }
        match self.first {
            None => {
                self.first = Some(start);
                (self.min_column, self.max_column) = (lo, hi);
            }
            Some(_) => {
                self.min_column = self.min_column.min(lo);
                self.max_column = self.max_column.max(hi);
            }
        }
        self.end = self.rows;
        let height = self.end - self.first.unwrap_or(start);
        let width = self.max_column - self.min_column + 1;
        let cells = height.saturating_mul(width);
        if cells > limits.max_cells as u64 {
            return Err(SheetError::TooManyCells {
                cells,
                max: limits.max_cells,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn ods(rows: &str) -> Vec<u8> {
        let content = format!(
            r#"<?xml version="1.0"?><office:document-content xmlns:office="o" xmlns:table="t" xmlns:text="x"><office:body><office:spreadsheet><table:table table:name="A">{rows}</table:table></office:spreadsheet></office:body></office:document-content>"#
        );
        let mut out = Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut out);
            zip.start_file("content.xml", SimpleFileOptions::default())
                .unwrap();
            zip.write_all(content.as_bytes()).unwrap();
            zip.finish().unwrap();
        }
        out.into_inner()
    }

    const CELL: &str =
        r#"<table:table-cell office:value-type="string"><text:p>x</text:p></table:table-cell>"#;

    #[test]
    fn ordinary_sheets_pass() {
        let row = format!(
            "<table:table-row>{CELL}{CELL}<table:table-cell table:number-columns-repeated=\"1000\"/></table:table-row>"
        );
        let bytes = ods(&format!(
            "{row}{row}<table:table-row table:number-rows-repeated=\"1048570\"><table:table-cell table:number-columns-repeated=\"1024\"/></table:table-row>"
        ));
        assert_eq!(check_ods(&bytes, &SheetLimits::default()), Ok(()));
    }

    #[test]
    fn repeated_rows_count_against_the_row_limit() {
        let bytes = ods(&format!(
            "<table:table-row table:number-rows-repeated=\"1000000\">{CELL}</table:table-row>"
        ));
        let limits = SheetLimits {
            max_rows: 1000,
            ..SheetLimits::default()
        };
        assert_eq!(
            check_ods(&bytes, &limits),
            Err(SheetError::TooManyRows { max: 1000 })
        );
    }

    #[test]
    fn repeated_columns_count_against_the_column_limit() {
        let bytes = ods(&format!(
            "<table:table-row>{CELL}<table:table-cell table:number-columns-repeated=\"100\"/>{CELL}</table:table-row>"
        ));
        assert_eq!(
            check_ods(&bytes, &SheetLimits::default()),
            Err(SheetError::TooManyColumns {
                row: 1,
                column: column_name(101),
                max: 64
            })
        );
    }

    #[test]
    fn empty_rows_between_values_count_as_cells() {
        let bytes = ods(&format!(
            "<table:table-row>{CELL}{CELL}{CELL}{CELL}</table:table-row><table:table-row table:number-rows-repeated=\"3000000\"><table:table-cell/></table:table-row><table:table-row>{CELL}</table:table-row>"
        ));
        assert_eq!(
            check_ods(&bytes, &SheetLimits::default()),
            Err(SheetError::TooManyCells {
                cells: 3_000_002 * 4,
                max: SheetLimits::default().max_cells
            })
        );
    }
}
