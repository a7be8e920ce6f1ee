//! Writes the spreadsheet fixtures (`tests/fixtures/sheets/`) and the demo spreadsheets
//! (`examples/`) in every format the reader supports, then reads each one back with
//! `anna_shared::sheet` and prints its rows.
//!
//! Run it through `scripts/make-fixtures`, which also writes the xls fixture (with Python's
//! xlwt, from the spec this program writes). The outputs are committed; CI never regenerates
//! them. Output is deterministic: running it twice gives the same bytes.
//!
//! ```text
//! cargo run -p anna-shared --example make_fixtures -- [REPO_ROOT] [XLS_SPEC_JSON]
//! ```
//!
//! - xlsx: rust_xlsxwriter. xlsm: the same workbook with the macro-enabled content type (a
//!   macro-enabled workbook without macros, which Excel opens as such).
//! - xlsb: a minimal BIFF12 writer below (shared strings, number formats for dates, times
//!   and whole numbers, column widths), as no xlsb writer exists for Rust or Python.
//! - ods: zip + XML by hand, with date, time and number styles as LibreOffice writes them.
//! - csv: written directly, in UTF-8 (with and without BOM), Windows-1252 and UTF-8 with tabs.

use std::error::Error;
use std::fs;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use anna_shared::sheet::{ReadOptions, read_sheet};
use chrono::NaiveDate;
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// One cell of a fixture, typed the way a person would have typed it into a spreadsheet.
#[derive(Debug, Clone)]
enum Cell {
    Text(&'static str),
    /// A number cell (a phone number typed without formatting becomes one).
    Number(f64),
    Date(i32, u32, u32),
    /// A time of day.
    Time(u32, u32),
    Empty,
}

use Cell::{Date, Empty, Number, Text, Time};

struct Table {
    sheet: &'static str,
    /// Row 1 is the header; an empty `Vec` is an empty row.
    rows: Vec<Vec<Cell>>,
}

/// `boas_vindas` (positional: header {{1}} = loja, body {{1}} = nome, {{2}} = data).
/// Rows 2, 3, 5, 6 are good; row 4 is empty; 7 has an invalid phone, 8 no name, 9 repeats
/// row 2's phone.
fn boas_vindas() -> Table {
    Table {
        sheet: "Clientes",
        rows: vec![
            vec![Text("telefone"), Text("loja"), Text("nome"), Text("data")],
            vec![
                Text("+55 11 98765-4321"),
                Text("Loja Centro"),
                Text("João da Silva"),
                Date(2026, 12, 25),
            ],
            vec![
                Text("(21) 99876-5432"),
                Text("Loja Copacabana"),
                Text("Maria da Conceição"),
                Date(2026, 12, 26),
            ],
            vec![],
            vec![
                Number(5531987654321.0),
                Text("Loja Savassi, BH"),
                Text("Lúcia Ferreira"),
                Date(2026, 12, 27),
            ],
            vec![
                Text("5547991234567"),
                Text("Loja Joinville"),
                Text("André Souza"),
                Date(2027, 1, 2),
            ],
            vec![
                Number(12345.0),
                Text("Loja Centro"),
                Text("Pedro Alves"),
                Date(2027, 1, 3),
            ],
            vec![
                Text("(11) 91234-5678"),
                Text("Loja Centro"),
                Empty,
                Date(2027, 1, 4),
            ],
            vec![
                Text("+55 11 98765-4321"),
                Text("Loja Centro"),
                Text("José Santos"),
                Date(2027, 1, 5),
            ],
        ],
    }
}

/// `lembrete_consulta` (named: {{nome}}, {{data}}, {{hora}}), columns in another order than
/// the template's variables. Three good rows.
fn lembrete_consulta() -> Table {
    Table {
        sheet: "Consultas",
        rows: vec![
            vec![Text("telefone"), Text("hora"), Text("nome"), Text("data")],
            vec![
                Text("+55 11 97654-3210"),
                Time(14, 30),
                Text("Ana Beatriz Gonçalves"),
                Date(2027, 1, 11),
            ],
            vec![
                Text("(31) 98888-7777"),
                Time(9, 0),
                Text("Sérgio Araújo"),
                Date(2027, 1, 12),
            ],
            vec![
                Number(5521977776666.0),
                Time(16, 45),
                Text("Fátima Conceição"),
                Date(2027, 1, 13),
            ],
        ],
    }
}

/// Demo: `examples/boas_vindas.xlsx`.
fn demo_boas_vindas() -> Table {
    Table {
        sheet: "Clientes",
        rows: vec![
            vec![Text("telefone"), Text("loja"), Text("nome"), Text("data")],
            vec![
                Text("+55 11 99111-2233"),
                Text("Loja Paulista"),
                Text("Beatriz Araújo"),
                Date(2027, 1, 5),
            ],
            vec![
                Text("(21) 99222-3344"),
                Text("Loja Ipanema"),
                Text("Cauã Nogueira"),
                Date(2027, 1, 6),
            ],
            vec![
                Number(5531993334455.0),
                Text("Loja Pampulha"),
                Text("Luíza Gonçalves"),
                Date(2027, 1, 7),
            ],
            vec![
                Number(5511900000000.0),
                Text("Loja Paulista"),
                Text("Otávio Ribeiro"),
                Date(2027, 1, 8),
            ],
            vec![
                Text("99"),
                Text("Loja Ipanema"),
                Text("Rogério Lima"),
                Date(2027, 1, 9),
            ],
            vec![
                Text("(41) 99555-6677"),
                Text("Loja Batel"),
                Empty,
                Date(2027, 1, 10),
            ],
            vec![
                Text("+55 48 99666-7788"),
                Text("Loja Beira-Mar"),
                Text("Heloísa Martins"),
                Date(2027, 1, 11),
            ],
        ],
    }
}

/// Demo: `examples/lembrete_consulta.ods`.
fn demo_lembrete_consulta() -> Table {
    Table {
        sheet: "Consultas",
        rows: vec![
            vec![Text("telefone"), Text("hora"), Text("nome"), Text("data")],
            vec![
                Text("+55 11 98111-0001"),
                Time(8, 30),
                Text("Márcia Tavares"),
                Date(2027, 1, 18),
            ],
            vec![
                Text("(11) 98111-0002"),
                Time(10, 0),
                Text("Caio Brandão"),
                Date(2027, 1, 18),
            ],
            vec![
                Number(5511981110003.0),
                Time(15, 15),
                Text("Ingrid Simões"),
                Date(2027, 1, 19),
            ],
            vec![
                Text("5511900000000"),
                Time(11, 45),
                Text("Vinícius Prado"),
                Date(2027, 1, 19),
            ],
            vec![
                Text("000"),
                Time(9, 0),
                Text("Telma Rocha"),
                Date(2027, 1, 20),
            ],
            vec![
                Text("(19) 98111-0006"),
                Empty,
                Text("Jônatas Freire"),
                Date(2027, 1, 20),
            ],
        ],
    }
}

/// Demo: `examples/promo_natal-win1252.csv` (positional body {{1}} nome, {{2}} desconto,
/// {{3}} validade as text).
fn demo_promo_natal() -> Table {
    Table {
        sheet: "Promo",
        rows: vec![
            vec![
                Text("telefone"),
                Text("nome"),
                Text("desconto"),
                Text("validade"),
            ],
            vec![
                Text("+55 11 97222-1001"),
                Text("Antônio Nóbrega"),
                Text("15%"),
                Text("24/12/2026"),
            ],
            vec![
                Text("(21) 97222-1002"),
                Text("Cecília Magalhães"),
                Text("20%"),
                Text("24/12/2026"),
            ],
            vec![
                Text("5531972221003"),
                Text("Joaquim Brandão"),
                Text("10%"),
                Text("31/12/2026"),
            ],
            vec![
                Text("5511900000000"),
                Text("Glória Peçanha"),
                Text("15%"),
                Text("24/12/2026"),
            ],
            vec![
                Text("55119"),
                Text("Raí Gusmão"),
                Text("25%"),
                Text("24/12/2026"),
            ],
            vec![
                Text("(51) 97222-1006"),
                Empty,
                Text("30%"),
                Text("31/12/2026"),
            ],
        ],
    }
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let root = match args.next() {
        Some(root) => PathBuf::from(root),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
    };
    let xls_spec = args.next().map(PathBuf::from);
    let sheets = root.join("tests/fixtures/sheets");
    let examples = root.join("examples");
    fs::create_dir_all(&sheets)?;
    fs::create_dir_all(&examples)?;

    let boas_vindas = boas_vindas();
    let boas_vindas_xlsx = xlsx(&boas_vindas)?;
    write(&sheets.join("boas_vindas.xlsx"), &boas_vindas_xlsx)?;
    write(
        &sheets.join("boas_vindas.xlsm"),
        &macro_enabled(&boas_vindas_xlsx)?,
    )?;
    write(
        &sheets.join("boas_vindas.xlsb"),
        &xlsb::workbook(&boas_vindas)?,
    )?;
    write(&sheets.join("boas_vindas.ods"), &ods(&boas_vindas)?)?;
    write(
        &sheets.join("boas_vindas.csv"),
        &csv(&boas_vindas, &CsvStyle::UTF8_COMMA),
    )?;
    write(
        &sheets.join("boas_vindas-win1252-semicolon.csv"),
        &csv(&boas_vindas, &CsvStyle::EXCEL_BRAZIL),
    )?;
    write(
        &sheets.join("boas_vindas-utf8-bom.csv"),
        &csv(&boas_vindas, &CsvStyle::UTF8_BOM_SEMICOLON),
    )?;
    write(
        &sheets.join("boas_vindas-tab.csv"),
        &csv(&boas_vindas, &CsvStyle::UTF8_TAB),
    )?;
    if let Some(spec) = &xls_spec {
        write(spec, xls_spec_json(&boas_vindas).as_bytes())?;
    }

    let lembrete = lembrete_consulta();
    write(&sheets.join("lembrete_consulta.xlsx"), &xlsx(&lembrete)?)?;
    write(
        &sheets.join("lembrete_consulta.csv"),
        &csv(&lembrete, &CsvStyle::UTF8_COMMA),
    )?;

    // A truncated download: the zip's central directory is missing.
    write(
        &sheets.join("corrupt.xlsx"),
        &boas_vindas_xlsx[..boas_vindas_xlsx.len() / 2],
    )?;
    // A screenshot uploaded with a spreadsheet's name.
    write(&sheets.join("not-a-sheet.xlsx"), &png())?;

    write(
        &examples.join("boas_vindas.xlsx"),
        &xlsx(&demo_boas_vindas())?,
    )?;
    write(
        &examples.join("lembrete_consulta.ods"),
        &ods(&demo_lembrete_consulta())?,
    )?;
    write(
        &examples.join("promo_natal-win1252.csv"),
        &csv(&demo_promo_natal(), &CsvStyle::EXCEL_BRAZIL),
    )?;

    // Read everything back.
    let mut paths: Vec<PathBuf> = [&sheets, &examples]
        .iter()
        .flat_map(|dir| {
            fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
        })
        .filter(|p| p.extension().is_some_and(|e| e != "md" && e != "json"))
        .collect();
    paths.sort();
    for path in paths {
        let bytes = fs::read(&path)?;
        println!("== {}", path.strip_prefix(&root).unwrap_or(&path).display());
        match read_sheet(&bytes, &ReadOptions::default()) {
            Ok(rows) => {
                println!("   format {}", rows.format());
                for row in rows {
                    match row {
                        Ok(row) => println!("   {:>2} {:?}", row.number, row.cells),
                        Err(e) => println!("   error: {e}"),
                    }
                }
            }
            Err(e) => println!("   error: {e}"),
        }
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()).into())
}

