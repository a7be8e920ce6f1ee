//! Telling a spreadsheet's format from its bytes.

use std::io::{Cursor, Read};

use zip::ZipArchive;

use super::text;
use super::{SheetError, SheetFormat};

const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const CFB_MAGIC: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
const ODS_MIMETYPE: &str = "application/vnd.oasis.opendocument.spreadsheet";

/// Finds the format of a file from its bytes (never its name).
///
/// - A zip holding `xl/workbook.xml` is xlsx, or xlsm when its `[Content_Types].xml` declares
///   a macro-enabled workbook; `xl/workbook.bin` is xlsb; a `mimetype` entry of
///   `application/vnd.oasis.opendocument.spreadsheet` is ods. A zip whose directory cannot be
///   read but whose entries look like one of those is still reported as that format (reading
///   it then fails as [`SheetError::Corrupt`]).
/// - An OLE compound file is xls, or [`SheetError::Encrypted`] when it holds an
///   `EncryptionInfo` stream (a password-protected xlsx), or not a spreadsheet when it is
///   another Office document.
/// - Known non-spreadsheet files (PDF, images, archives, HTML, XML) are
///   [`SheetError::NotASpreadsheet`]; other text is CSV; other binary data is not a
///   spreadsheet; a file with no bytes (or only white space) is [`SheetError::Empty`].
pub fn detect_format(bytes: &[u8]) -> Result<SheetFormat, SheetError> {
    if bytes.is_empty() {
        return Err(SheetError::Empty);
    }
    if bytes.starts_with(ZIP_MAGIC) {
        return detect_zip(bytes);
    }
    if bytes.starts_with(CFB_MAGIC) {
        return detect_cfb(bytes);
    }
    if let Some(what) = known_binary(bytes) {
        return Err(not_a_sheet(what));
    }
    detect_text(bytes)
}

fn not_a_sheet(what: &str) -> SheetError {
    SheetError::NotASpreadsheet {
        what: what.to_string(),
    }
}

/// File signatures of things people upload by mistake.
fn known_binary(bytes: &[u8]) -> Option<&'static str> {
    const SIGNATURES: &[(&[u8], &str)] = &[
        (b"%PDF", "a PDF document"),
        (b"\x89PNG\r\n\x1a\n", "a PNG image"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"GIF87a", "a GIF image"),
        (b"GIF89a", "a GIF image"),
        (b"II*\x00", "a TIFF image"),
        (b"MM\x00*", "a TIFF image"),
        (b"\x1F\x8B", "a gzip archive"),
        (b"BZh", "a bzip2 archive"),
        (b"\xFD7zXZ\x00", "an xz archive"),
        (b"\x28\xB5\x2F\xFD", "a zstd archive"),
        (b"Rar!\x1A\x07", "a RAR archive"),
        (b"7z\xBC\xAF\x27\x1C", "a 7-Zip archive"),
        (b"PK\x05\x06", "an empty zip archive"),
        (b"PK\x07\x08", "a zip archive"),
        (b"\x7FELF", "a program"),
        (b"{\\rtf", "an RTF document"),
        (b"SQLite format 3\x00", "an SQLite database"),
        (b"OggS", "an audio file"),
        (b"ID3", "an audio file"),
        (b"fLaC", "an audio file"),
    ];
    if let Some((_, what)) = SIGNATURES
        .iter()
        .find(|(magic, _)| bytes.starts_with(magic))
    {
        return Some(what);
    }
    if bytes.starts_with(b"RIFF") && bytes.get(8..12).is_some_and(|t| t == b"WEBP") {
        return Some("a WebP image");
    }
    if bytes.starts_with(b"RIFF") {
        return Some("an audio or video file");
    }
    if bytes.get(4..8).is_some_and(|t| t == b"ftyp") {
        return Some("an audio or video file");
    }
    None
}

