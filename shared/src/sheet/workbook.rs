//! Workbooks (xlsx, xlsm, xlsb, xls, ods) through calamine: the first worksheet, read
//! up-front into rows.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use calamine::{
    Data, Ods, OdsError, Range, Reader, Sheet, SheetType, SheetVisible, Xls, XlsError, Xlsb,
    XlsbError, Xlsx, XlsxError,
};

use super::render::Renderer;
use super::{
    ReadOptions, SheetError, SheetFormat, SheetLimits, SheetRow, column_name, finish_cells,
};

/// Reads the first worksheet of a workbook into its non-empty rows.
///
/// calamine is not written to be fed hostile files and can panic on some; such a panic is
/// caught here and reported as a damaged file, so that nothing panics on any input.
pub(crate) fn read_rows(
    bytes: &[u8],
    format: SheetFormat,
    options: &ReadOptions,
) -> Result<Vec<SheetRow>, SheetError> {
    match catch_unwind(AssertUnwindSafe(|| read(bytes, format, options))) {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unexpected data".to_string());
            Err(SheetError::Corrupt {
                format: Some(format),
                detail: format!("the reader stopped on unexpected data: {message}"),
            })
        }
    }
}

fn read(
    bytes: &[u8],
    format: SheetFormat,
    options: &ReadOptions,
) -> Result<Vec<SheetRow>, SheetError> {
    let renderer = Renderer::new(&options.date_format);
    let mut rows = Collector::new(&options.limits);
    let corrupt = |detail: String| SheetError::Corrupt {
        format: Some(format),
        detail,
    };
    match format {
        SheetFormat::Xlsx | SheetFormat::Xlsm => {
            let xlsx_error = |e: XlsxError| match e {
                XlsxError::Password => SheetError::Encrypted,
                e => corrupt(e.to_string()),
            };
            let mut workbook = Xlsx::new(Cursor::new(bytes)).map_err(xlsx_error)?;
            let name = first_worksheet(workbook.sheets_metadata(), &options.limits)?;
            let mut cells = workbook.worksheet_cells_reader(&name).map_err(xlsx_error)?;
            while let Some(cell) = cells.next_cell().map_err(xlsx_error)? {
                let (row, column) = cell.get_position();
                rows.push(row, column, renderer.data_ref(cell.get_value()))?;
            }
        }
        SheetFormat::Xlsb => {
            let xlsb_error = |e: XlsbError| match e {
                XlsbError::Password => SheetError::Encrypted,
                e => corrupt(e.to_string()),
            };
            let mut workbook = Xlsb::new(Cursor::new(bytes)).map_err(xlsb_error)?;
            let name = first_worksheet(workbook.sheets_metadata(), &options.limits)?;
            let mut cells = workbook.worksheet_cells_reader(&name).map_err(xlsb_error)?;
            while let Some(cell) = cells.next_cell().map_err(xlsb_error)? {
                let (row, column) = cell.get_position();
                rows.push(row, column, renderer.data_ref(cell.get_value()))?;
            }
        }
        SheetFormat::Xls => {
            let xls_error = |e: XlsError| match e {
                XlsError::Password => SheetError::Encrypted,
                e => corrupt(e.to_string()),
            };
            let mut workbook = Xls::new(Cursor::new(bytes)).map_err(xls_error)?;
            let name = first_worksheet(workbook.sheets_metadata(), &options.limits)?;
            let range = workbook.worksheet_range(&name).map_err(xls_error)?;
            push_range(&mut rows, &range, &renderer)?;
        }
        SheetFormat::Ods => {
            let ods_error = |e: OdsError| match e {
                OdsError::Password => SheetError::Encrypted,
                e => corrupt(e.to_string()),
            };
            let mut workbook = Ods::new(Cursor::new(bytes)).map_err(ods_error)?;
            let name = first_worksheet(workbook.sheets_metadata(), &options.limits)?;
            let range = workbook.worksheet_range(&name).map_err(ods_error)?;
            push_range(&mut rows, &range, &renderer)?;
        }
        SheetFormat::Csv => {
            return Err(corrupt("a CSV file is not a workbook".to_string()));
        }
    }
    Ok(rows.finish())
}