fn date(y: i32, m: u32, d: u32) -> Result<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| format!("bad date {y}-{m}-{d}").into())
}

/// Excel's serial number for a date (1900 date system).
fn serial(y: i32, m: u32, d: u32) -> Result<f64> {
    Ok((date(y, m, d)? - date(1899, 12, 30)?).num_days() as f64)
}

fn time_fraction(h: u32, m: u32) -> f64 {
    f64::from(h * 60 + m) / (24.0 * 60.0)
}

fn width(table: &Table) -> usize {
    table.rows.iter().map(Vec::len).max().unwrap_or(0)
}

// ---------------------------------------------------------------- xlsx / xlsm

fn xlsx(table: &Table) -> Result<Vec<u8>> {
    let mut workbook = Workbook::new();
    let properties = DocProperties::new()
        .set_author("anna-notify")
        .set_creation_datetime(&ExcelDateTime::from_ymd(2026, 1, 1)?);
    workbook.set_properties(&properties);
    let header = Format::new().set_bold();
    let date_format = Format::new().set_num_format("dd/mm/yyyy");
    let time_format = Format::new().set_num_format("hh:mm");
    let whole = Format::new().set_num_format("0");
    let sheet = workbook.add_worksheet();
    sheet.set_name(table.sheet)?;
    for column in 0..width(table) {
        sheet.set_column_width(u16::try_from(column)?, 24)?;
    }
    for (r, row) in table.rows.iter().enumerate() {
        let r = u32::try_from(r)?;
        for (c, cell) in row.iter().enumerate() {
            let c = u16::try_from(c)?;
            match *cell {
                Text(text) if r == 0 => {
                    sheet.write_string_with_format(r, c, text, &header)?;
                }
                Text(text) => {
                    sheet.write_string(r, c, text)?;
                }
                Number(n) => {
                    sheet.write_number_with_format(r, c, n, &whole)?;
                }
                Date(y, m, d) => {
                    let value = ExcelDateTime::from_ymd(
                        u16::try_from(y)?,
                        u8::try_from(m)?,
                        u8::try_from(d)?,
                    )?;
                    sheet.write_date_with_format(r, c, &value, &date_format)?;
                }
                Time(h, m) => {
                    let value = ExcelDateTime::from_hms(u16::try_from(h)?, u8::try_from(m)?, 0)?;
                    sheet.write_time_with_format(r, c, &value, &time_format)?;
                }
                Empty => {}
            }
        }
    }
    Ok(workbook.save_to_buffer()?)
}

