//! CSV: encodings, delimiter sniffing and lazy reading of records.

use std::borrow::Cow;
use std::io::Cursor;

use encoding_rs::{UTF_16BE, UTF_16LE, WINDOWS_1252};

use super::{
    ReadOptions, SheetError, SheetFormat, SheetLimits, SheetRow, column_name, finish_cells,
};

/// The encoding of a text file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Utf8,
    Utf8Bom,
    Utf16Le,
    Utf16Be,
    /// What Excel in Brazil writes for "CSV (separado por vírgulas)".
    Windows1252,
}

/// How many bytes are looked at to tell text from binary data and to sniff the delimiter.
const SAMPLE: usize = 64 * 1024;

/// Finds the encoding of a text file, or `None` for binary data.
///
/// A BOM decides; otherwise NUL bytes mean UTF-16 without a BOM when they sit in every
/// other byte, binary data when not; many control characters mean binary data; valid UTF-8
/// is UTF-8 (a multi-byte character cut off at the very end is tolerated); anything else is
/// Windows-1252, in which every byte is a character.
pub(crate) fn sniff_encoding(bytes: &[u8]) -> Option<Encoding> {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Some(Encoding::Utf8Bom);
    }
    if bytes.starts_with(b"\xFF\xFE") {
        return Some(Encoding::Utf16Le);
    }
    if bytes.starts_with(b"\xFE\xFF") {
        return Some(Encoding::Utf16Be);
    }
    let sample = &bytes[..bytes.len().min(SAMPLE)];
    let nuls = sample.iter().filter(|&&b| b == 0).count();
    if nuls > 0 {
        if let Some(utf16) = utf16_without_bom(sample) {
            return Some(utf16);
        }
        // A stray NUL in a text export (a padded field, a bad conversion) is not binary
        // data: the rows around it can still be sent, and the intake rejects the row whose
        // cell holds it. Many NULs that are not UTF-16 are binary.
        if nuls * 100 > sample.len() {
            return None;
        }
    }
    let controls = sample
        .iter()
        .filter(|&&b| matches!(b, 0x00..=0x08 | 0x0B | 0x0E..=0x19 | 0x1C..=0x1F | 0x7F))
        .count();
    if controls * 100 > sample.len() {
        return None;
    }
    match std::str::from_utf8(bytes) {
        Ok(_) => Some(Encoding::Utf8),
        Err(e) if e.error_len().is_none() => Some(Encoding::Utf8),
        Err(_) => Some(Encoding::Windows1252),
    }
}

/// Mostly-Latin text in UTF-16 has a zero in nearly every high byte.
fn utf16_without_bom(sample: &[u8]) -> Option<Encoding> {
    let pairs = sample.len() / 2;
    if pairs < 2 {
        return None;
    }
    let zeros_even = sample
        .iter()
        .step_by(2)
        .take(pairs)
        .filter(|&&b| b == 0)
        .count();
    let zeros_odd = sample
        .iter()
        .skip(1)
        .step_by(2)
        .filter(|&&b| b == 0)
        .count();
    if zeros_odd * 10 >= pairs * 9 && zeros_even * 10 <= pairs {
        Some(Encoding::Utf16Le)
    } else if zeros_even * 10 >= pairs * 9 && zeros_odd * 10 <= pairs {
        Some(Encoding::Utf16Be)
    } else {
        None
    }
}

/// Decodes the whole file. UTF-8 is borrowed; the other encodings are decoded up-front.
pub(crate) fn decode(bytes: &[u8], encoding: Encoding) -> Cow<'_, str> {
    match encoding {
        Encoding::Utf8 => utf8_prefix(bytes),
        Encoding::Utf8Bom => utf8_prefix(bytes.get(3..).unwrap_or_default()),
        Encoding::Utf16Le => {
            UTF_16LE
                .decode_without_bom_handling(utf16_body(bytes, b"\xFF\xFE"))
                .0
        }
        Encoding::Utf16Be => {
            UTF_16BE
                .decode_without_bom_handling(utf16_body(bytes, b"\xFE\xFF"))
                .0
        }
        Encoding::Windows1252 => WINDOWS_1252.decode_without_bom_handling(bytes).0,
    }
}

fn utf16_body<'a>(bytes: &'a [u8], bom: &[u8]) -> &'a [u8] {
    bytes.strip_prefix(bom).unwrap_or(bytes)
}