/// The first visible worksheet (chart sheets and macro sheets are not data), or the first
/// worksheet when all of them are hidden.
fn first_worksheet(sheets: &[Sheet], limits: &SheetLimits) -> Result<String, SheetError> {
    if sheets.len() > limits.max_sheets {
        return Err(SheetError::TooManySheets {
            sheets: sheets.len(),
            max: limits.max_sheets,
        });
    }
    let worksheets = || sheets.iter().filter(|s| s.typ == SheetType::WorkSheet);
    worksheets()
        .find(|s| s.visible == SheetVisible::Visible)
        .or_else(|| worksheets().next())
        .map(|s| s.name.clone())
        .ok_or(SheetError::NoWorksheet)
}

fn push_range(
    rows: &mut Collector<'_>,
    range: &Range<Data>,
    renderer: &Renderer,
) -> Result<(), SheetError> {
    let Some((first_row, first_column)) = range.start() else {
        return Ok(());
    };
    for (i, cells) in range.rows().enumerate() {
        let row = first_row.saturating_add(u32::try_from(i).unwrap_or(u32::MAX));
        for (j, value) in cells.iter().enumerate() {
            if matches!(value, Data::Empty) {
                continue;
            }
            let column = first_column.saturating_add(u32::try_from(j).unwrap_or(u32::MAX));
            rows.push(row, column, renderer.data(value))?;
        }
    }
    Ok(())
}

/// Gathers non-empty cells, given in reading order, into rows, enforcing the limits as it
/// goes so that an oversized sheet stops early.
struct Collector<'a> {
    limits: &'a SheetLimits,
    rows: Vec<SheetRow>,
    /// The 0-based index and the cells of the row being filled.
    current: Option<(u32, Vec<String>)>,
    /// Whether cells arrived out of row order (not written by any known app, but possible).
    unordered: bool,
}

impl<'a> Collector<'a> {
    fn new(limits: &'a SheetLimits) -> Collector<'a> {
        Collector {
            limits,
            rows: Vec::new(),
            current: None,
            unordered: false,
        }
    }

    /// Adds a cell at a 0-based position; an empty text is ignored.
    fn push(&mut self, row: u32, column: u32, text: String) -> Result<(), SheetError> {
        if text.is_empty() {
            return Ok(());
        }
        // A cell never has more characters than bytes: the cheap length decides first.
        if text.len() > self.limits.max_cell_chars {
            let chars = text.chars().count();
            if chars > self.limits.max_cell_chars {
                return Err(SheetError::CellTooLong {
                    row: row.saturating_add(1),
                    column: column_name(column),
                    chars,
                    max: self.limits.max_cell_chars,
                });
            }
        }
        if usize::try_from(column).map_or(true, |c| c >= self.limits.max_columns) {
            return Err(SheetError::TooManyColumns {
                row: row.saturating_add(1),
                column: column_name(column),
                max: self.limits.max_columns,
            });
        }
        match &mut self.current {
            Some((current, cells)) if *current == row => set(cells, column, text),
            _ => {
                if let Some((current, _)) = &self.current
                    && row < *current
                {
                    self.unordered = true;
                }
                self.flush();
                if self.rows.len() >= self.limits.max_rows {
                    return Err(SheetError::TooManyRows {
                        max: self.limits.max_rows,
                    });
                }
                let mut cells = Vec::new();
                set(&mut cells, column, text);
                self.current = Some((row, cells));
            }
        }
        Ok(())
    }

    fn flush(&mut self) {
        if let Some((row, cells)) = self.current.take()
            && let Some(cells) = finish_cells(cells)
        {
            self.rows.push(SheetRow {
                number: row.saturating_add(1),
                cells,
            });
        }
    }

    fn finish(mut self) -> Vec<SheetRow> {
        self.flush();
        if !self.unordered {
            return self.rows;
        }
        self.rows.sort_by_key(|r| r.number);
        let mut merged: Vec<SheetRow> = Vec::with_capacity(self.rows.len());
        for row in self.rows {
            match merged.last_mut() {
                Some(last) if last.number == row.number => {
                    for (column, text) in row.cells.into_iter().enumerate() {
                        if !text.is_empty() {
                            set(
                                &mut last.cells,
                                u32::try_from(column).unwrap_or(u32::MAX),
                                text,
                            );
                        }
                    }
                }
                _ => merged.push(row),
            }
        }
        merged
    }
}

fn set(cells: &mut Vec<String>, column: u32, text: String) {
    let Ok(index) = usize::try_from(column) else {
        return;
    };
    if cells.len() <= index {
        cells.resize(index + 1, String::new());
    }
    cells[index] = text;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_rows: usize, max_columns: usize) -> SheetLimits {
        SheetLimits {
            max_rows,
            max_columns,
            ..SheetLimits::default()
        }
    }