/// The same workbook declared macro-enabled, as Excel saves an .xlsm.
fn macro_enabled(xlsx: &[u8]) -> Result<Vec<u8>> {
    rezip(xlsx, |name, data| {
        if name == "[Content_Types].xml" {
            let text = String::from_utf8_lossy(&data).replace(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
                "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
            );
            text.into_bytes()
        } else {
            data
        }
    })
}

fn zip_options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644)
}

fn rezip(bytes: &[u8], patch: impl Fn(&str, Vec<u8>) -> Vec<u8>) -> Result<Vec<u8>> {
    let mut archive = ZipArchive::new(Cursor::new(bytes))?;
    let mut out = ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i)?;
        let name = entry.name()?.into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        out.start_file(name.as_str(), zip_options())?;
        out.write_all(&patch(&name, data))?;
    }
    Ok(out.finish()?.into_inner())
}

fn zip_of(entries: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    let mut out = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in entries {
        let options = if *name == "mimetype" {
            zip_options().compression_method(CompressionMethod::Stored)
        } else {
            zip_options()
        };
        out.start_file(*name, options)?;
        out.write_all(data)?;
    }
    Ok(out.finish()?.into_inner())
}

// ---------------------------------------------------------------- ods

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn ods(table: &Table) -> Result<Vec<u8>> {
    const NS: &str = concat!(
        r#"xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" "#,
        r#"xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" "#,
        r#"xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" "#,
        r#"xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" "#,
        r#"xmlns:number="urn:oasis:names:tc:opendocument:xmlns:datastyle:1.0" "#,
        r#"xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" "#,
        r#"xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" "#,
        r#"office:version="1.2""#
    );
    let columns = width(table);
    let mut body = String::new();
    for row in &table.rows {
        body.push_str("<table:table-row table:style-name=\"ro1\">");
        if row.is_empty() {
            body.push_str(&format!(
                "<table:table-cell table:number-columns-repeated=\"{columns}\"/>"
            ));
        }
        for cell in row {
            let p =
                |shown: &str| format!("<text:p>{}</text:p></table:table-cell>", xml_escape(shown));
            match *cell {
                Text(text) => {
                    body.push_str("<table:table-cell office:value-type=\"string\">");
                    body.push_str(&p(text));
                }
                Number(n) => {
                    body.push_str(&format!(
                        "<table:table-cell table:style-name=\"ce_whole\" office:value-type=\"float\" office:value=\"{n}\">"
                    ));
                    body.push_str(&p(&n.to_string()));
                }
                Date(y, m, d) => {
                    body.push_str(&format!(
                        "<table:table-cell table:style-name=\"ce_date\" office:value-type=\"date\" office:date-value=\"{y:04}-{m:02}-{d:02}\">"
                    ));
                    body.push_str(&p(&format!("{d:02}/{m:02}/{y:04}")));
                }
                Time(h, m) => {
                    body.push_str(&format!(
                        "<table:table-cell table:style-name=\"ce_time\" office:value-type=\"time\" office:time-value=\"PT{h:02}H{m:02}M00S\">"
                    ));
                    body.push_str(&p(&format!("{h:02}:{m:02}")));
                }
                Empty => body.push_str("<table:table-cell/>"),
            }
        }
        body.push_str("</table:table-row>");
    }
    let content = format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            "\n<office:document-content {ns}>",
            "<office:automatic-styles>",
            r#"<style:style style:name="co1" style:family="table-column"><style:table-column-properties fo:break-before="auto" style:column-width="4.5cm"/></style:style>"#,
            r#"<style:style style:name="ro1" style:family="table-row"><style:table-row-properties style:row-height="0.452cm" fo:break-before="auto" style:use-optimal-row-height="true"/></style:style>"#,
            r#"<number:date-style style:name="N_DATE"><number:day number:style="long"/><number:text>/</number:text><number:month number:style="long"/><number:text>/</number:text><number:year number:style="long"/></number:date-style>"#,
            r#"<number:time-style style:name="N_TIME"><number:hours number:style="long"/><number:text>:</number:text><number:minutes number:style="long"/></number:time-style>"#,
            r#"<number:number-style style:name="N_WHOLE"><number:number number:decimal-places="0" number:min-decimal-places="0" number:min-integer-digits="1"/></number:number-style>"#,
            r#"<style:style style:name="ce_date" style:family="table-cell" style:parent-style-name="Default" style:data-style-name="N_DATE"/>"#,
            r#"<style:style style:name="ce_time" style:family="table-cell" style:parent-style-name="Default" style:data-style-name="N_TIME"/>"#,
            r#"<style:style style:name="ce_whole" style:family="table-cell" style:parent-style-name="Default" style:data-style-name="N_WHOLE"/>"#,
            "</office:automatic-styles>",
            "<office:body><office:spreadsheet>",
            r#"<table:table table:name="{sheet}">"#,
            r#"<table:table-column table:style-name="co1" table:number-columns-repeated="{columns}" table:default-cell-style-name="Default"/>"#,
            "{body}",
            "</table:table></office:spreadsheet></office:body></office:document-content>\n"
        ),
        ns = NS,
        sheet = xml_escape(table.sheet),
        columns = columns,
        body = body,
    );
    let styles = format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            "\n<office:document-styles {ns}>",
            r#"<office:styles><style:style style:name="Default" style:family="table-cell"/></office:styles>"#,
            "</office:document-styles>\n"
        ),
        ns = NS
    );
    let meta = format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            "\n<office:document-meta {ns}><office:meta>",
            "<meta:generator>anna-notify make_fixtures</meta:generator>",
            "<meta:creation-date>2026-01-01T00:00:00</meta:creation-date>",
            "</office:meta></office:document-meta>\n"
        ),
        ns = NS
    );
    let manifest = concat!(
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        "\n",
        r#"<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">"#,
        r#"<manifest:file-entry manifest:full-path="/" manifest:version="1.2" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>"#,
        r#"<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>"#,
        r#"<manifest:file-entry manifest:full-path="styles.xml" manifest:media-type="text/xml"/>"#,
        r#"<manifest:file-entry manifest:full-path="meta.xml" manifest:media-type="text/xml"/>"#,
        "</manifest:manifest>\n"
    );
    zip_of(&[
        (
            "mimetype",
            b"application/vnd.oasis.opendocument.spreadsheet",
        ),
        ("META-INF/manifest.xml", manifest.as_bytes()),
        ("content.xml", content.as_bytes()),
        ("styles.xml", styles.as_bytes()),
        ("meta.xml", meta.as_bytes()),
    ])
}