/// The longest valid UTF-8 prefix (all of it, unless a character is cut off at the end).
fn utf8_prefix(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(e) => match std::str::from_utf8(&bytes[..e.valid_up_to()]) {
            Ok(text) if e.error_len().is_none() => Cow::Borrowed(text),
            _ => String::from_utf8_lossy(bytes),
        },
    }
}

/// Decodes about the first `max` bytes, for a look at how the file starts.
pub(crate) fn decode_head(bytes: &[u8], encoding: Encoding, max: usize) -> String {
    let end = bytes.len().min(max);
    let head = &bytes[..end];
    match encoding {
        Encoding::Utf8 | Encoding::Utf8Bom => {
            let head = if encoding == Encoding::Utf8Bom {
                head.get(3..).unwrap_or_default()
            } else {
                head
            };
            String::from_utf8_lossy(head).into_owned()
        }
        _ => decode(&bytes[..end & !1], encoding).into_owned(),
    }
}

/// Whether the whole file is white space.
pub(crate) fn is_blank(bytes: &[u8], encoding: Encoding) -> bool {
    decode(bytes, encoding).trim().is_empty()
}

const DELIMITERS: [u8; 3] = [b'\t', b';', b','];
const SNIFF_RECORDS: usize = 100;

/// Picks the delimiter among tab, `;` and `,` from the start of the text.
///
/// For each candidate the first records are split the way a CSV reader would (quotes only
/// open at the start of a field, so text in quotes is ignored) and the most common field
/// count is taken. The winner is the candidate whose most common count is above 1 and
/// matches the most records; ties go to the larger count, then to tab, `;`, `,` in that
/// order (Brazilian files use `;` and may have decimal commas). When no candidate splits the
/// lines, the file has one column and the delimiter that appears least is returned.
pub(crate) fn sniff_delimiter(sample: &str, complete: bool) -> u8 {
    // (records matching the most common count, records, that count, delimiter)
    let mut best: Option<(usize, usize, usize, u8)> = None;
    // (extra fields, delimiter)
    let mut least: Option<(usize, u8)> = None;
    for delimiter in DELIMITERS {
        let counts = field_counts(sample.as_bytes(), delimiter, complete);
        let extra: usize = counts.iter().map(|c| c - 1).sum();
        if least.is_none_or(|(e, _)| extra < e) {
            least = Some((extra, delimiter));
        }
        let Some((fields, matching)) = mode(&counts) else {
            continue;
        };
        if fields < 2 {
            continue;
        }
        let records = counts.len();
        let better = best.is_none_or(|(m, r, f, _)| {
            // Compare matching/records as fractions: multi-line quoted fields can make the
            // number of records differ between candidates.
            let (this, that) = (matching * r, m * records);
            this > that || (this == that && fields > f)
        });
        if better {
            best = Some((matching, records, fields, delimiter));
        }
    }
    match (best, least) {
        (Some((_, _, _, delimiter)), _) => delimiter,
        (None, Some((_, delimiter))) => delimiter,
        (None, None) => b',',
    }
}

/// The most common value and how often it occurs; ties go to the larger value.
fn mode(counts: &[usize]) -> Option<(usize, usize)> {
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    let mut best: Option<(usize, usize)> = None;
    for run in sorted.chunk_by(|a, b| a == b) {
        let (value, n) = (run[0], run.len());
        if best.is_none_or(|(v, c)| n > c || (n == c && value > v)) {
            best = Some((value, n));
        }
    }
    best
}

/// The number of fields in each of the first non-blank records, split with `delimiter`.
fn field_counts(text: &[u8], delimiter: u8, complete: bool) -> Vec<usize> {
    let mut counts = Vec::new();
    let mut fields = 1;
    let mut in_quotes = false;
    let mut field_start = true;
    let mut has_content = false;
    let mut i = 0;
    while i < text.len() && counts.len() < SNIFF_RECORDS {
        let c = text[i];
        if in_quotes {
            if c == b'"' {
                if text.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    in_quotes = false;
                }
            }
        } else if c == b'"' && field_start {
            in_quotes = true;
            field_start = false;
            has_content = true;
        } else if c == delimiter {
            fields += 1;
            field_start = true;
            has_content = true;
        } else if c == b'\n' || c == b'\r' {
            if has_content {
                counts.push(fields);
            }
            fields = 1;
            field_start = true;
            has_content = false;
        } else {
            field_start = false;
            has_content = true;
        }
        i += 1;
    }
    // The last record counts when the sample holds the whole text, and also when it is the
    // only one: a first line longer than the sample (16,384 columns, a 1 MB line) must still
    // be split by its delimiter, or it would be read as one enormous cell.
    if has_content && (complete || counts.is_empty()) && counts.len() < SNIFF_RECORDS {
        counts.push(fields);
    }
    counts
}

