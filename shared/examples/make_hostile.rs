//! Writes the hostile-input corpus: `tests/fixtures/hostile/*` and its manifest
//! `tests/fixtures/hostile/expected.json` (file → template, limits, expected outcome).
//!
//! Run it through `scripts/make-hostile` (or `cargo run -p anna-shared --example make_hostile
//! -- REPO_ROOT`). The outputs are committed; CI never regenerates them. Output is
//! deterministic. `shared/tests/hostile_corpus.rs` reads every file through the real intake
//! in a child process and checks the outcome and the peak memory.
//!
//! Files are written by hand (zip + XML, CSV bytes, compound files through the `cfb` crate)
//! rather than through a spreadsheet library, because the point is files no library would
//! write: lying zip headers, formulas without values, cells at column XFD, entity bombs.
//! A few start from the committed well-formed fixtures in `tests/fixtures/sheets/`.
//!
//! Files too large to commit (1 MB lines) are not written here: the manifest names them
//! with a `synth` recipe and the corpus test builds them in memory.

use std::error::Error;
use std::fs;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const HEADER: &str = "telefone,loja,nome,data\n";

/// An expected outcome: the whole file fails with a reason containing the text, or every
/// row is accounted for as accepted or rejected by reason code.
enum Expect {
    Failed(&'static str),
    Rows {
        accepted: u32,
        rejected: &'static [(&'static str, u32)],
    },
}

use Expect::{Failed, Rows};

struct Case {
    file: &'static str,
    /// What the file is and why it is in the corpus.
    about: &'static str,
    template: &'static str,
    /// Intake environment variables (e.g. a lower limit) for this file.
    env: &'static [(&'static str, &'static str)],
    expect: Expect,
    /// Built by the corpus test instead of committed (too large).
    synth: Option<&'static str>,
    bytes: Option<Vec<u8>>,
}

fn case(file: &'static str, about: &'static str, bytes: Vec<u8>, expect: Expect) -> Case {
    Case {
        file,
        about,
        template: "boas_vindas",
        env: &[],
        expect,
        synth: None,
        bytes: Some(bytes),
    }
}

fn main() -> Result<()> {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."));
    let sheets = root.join("tests/fixtures/sheets");
    let out = root.join("tests/fixtures/hostile");
    fs::create_dir_all(&out)?;
    for entry in fs::read_dir(&out)? {
        let path = entry?.path();
        if path.is_file() && path.file_name().is_some_and(|n| n != "README.md") {
            fs::remove_file(path)?;
        }
    }
    let fixture = |name: &str| fs::read(sheets.join(name));
    let cases = cases(
        &fixture("boas_vindas.xlsx")?,
        &fixture("boas_vindas.xls")?,
        &fixture("boas_vindas.xlsb")?,
        &fixture("boas_vindas.ods")?,
    )?;

    let mut manifest = Vec::new();
    for case in &cases {
        if let Some(bytes) = &case.bytes {
            write(&out.join(case.file), bytes)?;
        }
        let expect = match &case.expect {
            Failed(reason) => json!({ "failed": reason }),
            Rows { accepted, rejected } => json!({
                "accepted": accepted,
                "rejected": rejected.iter().map(|(code, n)| (code.to_string(), json!(n))).collect::<serde_json::Map<String, Value>>(),
            }),
        };
        let mut entry = json!({
            "file": case.file,
            "about": case.about,
            "template": case.template,
            "expect": expect,
        });
        if !case.env.is_empty() {
            entry["env"] = case
                .env
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect::<serde_json::Map<String, Value>>()
                .into();
        }
        if let Some(synth) = case.synth {
            entry["synth"] = json!(synth);
        }
        manifest.push(entry);
    }
    let text = serde_json::to_string_pretty(&manifest)? + "\n";
    write(&out.join("expected.json"), text.as_bytes())?;
    eprintln!("{} cases written to {}", cases.len(), out.display());
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// A valid Brazilian mobile, different for every `i`.
fn phone(i: u32) -> String {
    format!("55119{:08}", 87_650_000 + i)
}

/// `n` good CSV data rows starting at phone `first`.
fn good_csv_rows(first: u32, n: u32) -> String {
    (first..first + n)
        .map(|i| format!("{},Loja Centro,Cliente {i},25/12/2026\n", phone(i)))
        .collect()
}

/// Deterministic bytes that look like nothing (xorshift).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(if big_endian { b"\xFE\xFF" } else { b"\xFF\xFE" });
    }
    for unit in text.encode_utf16() {
        out.extend_from_slice(&if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        });
    }
    out
}

// ---------------------------------------------------------------- zip and xlsx by hand

fn options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644)
}

fn zip_of(entries: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut out = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in entries {
        let options = if name == "mimetype" {
            options().compression_method(CompressionMethod::Stored)
        } else {
            options().large_file(data.len() > u32::MAX as usize / 2)
        };
        out.start_file(name.as_str(), options)?;
        out.write_all(data)?;
    }
    Ok(out.finish()?.into_inner())
}