// ---------------------------------------------------------------- csv

enum CsvEncoding {
    Utf8,
    Utf8Bom,
    Windows1252,
}

struct CsvStyle {
    delimiter: char,
    encoding: CsvEncoding,
    line_end: &'static str,
    /// Excel writes an empty row as a line of delimiters; hand-made files leave it blank.
    empty_row_delimiters: bool,
}

impl CsvStyle {
    const UTF8_COMMA: CsvStyle = CsvStyle {
        delimiter: ',',
        encoding: CsvEncoding::Utf8,
        line_end: "\n",
        empty_row_delimiters: false,
    };
    /// "CSV (separado por vírgulas)" from Excel in Brazil.
    const EXCEL_BRAZIL: CsvStyle = CsvStyle {
        delimiter: ';',
        encoding: CsvEncoding::Windows1252,
        line_end: "\r\n",
        empty_row_delimiters: true,
    };
    /// "CSV UTF-8 (delimitado por vírgulas)" from Excel in Brazil.
    const UTF8_BOM_SEMICOLON: CsvStyle = CsvStyle {
        delimiter: ';',
        encoding: CsvEncoding::Utf8Bom,
        line_end: "\r\n",
        empty_row_delimiters: true,
    };
    const UTF8_TAB: CsvStyle = CsvStyle {
        delimiter: '\t',
        encoding: CsvEncoding::Utf8,
        line_end: "\n",
        empty_row_delimiters: false,
    };
}

