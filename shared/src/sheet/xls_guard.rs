//! The xls pre-scan: the sheet sizes an Excel 97-2003 file claims, checked before calamine
//! allocates for them.
//!
//! calamine trusts three things in an xls file: its compound-file sector chains, which it
//! follows without a loop check (a looping chain grows a buffer until the allocation fails:
//! found by `fuzz_props::xls_reader_survives_mutations`, `tests/fixtures/fuzz-found/`); the
//! DIMENSIONS record, for which it reserves rows × columns cells up-front (43 TB for
//! `tests/fixtures/hostile/xls-dimensions-bomb.xls`); and the positions of the cells, from
//! which it builds a dense range of every cell between the first and the last. A failed
//! allocation aborts the process; no `catch_unwind` can stop that.
//! This walks the records of the workbook stream once and refuses, per worksheet, a claimed
//! or actual area over [`SheetLimits::max_cells`] and a value right of
//! [`SheetLimits::max_columns`]. A compound file the `cfb` crate cannot open is damaged;
//! records that cannot be walked are left to calamine, which reports them.

use std::io::{Cursor, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::{SheetError, SheetFormat, SheetLimits, column_name};

const BOF: u16 = 0x0809;
const DIMENSIONS: u16 = 0x0200;
const MULRK: u16 = 0x00BD;
/// Records that start with a cell's row and column (u16 each): NUMBER, LABEL, RSTRING,
/// BOOLERR, RK, LABELSST, FORMULA.
const CELLS: [u16; 7] = [0x0203, 0x0204, 0x00D6, 0x0205, 0x027E, 0x00FD, 0x0006];

pub(crate) fn check_xls(bytes: &[u8], limits: &SheetLimits) -> Result<(), SheetError> {
    let corrupt = |detail: String| SheetError::Corrupt {
        format: Some(SheetFormat::Xls),
        detail,
    };
    match catch_unwind(AssertUnwindSafe(|| workbook_stream(bytes))) {
        Ok(Ok(Some(stream))) => check_records(&stream, limits),
        // No workbook stream: calamine says what it makes of that.
        Ok(Ok(None)) => Ok(()),
        Ok(Err(e)) => Err(corrupt(format!("the compound file cannot be read: {e}"))),
        Err(_) => Err(corrupt("the compound file cannot be read".to_owned())),
    }
}

/// The workbook stream, read with the `cfb` crate. A compound file that crate refuses is not
/// handed to calamine: calamine's own reader follows sector chains without noticing loops,
/// and a chain that loops grows its buffer until the process aborts (found by
/// `fuzz_props::xls_reader_survives_mutations`, `tests/fixtures/fuzz-found/`).
fn workbook_stream(bytes: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
    let mut file = cfb::CompoundFile::open(Cursor::new(bytes))?;
    let Some(path) = file
        .walk()
        .filter(|e| e.is_stream())
        .map(|e| e.path().to_path_buf())
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.eq_ignore_ascii_case("Workbook") || n.eq_ignore_ascii_case("Book")
            })
        })
    else {
        return Ok(None);
    };
    let mut stream = file.open_stream(path)?;
    let mut data = Vec::new();
    // The stream is no larger than the file, which the size limit has bounded.
    stream.read_to_end(&mut data)?;
    Ok(Some(data))
}

#[derive(Default)]
struct Area {
    rows: Option<(u32, u32)>,
    columns: Option<(u32, u32)>,
}

impl Area {
    fn add(&mut self, row: u32, first: u32, last: u32) {
        self.rows = Some(
            self.rows
                .map_or((row, row), |(lo, hi)| (lo.min(row), hi.max(row))),
        );
        self.columns = Some(
            self.columns
                .map_or((first, last), |(lo, hi)| (lo.min(first), hi.max(last))),
        );
    }

    fn cells(&self) -> u64 {
        match (self.rows, self.columns) {
            (Some((r0, r1)), Some((c0, c1))) => {
                (u64::from(r1 - r0) + 1).saturating_mul(u64::from(c1 - c0) + 1)
            }
            _ => 0,
        }
    }
}

