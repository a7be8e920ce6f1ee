//! Every fixture spreadsheet, in every format, reads to the same rows.
//!
//! The fixtures are written by `scripts/make-fixtures` (see `shared/examples/make_fixtures.rs`)
//! and committed.

use std::path::PathBuf;

use anna_shared::sheet::{
    ReadOptions, SheetError, SheetFormat, SheetLimits, SheetRow, detect_format, read_sheet,
};

fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn fixture(name: &str) -> Vec<u8> {
    let path = repo_path("tests/fixtures/sheets").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_all(
    bytes: &[u8],
    options: &ReadOptions,
) -> Result<(SheetFormat, Vec<SheetRow>), SheetError> {
    let rows = read_sheet(bytes, options)?;
    let format = rows.format();
    Ok((format, rows.collect::<Result<Vec<_>, _>>()?))
}

fn rows(expected: &[(u32, &[&str])]) -> Vec<SheetRow> {
    expected
        .iter()
        .map(|(number, cells)| SheetRow {
            number: *number,
            cells: cells.iter().map(|c| c.to_string()).collect(),
        })
        .collect()
}

/// boas_vindas in every format. Row 4 is empty in the file and skipped; rows 7 (invalid
/// phone), 8 (no name) and 9 (row 2's phone again) are the bad ones.
fn boas_vindas() -> Vec<SheetRow> {
    rows(&[
        (1, &["telefone", "loja", "nome", "data"]),
        (
            2,
            &[
                "+55 11 98765-4321",
                "Loja Centro",
                "João da Silva",
                "25/12/2026",
            ],
        ),
        (
            3,
            &[
                "(21) 99876-5432",
                "Loja Copacabana",
                "Maria da Conceição",
                "26/12/2026",
            ],
        ),
        (
            5,
            &[
                "5531987654321",
                "Loja Savassi, BH",
                "Lúcia Ferreira",
                "27/12/2026",
            ],
        ),
        (
            6,
            &[
                "5547991234567",
                "Loja Joinville",
                "André Souza",
                "02/01/2027",
            ],
        ),
        (7, &["12345", "Loja Centro", "Pedro Alves", "03/01/2027"]),
        (8, &["(11) 91234-5678", "Loja Centro", "", "04/01/2027"]),
        (
            9,
            &[
                "+55 11 98765-4321",
                "Loja Centro",
                "José Santos",
                "05/01/2027",
            ],
        ),
    ])
}

const BOAS_VINDAS_FILES: &[(&str, SheetFormat)] = &[
    ("boas_vindas.xlsx", SheetFormat::Xlsx),
    ("boas_vindas.xlsm", SheetFormat::Xlsm),
    ("boas_vindas.xlsb", SheetFormat::Xlsb),
    ("boas_vindas.xls", SheetFormat::Xls),
    ("boas_vindas.ods", SheetFormat::Ods),
    ("boas_vindas.csv", SheetFormat::Csv),
    ("boas_vindas-win1252-semicolon.csv", SheetFormat::Csv),
    ("boas_vindas-utf8-bom.csv", SheetFormat::Csv),
    ("boas_vindas-tab.csv", SheetFormat::Csv),
];

#[test]
fn boas_vindas_reads_the_same_in_every_format() {
    let expected = boas_vindas();
    for (name, format) in BOAS_VINDAS_FILES {
        let bytes = fixture(name);
        assert_eq!(detect_format(&bytes), Ok(*format), "{name}");
        let (read_format, rows) =
            read_all(&bytes, &ReadOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(read_format, *format, "{name}");
        assert_eq!(rows, expected, "{name}");
    }
}

#[test]
fn number_and_date_cells_read_as_a_person_sees_them() {
    for name in [
        "boas_vindas.xlsx",
        "boas_vindas.xlsb",
        "boas_vindas.xls",
        "boas_vindas.ods",
    ] {
        let (_, rows) = read_all(&fixture(name), &ReadOptions::default()).unwrap();
        // A phone number stored as a number cell.
        assert_eq!(rows[3].cells[0], "5531987654321", "{name}");
        // A whole number stored as a number cell.
        assert_eq!(rows[5].cells[0], "12345", "{name}");
        // A date cell, in the configured format.
        assert_eq!(rows[1].cells[3], "25/12/2026", "{name}");
        let iso = ReadOptions {
            date_format: "%Y-%m-%d".into(),
            ..ReadOptions::default()
        };
        let (_, rows) = read_all(&fixture(name), &iso).unwrap();
        assert_eq!(rows[1].cells[3], "2026-12-25", "{name}");
    }
    // In CSV the date is text and stays as written.
    let iso = ReadOptions {
        date_format: "%Y-%m-%d".into(),
        ..ReadOptions::default()
    };
    let (_, rows) = read_all(&fixture("boas_vindas.csv"), &iso).unwrap();
    assert_eq!(rows[1].cells[3], "25/12/2026");
}

#[test]
fn lembrete_consulta_has_named_columns_in_another_order() {
    let expected = rows(&[
        (1, &["telefone", "hora", "nome", "data"]),
        (
            2,
            &[
                "+55 11 97654-3210",
                "14:30",
                "Ana Beatriz Gonçalves",
                "11/01/2027",
            ],
        ),
        (
            3,
            &["(31) 98888-7777", "09:00", "Sérgio Araújo", "12/01/2027"],
        ),
        (
            4,
            &["5521977776666", "16:45", "Fátima Conceição", "13/01/2027"],
        ),
    ]);
    for (name, format) in [
        ("lembrete_consulta.xlsx", SheetFormat::Xlsx),
        ("lembrete_consulta.csv", SheetFormat::Csv),
    ] {
        let (read_format, rows) = read_all(&fixture(name), &ReadOptions::default()).unwrap();
        assert_eq!(read_format, format, "{name}");
        assert_eq!(rows, expected, "{name}");
    }
}

#[test]
fn damaged_and_wrong_files_are_reported() {
    let corrupt = fixture("corrupt.xlsx");
    assert_eq!(detect_format(&corrupt), Ok(SheetFormat::Xlsx));
    match read_sheet(&corrupt, &ReadOptions::default()) {
        Err(SheetError::Corrupt {
            format: Some(SheetFormat::Xlsx),
            detail,
        }) => assert!(!detail.is_empty()),
        other => panic!("corrupt.xlsx: {other:?}"),
    }

    let png = fixture("not-a-sheet.xlsx");
    assert_eq!(
        read_sheet(&png, &ReadOptions::default()).unwrap_err(),
        SheetError::NotASpreadsheet {
            what: "a PNG image".into()
        }
    );
}

#[test]
fn limits_apply_to_every_format() {
    let few_rows = ReadOptions {
        limits: SheetLimits {
            max_rows: 3,
            ..SheetLimits::default()
        },
        ..ReadOptions::default()
    };
    let few_columns = ReadOptions {
        limits: SheetLimits {
            max_columns: 3,
            ..SheetLimits::default()
        },
        ..ReadOptions::default()
    };
    let small = ReadOptions {
        limits: SheetLimits {
            max_bytes: 100,
            ..SheetLimits::default()
        },
        ..ReadOptions::default()
    };
    for (name, _) in BOAS_VINDAS_FILES {
        let bytes = fixture(name);
        assert_eq!(
            read_all(&bytes, &few_rows).unwrap_err(),
            SheetError::TooManyRows { max: 3 },
            "{name}"
        );
        assert_eq!(
            read_all(&bytes, &few_columns).unwrap_err(),
            SheetError::TooManyColumns {
                row: 1,
                column: "D".into(),
                max: 3
            },
            "{name}"
        );
        assert!(
            matches!(
                read_all(&bytes, &small),
                Err(SheetError::TooLarge { max: 100, .. })
            ),
            "{name}"
        );
    }
    // For CSV the rows before the limit come out first, then the error.
    let items: Vec<_> = read_sheet(&fixture("boas_vindas.csv"), &few_rows)
        .unwrap()
        .collect();
    assert_eq!(items.len(), 4);
    assert!(items[..3].iter().all(Result::is_ok));
    assert_eq!(items[3], Err(SheetError::TooManyRows { max: 3 }));
}

#[test]
fn demo_spreadsheets_read() {
    for (name, format, template_width) in [
        ("examples/boas_vindas.xlsx", SheetFormat::Xlsx, 4),
        ("examples/lembrete_consulta.ods", SheetFormat::Ods, 4),
        ("examples/promo_natal-win1252.csv", SheetFormat::Csv, 4),
    ] {
        let path = repo_path(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (read_format, rows) = read_all(&bytes, &ReadOptions::default()).unwrap();
        assert_eq!(read_format, format, "{name}");
        assert!((6..=9).contains(&rows.len()), "{name}: {} rows", rows.len());
        assert_eq!(rows[0].cells.len(), template_width, "{name}");
        assert_eq!(rows[0].cells[0], "telefone", "{name}");
        assert!(
            rows.iter().any(|r| r.cells[0] == "5511900000000"),
            "{name}: no row for the number that is not on WhatsApp"
        );
        let text: String = rows
            .iter()
            .flat_map(|r| r.cells.iter().map(String::as_str))
            .collect();
        assert!(!text.contains('\u{fffd}'), "{name}: mis-decoded text");
    }
    let (_, rows) = read_all(
        &std::fs::read(repo_path("examples/promo_natal-win1252.csv")).unwrap(),
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(
        rows[1].cells,
        ["+55 11 97222-1001", "Antônio Nóbrega", "15%", "24/12/2026"]
    );
}

/// Cut and damaged copies of every fixture give an error or rows, never a panic.
#[test]
fn damaged_copies_never_panic() {
    let names = [
        "boas_vindas.xlsx",
        "boas_vindas.xlsb",
        "boas_vindas.xls",
        "boas_vindas.ods",
        "boas_vindas-win1252-semicolon.csv",
    ];
    for name in names {
        let bytes = fixture(name);
        let step = (bytes.len() / 40).max(1);
        for end in (0..bytes.len()).step_by(step) {
            if let Ok(rows) = read_sheet(&bytes[..end], &ReadOptions::default()) {
                let _ = rows.count();
            }
        }
        for at in (0..bytes.len()).step_by(step) {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x5A;
            if let Ok(rows) = read_sheet(&damaged, &ReadOptions::default()) {
                let _ = rows.count();
            }
        }
    }
}