fn csv(table: &Table, style: &CsvStyle) -> Vec<u8> {
    let columns = width(table);
    let mut text = String::new();
    for row in &table.rows {
        if row.is_empty() {
            if style.empty_row_delimiters {
                text.push_str(
                    &style
                        .delimiter
                        .to_string()
                        .repeat(columns.saturating_sub(1)),
                );
            }
            text.push_str(style.line_end);
            continue;
        }
        let fields: Vec<String> = row
            .iter()
            .map(|cell| {
                let shown = match *cell {
                    Text(t) => t.to_string(),
                    Number(n) => format!("{n}"),
                    Date(y, m, d) => format!("{d:02}/{m:02}/{y:04}"),
                    Time(h, m) => format!("{h:02}:{m:02}"),
                    Empty => String::new(),
                };
                if shown.contains([style.delimiter, '"', '\n', '\r']) {
                    format!("\"{}\"", shown.replace('"', "\"\""))
                } else {
                    shown
                }
            })
            .collect();
        text.push_str(&fields.join(&style.delimiter.to_string()));
        text.push_str(style.line_end);
    }
    match style.encoding {
        CsvEncoding::Utf8 => text.into_bytes(),
        CsvEncoding::Utf8Bom => [&b"\xEF\xBB\xBF"[..], text.as_bytes()].concat(),
        CsvEncoding::Windows1252 => {
            let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&text);
            assert!(!unmappable, "text not representable in Windows-1252");
            bytes.into_owned()
        }
    }
}

// ---------------------------------------------------------------- xls (spec for xlwt)

/// The table as JSON for `scripts/make-fixtures-xls.py`: a list of rows, each a list of
/// `null` or `{"t": "s"|"n"|"d"|"t", "v": ...}`.
fn xls_spec_json(table: &Table) -> String {
    let rows: Vec<serde_json::Value> = table
        .rows
        .iter()
        .map(|row| {
            serde_json::Value::Array(
                row.iter()
                    .map(|cell| match *cell {
                        Text(t) => serde_json::json!({"t": "s", "v": t}),
                        Number(n) => serde_json::json!({"t": "n", "v": n}),
                        Date(y, m, d) => serde_json::json!({"t": "d", "v": [y, m, d]}),
                        Time(h, m) => serde_json::json!({"t": "t", "v": [h, m]}),
                        Empty => serde_json::Value::Null,
                    })
                    .collect(),
            )
        })
        .collect();
    serde_json::json!({"sheet": table.sheet, "rows": rows}).to_string()
}

// ---------------------------------------------------------------- png

/// A 16×16 grey PNG.
fn png() -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(data);
        out.extend_from_slice(&crc_input);
        out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    }
    let (w, h) = (16u32, 16u32);
    let mut raw = Vec::new();
    for _ in 0..h {
        raw.push(0); // filter: none
        raw.extend(std::iter::repeat_n(0xC0u8, w as usize));
    }
    // zlib stream with one stored deflate block
    let mut zlib = vec![0x78, 0x01, 0x01];
    let len = u16::try_from(raw.len()).unwrap_or(0);
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&raw);
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());

    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

// ---------------------------------------------------------------- xlsb

/// A minimal BIFF12 (xlsb) writer, following [MS-XLSB]: enough records for Excel-family
/// readers to open a one-sheet workbook with text, numbers, dates and times.
mod xlsb {
    use super::{Cell, Result, Table, serial, time_fraction, width, zip_of};

    // Record types ([MS-XLSB] 2.3.2).
    const BRT_ROW_HDR: u16 = 0x0000;
    const BRT_CELL_RK: u16 = 0x0002;
    const BRT_CELL_REAL: u16 = 0x0005;
    const BRT_CELL_ISST: u16 = 0x0007;
    const BRT_SST_ITEM: u16 = 0x0013;
    const BRT_FONT: u16 = 0x002B;
    const BRT_FMT: u16 = 0x002C;
    const BRT_FILL: u16 = 0x002D;
    const BRT_BORDER: u16 = 0x002E;
    const BRT_XF: u16 = 0x002F;
    const BRT_STYLE: u16 = 0x0030;
    const BRT_COL_INFO: u16 = 0x003C;
    const BRT_FILE_VERSION: u16 = 0x0080;
    const BRT_BEGIN_SHEET: u16 = 0x0081;
    const BRT_END_SHEET: u16 = 0x0082;
    const BRT_BEGIN_BOOK: u16 = 0x0083;
    const BRT_END_BOOK: u16 = 0x0084;
    const BRT_BEGIN_WS_VIEWS: u16 = 0x0085;
    const BRT_END_WS_VIEWS: u16 = 0x0086;
    const BRT_BEGIN_BOOK_VIEWS: u16 = 0x0087;
    const BRT_END_BOOK_VIEWS: u16 = 0x0088;
    const BRT_BEGIN_WS_VIEW: u16 = 0x0089;
    const BRT_END_WS_VIEW: u16 = 0x008A;
    const BRT_BEGIN_BUNDLE_SHS: u16 = 0x008F;
    const BRT_END_BUNDLE_SHS: u16 = 0x0090;
    const BRT_BEGIN_SHEET_DATA: u16 = 0x0091;
    const BRT_END_SHEET_DATA: u16 = 0x0092;
    const BRT_WS_PROP: u16 = 0x0093;
    const BRT_WS_DIM: u16 = 0x0094;
    const BRT_WB_PROP: u16 = 0x0099;
    const BRT_BUNDLE_SH: u16 = 0x009C;
    const BRT_CALC_PROP: u16 = 0x009D;
    const BRT_BOOK_VIEW: u16 = 0x009E;
    const BRT_BEGIN_SST: u16 = 0x009F;
    const BRT_END_SST: u16 = 0x00A0;
    const BRT_BEGIN_STYLE_SHEET: u16 = 0x0116;
    const BRT_END_STYLE_SHEET: u16 = 0x0117;
    const BRT_BEGIN_COL_INFOS: u16 = 0x0186;
    const BRT_END_COL_INFOS: u16 = 0x0187;
    const BRT_BEGIN_FMTS: u16 = 0x0267;
    const BRT_END_FMTS: u16 = 0x0268;
    const BRT_BEGIN_CELL_XFS: u16 = 0x0269;
    const BRT_END_CELL_XFS: u16 = 0x026A;
    const BRT_BEGIN_STYLES: u16 = 0x026B;
    const BRT_END_STYLES: u16 = 0x026C;
    const BRT_BEGIN_FILLS: u16 = 0x025B;
    const BRT_END_FILLS: u16 = 0x025C;
    const BRT_BEGIN_FONTS: u16 = 0x0263;
    const BRT_END_FONTS: u16 = 0x0264;
    const BRT_BEGIN_BORDERS: u16 = 0x0265;
    const BRT_END_BORDERS: u16 = 0x0266;
    const BRT_BEGIN_CELL_STYLE_XFS: u16 = 0x0272;
    const BRT_END_CELL_STYLE_XFS: u16 = 0x0273;