/// How the csv reader's fields are turned into text.
#[derive(Debug, Clone, Copy)]
enum FieldEncoding {
    /// The text was UTF-8 (or decoded to it up-front).
    Utf8,
    /// The file's own Windows-1252 bytes: one character per byte.
    Windows1252,
}

impl FieldEncoding {
    fn text(self, field: &[u8]) -> Cow<'_, str> {
        match self {
            Self::Utf8 => String::from_utf8_lossy(field),
            Self::Windows1252 => WINDOWS_1252.decode_without_bom_handling(field).0,
        }
    }

    /// The last character boundary at or before `max` (every byte starts a Windows-1252
    /// character, so a UTF-8 rule would wrongly back over its bytes 0x80 to 0xBF).
    fn boundary_at_most(self, text: &[u8], max: usize) -> usize {
        match self {
            Self::Utf8 => floor_char_boundary(text, max),
            Self::Windows1252 => text.len().min(max),
        }
    }

    fn chars(self, field: &[u8]) -> usize {
        match self {
            Self::Utf8 => String::from_utf8_lossy(field).chars().count(),
            Self::Windows1252 => field.len(),
        }
    }
}

/// The rows of a CSV file, parsed as they are pulled.
pub(crate) struct CsvRows<'a> {
    reader: csv::Reader<Cursor<Cow<'a, [u8]>>>,
    fields: FieldEncoding,
    record: csv::ByteRecord,
    /// Where the csv reader started in the text (after an Excel `sep=` line).
    base: usize,
    /// The row number and start of the previous record, and the line breaks inside it.
    previous: Option<(u64, usize, u64)>,
    max_rows: usize,
    max_columns: usize,
    max_cell_chars: usize,
    max_line_bytes: usize,
    rows: usize,
    done: bool,
}