fn detect_zip(bytes: &[u8]) -> Result<SheetFormat, SheetError> {
    let mut archive = match ZipArchive::new(Cursor::new(bytes)) {
        Ok(archive) => archive,
        Err(e) => return detect_damaged_zip(bytes, &e.to_string()),
    };
    let names: Vec<String> = archive
        .file_names_raw()
        .map(|name| {
            String::from_utf8_lossy(name)
                .replace('\\', "/")
                .to_ascii_lowercase()
        })
        .collect();
    let has = |wanted: &str| names.iter().any(|n| n == wanted);

    if has("xl/workbook.bin") {
        return Ok(SheetFormat::Xlsb);
    }
    if has("xl/workbook.xml") {
        let macro_enabled = read_small_entry(&mut archive, "[Content_Types].xml")
            .is_some_and(|types| types.to_ascii_lowercase().contains("macroenabled"));
        return Ok(if macro_enabled {
            SheetFormat::Xlsm
        } else {
            SheetFormat::Xlsx
        });
    }
    if has("mimetype") {
        let mimetype = read_small_entry(&mut archive, "mimetype").unwrap_or_default();
        let mimetype = mimetype.trim();
        if mimetype.starts_with(ODS_MIMETYPE) {
            return Ok(SheetFormat::Ods);
        }
        if mimetype.starts_with("application/vnd.oasis.opendocument.text") {
            return Err(not_a_sheet("an OpenDocument text document"));
        }
        if mimetype.starts_with("application/vnd.oasis.opendocument.presentation") {
            return Err(not_a_sheet("an OpenDocument presentation"));
        }
        if mimetype.starts_with("application/vnd.oasis.opendocument") {
            return Err(not_a_sheet(
                "an OpenDocument file that is not a spreadsheet",
            ));
        }
    }
    if has("content.xml") && has("meta-inf/manifest.xml") {
        // An OpenDocument file without its mimetype entry.
        return Ok(SheetFormat::Ods);
    }
    if names.iter().any(|n| n.starts_with("word/")) {
        return Err(not_a_sheet("a Word document"));
    }
    if names.iter().any(|n| n.starts_with("ppt/")) {
        return Err(not_a_sheet("a PowerPoint presentation"));
    }
    Err(not_a_sheet("a zip archive"))
}

/// A zip whose central directory cannot be read (truncated, damaged): guess the format from
/// the entry names in the local headers, so the operator hears "the xlsx file is damaged".
fn detect_damaged_zip(bytes: &[u8], detail: &str) -> Result<SheetFormat, SheetError> {
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    let format = if contains(b"xl/workbook.bin") {
        Some(SheetFormat::Xlsb)
    } else if contains(b"xl/") || contains(b"[Content_Types].xml") {
        if contains(b"vbaProject.bin") {
            Some(SheetFormat::Xlsm)
        } else {
            Some(SheetFormat::Xlsx)
        }
    } else if contains(ODS_MIMETYPE.as_bytes()) {
        Some(SheetFormat::Ods)
    } else {
        None
    };
    match format {
        Some(format) => Ok(format),
        None => Err(SheetError::Corrupt {
            format: None,
            detail: format!("the zip archive cannot be opened: {detail}"),
        }),
    }
}

fn read_small_entry<R: Read + std::io::Seek>(
    archive: &mut ZipArchive<R>,
    name: &str,
) -> Option<String> {
    const MAX: u64 = 1 << 20;
    let index = archive
        .file_names_raw()
        .position(|n| n.eq_ignore_ascii_case(name.as_bytes()))?;
    let entry = archive.by_index(index).ok()?;
    let mut text = String::new();
    entry.take(MAX).read_to_string(&mut text).ok()?;
    Some(text)
}

/// An OLE compound file: xls, an encrypted OOXML file, or another Office document.
///
/// Rather than walking the FAT, this looks at every 128-byte directory-entry slot after the
/// header for a well-formed entry with one of the names that matter. Directory sectors are
/// aligned to 512 bytes, so every entry is in such a slot; a false match would need stream
/// data shaped exactly like a directory entry with that name. Truncated files still work.
fn detect_cfb(bytes: &[u8]) -> Result<SheetFormat, SheetError> {
    let names = cfb_entry_names(bytes);
    let has = |wanted: &str| names.iter().any(|n| n.eq_ignore_ascii_case(wanted));
    if has("EncryptionInfo") || has("EncryptedPackage") {
        return Err(SheetError::Encrypted);
    }
    if has("Workbook") || has("Book") {
        return Ok(SheetFormat::Xls);
    }
    if has("WordDocument") {
        return Err(not_a_sheet("a Word document"));
    }
    if has("PowerPoint Document") {
        return Err(not_a_sheet("a PowerPoint presentation"));
    }
    if has("__substg1.0_0037001F") || has("__substg1.0_0037001E") {
        return Err(not_a_sheet("an Outlook message"));
    }
    // Unknown or unreadable: let the xls reader have its say.
    Ok(SheetFormat::Xls)
}