    /// Cell formats (indexes into the cellXfs list written in `styles`).
    const XF_GENERAL: u32 = 0;
    const XF_DATE: u32 = 1;
    const XF_TIME: u32 = 2;
    const XF_WHOLE: u32 = 3;
    const XF_BOLD: u32 = 4;
    const FMT_DATE: u16 = 164;
    const FMT_TIME: u16 = 165;
    /// Built-in number format "0".
    const FMT_WHOLE: u16 = 1;

    #[derive(Default)]
    struct Records(Vec<u8>);

    impl Records {
        fn add(&mut self, kind: u16, body: &[u8]) -> &mut Self {
            let out = &mut self.0;
            // Type: 7 bits per byte, high bit set when another byte follows.
            if kind < 0x80 {
                out.push(kind as u8);
            } else {
                out.push((kind & 0x7F) as u8 | 0x80);
                out.push((kind >> 7) as u8);
            }
            // Size: the same scheme, up to 4 bytes.
            let mut size = body.len();
            loop {
                let mut byte = (size & 0x7F) as u8;
                size >>= 7;
                if size > 0 {
                    byte |= 0x80;
                }
                out.push(byte);
                if size == 0 {
                    break;
                }
            }
            out.extend_from_slice(body);
            self
        }

        fn empty(&mut self, kind: u16) -> &mut Self {
            self.add(kind, &[])
        }
    }

    #[derive(Default)]
    struct Body(Vec<u8>);