impl<'a> CsvRows<'a> {
    pub(crate) fn new(bytes: &'a [u8], options: &ReadOptions) -> Result<CsvRows<'a>, SheetError> {
        let encoding = sniff_encoding(bytes).ok_or_else(|| SheetError::NotASpreadsheet {
            what: "binary data".to_string(),
        })?;
        // Windows-1252 is read as it is and decoded a field at a time: its delimiters,
        // quotes and line breaks are the ASCII bytes the csv reader looks for, and a copy of a
        // 50 MB file decoded up-front would double what intake holds.
        let (text, fields): (Cow<'a, [u8]>, FieldEncoding) = match encoding {
            Encoding::Windows1252 => (Cow::Borrowed(bytes), FieldEncoding::Windows1252),
            _ => match decode(bytes, encoding) {
                Cow::Borrowed(text) => (Cow::Borrowed(text.as_bytes()), FieldEncoding::Utf8),
                Cow::Owned(text) => (Cow::Owned(text.into_bytes()), FieldEncoding::Utf8),
            },
        };
        let (delimiter, base) = match excel_separator_line(&text) {
            Some((delimiter, skip)) => (delimiter, skip),
            None => {
                let end = fields.boundary_at_most(&text, SAMPLE);
                let sample = fields.text(&text[..end]);
                (sniff_delimiter(&sample, end == text.len()), 0)
            }
        };
        let mut cursor = Cursor::new(text);
        cursor.set_position(base as u64);
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(cursor);
        let SheetLimits {
            max_rows,
            max_columns,
            max_cell_chars,
            max_line_bytes,
            ..
        } = options.limits;
        Ok(CsvRows {
            reader,
            fields,
            record: csv::ByteRecord::new(),
            base,
            previous: None,
            max_rows,
            max_columns,
            max_cell_chars,
            max_line_bytes,
            rows: 0,
            done: false,
        })
    }

    /// The row number of the record just read: the previous row number plus the line
    /// breaks between the two records that are not inside the previous record's fields
    /// (so blank lines count as rows and multi-line cells do not).
    fn row_number(&mut self) -> u64 {
        let text: &[u8] = self.reader.get_ref().get_ref();
        // The csv reader reports where it was when it began the record, before the blank
        // lines (and the `\n` of a `\r\n`) it skips; the record starts after them.
        let mut start = self
            .record
            .position()
            .map_or(0, |p| usize::try_from(p.byte()).unwrap_or(usize::MAX))
            .saturating_add(self.base)
            .min(text.len());
        while matches!(text.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        let inside: u64 = self.record.iter().map(line_breaks).sum();
        let number = match self.previous {
            None => 1 + line_breaks(&text[self.base.min(start)..start]),
            Some((number, previous_start, previous_inside)) => {
                let between = line_breaks(&text[previous_start.min(start)..start]);
                number + between.saturating_sub(previous_inside).max(1)
            }
        };
        self.previous = Some((number, start, inside));
        number
    }
}

impl CsvRows<'_> {
    /// The record just read as a [`SheetError`] when it is longer than a line may be, or
    /// has a cell longer than a cell may be. The csv reader has already buffered the record
    /// (memory stays bounded by the file size); what the limit stops is a file that is one
    /// huge "line" (an unbalanced quote, a binary file that looks like text) reaching the
    /// intake as a single row with megabyte cells.
    fn oversized(&self, number: u64) -> Option<SheetError> {
        let row = u32::try_from(number).unwrap_or(u32::MAX);
        // From where the record starts (after the blank lines before it, which
        // `row_number` skipped) to where the reader stopped.
        let start = self.previous.map_or(self.base, |(_, start, _)| start);
        let end = usize::try_from(self.reader.position().byte())
            .unwrap_or(usize::MAX)
            .saturating_add(self.base);
        let bytes = end.saturating_sub(start);
        if bytes > self.max_line_bytes {
            return Some(SheetError::LineTooLong {
                row,
                bytes,
                max: self.max_line_bytes,
            });
        }
        for (index, field) in self.record.iter().enumerate() {
            if field.len() <= self.max_cell_chars {
                continue;
            }
            let chars = self.fields.chars(field);
            if chars > self.max_cell_chars {
                return Some(SheetError::CellTooLong {
                    row,
                    column: column_name(u32::try_from(index).unwrap_or(u32::MAX)),
                    chars,
                    max: self.max_cell_chars,
                });
            }
        }
        None
    }
}

impl Iterator for CsvRows<'_> {
    type Item = Result<SheetRow, SheetError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => self.done = true,
                Ok(true) => {
                    let number = self.row_number();
                    if let Some(error) = self.oversized(number) {
                        self.done = true;
                        return Some(Err(error));
                    }
                    let fields = self.fields;
                    let cells: Vec<String> = self
                        .record
                        .iter()
                        .map(|field| super::clean_text(&fields.text(field)).to_string())
                        .collect();
                    let Some(cells) = finish_cells(cells) else {
                        continue;
                    };
                    let number = u32::try_from(number).unwrap_or(u32::MAX);
                    if self.rows >= self.max_rows {
                        self.done = true;
                        return Some(Err(SheetError::TooManyRows { max: self.max_rows }));
                    }
                    if cells.len() > self.max_columns {
                        self.done = true;
                        return Some(Err(SheetError::TooManyColumns {
                            row: number,
                            column: column_name(u32::try_from(cells.len() - 1).unwrap_or(u32::MAX)),
                            max: self.max_columns,
                        }));
                    }
                    self.rows += 1;
                    return Some(Ok(SheetRow { number, cells }));
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(SheetError::Corrupt {
                        format: Some(SheetFormat::Csv),
                        detail: e.to_string(),
                    }));
                }
            }
        }
        None
    }
}