fn entries(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut archive = ZipArchive::new(Cursor::new(bytes))?;
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i)?;
        let name = entry.name()?.into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        out.push((name, data));
    }
    Ok(out)
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The column letters of a 0-based index.
fn col(index: u32) -> String {
    let mut n = index + 1;
    let mut letters = Vec::new();
    while n > 0 {
        letters.push(char::from(b'A' + ((n - 1) % 26) as u8));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}

/// An inline-string cell.
fn s(r: u32, c: u32, text: &str) -> String {
    format!(
        r#"<c r="{}{}" t="inlineStr"><is><t xml:space="preserve">{}</t></is></c>"#,
        col(c),
        r + 1,
        esc(text)
    )
}

/// A number cell with a style (0 general, 1 a date, 2 whole number).
fn n(r: u32, c: u32, value: f64, style: u32) -> String {
    format!(
        r#"<c r="{}{}" s="{style}"><v>{value}</v></c>"#,
        col(c),
        r + 1
    )
}

/// A row of cells.
fn row(r: u32, cells: &[String]) -> String {
    format!(r#"<row r="{}">{}</row>"#, r + 1, cells.concat())
}

/// A good data row in xlsx cells.
fn good_row(r: u32, i: u32) -> String {
    row(
        r,
        &[
            s(r, 0, &phone(i)),
            s(r, 1, "Loja Centro"),
            s(r, 2, &format!("Cliente {i}")),
            s(r, 3, "25/12/2026"),
        ],
    )
}

fn header_row() -> String {
    row(
        0,
        &[
            s(0, 0, "telefone"),
            s(0, 1, "loja"),
            s(0, 2, "nome"),
            s(0, 3, "data"),
        ],
    )
}

const MAIN_NS: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
const REL_NS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";

fn sheet_xml(rows: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><sheetData>{rows}</sheetData></worksheet>"#
    )
    .into_bytes()
}

/// The parts of an xlsx workbook with the given worksheets (name, sheet XML) and an optional
/// shared-strings part.
fn xlsx_parts(
    sheets: &[(String, Vec<u8>)],
    shared_strings: Option<Vec<u8>>,
) -> Vec<(String, Vec<u8>)> {
    let mut types = String::from(concat!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
        r#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">"#,
        r#"<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>"#,
        r#"<Default Extension="xml" ContentType="application/xml"/>"#,
        r#"<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>"#,
        r#"<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>"#,
    ));
    let mut workbook = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><sheets>"#
    );
    let mut rels = String::from(concat!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
        r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">"#,
        r#"<Relationship Id="rIdStyles" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>"#,
    ));
    let mut parts = Vec::new();
    for (i, (name, xml)) in sheets.iter().enumerate() {
        let k = i + 1;
        types.push_str(&format!(
            r#"<Override PartName="/xl/worksheets/sheet{k}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>"#
        ));
        workbook.push_str(&format!(
            r#"<sheet name="{}" sheetId="{k}" r:id="rId{k}"/>"#,
            esc(name)
        ));
        rels.push_str(&format!(
            r#"<Relationship Id="rId{k}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{k}.xml"/>"#
        ));
        parts.push((format!("xl/worksheets/sheet{k}.xml"), xml.clone()));
    }
    if let Some(sst) = shared_strings {
        types.push_str(r#"<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>"#);
        rels.push_str(r#"<Relationship Id="rIdSst" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>"#);
        parts.push(("xl/sharedStrings.xml".to_owned(), sst));
    }
    types.push_str("</Types>");
    workbook.push_str("</sheets></workbook>");
    rels.push_str("</Relationships>");
    let styles = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><styleSheet xmlns="{MAIN_NS}"><numFmts count="0"/><fonts count="1"><font/></fonts><fills count="1"><fill/></fills><borders count="1"><border/></borders><cellStyleXfs count="1"><xf/></cellStyleXfs><cellXfs count="3"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/><xf numFmtId="1" applyNumberFormat="1"/></cellXfs></styleSheet>"#
    );
    let root_rels = concat!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
        r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">"#,
        r#"<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>"#,
        r#"</Relationships>"#
    );
    let mut all = vec![
        ("[Content_Types].xml".to_owned(), types.into_bytes()),
        ("_rels/.rels".to_owned(), root_rels.as_bytes().to_vec()),
        ("xl/workbook.xml".to_owned(), workbook.into_bytes()),
        ("xl/_rels/workbook.xml.rels".to_owned(), rels.into_bytes()),
        ("xl/styles.xml".to_owned(), styles.into_bytes()),
    ];
    all.extend(parts);
    all
}

/// A one-sheet xlsx from rows of sheet XML.
fn xlsx(rows: &str) -> Result<Vec<u8>> {
    zip_of(&xlsx_parts(
        &[("Clientes".to_owned(), sheet_xml(rows))],
        None,
    ))
}

// ---------------------------------------------------------------- ods by hand

const ODS_NS: &str = concat!(
    r#"xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" "#,
    r#"xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" "#,
    r#"xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" "#,
    r#"office:version="1.2""#
);

fn ods(table_rows: &str) -> Result<Vec<u8>> {
    let content = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content {ODS_NS}><office:body><office:spreadsheet><table:table table:name="Clientes">{table_rows}</table:table></office:spreadsheet></office:body></office:document-content>"#
    );
    let manifest = concat!(
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        r#"<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">"#,
        r#"<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>"#,
        r#"<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>"#,
        "</manifest:manifest>"
    );
    zip_of(&[
        (
            "mimetype".to_owned(),
            b"application/vnd.oasis.opendocument.spreadsheet".to_vec(),
        ),
        (
            "META-INF/manifest.xml".to_owned(),
            manifest.as_bytes().to_vec(),
        ),
        ("content.xml".to_owned(), content.into_bytes()),
    ])
}

fn ods_cell(text: &str) -> String {
    format!(
        r#"<table:table-cell office:value-type="string"><text:p>{}</text:p></table:table-cell>"#,
        esc(text)
    )
}

fn ods_row(cells: &[&str]) -> String {
    let cells: String = cells.iter().map(|c| ods_cell(c)).collect();
    format!("<table:table-row>{cells}</table:table-row>")
}

fn ods_header() -> String {
    ods_row(&["telefone", "loja", "nome", "data"])
}

// ---------------------------------------------------------------- compound files

