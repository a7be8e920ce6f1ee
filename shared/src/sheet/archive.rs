//! Zip bombs: the limits on what an xlsx, xlsm, xlsb or ods file unpacks to, checked before
//! calamine opens it.
//!
//! calamine decompresses whole parts into memory (the shared-strings table, the workbook, the
//! styles) and streams the worksheet, so a few kilobytes of deflate can cost gigabytes of
//! memory or minutes of CPU. The central directory says what each part unpacks to; this
//! checks the number of parts, their total size and each part's compression ratio there,
//! before any part is decompressed.
//!
//! A part that lies about its size in the directory gets no further: the zip crate stops
//! reading a part at the first byte past its declared size with an error, which calamine
//! reports as a damaged file (`a_part_that_lies_about_its_size_is_caught` keeps that true
//! across upgrades).
//!
//! A zip whose directory cannot be read is left to the reader, which reports it damaged.

use std::io::{Cursor, Read};

use zip::ZipArchive;

use super::{SheetError, SheetLimits};

/// Parts smaller than this may have any ratio: small XML parts full of repeated markup
/// compress very well and cannot cost much.
const RATIO_FLOOR_BYTES: u64 = 1 << 20;

pub(crate) fn check_zip(bytes: &[u8], limits: &SheetLimits) -> Result<(), SheetError> {
    let Ok(mut archive) = ZipArchive::new(Cursor::new(bytes)) else {
        return Ok(());
    };
    if archive.len() > limits.max_zip_entries {
        return Err(SheetError::TooManyParts {
            parts: archive.len(),
            max: limits.max_zip_entries,
        });
    }
    let mut declared_total: u64 = 0;
    for index in 0..archive.len() {
        let Ok(entry) = archive.by_index_raw(index) else {
            continue;
        };
        let size = entry.size();
        declared_total = declared_total.saturating_add(size);
        if declared_total > limits.max_unzipped_bytes {
            return Err(SheetError::UnpackedTooLarge {
                max: limits.max_unzipped_bytes,
            });
        }
        if size > RATIO_FLOOR_BYTES {
            let ratio = size / entry.compressed_size().max(1);
            if ratio > u64::from(limits.max_zip_ratio) {
                return Err(SheetError::CompressionRatio {
                    part: part_name(&entry),
                    ratio,
                    max: limits.max_zip_ratio,
                });
            }
        }
    }
    Ok(())
}

fn part_name<R: Read>(entry: &zip::read::ZipFile<'_, R>) -> String {
    entry
        .name()
        .map(|name| name.into_owned())
        .unwrap_or_else(|_| String::from_utf8_lossy(entry.name_raw()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sheet::test_zip::zip_with;

    #[test]
    fn honest_small_archives_pass() {
        let bytes = zip_with(&[("xl/workbook.xml", b"<workbook/>"), ("a", &[b'x'; 4096])]);
        assert_eq!(check_zip(&bytes, &SheetLimits::default()), Ok(()));
        // Not a zip at all: left to the reader.
        assert_eq!(
            check_zip(b"PK\x03\x04junk", &SheetLimits::default()),
            Ok(())
        );
    }

    #[test]
    fn limits_on_parts_size_and_ratio() {
        let big = vec![b'a'; 4 << 20];
        let bytes = zip_with(&[("xl/sharedStrings.xml", &big)]);
        let err = check_zip(&bytes, &SheetLimits::default()).unwrap_err();
        assert!(
            matches!(err, SheetError::CompressionRatio { ref part, .. } if part == "xl/sharedStrings.xml"),
            "{err:?}"
        );
        let limits = SheetLimits {
            max_zip_ratio: 100_000,
            max_unzipped_bytes: 1 << 20,
            ..SheetLimits::default()
        };
        assert_eq!(
            check_zip(&bytes, &limits),
            Err(SheetError::UnpackedTooLarge { max: 1 << 20 })
        );
        let many: Vec<(String, Vec<u8>)> = (0..20).map(|i| (format!("p{i}"), vec![])).collect();
        let refs: Vec<(&str, &[u8])> = many
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        let limits = SheetLimits {
            max_zip_entries: 10,
            ..SheetLimits::default()
        };
        assert_eq!(
            check_zip(&zip_with(&refs), &limits),
            Err(SheetError::TooManyParts { parts: 20, max: 10 })
        );
    }

    #[test]
    fn a_part_that_lies_about_its_size_is_caught() {
        let data = vec![b'z'; 200_000];
        let mut bytes = zip_with(&[("xl/worksheets/sheet1.xml", &data)]);
        // Rewrite the declared uncompressed size (local header offset 22, central directory
        // entry offset 24) to 1000 bytes.
        let local = 0;
        bytes[local + 22..local + 26].copy_from_slice(&1000u32.to_le_bytes());
        let central = bytes
            .windows(4)
            .position(|w| w == b"PK\x01\x02")
            .expect("central directory");
        bytes[central + 24..central + 28].copy_from_slice(&1000u32.to_le_bytes());
        // The directory now looks harmless...
        assert_eq!(check_zip(&bytes, &SheetLimits::default()), Ok(()));
        // ...but reading the part stops with an error soon after its declared size.
        let mut archive = ZipArchive::new(Cursor::new(&bytes[..])).unwrap();
        let mut entry = archive.by_index(0).unwrap();
        let mut sink = Vec::new();
        let err = entry.read_to_end(&mut sink).unwrap_err();
        assert!(err.to_string().contains("declared"), "{err}");
        assert!(sink.len() < 70_000, "{}", sink.len());
    }
}