    #[test]
    fn collector_builds_rows_with_gaps() {
        let limits = limits(10, 10);
        let mut c = Collector::new(&limits);
        c.push(0, 0, "telefone".into()).unwrap();
        c.push(0, 1, "nome".into()).unwrap();
        c.push(2, 0, "5511987654321".into()).unwrap();
        c.push(2, 2, "x".into()).unwrap();
        c.push(3, 1, String::new()).unwrap();
        c.push(4, 1, "só nome".into()).unwrap();
        let rows = c.finish();
        assert_eq!(
            rows,
            vec![
                SheetRow {
                    number: 1,
                    cells: vec!["telefone".into(), "nome".into()]
                },
                SheetRow {
                    number: 3,
                    cells: vec!["5511987654321".into(), "".into(), "x".into()]
                },
                SheetRow {
                    number: 5,
                    cells: vec!["".into(), "só nome".into()]
                },
            ]
        );
    }

    #[test]
    fn collector_limits() {
        let limits = limits(2, 3);
        let mut c = Collector::new(&limits);
        c.push(0, 2, "ok".into()).unwrap();
        assert_eq!(
            c.push(1, 3, "too far".into()),
            Err(SheetError::TooManyColumns {
                row: 2,
                column: "D".into(),
                max: 3
            })
        );
        c.push(5, 0, "a".into()).unwrap();
        c.push(5, 1, "b".into()).unwrap();
        assert_eq!(
            c.push(9, 0, "c".into()),
            Err(SheetError::TooManyRows { max: 2 })
        );
    }

    #[test]
    fn collector_sorts_unordered_cells() {
        let limits = limits(10, 10);
        let mut c = Collector::new(&limits);
        c.push(3, 0, "b".into()).unwrap();
        c.push(1, 0, "a".into()).unwrap();
        c.push(3, 1, "c".into()).unwrap();
        let rows = c.finish();
        assert_eq!(
            rows,
            vec![
                SheetRow {
                    number: 2,
                    cells: vec!["a".into()]
                },
                SheetRow {
                    number: 4,
                    cells: vec!["b".into(), "c".into()]
                },
            ]
        );
    }

    fn xlsx_bytes(build: impl FnOnce(&mut rust_xlsxwriter::Workbook)) -> Vec<u8> {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        build(&mut workbook);
        workbook.save_to_buffer().unwrap()
    }

    fn read_xlsx(bytes: &[u8], options: &ReadOptions) -> Result<Vec<SheetRow>, SheetError> {
        read_rows(bytes, SheetFormat::Xlsx, options)
    }