fn u16_at(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 2)
        .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn check_records(stream: &[u8], limits: &SheetLimits) -> Result<(), SheetError> {
    let max_cells = limits.max_cells as u64;
    let too_many = |cells: u64| SheetError::TooManyCells {
        cells,
        max: limits.max_cells,
    };
    let mut area = Area::default();
    let mut at = 0usize;
    while let (Some(kind), Some(len)) = (u16_at(stream, at), u16_at(stream, at + 2)) {
        let start = at + 4;
        let end = start + len as usize;
        let Some(data) = stream.get(start..end) else {
            // A record running past the stream: calamine reports it.
            return Ok(());
        };
        at = end;
        let kind = kind as u16;
        if kind == BOF {
            area = Area::default();
        } else if kind == DIMENSIONS {
            // What calamine reserves for: (last row - first row) × (last column - first column),
            // BIFF8 with 32-bit rows, BIFF5 with 16-bit ones.
            let (rows, columns) = match data.len() {
                14 | 16 => (
                    u32_at(data, 4)
                        .zip(u32_at(data, 0))
                        .map(|(l, f)| l.saturating_sub(f)),
                    u16_at(data, 10).zip(u16_at(data, 8)),
                ),
                10 => (
                    u16_at(data, 2)
                        .zip(u16_at(data, 0))
                        .map(|(l, f)| l.saturating_sub(f)),
                    u16_at(data, 6).zip(u16_at(data, 4)),
                ),
                _ => (None, None),
            };
            if let (Some(rows), Some((last, first))) = (rows, columns) {
                // calamine takes a first column above 255 as 0.
                let first = if first > 0xFF || last < first {
                    0
                } else {
                    first
                };
                let cells = u64::from(rows).saturating_mul(u64::from(last.saturating_sub(first)));
                if cells > max_cells {
                    return Err(too_many(cells));
                }
            }
        } else if CELLS.contains(&kind) || kind == MULRK {
            let (Some(row), Some(first)) = (u16_at(data, 0), u16_at(data, 2)) else {
                continue;
            };
            let last = if kind == MULRK {
                data.len()
                    .checked_sub(2)
                    .and_then(|at| u16_at(data, at))
                    .unwrap_or(first)
                    .max(first)
            } else {
                first
            };
            if last as usize >= limits.max_columns {
                return Err(SheetError::TooManyColumns {
                    row: row + 1,
                    column: column_name(last),
                    max: limits.max_columns,
                });
            }
            area.add(row, first, last);
            let cells = area.cells();
            if cells > max_cells {
                return Err(too_many(cells));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut out = kind.to_le_bytes().to_vec();
        out.extend_from_slice(&(data.len() as u16).to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    fn number(row: u16, col: u16) -> Vec<u8> {
        let mut data = row.to_le_bytes().to_vec();
        data.extend_from_slice(&col.to_le_bytes());
        data.extend_from_slice(&[0; 10]);
        record(0x0203, &data)
    }

    fn dimensions(rows: u32, cols: u16) -> Vec<u8> {
        let mut data = 0u32.to_le_bytes().to_vec();
        data.extend_from_slice(&rows.to_le_bytes());
        data.extend_from_slice(&0u16.to_le_bytes());
        data.extend_from_slice(&cols.to_le_bytes());
        data.extend_from_slice(&[0, 0]);
        record(DIMENSIONS, &data)
    }

    #[test]
    fn claimed_and_actual_areas_are_bounded() {
        let limits = SheetLimits::default();
        let ok = [dimensions(10, 4), number(0, 0), number(9, 3)].concat();
        assert_eq!(check_records(&ok, &limits), Ok(()));
        let claimed = [dimensions(u32::MAX, 256)].concat();
        assert!(matches!(
            check_records(&claimed, &limits),
            Err(SheetError::TooManyCells { .. })
        ));
        let spread = [number(0, 0), number(65_535, 63)].concat();
        let million = SheetLimits {
            max_cells: 1_000_000,
            ..SheetLimits::default()
        };
        assert_eq!(
            check_records(&spread, &million),
            Err(SheetError::TooManyCells {
                cells: 65_536 * 64,
                max: 1_000_000
            })
        );
        let wide = [number(3, 200)].concat();
        assert_eq!(
            check_records(&wide, &limits),
            Err(SheetError::TooManyColumns {
                row: 4,
                column: column_name(200),
                max: 64
            })
        );
        // A new worksheet (BOF) starts a new area.
        let small = SheetLimits {
            max_cells: 100,
            ..SheetLimits::default()
        };
        let two = [number(0, 0), record(BOF, &[0; 16]), number(50, 1)].concat();
        assert_eq!(check_records(&two, &small), Ok(()));
        let one = [number(0, 0), number(50, 1)].concat();
        assert!(check_records(&one, &small).is_err());
        // Truncated records end the walk quietly.
        assert_eq!(check_records(&ok[..ok.len() - 3], &limits), Ok(()));
    }
}