/// Line breaks in a piece of text: `\r\n`, `\n` and a lone `\r` each count once.
fn line_breaks(text: &[u8]) -> u64 {
    let mut n = 0;
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\n' => n += 1,
            b'\r' => {
                n += 1;
                if text.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    n
}

/// Excel writes and reads a first line `sep=;` naming the delimiter; it is not data.
/// Returns the delimiter and where the data starts.
fn excel_separator_line(text: &[u8]) -> Option<(u8, usize)> {
    let line_end = text
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .unwrap_or(text.len());
    let line = &text[..line_end];
    let line = line
        .strip_prefix(b"\"")
        .and_then(|l| l.strip_suffix(b"\""))
        .unwrap_or(line);
    let _ = line.get(..4).filter(|p| p.eq_ignore_ascii_case(b"sep="))?;
    let delimiter = match &line[4..] {
        [d] if d.is_ascii() && !d.is_ascii_alphanumeric() && *d != b'"' => *d,
        _ => return None,
    };
    let mut start = line_end;
    if text.get(start) == Some(&b'\r') {
        start += 1;
    }
    if text.get(start) == Some(&b'\n') {
        start += 1;
    }
    Some((delimiter, start))
}

/// The largest index at most `max` that is on a UTF-8 character boundary.
fn floor_char_boundary(text: &[u8], max: usize) -> usize {
    let mut end = text.len().min(max);
    while end > 0 && end < text.len() && (text[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_with(bytes: &[u8], limits: SheetLimits) -> Vec<Result<SheetRow, SheetError>> {
        let options = ReadOptions {
            limits,
            ..ReadOptions::default()
        };
        CsvRows::new(bytes, &options).unwrap().collect()
    }

    fn rows(bytes: &[u8]) -> Vec<(u32, Vec<&'static str>)> {
        rows_with(bytes, SheetLimits::default())
            .into_iter()
            .map(|r| {
                let r = r.unwrap();
                let cells = r.cells.into_iter().map(|c| &*c.leak()).collect();
                (r.number, cells)
            })
            .collect()
    }

    #[test]
    fn sniffs_delimiters() {
        assert_eq!(sniff_delimiter("a,b,c\n1,2,3\n", true), b',');
        assert_eq!(sniff_delimiter("a;b;c\n1;2;3\n", true), b';');
        assert_eq!(sniff_delimiter("a\tb\tc\n1\t2\t3\n", true), b'\t');
        // Decimal commas in a semicolon file.
        assert_eq!(
            sniff_delimiter("nome;valor\nAna;12,50\nBia;13\n", true),
            b';'
        );
        assert_eq!(sniff_delimiter("Ana;12,50\nBia;13,00\n", true), b';');
        // Commas inside quotes do not count.
        assert_eq!(
            sniff_delimiter(
                "telefone;nome\n5511;\"Silva, João\"\n5512;\"Souza, Ana\"\n",
                true
            ),
            b';'
        );
        // Semicolons inside quotes do not count either.
        assert_eq!(
            sniff_delimiter("a,b\n\"x;y;z\",1\n\"p;q;r\",2\n", true),
            b','
        );
        // Unquoted commas in some cells of a semicolon file.
        assert_eq!(
            sniff_delimiter(
                "telefone;loja;nome\n1;Loja Savassi, BH;Ana\n2;Loja Centro;Bia\n3;Loja;Cid\n",
                true
            ),
            b';'
        );
        // A single column.
        assert_eq!(
            sniff_delimiter("telefone\n5511987654321\n5521998765432\n", true),
            b'\t'
        );
        // A truncated last line is ignored.
        assert_eq!(sniff_delimiter("a;b\n1;2\n3,4,5,6", false), b';');
        // ...unless it is the only line the sample holds (a first line longer than the
        // sample is still split by its delimiter).
        assert_eq!(sniff_delimiter("a,b,c,d,e,f,g", false), b',');
    }

    #[test]
    fn line_limits_skip_blank_lines_and_long_first_lines_have_columns() {
        let mut text = b"a,b\n".to_vec();
        text.extend(std::iter::repeat_n(b'\n', 5000));
        text.extend_from_slice(b"c,d\n");
        let limits = SheetLimits {
            max_line_bytes: 1024,
            ..SheetLimits::default()
        };
        let rows = rows_with(&text, limits.clone());
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(Result::is_ok), "{rows:?}");
        let long = format!("a,{}\n", "x".repeat(2000));
        assert_eq!(
            rows_with(long.as_bytes(), limits),
            vec![Err(SheetError::LineTooLong {
                row: 1,
                bytes: 2003,
                max: 1024
            })]
        );
        let wide = (0..20_000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let rows = rows_with(wide.as_bytes(), SheetLimits::default());
        assert!(
            matches!(rows[0], Err(SheetError::TooManyColumns { max: 64, .. })),
            "{:?}",
            rows[0]
        );
    }

    #[test]
    fn reads_comma_file_with_blank_line_and_quotes() {
        let csv = b"telefone,nome,data\n+55 11 98765-4321, Jo\xc3\xa3o ,25/12/2026\n\n\"5521998765432\",\"Silva, Ana\",26/12/2026\n";
        assert_eq!(
            rows(csv),
            vec![
                (1, vec!["telefone", "nome", "data"]),
                (2, vec!["+55 11 98765-4321", "João", "25/12/2026"]),
                (4, vec!["5521998765432", "Silva, Ana", "26/12/2026"]),
            ]
        );
    }

    #[test]
    fn row_numbers_count_blank_lines_but_not_lines_inside_cells() {
        let csv = b"\n\na;b\r\n\r\n;;\r\n\"multi\r\nline\";x\r\n\r\nlast;y";
        assert_eq!(
            rows(csv),
            vec![
                (3, vec!["a", "b"]),
                (6, vec!["multi\r\nline", "x"]),
                (8, vec!["last", "y"])
            ]
        );
        // Old Mac line ends.
        assert_eq!(
            rows(b"a;b\r1;2\r\r3;4\r"),
            vec![
                (1, vec!["a", "b"]),
                (2, vec!["1", "2"]),
                (4, vec!["3", "4"])
            ]
        );
    }

    #[test]
    fn trailing_empty_cells_and_empty_rows() {
        assert_eq!(
            rows(b"a;b;;\n;;;\n  ; \xc2\xa0;\n;x;;\n"),
            vec![(1, vec!["a", "b"]), (4, vec!["", "x"])]
        );
    }

    #[test]
    fn encodings() {
        let expected = vec![
            (1, vec!["telefone", "nome"]),
            (2, vec!["5511987654321", "João Conceição"]),
        ];
        assert_eq!(
            rows(b"telefone;nome\r\n5511987654321;Jo\xe3o Concei\xe7\xe3o\r\n"),
            expected
        );
        assert_eq!(
            rows("\u{feff}telefone;nome\n5511987654321;João Conceição\n".as_bytes()),
            expected
        );
        let text = "telefone\tnome\r\n5511987654321\tJoão Conceição\r\n";
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        let le_no_bom: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(rows(&le), expected);
        assert_eq!(rows(&be), expected);
        assert_eq!(sniff_encoding(&le_no_bom), Some(Encoding::Utf16Le));
        assert_eq!(rows(&le_no_bom), expected);
        // A character cut off at the very end does not turn the file into Windows-1252.
        assert_eq!(
            sniff_encoding("nome\nJoão\n\u{e3}".as_bytes().split_last().unwrap().1),
            Some(Encoding::Utf8)
        );
        assert_eq!(
            sniff_encoding(b"\x00\x01\x02\x03\xff\x00\x13\x00\x00"),
            None
        );
        assert_eq!(sniff_encoding(b"a\x01b\x02c\x03d\x04"), None);
    }

    #[test]
    fn excel_sep_line() {
        assert_eq!(
            rows(b"sep=,\ntelefone,nome;apelido\n5511,Ana;Aninha\n"),
            vec![
                (1, vec!["telefone", "nome;apelido"]),
                (2, vec!["5511", "Ana;Aninha"])
            ]
        );
        assert_eq!(rows(b"\"sep=;\"\r\na;b\r\n"), vec![(1, vec!["a", "b"])]);
    }

    #[test]
    fn limits() {
        let rows = rows_with(
            b"a\n\nb\nc\n",
            SheetLimits {
                max_rows: 2,
                ..SheetLimits::default()
            },
        );
        assert_eq!(rows.len(), 3);
        assert!(rows[0].is_ok() && rows[1].is_ok());
        assert_eq!(rows[2], Err(SheetError::TooManyRows { max: 2 }));

        let rows = rows_with(
            b"a;b;c;;;\nd;e;f;g\n",
            SheetLimits {
                max_columns: 3,
                ..SheetLimits::default()
            },
        );
        assert_eq!(rows.len(), 2);
        assert!(rows[0].is_ok());
        assert_eq!(
            rows[1],
            Err(SheetError::TooManyColumns {
                row: 2,
                column: "D".into(),
                max: 3
            })
        );
    }

    #[test]
    fn awkward_input_never_panics() {
        for input in [
            &b"\""[..],
            b"\"unterminated;quote\nnext;line",
            b"a;\"b\"c;d\n",
            b"\r",
            b"\n\n\n",
            b";;;;",
            b"\xff\xfe\x00",
            b"\xef\xbb\xbf\r\n",
            b"sep=",
            b"sep=;",
        ] {
            let options = ReadOptions::default();
            if let Ok(rows) = CsvRows::new(input, &options) {
                let _ = rows.count();
            }
        }
    }
}