fn compound(streams: &[(&str, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut file = cfb::CompoundFile::create(Cursor::new(Vec::new()))?;
    for (path, data) in streams {
        if let Some(parent) = Path::new(path).parent()
            && parent != Path::new("/")
            && !file.exists(parent)
        {
            file.create_storage_all(parent)?;
        }
        let mut stream = file.create_stream(path)?;
        stream.write_all(data)?;
    }
    file.flush()?;
    let mut bytes = file.into_inner().into_inner();
    // The cfb crate stamps storages with the current time; zero the creation and
    // modification times (bytes 100..116 of each 128-byte directory entry) so that the
    // output is the same on every run.
    let mut at = 512;
    while at + 128 <= bytes.len() {
        let entry = &bytes[at..at + 128];
        let name_len = usize::from(u16::from_le_bytes([entry[64], entry[65]]));
        if matches!(entry[66], 1 | 5) && (2..=64).contains(&name_len) && name_len % 2 == 0 {
            bytes[at + 100..at + 116].fill(0);
        }
        at += 128;
    }
    Ok(bytes)
}

fn read_stream(cfb_bytes: &[u8], path: &str) -> Result<Vec<u8>> {
    let mut file = cfb::CompoundFile::open(Cursor::new(cfb_bytes))?;
    let mut stream = file.open_stream(path)?;
    let mut data = Vec::new();
    stream.read_to_end(&mut data)?;
    Ok(data)
}

// ---------------------------------------------------------------- the corpus

#[allow(clippy::too_many_lines)]
fn cases(
    good_xlsx: &[u8],
    good_xls: &[u8],
    good_xlsb: &[u8],
    good_ods: &[u8],
) -> Result<Vec<Case>> {
    let mut cases = Vec::new();
    let mut add = |c: Case| cases.push(c);

    // --- empty, header only, nothing to send
    add(case(
        "empty.xlsx",
        "zero bytes under a spreadsheet name",
        vec![],
        Failed("the file is empty"),
    ));
    add(case(
        "blank.csv",
        "only white space and line breaks",
        b"  \r\n\n\t \n".to_vec(),
        Failed("the file is empty"),
    ));
    add(case(
        "header-only.csv",
        "a header row and nothing else",
        HEADER.as_bytes().to_vec(),
        Failed("the file has no data rows"),
    ));
    add(case(
        "header-only.xlsx",
        "a header row and nothing else",
        xlsx(&header_row())?,
        Failed("the file has no data rows"),
    ));
    add(case(
        "only-delimiters.csv",
        "rows of empty cells (;;;), all skipped",
        b";;;\r\n;;;\r\n;;;\r\n".to_vec(),
        Failed("the file has no data rows"),
    ));
    add(case(
        "no-sheets.xlsx",
        "a workbook that lists no sheet",
        zip_of(&xlsx_parts(&[], None))?,
        Failed("no worksheet"),
    ));

    // --- not a spreadsheet
    add(case(
        "pdf.xlsx",
        "a PDF under an xlsx name",
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n".to_vec(),
        Failed("a PDF document"),
    ));
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend(noise(512, 7));
    add(case(
        "png.csv",
        "a PNG image under a csv name",
        png,
        Failed("a PNG image"),
    ));
    add(case(
        "random.xlsx",
        "4 KiB of random bytes",
        noise(4096, 1),
        Failed("binary data"),
    ));
    add(case(
        "random.csv",
        "4 KiB of random bytes under a csv name",
        noise(4096, 2),
        Failed("binary data"),
    ));
    let mut gzip = b"\x1F\x8B\x08\0".to_vec();
    gzip.extend(noise(256, 3));
    add(case(
        "gzip.ods",
        "a gzip archive under an ods name",
        gzip,
        Failed("a gzip archive"),
    ));
    add(case(
        "html.xls",
        "an HTML table saved as .xls (old web exports)",
        b"<!DOCTYPE html><html><body><table><tr><td>telefone</td></tr></table></body></html>"
            .to_vec(),
        Failed("a web page"),
    ));
    add(case(
        "docx.xlsx",
        "a Word document under an xlsx name",
        zip_of(&[("word/document.xml".to_owned(), b"<w:document/>".to_vec())])?,
        Failed("a Word document"),
    ));
    add(case(
        "plain-zip.xlsx",
        "a zip of photos under an xlsx name",
        zip_of(&[("photo.jpg".to_owned(), noise(300, 4))])?,
        Failed("a zip archive"),
    ));
    add(case(
        "cfb-noise.xls",
        "an OLE compound-file signature followed by noise",
        [
            &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1][..],
            &noise(4096, 5),
        ]
        .concat(),
        Failed("the xls file is damaged"),
    ));

    // --- damaged
    add(case(
        "truncated.xlsx",
        "the first 60% of a good xlsx",
        good_xlsx[..good_xlsx.len() * 6 / 10].to_vec(),
        Failed("the xlsx file is damaged"),
    ));
    add(case(
        "truncated.ods",
        "the first half of a good ods",
        good_ods[..good_ods.len() / 2].to_vec(),
        Failed("the ods file is damaged"),
    ));
    add(case(
        "truncated.xlsb",
        "the first half of a good xlsb",
        good_xlsb[..good_xlsb.len() / 2].to_vec(),
        Failed("the xlsb file is damaged"),
    ));
    add(case(
        "truncated.xls",
        "the first 40% of a good xls",
        good_xls[..good_xls.len() * 4 / 10].to_vec(),
        Failed("the xls file is damaged"),
    ));
    let mut flipped = good_xlsx.to_vec();
    // Scramble the packed worksheet: its local header, then 30 bytes in.
    let name = b"xl/worksheets/sheet1.xml";
    let at = flipped
        .windows(name.len())
        .position(|w| w == name)
        .ok_or("no worksheet in the good xlsx")?;
    for b in &mut flipped[at + name.len() + 30..at + name.len() + 90] {
        *b ^= 0x5A;
    }
    add(case(
        "bitflip.xlsx",
        "a good xlsx with 60 bytes of its packed worksheet scrambled",
        flipped,
        Failed("the xlsx file is damaged"),
    ));
    add(case("bad-xml.xlsx", "a worksheet that is not well-formed XML", zip_of(&xlsx_parts(&[("Clientes".into(), b"<worksheet><sheetData><row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>telefone</is></c></row></sheetData>".to_vec())], None))?, Failed("the xlsx file is damaged")));

    // --- zip bombs
    let spaces = vec![b' '; 100 << 20];
    let bomb_sheet = [sheet_xml(&header_row()).as_slice(), &spaces].concat();
    add(case(
        "zip-bomb.xlsx",
        "a worksheet padded with 100 MiB of spaces, ~100 KiB packed",
        zip_of(&xlsx_parts(&[("Clientes".into(), bomb_sheet)], None))?,
        Failed("possible zip bomb"),
    ));
    let lying = lying_sizes(&zip_of(&xlsx_parts(
        &[(
            "Clientes".into(),
            sheet_xml(&format!(
                "{}{}<!--{}-->",
                header_row(),
                good_row(1, 1),
                " ".repeat(30 << 20)
            )),
        )],
        None,
    ))?)?;
    add(case(
        "zip-bomb-lying.xlsx",
        "a 30 MiB worksheet whose zip headers claim 1,000 bytes: reading stops at the declared size",
        lying,
        Failed("larger than its declared uncompressed size"),
    ));
    let sst_count = 1_000_000;
    let mut sst = format!(r#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN_NS}" count="{sst_count}" uniqueCount="{sst_count}">"#).into_bytes();
    for _ in 0..sst_count {
        sst.extend_from_slice(b"<si><t>x</t></si>");
    }
    sst.extend_from_slice(b"</sst>");
    let sst_sheet = sheet_xml(&format!("{}{}", header_row(), good_row(1, 1)));
    let huge_sst = zip_of(&xlsx_parts(&[("Clientes".into(), sst_sheet)], Some(sst)))?;
    add(case(
        "huge-shared-strings.xlsx",
        "a million shared strings (17 MB of XML, ~100 KB packed) behind a one-row sheet: loaded within the memory bound",
        huge_sst,
        Rows {
            accepted: 1,
            rejected: &[],
        },
    ));
    add(Case {
        file: "huge-shared-strings.xlsx",
        about: "the same file with a ratio limit of 100: refused before anything is unpacked",
        env: &[("ANNA_MAX_ZIP_RATIO", "100")],
        bytes: None,
        ..case(
            "huge-shared-strings.xlsx",
            "",
            vec![],
            Failed("possible zip bomb"),
        )
    });
    let many_parts: Vec<(String, Vec<u8>)> = xlsx_parts(
        &[(
            "Clientes".into(),
            sheet_xml(&format!("{}{}", header_row(), good_row(1, 1))),
        )],
        None,
    )
    .into_iter()
    .chain((0..200).map(|i| (format!("customXml/item{i}.xml"), b"<a/>".to_vec())))
    .collect();
    add(Case {
        env: &[("ANNA_MAX_ZIP_ENTRIES", "100")],
        ..case(
            "many-parts.xlsx",
            "205 zip entries against a limit of 100",
            zip_of(&many_parts)?,
            Failed("parts, more than the limit of 100"),
        )
    });
    let mut big_total = vec![(
        "mimetype".to_owned(),
        b"application/vnd.oasis.opendocument.spreadsheet".to_vec(),
    )];
    for i in 0..10 {
        big_total.push((format!("Pictures/p{i}.bin"), vec![0u8; 1 << 20]));
    }
    let ods_content = entries(good_ods)?;
    big_total.extend(ods_content.into_iter().filter(|(n, _)| n != "mimetype"));
    add(Case {
        env: &[("ANNA_MAX_UNZIPPED_BYTES", "8388608")],
        ..case(
            "unpacks-too-large.ods",
            "ten 1 MiB parts (each under the ratio floor) against an 8 MiB total",
            zip_of(&big_total)?,
            Failed("unpacks to more than 8388608 bytes"),
        )
    });
    let laughs = format!(
        r#"<?xml version="1.0"?><!DOCTYPE sst [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;"><!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">]><sst xmlns="{MAIN_NS}" count="1" uniqueCount="1"><si><t>&h;</t></si></sst>"#
    );
    let laugh_sheet = sheet_xml(&format!(
        "{}{}",
        header_row(),
        row(
            1,
            &[
                s(1, 0, &phone(1)),
                r#"<c r="B2" t="s"><v>0</v></c>"#.to_owned(),
                s(1, 2, "Ana"),
                s(1, 3, "25/12/2026")
            ]
        )
    ));
    add(case(
        "billion-laughs.xlsx",
        "shared strings with a nested-entity (billion laughs) DTD: entities are not expanded",
        zip_of(&xlsx_parts(
            &[("Clientes".into(), laugh_sheet)],
            Some(laughs.into_bytes()),
        ))?,
        Failed("the xlsx file is damaged"),
    ));

    // --- encrypted, macros
    add(case(
        "password.xlsx",
        "a password-protected xlsx (an OLE file with EncryptionInfo and EncryptedPackage)",
        compound(&[
            ("/EncryptionInfo", noise(200, 8)),
            ("/EncryptedPackage", noise(2000, 9)),
        ])?,
        Failed("password-protected"),
    ));
    let workbook_stream = read_stream(good_xls, "/Workbook")?;
    let macros = compound(&[
        ("/Workbook", workbook_stream),
        ("/_VBA_PROJECT_CUR/PROJECT", b"ID=\"{00000000-0000-0000-0000-000000000000}\"\r\nDocument=ThisWorkbook/&H00000000\r\nName=\"VBAProject\"\r\n".to_vec()),
        ("/_VBA_PROJECT_CUR/VBA/dir", noise(300, 10)),
        ("/_VBA_PROJECT_CUR/VBA/ThisWorkbook", b"Attribute VB_Name = \"ThisWorkbook\"\r\nPrivate Sub Workbook_Open()\r\nShell \"calc.exe\"\r\nEnd Sub\r\n".to_vec()),
    ])?;
    // What fuzz_props::xls_reader_survives_mutations found: a DIMENSIONS record claiming
    // 4 billion rows, for which calamine reserved memory up-front (an abort, not a panic).
    let mut stream = read_stream(good_xls, "/Workbook")?;
    let mut at = 0;
    while at + 4 <= stream.len() {
        let kind = u16::from_le_bytes([stream[at], stream[at + 1]]);
        let len = usize::from(u16::from_le_bytes([stream[at + 2], stream[at + 3]]));
        if kind == 0x0200 && len >= 14 {
            stream[at + 8..at + 12].copy_from_slice(&u32::MAX.to_le_bytes());
            stream[at + 14..at + 16].copy_from_slice(&256u16.to_le_bytes());
        }
        at += 4 + len;
    }
    add(case(
        "xls-dimensions-bomb.xls",
        "the boas_vindas xls with a DIMENSIONS record claiming 4 billion rows by 256 columns",
        compound(&[
            ("/Workbook", stream),
            ("/\u{5}SummaryInformation", vec![0; 64]),
        ])?,
        Failed("more than the limit of 8000000"),
    ));
    add(case(
        "macros.xls",
        "the boas_vindas xls with a VBA project (Workbook_Open runs a shell): macros are never run, the data is read",
        macros,
        Rows {
            accepted: 4,
            rejected: &[
                ("invalid_phone", 1),
                ("missing_variable", 1),
                ("duplicate", 1),
            ],
        },
    ));
    let mut xlsm = entries(good_xlsx)?;
    for (name, data) in &mut xlsm {
        if name == "[Content_Types].xml" {
            *data = String::from_utf8_lossy(data)
                .replace(
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
                    "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
                )
                .into_bytes();
        }
    }
    xlsm.push((
        "xl/vbaProject.bin".to_owned(),
        compound(&[("/VBA/dir", noise(300, 11))])?,
    ));
    add(case(
        "macros.xlsm",
        "the boas_vindas xlsx as xlsm with a vbaProject.bin",
        zip_of(&xlsm)?,
        Rows {
            accepted: 4,
            rejected: &[
                ("invalid_phone", 1),
                ("missing_variable", 1),
                ("duplicate", 1),
            ],
        },
    ));

    // --- shapes: merged cells, columns, rows, sheets
    let merged = [
        ods_header(),
        format!(
            r#"<table:table-row>{}<table:table-cell table:number-rows-spanned="3" office:value-type="string"><text:p>Loja Centro</text:p></table:table-cell>{}{}</table:table-row>"#,
            ods_cell(&phone(1)),
            ods_cell("Ana"),
            ods_cell("25/12/2026")
        ),
        format!(
            "<table:table-row>{}<table:covered-table-cell/>{}{}</table:table-row>",
            ods_cell(&phone(2)),
            ods_cell("Bia"),
            ods_cell("25/12/2026")
        ),
        format!(
            r#"<table:table-row>{}<table:covered-table-cell/><table:table-cell table:number-columns-spanned="2" office:value-type="string"><text:p>Caio</text:p></table:table-cell><table:covered-table-cell/></table:table-row>"#,
            ods_cell(&phone(3))
        ),
    ]
    .concat();
    add(case(
        "merged-cells.ods",
        "loja merged down three rows, nome merged across nome and data: only the first cell of a merge holds the value",
        ods(&merged)?,
        Rows {
            accepted: 1,
            rejected: &[("missing_variable", 2)],
        },
    ));
    let wide: Vec<String> = (0..16_384).map(|c| s(0, c, &format!("c{c}"))).collect();
    add(case(
        "columns-16384.xlsx",
        "a header row filling all 16,384 columns (A to XFD)",
        xlsx(&row(0, &wide))?,
        Failed("column BM"),
    ));
    add(case(
        "column-xfd.xlsx",
        "a good sheet with one stray value in column XFD",
        xlsx(&format!(
            "{}{}{}",
            header_row(),
            good_row(1, 1),
            row(2, &[s(2, 16_383, "x")])
        ))?,
        Failed("column XFD"),
    ));
    let wide_csv = (0..16_384)
        .map(|c| format!("c{c}"))
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    add(case(
        "columns-16384.csv",
        "a CSV line of 16,384 fields",
        wide_csv.into_bytes(),
        Failed("at most 64 columns"),
    ));
    let mut million = header_row();
    million.push_str(&good_row(1, 1));
    // Without row numbers (`<row/>`) a million empty rows pack to a few KiB, which is also
    // a ratio only a bomb has; with them (as Excel writes) the file would be 2.5 MB.
    for _ in 2..1_000_002u32 {
        million.push_str("<row/>");
    }
    million.push_str(&good_row(1_000_002, 2));
    let million = xlsx(&million)?;
    add(case(
        "million-empty-rows.xlsx",
        "a good row, a million empty rows (<row/>), another good row",
        million,
        Failed("possible zip bomb"),
    ));
    add(Case {
        file: "million-empty-rows.xlsx",
        about: "the same file with the ratio limit lifted: a million empty rows are skipped in bounded time and memory",
        env: &[("ANNA_MAX_ZIP_RATIO", "10000")],
        bytes: None,
        ..case(
            "million-empty-rows.xlsx",
            "",
            vec![],
            Rows {
                accepted: 2,
                rejected: &[],
            },
        )
    });
    let ods_million = format!(
        "{}{}<table:table-row table:number-rows-repeated=\"1000000\"><table:table-cell table:number-columns-repeated=\"4\"/></table:table-row>{}",
        ods_header(),
        ods_row(&[&phone(1), "Loja", "Ana", "25/12/2026"]),
        ods_row(&[&phone(2), "Loja", "Bia", "25/12/2026"])
    );
    add(case(
        "million-empty-rows.ods",
        "the ods way: one empty row repeated a million times between two good rows (4 million cells in memory)",
        ods(&ods_million)?,
        Rows {
            accepted: 2,
            rejected: &[],
        },
    ));
    let ods_million_wide = format!(
        "<table:table-row>{}<table:table-cell table:number-columns-repeated=\"62\"/>{}</table:table-row><table:table-row table:number-rows-repeated=\"1000000\"><table:table-cell/></table:table-row>{}",
        ods_cell("telefone"),
        ods_cell("x"),
        ods_row(&[&phone(1), "Loja", "Ana", "25/12/2026"])
    );
    add(case(
        "million-empty-rows-wide.ods",
        "a 64-column header, a million repeated empty rows, a row: 64 million cells to expand",
        ods(&ods_million_wide)?,
        Failed("more than the limit of 8000000"),
    ));
    let ods_wide = format!(
        "{}<table:table-row>{}<table:table-cell table:number-columns-repeated=\"16382\"/>{}</table:table-row>",
        ods_header(),
        ods_cell(&phone(1)),
        ods_cell("x")
    );
    add(case(
        "columns-repeated.ods",
        "an ods row whose second value sits 16,383 columns to the right",
        ods(&ods_wide)?,
        Failed("at most 64 columns"),
    ));
    let ods_rows_bomb = format!(
        "{}<table:table-row table:number-rows-repeated=\"1000000\">{}{}{}{}</table:table-row>",
        ods_header(),
        ods_cell(&phone(1)),
        ods_cell("Loja"),
        ods_cell("Ana"),
        ods_cell("25/12/2026")
    );
    add(Case {
        env: &[("ANNA_MAX_ROWS", "100000")],
        ..case(
            "rows-repeated.ods",
            "one data row repeated a million times against a 100,000-row limit",
            ods(&ods_rows_bomb)?,
            Failed("more than 100000 non-empty rows"),
        )
    });
    let many_sheets: Vec<(String, Vec<u8>)> = (0..300)
        .map(|i| {
            (
                format!("S{i}"),
                sheet_xml(&format!("{}{}", header_row(), good_row(1, 1))),
            )
        })
        .collect();
    add(case(
        "many-sheets.xlsx",
        "300 worksheets against a limit of 256",
        zip_of(&xlsx_parts(&many_sheets, None))?,
        Failed("300 sheets"),
    ));
    let scrambled = format!("{}{}{}", good_row(3, 3), header_row(), good_row(1, 1));
    add(case(
        "rows-out-of-order.xlsx",
        "rows written in the order 4, 1, 2",
        xlsx(&scrambled)?,
        Rows {
            accepted: 2,
            rejected: &[],
        },
    ));
    add(case(
        "absurd-cell-ref.xlsx",
        "a cell reference past the last row Excel has (A99999999999)",
        xlsx(&format!(
            "{}{}<row r=\"99999999999\"><c r=\"A99999999999\" t=\"inlineStr\"><is><t>x</t></is></c></row>",
            header_row(),
            good_row(1, 1)
        ))?,
        Failed("the xlsx file is damaged"),
    ));

    // --- cells: formulas, errors, types
    let formula_errors = format!(
        "{}{}{}{}",
        header_row(),
        good_row(1, 1),
        row(
            2,
            &[
                s(2, 0, &phone(2)),
                s(2, 1, "Loja"),
                r#"<c r="C3" t="e"><f>Plan2!A1</f><v>#REF!</v></c>"#.into(),
                s(2, 3, "25/12/2026")
            ]
        ),
        row(
            3,
            &[
                s(3, 0, &phone(3)),
                s(3, 1, "Loja"),
                r#"<c r="C4" t="e"><f>1/0</f><v>#DIV/0!</v></c>"#.into(),
                s(3, 3, "25/12/2026")
            ]
        ),
    );
    add(case(
        "formula-errors.xlsx",
        "nome cells holding #REF! and #DIV/0! from failed formulas",
        xlsx(&formula_errors)?,
        Rows {
            accepted: 1,
            rejected: &[("formula_error", 2)],
        },
    ));
    let phone_formulas = format!(
        "{}{}{}{}{}",
        header_row(),
        row(
            1,
            &[
                format!(
                    r#"<c r="A2" s="2"><f>5511900000000+{}</f><v>{}</v></c>"#,
                    87_650_001,
                    phone(1)
                ),
                s(1, 1, "Loja"),
                s(1, 2, "Ana"),
                s(1, 3, "25/12/2026")
            ]
        ),
        row(
            2,
            &[
                format!(
                    r#"<c r="A3" t="str"><f>"+55 11 "&amp;"9{}"</f><v>+55 11 9{}</v></c>"#,
                    &phone(2)[5..],
                    &phone(2)[5..]
                ),
                s(2, 1, "Loja"),
                s(2, 2, "Bia"),
                s(2, 3, "25/12/2026")
            ]
        ),
        row(
            3,
            &[
                r#"<c r="A4"><f>A2</f></c>"#.into(),
                s(3, 1, "Loja"),
                s(3, 2, "Caio"),
                s(3, 3, "25/12/2026")
            ]
        ),
        row(
            4,
            &[
                r#"<c r="A5" t="e"><f>VLOOKUP(B5,X:Y,2)</f><v>#N/A</v></c>"#.into(),
                s(4, 1, "Loja"),
                s(4, 2, "Duda"),
                s(4, 3, "25/12/2026")
            ]
        ),
    );
    add(case(
        "phone-formulas.xlsx",
        "phone cells as formulas: a number and a text result are used; a formula without a cached value and a #N/A are not phones",
        xlsx(&phone_formulas)?,
        Rows {
            accepted: 2,
            rejected: &[("invalid_phone", 2)],
        },
    ));
    let typed_phones = format!(
        "{}{}{}{}{}",
        header_row(),
        good_row(1, 1),
        row(
            2,
            &[
                n(2, 0, 46_381.0, 1),
                s(2, 1, "Loja"),
                s(2, 2, "Bia"),
                s(2, 3, "25/12/2026")
            ]
        ),
        row(
            3,
            &[
                r#"<c r="A4" t="b"><v>1</v></c>"#.into(),
                s(3, 1, "Loja"),
                s(3, 2, "Caio"),
                s(3, 3, "25/12/2026")
            ]
        ),
        row(
            4,
            &[
                n(4, 0, 5.511_987_650_004e12, 0),
                s(4, 1, "Loja"),
                s(4, 2, "Duda"),
                s(4, 3, "25/12/2026")
            ]
        ),
    );
    add(case(
        "dates-booleans-in-phone.xlsx",
        "the phone column holding a date cell and a boolean (rejected) and a phone stored as a float (accepted)",
        xlsx(&typed_phones)?,
        Rows {
            accepted: 2,
            rejected: &[("invalid_phone", 2)],
        },
    ));
    let controls = format!(
        "{}{}{}{}{}",
        header_row(),
        good_row(1, 1),
        row(
            2,
            &[
                s(2, 0, &phone(2)),
                s(2, 1, "Loja"),
                s(2, 2, "Bia_x0007_"),
                s(2, 3, "25/12/2026")
            ]
        ),
        row(
            3,
            &[
                s(3, 0, &phone(3)),
                s(3, 1, "Loja\u{1b}[31m"),
                s(3, 2, "Caio"),
                s(3, 3, "25/12/2026")
            ]
        ),
        row(
            4,
            &[
                s(4, 0, &phone(4)),
                s(4, 1, "Loja"),
                s(4, 2, "Du\u{85}da"),
                s(4, 3, "25/12/2026")
            ]
        ),
    );
    add(case(
        "control-chars.xlsx",
        "a BEL written as _x0007_, an ANSI escape and a C1 control in variables",
        xlsx(&controls)?,
        Rows {
            accepted: 1,
            rejected: &[("invalid_characters", 3)],
        },
    ));
    let long_cell = format!(
        "{}{}",
        header_row(),
        row(
            1,
            &[
                s(1, 0, &phone(1)),
                s(1, 1, "Loja"),
                s(1, 2, &"a".repeat(40_000)),
                s(1, 3, "25/12/2026")
            ]
        )
    );
    add(case(
        "cell-too-long.xlsx",
        "a 40,000-character cell (Excel holds at most 32,767)",
        xlsx(&long_cell)?,
        Failed("40000 characters in column C"),
    ));
    let rtl = format!(
        "{}{}{}{}",
        header_row(),
        row(
            1,
            &[
                s(1, 0, &phone(1)),
                s(1, 1, "متجر المركز"),
                s(1, 2, "محمد"),
                s(1, 3, "25/12/2026")
            ]
        ),
        row(
            2,
            &[
                s(2, 0, &phone(2)),
                s(2, 1, "חנות 🏬"),
                s(2, 2, "\u{202E}anA\u{202C}"),
                s(2, 3, "25/12/2026")
            ]
        ),
        row(
            3,
            &[
                s(3, 0, &phone(3)),
                s(3, 1, "Loja 👩‍👩‍👧‍👦"),
                s(3, 2, "Zoë 🎉🇧🇷"),
                s(3, 3, "25/12/2026")
            ]
        ),
    );
    add(case(
        "rtl-emoji.xlsx",
        "Arabic and Hebrew text, a right-to-left override, emoji with joiners and flags in variables",
        xlsx(&rtl)?,
        Rows {
            accepted: 3,
            rejected: &[],
        },
    ));
    let ods_controls = format!(
        "{}{}{}",
        ods_header(),
        ods_row(&[&phone(1), "Loja", "Ana\u{1}", "25/12/2026"]),
        ods_row(&[&phone(2), "Loja", "Bia", "25/12/2026"])
    );
    add(case(
        "control-chars.ods",
        "a U+0001 in an ods cell",
        ods(&ods_controls)?,
        Rows {
            accepted: 1,
            rejected: &[("invalid_characters", 1)],
        },
    ));
    let long_values = format!(
        "{HEADER}{},{},{},25/12/2026\n{}",
        phone(1),
        "L".repeat(60),
        "n".repeat(100),
        good_csv_rows(2, 1)
    );
    add(Case {
        env: &[("ANNA_MAX_ROW_VALUE_CHARS", "100")],
        ..case(
            "values-too-long.csv",
            "a row whose values add up to 170 characters against a limit of 100",
            long_values.into_bytes(),
            Rows {
                accepted: 1,
                rejected: &[("values_too_long", 1)],
            },
        )
    });

    // --- CSV
    add(case("control-chars.csv", "BEL, ESC and DEL bytes inside CSV cells", format!("{HEADER}{},Loja,Ana\x07,25/12/2026\n{},Loja\x1b,Bia,25/12/2026\n{},Loja,Caio\x7f,25/12/2026\n{}", phone(1), phone(2), phone(3), good_csv_rows(4, 2)).into_bytes(), Rows { accepted: 2, rejected: &[("invalid_characters", 3)] }));
    add(case(
        "nul-bytes.csv",
        "a NUL byte in a name among good rows (a stray NUL is not binary data)",
        format!(
            "{HEADER}{},Loja,An\0a,25/12/2026\n{}",
            phone(1),
            good_csv_rows(2, 3)
        )
        .into_bytes(),
        Rows {
            accepted: 3,
            rejected: &[("invalid_characters", 1)],
        },
    ));
    add(case(
        "nul-padded.csv",
        "a CSV padded with NUL bytes to a fixed size (old exports)",
        [
            format!("{HEADER}{}", good_csv_rows(1, 2)).into_bytes(),
            vec![0u8; 2000],
        ]
        .concat(),
        Failed("binary data"),
    ));
    add(case("whatsapp-params.csv", "values WhatsApp refuses: a line break (quoted), a tab, five spaces", format!("{HEADER}{},Loja,\"Ana\nMaria\",25/12/2026\n{},Loja,Bia\tX,25/12/2026\n{},Loja,Caio     Y,25/12/2026\n{}", phone(1), phone(2), phone(3), good_csv_rows(4, 1)).into_bytes(), Rows { accepted: 1, rejected: &[("invalid_characters", 3)] }));
    add(case("formula-injection.csv", "values a spreadsheet would run as formulas: text to WhatsApp, neutralised in reports", format!("{HEADER}{},=HYPERLINK(\"http://x\"),Ana,25/12/2026\n{},Loja,+cmd|' /C calc'!A0,25/12/2026\n{},Loja,@SUM(1+1),25/12/2026\n{},Loja,-2+3,25/12/2026\n", phone(1), phone(2), phone(3), phone(4)).into_bytes(), Rows { accepted: 4, rejected: &[] }));
    add(case("mixed-delimiters.csv", "a semicolon header with rows split by commas, semicolons and tabs", format!("telefone;loja;nome;data\n{};Loja;Ana;25/12/2026\n{},Loja,Bia,25/12/2026\n{};Loja;Caio;25/12/2026\n{}\tLoja\tDuda\t25/12/2026\n", phone(1), phone(2), phone(3), phone(4)).into_bytes(), Rows { accepted: 2, rejected: &[("invalid_phone", 2)] }));
    add(case(
        "unbalanced-quote.csv",
        "a quote that opens in row 3 and never closes: the rest of the file is one cell, with line breaks",
        format!(
            "{HEADER}{}{},Loja,\"Bia,25/12/2026\n{}",
            good_csv_rows(1, 1),
            phone(2),
            good_csv_rows(3, 3)
        )
        .into_bytes(),
        Rows {
            accepted: 1,
            rejected: &[("invalid_characters", 1)],
        },
    ));
    add(case(
        "stray-quotes.csv",
        "quotes in the middle of fields",
        format!(
            "{HEADER}{},Loja \"Centro\",Ana,25/12/2026\n{},Loja,Bia \"\"B\"\",25/12/2026\n",
            phone(1),
            phone(2)
        )
        .into_bytes(),
        Rows {
            accepted: 2,
            rejected: &[],
        },
    ));
    add(case(
        "utf16le.csv",
        "UTF-16 little-endian with a BOM, tab-separated (Excel's Unicode text)",
        utf16(
            &format!(
                "telefone\tloja\tnome\tdata\r\n{}\tLoja São João\tJoão\t25/12/2026\r\n{}\tLoja\tMaria\t25/12/2026\r\n",
                phone(1),
                phone(2)
            ),
            false,
            true,
        ),
        Rows {
            accepted: 2,
            rejected: &[],
        },
    ));
    add(case(
        "utf16be.csv",
        "UTF-16 big-endian with a BOM",
        utf16(
            &format!("{HEADER}{},Loja,Zoë,25/12/2026\n", phone(1)),
            true,
            true,
        ),
        Rows {
            accepted: 1,
            rejected: &[],
        },
    ));
    add(case(
        "utf16le-nobom.csv",
        "UTF-16 little-endian without a BOM",
        utf16(
            &format!(
                "{HEADER}{},Loja,Ana,25/12/2026\n{},Loja,Bia,25/12/2026\n",
                phone(1),
                phone(2)
            ),
            false,
            false,
        ),
        Rows {
            accepted: 2,
            rejected: &[],
        },
    ));
    add(case(
        "utf16-odd-length.csv",
        "UTF-16 with a BOM whose last byte is cut off",
        {
            let mut b = utf16(
                &format!(
                    "{HEADER}{},Loja,Ana,25/12/2026\n{},Loja,Bia,25/12/2026",
                    phone(1),
                    phone(2)
                ),
                false,
                true,
            );
            b.pop();
            b
        },
        Rows {
            accepted: 2,
            rejected: &[],
        },
    ));
    add(case(
        "bom-in-middle.csv",
        "two UTF-8 exports concatenated: the second one's BOM and header land mid-file",
        [
            b"\xEF\xBB\xBF".as_slice(),
            format!("{HEADER}{}", good_csv_rows(1, 2)).as_bytes(),
            b"\xEF\xBB\xBF",
            format!("{HEADER}{}", good_csv_rows(3, 2)).as_bytes(),
        ]
        .concat(),
        Rows {
            accepted: 4,
            rejected: &[("invalid_phone", 1)],
        },
    ));
    add(case(
        "bom-in-cells.csv",
        "U+FEFF before phone numbers and names (invisible, removed)",
        format!(
            "{HEADER}\u{FEFF}{},Loja,\u{FEFF}Ana,25/12/2026\n{}",
            phone(1),
            good_csv_rows(2, 1)
        )
        .into_bytes(),
        Rows {
            accepted: 2,
            rejected: &[],
        },
    ));
    add(case(
        "invalid-utf8.csv",
        "bytes that are not UTF-8, read as Windows-1252: \\xE3 and \\x80 are ã and €; \\x81 is no character there (a C1 control)",
        [
            HEADER.as_bytes(),
            phone(1).as_bytes(),
            b",Loja,Jo\xE3o \x80,25/12/2026\n",
            phone(2).as_bytes(),
            b",Loja,Bi\x81a,25/12/2026\n",
        ]
        .concat(),
        Rows {
            accepted: 1,
            rejected: &[("invalid_characters", 1)],
        },
    ));
    add(case(
        "cell-too-long.csv",
        "a 40,000-character cell",
        format!(
            "{HEADER}{},Loja,{},25/12/2026\n",
            phone(1),
            "a".repeat(40_000)
        )
        .into_bytes(),
        Failed("40000 characters in column C"),
    ));
    add(case(
        "lone-cr.csv",
        "old Mac line endings (CR only)",
        format!("{HEADER}{}", good_csv_rows(1, 3))
            .replace('\n', "\r")
            .into_bytes(),
        Rows {
            accepted: 3,
            rejected: &[],
        },
    ));
    add(case(
        "sep-line.csv",
        "Excel's sep= line naming an unusual delimiter",
        format!(
            "sep=|\ntelefone|loja|nome|data\n{}|Loja|Ana|25/12/2026\n",
            phone(1)
        )
        .into_bytes(),
        Rows {
            accepted: 1,
            rejected: &[],
        },
    ));
    add(case("phone-garbage.csv", "phone cells that are not phones: letters, too many digits, only symbols, a date", format!("{HEADER}{}abc,Loja,Ana,25/12/2026\n123456789012345678901234567890,Loja,Bia,25/12/2026\n+-()..,Loja,Caio,25/12/2026\n25/12/2026,Loja,Duda,25/12/2026\n", good_csv_rows(1, 1)).into_bytes(), Rows { accepted: 1, rejected: &[("invalid_phone", 4)] }));
    add(Case {
        template: "lembrete_consulta",
        ..case(
            "header-mismatch.csv",
            "a named template's header missing a variable",
            format!("telefone,nome,data\n{},Ana,25/12/2026\n", phone(1)).into_bytes(),
            Failed("the header row has no column for \"hora\""),
        )
    });
    add(Case {
        template: "lembrete_consulta",
        ..case(
            "duplicate-header.csv",
            "two columns for one named variable",
            format!(
                "telefone,nome,Nome,data,hora\n{},Ana,Ana,25/12/2026,10:00\n",
                phone(1)
            )
            .into_bytes(),
            Failed("more than one column for"),
        )
    });

    // --- too large to commit: built by the corpus test
    for (file, about, synth, expect) in [
        (
            "line-1mb.csv",
            "a 1 MiB line without a delimiter after a good row",
            "csv_line_1mb",
            Failed("bytes long, more than the limit of 262144"),
        ),
        (
            "quoted-cell-1mb.csv",
            "a quoted 1 MiB cell full of line breaks",
            "csv_quoted_1mb",
            Failed("bytes long, more than the limit of 262144"),
        ),
        (
            "million-empty-lines.csv",
            "a good row, a million blank lines, a good row",
            "csv_million_blank",
            Rows {
                accepted: 2,
                rejected: &[],
            },
        ),
    ] {
        add(Case {
            synth: Some(synth),
            bytes: None,
            ..case(file, about, vec![], expect)
        });
    }
    Ok(cases)
}

/// Rewrites every declared uncompressed size in the zip (local headers and central directory)
/// to 1,000 bytes, as a bomb that lies about its sizes would.
fn lying_sizes(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i + 30 <= out.len() {
        if out[i..i + 4] == *b"PK\x03\x04" {
            out[i + 22..i + 26].copy_from_slice(&1000u32.to_le_bytes());
            i += 30;
        } else if out[i..i + 4] == *b"PK\x01\x02" && i + 46 <= out.len() {
            out[i + 24..i + 28].copy_from_slice(&1000u32.to_le_bytes());
            i += 46;
        } else {
            i += 1;
        }
    }
    Ok(out)
}