    impl Body {
        fn u8(mut self, v: u8) -> Self {
            self.0.push(v);
            self
        }
        fn u16(mut self, v: u16) -> Self {
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        fn u32(mut self, v: u32) -> Self {
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        fn f64(mut self, v: f64) -> Self {
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        fn bytes(mut self, v: &[u8]) -> Self {
            self.0.extend_from_slice(v);
            self
        }
        /// XLWideString: character count, then UTF-16LE.
        fn wide(mut self, s: &str) -> Self {
            let units: Vec<u16> = s.encode_utf16().collect();
            self.0
                .extend_from_slice(&(units.len() as u32).to_le_bytes());
            for u in units {
                self.0.extend_from_slice(&u.to_le_bytes());
            }
            self
        }
        /// BrtColor: automatic colour, or an RGB one.
        fn color(self, rgb: Option<[u8; 3]>) -> Self {
            match rgb {
                None => self.u8(0x00).u8(0).u16(0).bytes(&[0, 0, 0, 0xFF]),
                Some([r, g, b]) => self.u8(0x05).u8(0).u16(0).bytes(&[r, g, b, 0xFF]),
            }
        }
        /// The Cell structure that starts every cell record: column, then style index
        /// (24 bits) and flags (8 bits).
        fn cell(self, column: u32, xf: u32) -> Self {
            self.u32(column).u32(xf & 0x00FF_FFFF)
        }
        fn done(self) -> Vec<u8> {
            self.0
        }
    }

    pub(super) fn workbook(table: &Table) -> Result<Vec<u8>> {
        let mut strings: Vec<&str> = Vec::new();
        let mut total_strings = 0u32;
        for row in &table.rows {
            for cell in row {
                if let Cell::Text(text) = cell {
                    total_strings += 1;
                    if !strings.contains(text) {
                        strings.push(text);
                    }
                }
            }
        }
        let sheet = worksheet(table, &strings)?;
        let shared = shared_strings(&strings, total_strings);
        let content_types = concat!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
            "\r\n",
            r#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">"#,
            r#"<Default Extension="bin" ContentType="application/vnd.ms-excel.sheet.binary.macroEnabled.main"/>"#,
            r#"<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>"#,
            r#"<Default Extension="xml" ContentType="application/xml"/>"#,
            r#"<Override PartName="/xl/worksheets/sheet1.bin" ContentType="application/vnd.ms-excel.worksheet"/>"#,
            r#"<Override PartName="/xl/styles.bin" ContentType="application/vnd.ms-excel.styles"/>"#,
            r#"<Override PartName="/xl/sharedStrings.bin" ContentType="application/vnd.ms-excel.sharedStrings"/>"#,
            r#"<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>"#,
            r#"<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>"#,
            "</Types>"
        );
        let rels = concat!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
            "\r\n",
            r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">"#,
            r#"<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" Target="docProps/app.xml"/>"#,
            r#"<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>"#,
            r#"<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.bin"/>"#,
            "</Relationships>"
        );
        let workbook_rels = concat!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
            "\r\n",
            r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">"#,
            r#"<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.bin"/>"#,
            r#"<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.bin"/>"#,
            r#"<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.bin"/>"#,
            "</Relationships>"
        );
        let core = concat!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
            "\r\n",
            r#"<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
            "<dc:creator>anna-notify</dc:creator>",
            r#"<dcterms:created xsi:type="dcterms:W3CDTF">2026-01-01T00:00:00Z</dcterms:created>"#,
            "</cp:coreProperties>"
        );
        let app = concat!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
            "\r\n",
            r#"<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"><Application>Microsoft Excel</Application></Properties>"#
        );
        zip_of(&[
            ("[Content_Types].xml", content_types.as_bytes()),
            ("_rels/.rels", rels.as_bytes()),
            ("docProps/core.xml", core.as_bytes()),
            ("docProps/app.xml", app.as_bytes()),
            ("xl/workbook.bin", &book(table.sheet)),
            ("xl/_rels/workbook.bin.rels", workbook_rels.as_bytes()),
            ("xl/styles.bin", &styles()),
            ("xl/sharedStrings.bin", &shared),
            ("xl/worksheets/sheet1.bin", &sheet),
        ])
    }

    fn book(sheet_name: &str) -> Vec<u8> {
        let mut r = Records::default();
        r.empty(BRT_BEGIN_BOOK);
        r.add(
            BRT_FILE_VERSION,
            &Body::default()
                .bytes(&[0; 16])
                .wide("xl")
                .wide("7")
                .wide("7")
                .wide("27328")
                .done(),
        );
        // No flags (1900 date system), theme version 0, no code name.
        r.add(BRT_WB_PROP, &Body::default().u32(0).u32(0).wide("").done());
        r.empty(BRT_BEGIN_BOOK_VIEWS);
        r.add(
            BRT_BOOK_VIEW,
            &Body::default()
                .u32(0) // xWn
                .u32(0) // yWn
                .u32(28_800) // dxWn
                .u32(12_300) // dyWn
                .u32(600) // iTabRatio
                .u32(0) // itabFirst
                .u32(0) // itabCur
                .u8(0x78) // fVisible, fVeryHidden clear; show scroll bars and tabs
                .done(),
        );
        r.empty(BRT_END_BOOK_VIEWS);
        r.empty(BRT_BEGIN_BUNDLE_SHS);
        r.add(
            BRT_BUNDLE_SH,
            &Body::default()
                .u32(0) // visible
                .u32(1) // sheet id
                .wide("rId1")
                .wide(sheet_name)
                .done(),
        );
        r.empty(BRT_END_BUNDLE_SHS);
        r.add(
            BRT_CALC_PROP,
            &Body::default()
                .u32(191_029) // recalcID
                .u32(1) // fAutoRecalc
                .u32(100) // cCalcCount
                .f64(0.001) // xnumDelta
                .u32(1) // cUserThreads
                .u16(0x006A) // fRefA1, fFullPrec, fSaveRecalc, fMTREnabled
                .done(),
        );
        r.empty(BRT_END_BOOK);
        r.0
    }

    fn styles() -> Vec<u8> {
        let mut r = Records::default();
        r.empty(BRT_BEGIN_STYLE_SHEET);
        r.add(BRT_BEGIN_FMTS, &Body::default().u32(2).done());
        r.add(
            BRT_FMT,
            &Body::default().u16(FMT_DATE).wide("dd/mm/yyyy").done(),
        );
        r.add(BRT_FMT, &Body::default().u16(FMT_TIME).wide("hh:mm").done());
        r.empty(BRT_END_FMTS);

        r.add(BRT_BEGIN_FONTS, &Body::default().u32(2).done());
        for bold in [false, true] {
            r.add(
                BRT_FONT,
                &Body::default()
                    .u16(220) // 11 pt, in twips
                    .u16(0) // no italic etc.
                    .u16(if bold { 700 } else { 400 })
                    .u16(0) // no super/subscript
                    .u8(0) // no underline
                    .u8(2) // swiss family
                    .u8(0) // ANSI charset
                    .u8(0)
                    .color(Some([0, 0, 0]))
                    .u8(2) // minor font scheme
                    .wide("Calibri")
                    .done(),
            );
        }
        r.empty(BRT_END_FONTS);

        r.add(BRT_BEGIN_FILLS, &Body::default().u32(2).done());
        for pattern in [0u32, 17] {
            // none, gray125
            let fill = Body::default()
                .u32(pattern)
                .color(None)
                .color(None)
                .u32(0) // linear gradient
                .f64(0.0)
                .f64(0.0)
                .f64(0.0)
                .f64(0.0)
                .f64(0.0)
                .u32(0); // no gradient stops
            r.add(BRT_FILL, &fill.done());
        }
        r.empty(BRT_END_FILLS);

        r.add(BRT_BEGIN_BORDERS, &Body::default().u32(1).done());
        let mut border = Body::default().u8(0);
        for _ in 0..5 {
            border = border.u8(0).u8(0).color(None); // no line
        }
        r.add(BRT_BORDER, &border.done());
        r.empty(BRT_END_BORDERS);

        let xf = |parent: u16, fmt: u16, font: u16| {
            Body::default()
                .u16(parent)
                .u16(fmt)
                .u16(font)
                .u16(0) // fill
                .u16(0) // border
                .u8(0) // rotation
                .u8(0) // indent
                .u16(0x1010) // alignment general/bottom, fLocked
                .u8(0) // xfGrbitAtr
                .u8(0)
                .done()
        };
        r.add(BRT_BEGIN_CELL_STYLE_XFS, &Body::default().u32(1).done());
        r.add(BRT_XF, &xf(0xFFFF, 0, 0));
        r.empty(BRT_END_CELL_STYLE_XFS);

        r.add(BRT_BEGIN_CELL_XFS, &Body::default().u32(5).done());
        r.add(BRT_XF, &xf(0, 0, 0)); // XF_GENERAL
        r.add(BRT_XF, &xf(0, FMT_DATE, 0)); // XF_DATE
        r.add(BRT_XF, &xf(0, FMT_TIME, 0)); // XF_TIME
        r.add(BRT_XF, &xf(0, FMT_WHOLE, 0)); // XF_WHOLE
        r.add(BRT_XF, &xf(0, 0, 1)); // XF_BOLD
        r.empty(BRT_END_CELL_XFS);

        r.add(BRT_BEGIN_STYLES, &Body::default().u32(1).done());
        r.add(
            BRT_STYLE,
            &Body::default()
                .u32(0) // ixf
                .u16(0x0001) // fBuiltIn
                .u8(0) // Normal
                .u8(0xFF)
                .wide("Normal")
                .done(),
        );
        r.empty(BRT_END_STYLES);
        r.empty(BRT_END_STYLE_SHEET);
        r.0
    }

    fn shared_strings(strings: &[&str], total: u32) -> Vec<u8> {
        let mut r = Records::default();
        r.add(
            BRT_BEGIN_SST,
            &Body::default().u32(total).u32(strings.len() as u32).done(),
        );
        for s in strings {
            r.add(BRT_SST_ITEM, &Body::default().u8(0).wide(s).done());
        }
        r.empty(BRT_END_SST);
        r.0
    }

    fn worksheet(table: &Table, strings: &[&str]) -> Result<Vec<u8>> {
        let columns = u32::try_from(width(table))?;
        let last_row = u32::try_from(table.rows.len().saturating_sub(1))?;
        let mut r = Records::default();
        r.empty(BRT_BEGIN_SHEET);
        // No tab colour, default flags.
        r.add(
            BRT_WS_PROP,
            &Body::default()
                .u16(0x04C9)
                .u8(0)
                .color(None)
                .u32(0xFFFF_FFFF)
                .u32(0xFFFF_FFFF)
                .wide("")
                .done(),
        );
        r.add(
            BRT_WS_DIM,
            &Body::default()
                .u32(0)
                .u32(last_row)
                .u32(0)
                .u32(columns.saturating_sub(1))
                .done(),
        );
        r.empty(BRT_BEGIN_WS_VIEWS);
        r.add(
            BRT_BEGIN_WS_VIEW,
            &Body::default()
                .u16(0x03DC) // grid lines, headings, zeros, outline symbols, tab selected
                .u32(0) // normal view
                .u32(0) // top row
                .u32(0) // left column
                .u32(64) // grid line colour: automatic
                .u16(100)
                .u16(100)
                .u16(0)
                .u16(0)
                .u32(0) // workbook view 0
                .done(),
        );
        r.empty(BRT_END_WS_VIEW);
        r.empty(BRT_END_WS_VIEWS);
        r.empty(BRT_BEGIN_COL_INFOS);
        r.add(
            BRT_COL_INFO,
            &Body::default()
                .u32(0)
                .u32(columns.saturating_sub(1))
                .u32(24 * 256) // width in 1/256 of a character
                .u32(0)
                .u16(0x0002) // fUserSet
                .done(),
        );
        r.empty(BRT_END_COL_INFOS);
        r.empty(BRT_BEGIN_SHEET_DATA);
        for (row_index, row) in table.rows.iter().enumerate() {
            if row.is_empty() {
                continue;
            }
            let row_index = u32::try_from(row_index)?;
            let last_column = u32::try_from(row.len().saturating_sub(1))?;
            r.add(
                BRT_ROW_HDR,
                &Body::default()
                    .u32(row_index)
                    .u32(0) // style
                    .u16(300) // height in twips
                    .u16(0)
                    .u8(0)
                    .u32(1) // one column span
                    .u32(0)
                    .u32(last_column)
                    .done(),
            );
            for (column, cell) in row.iter().enumerate() {
                let column = u32::try_from(column)?;
                match *cell {
                    Cell::Text(text) => {
                        let index = strings
                            .iter()
                            .position(|s| *s == text)
                            .ok_or("string not in table")?;
                        let xf = if row_index == 0 { XF_BOLD } else { XF_GENERAL };
                        r.add(
                            BRT_CELL_ISST,
                            &Body::default()
                                .cell(column, xf)
                                .u32(u32::try_from(index)?)
                                .done(),
                        );
                    }
                    Cell::Number(n) => {
                        if n.fract() == 0.0 && n.abs() < f64::from(1u32 << 29) {
                            // RkNumber: a 30-bit integer with fInt set.
                            let rk = ((n as i32) << 2) | 0x02;
                            r.add(
                                BRT_CELL_RK,
                                &Body::default()
                                    .cell(column, XF_GENERAL)
                                    .u32(rk as u32)
                                    .done(),
                            );
                        } else {
                            r.add(
                                BRT_CELL_REAL,
                                &Body::default().cell(column, XF_WHOLE).f64(n).done(),
                            );
                        }
                    }
                    Cell::Date(y, m, d) => {
                        // Whole-day serials fit an integer RK, as Excel stores them.
                        let rk = ((serial(y, m, d)? as i32) << 2) | 0x02;
                        r.add(
                            BRT_CELL_RK,
                            &Body::default().cell(column, XF_DATE).u32(rk as u32).done(),
                        );
                    }
                    Cell::Time(h, m) => {
                        r.add(
                            BRT_CELL_REAL,
                            &Body::default()
                                .cell(column, XF_TIME)
                                .f64(time_fraction(h, m))
                                .done(),
                        );
                    }
                    Cell::Empty => {}
                }
            }
        }
        r.empty(BRT_END_SHEET_DATA);
        r.empty(BRT_END_SHEET);
        Ok(r.0)
    }
}