fn cfb_entry_names(bytes: &[u8]) -> Vec<String> {
    const ENTRY: usize = 128;
    let mut names = Vec::new();
    let mut offset = 512;
    while let Some(entry) = bytes.get(offset..offset + ENTRY) {
        offset += ENTRY;
        let name_len = usize::from(u16::from_le_bytes([entry[64], entry[65]]));
        let kind = entry[66];
        // Storage, stream or root; the length counts the UTF-16 terminator.
        if !(matches!(kind, 1 | 2 | 5) && (4..=64).contains(&name_len) && name_len % 2 == 0) {
            continue;
        }
        let units: Vec<u16> = entry[..name_len - 2]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        if entry[name_len - 2..name_len] != [0, 0] || units.contains(&0) {
            continue;
        }
        if let Ok(name) = String::from_utf16(&units) {
            names.push(name);
        }
    }
    names
}

/// Text is CSV; binary data is not a spreadsheet.
fn detect_text(bytes: &[u8]) -> Result<SheetFormat, SheetError> {
    let encoding = match text::sniff_encoding(bytes) {
        Some(encoding) => encoding,
        None => return Err(not_a_sheet("binary data")),
    };
    let head = text::decode_head(bytes, encoding, 4096);
    let head = head.trim_start();
    if head.is_empty() && text::is_blank(bytes, encoding) {
        return Err(SheetError::Empty);
    }
    let lower = head
        .get(..head.len().min(512))
        .unwrap_or(head)
        .to_ascii_lowercase();
    // Some systems export an HTML table or Excel 2003 XML under an .xls name.
    if lower.starts_with("<?xml")
        && (lower.contains("urn:schemas-microsoft-com:office:spreadsheet")
            || lower.contains("<workbook"))
    {
        return Err(not_a_sheet("an Excel 2003 XML file"));
    }
    if lower.starts_with('<')
        && ["<!doctype html", "<html", "<table"]
            .iter()
            .any(|tag| lower.contains(tag))
    {
        return Err(not_a_sheet("a web page (HTML)"));
    }
    if lower.starts_with("<?xml") {
        return Err(not_a_sheet("an XML document"));
    }
    Ok(SheetFormat::Csv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sheet::test_zip::zip_with;

    /// A compound file with the given stream names in its first directory sector.
    fn cfb_with(names: &[&str]) -> Vec<u8> {
        let mut bytes = CFB_MAGIC.to_vec();
        bytes.resize(512, 0);
        let mut root = vec!["Root Entry"];
        root.extend_from_slice(names);
        for (i, name) in root.iter().enumerate() {
            let mut entry = [0u8; 128];
            let units: Vec<u16> = name.encode_utf16().collect();
            for (j, u) in units.iter().enumerate() {
                entry[j * 2..j * 2 + 2].copy_from_slice(&u.to_le_bytes());
            }
            let len = (units.len() as u16 + 1) * 2;
            entry[64..66].copy_from_slice(&len.to_le_bytes());
            entry[66] = if i == 0 { 5 } else { 2 };
            bytes.extend_from_slice(&entry);
        }
        bytes.resize(512 * 3, 0);
        bytes
    }

    #[test]
    fn empty() {
        assert_eq!(detect_format(b""), Err(SheetError::Empty));
        assert_eq!(detect_format(b"  \r\n\n\t"), Err(SheetError::Empty));
        assert_eq!(detect_format(b"\xEF\xBB\xBF"), Err(SheetError::Empty));
        assert_eq!(detect_format(b"\xFF\xFE\x20\x00"), Err(SheetError::Empty));
    }

    #[test]
    fn zip_formats() {
        let xlsx = zip_with(&[
            ("[Content_Types].xml", b"<Override ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/>"),
            ("xl/workbook.xml", b"<workbook/>"),
        ]);
        assert_eq!(detect_format(&xlsx), Ok(SheetFormat::Xlsx));
        let xlsm = zip_with(&[
            (
                "[Content_Types].xml",
                b"<Override ContentType=\"application/vnd.ms-excel.sheet.macroEnabled.main+xml\"/>",
            ),
            ("xl/workbook.xml", b"<workbook/>"),
        ]);
        assert_eq!(detect_format(&xlsm), Ok(SheetFormat::Xlsm));
        let xlsb = zip_with(&[
            (
                "[Content_Types].xml",
                b"application/vnd.ms-excel.sheet.binary.macroEnabled.main",
            ),
            ("xl/workbook.bin", b""),
        ]);
        assert_eq!(detect_format(&xlsb), Ok(SheetFormat::Xlsb));
        let ods = zip_with(&[("mimetype", ODS_MIMETYPE.as_bytes()), ("content.xml", b"")]);
        assert_eq!(detect_format(&ods), Ok(SheetFormat::Ods));
        let odt = zip_with(&[("mimetype", b"application/vnd.oasis.opendocument.text")]);
        assert!(matches!(
            detect_format(&odt),
            Err(SheetError::NotASpreadsheet { .. })
        ));
        let docx = zip_with(&[("word/document.xml", b"<w/>")]);
        assert_eq!(
            detect_format(&docx),
            Err(SheetError::NotASpreadsheet {
                what: "a Word document".into()
            })
        );
        let other = zip_with(&[("photo.jpg", b"\xFF\xD8\xFF")]);
        assert_eq!(
            detect_format(&other),
            Err(SheetError::NotASpreadsheet {
                what: "a zip archive".into()
            })
        );
    }

    #[test]
    fn truncated_zip_is_named_by_its_entries() {
        let xlsx = zip_with(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("xl/workbook.xml", b"<workbook/>"),
        ]);
        let truncated = &xlsx[..xlsx.len() / 2];
        assert_eq!(detect_format(truncated), Ok(SheetFormat::Xlsx));
        let junk = b"PK\x03\x04 not really a zip at all";
        assert!(matches!(
            detect_format(junk),
            Err(SheetError::Corrupt { format: None, .. })
        ));
    }

    #[test]
    fn compound_files() {
        assert_eq!(
            detect_format(&cfb_with(&["Workbook", "\u{5}SummaryInformation"])),
            Ok(SheetFormat::Xls)
        );
        assert_eq!(detect_format(&cfb_with(&["Book"])), Ok(SheetFormat::Xls));
        assert_eq!(
            detect_format(&cfb_with(&["EncryptionInfo", "EncryptedPackage"])),
            Err(SheetError::Encrypted)
        );
        assert!(matches!(
            detect_format(&cfb_with(&["WordDocument"])),
            Err(SheetError::NotASpreadsheet { .. })
        ));
        // Only the header: left to the xls reader, which reports it damaged.
        assert_eq!(detect_format(CFB_MAGIC), Ok(SheetFormat::Xls));
    }

    #[test]
    fn known_non_spreadsheets() {
        for (bytes, what) in [
            (&b"%PDF-1.7\n..."[..], "a PDF document"),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "a PNG image"),
            (b"\xFF\xD8\xFF\xE0\0\x10JFIF", "a JPEG image"),
            (b"GIF89a\x01\0", "a GIF image"),
            (b"\x1F\x8B\x08\0", "a gzip archive"),
        ] {
            assert_eq!(
                detect_format(bytes),
                Err(SheetError::NotASpreadsheet { what: what.into() })
            );
        }
        assert!(matches!(
            detect_format(b"<!DOCTYPE html><html><table><tr><td>1</td></tr></table>"),
            Err(SheetError::NotASpreadsheet { .. })
        ));
        assert!(matches!(
            detect_format(b"<?xml version=\"1.0\"?><Workbook xmlns=\"urn:schemas-microsoft-com:office:spreadsheet\">"),
            Err(SheetError::NotASpreadsheet { .. })
        ));
        assert_eq!(
            detect_format(b"\x00\x01\x02\x03garbage\x00\xff\xfe"),
            Err(SheetError::NotASpreadsheet {
                what: "binary data".into()
            })
        );
    }

    #[test]
    fn text_is_csv() {
        assert_eq!(
            detect_format(b"telefone,nome\n5511987654321,Ana\n"),
            Ok(SheetFormat::Csv)
        );
        assert_eq!(detect_format(b"5511987654321"), Ok(SheetFormat::Csv));
        assert_eq!(
            detect_format(b"telefone;nome\r\n5511;Jo\xe3o\r\n"),
            Ok(SheetFormat::Csv)
        );
        assert_eq!(
            detect_format(b"\xEF\xBB\xBFtelefone;nome\n"),
            Ok(SheetFormat::Csv)
        );
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(
                "telefone\tnome\n"
                    .encode_utf16()
                    .flat_map(|u| u.to_le_bytes()),
            )
            .collect();
        assert_eq!(detect_format(&utf16), Ok(SheetFormat::Csv));
    }

    #[test]
    fn never_panics_on_prefixes() {
        let xlsx = zip_with(&[("xl/workbook.xml", b"<workbook/>")]);
        let cfb = cfb_with(&["Workbook"]);
        for data in [&xlsx[..], &cfb[..], b"\x89PNG\r\n", b"\xFF\xFE\x00"] {
            for end in 0..data.len() {
                let _ = detect_format(&data[..end]);
            }
        }
    }
}