    #[test]
    fn xlsx_cells_as_a_person_sees_them() {
        use rust_xlsxwriter::{ExcelDateTime, Format};
        let bytes = xlsx_bytes(|workbook| {
            let hidden = workbook.add_worksheet();
            hidden.set_name("Oculta").unwrap();
            hidden.write_string(0, 0, "not this one").unwrap();
            hidden.set_hidden(true);
            let sheet = workbook.add_worksheet();
            // The active sheet cannot be hidden.
            sheet.set_active(true);
            let when = Format::new().set_num_format("dd/mm/yyyy hh:mm");
            sheet.write_string(0, 0, " telefone ").unwrap();
            sheet.write_string(0, 1, "ativo").unwrap();
            sheet.write_number(1, 0, 5.511987654321E12).unwrap();
            sheet.write_boolean(1, 1, true).unwrap();
            sheet.write_number(1, 2, 12.5).unwrap();
            let datetime = ExcelDateTime::parse_from_str("2026-12-25 14:30:00").unwrap();
            sheet
                .write_datetime_with_format(1, 3, &datetime, &when)
                .unwrap();
            sheet.write_string(2, 0, "   ").unwrap();
            sheet.write_blank(2, 5, &when).unwrap();
            sheet.write_string(3, 1, "B only").unwrap();
        });
        let rows = read_xlsx(&bytes, &ReadOptions::default()).unwrap();
        assert_eq!(
            rows,
            vec![
                SheetRow {
                    number: 1,
                    cells: vec!["telefone".into(), "ativo".into()]
                },
                SheetRow {
                    number: 2,
                    cells: vec![
                        "5511987654321".into(),
                        "TRUE".into(),
                        "12.5".into(),
                        "25/12/2026 14:30".into()
                    ]
                },
                SheetRow {
                    number: 4,
                    cells: vec!["".into(), "B only".into()]
                },
            ]
        );
    }

    #[test]
    fn xlsx_limits() {
        let bytes = xlsx_bytes(|workbook| {
            let sheet = workbook.add_worksheet();
            for row in 0..5 {
                sheet.write_string(row, 0, "x").unwrap();
            }
            sheet.write_string(2, 70, "stray").unwrap();
        });
        let options = ReadOptions::default();
        assert_eq!(
            read_xlsx(&bytes, &options),
            Err(SheetError::TooManyColumns {
                row: 3,
                column: "BS".into(),
                max: 64
            })
        );
        let options = ReadOptions {
            limits: SheetLimits {
                max_rows: 4,
                max_columns: 100,
                ..SheetLimits::default()
            },
            ..ReadOptions::default()
        };
        assert_eq!(
            read_xlsx(&bytes, &options),
            Err(SheetError::TooManyRows { max: 4 })
        );
    }

    #[test]
    fn empty_workbook_has_no_rows() {
        let bytes = xlsx_bytes(|workbook| {
            workbook.add_worksheet();
        });
        assert_eq!(read_xlsx(&bytes, &ReadOptions::default()), Ok(vec![]));
    }

    #[test]
    fn damaged_workbooks_are_corrupt() {
        let err = read_rows(
            b"PK\x03\x04 nothing",
            SheetFormat::Xlsx,
            &ReadOptions::default(),
        );
        assert!(matches!(
            err,
            Err(SheetError::Corrupt {
                format: Some(SheetFormat::Xlsx),
                ..
            })
        ));
        let err = read_rows(
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1",
            SheetFormat::Xls,
            &ReadOptions::default(),
        );
        assert!(matches!(
            err,
            Err(SheetError::Corrupt {
                format: Some(SheetFormat::Xls),
                ..
            })
        ));
    }

    #[test]
    fn first_visible_worksheet() {
        let sheet = |name: &str, typ, visible| Sheet {
            name: name.into(),
            typ,
            visible,
        };
        let sheets = [
            sheet("Gráfico", SheetType::ChartSheet, SheetVisible::Visible),
            sheet("Oculta", SheetType::WorkSheet, SheetVisible::Hidden),
            sheet("Contatos", SheetType::WorkSheet, SheetVisible::Visible),
        ];
        let limits = SheetLimits::default();
        assert_eq!(first_worksheet(&sheets, &limits).unwrap(), "Contatos");
        assert_eq!(first_worksheet(&sheets[..2], &limits).unwrap(), "Oculta");
        assert_eq!(
            first_worksheet(&sheets[..1], &limits),
            Err(SheetError::NoWorksheet)
        );
        let two = SheetLimits {
            max_sheets: 2,
            ..SheetLimits::default()
        };
        assert_eq!(
            first_worksheet(&sheets, &two),
            Err(SheetError::TooManySheets { sheets: 3, max: 2 })
        );
    }
}
