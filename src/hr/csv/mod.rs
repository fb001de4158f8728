//! CSV exports: a header row; UTF-8 with or without BOM, UTF-16 with BOM, or the configured
//! fallback encoding (Windows-1252 by default) for files that are not UTF-8; delimiter given or
//! detected; quoted fields with delimiters and newlines; blank lines ignored.
//!
//! A UTF-8 file is streamed through the csv crate's reader ([`rows`]: parsed on a thread of its
//! own, in batches whose buffers are reused) and hashed as its bytes pass: it is never held
//! whole in memory. Anything else (a UTF-16 byte order mark, bytes that are not UTF-8) is read
//! whole and decoded first.

mod rows;

use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

use self::rows::{BLOCK, Parsed, line_ends};
use super::{
    CsvOptions, Layout, Record, Records, Snapshot, UnreadText, match_columns, normalize,
    refuse_empty,
};
use crate::error::Error;

const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Reads `path` (shown to people as `display`) into a snapshot with the given layout.
pub fn read(
    path: &Path,
    display: &str,
    options: CsvOptions<'_>,
    layout: Layout,
) -> Result<Snapshot, Error> {
    let cannot_read = |e| cannot_read(display, e);
    let mut file = std::fs::File::open(path).map_err(cannot_read)?;
    let before = file.metadata().map_err(cannot_read)?;
    let read_whole = || std::fs::read(path).map_err(cannot_read);
    // A pipe (`--hr /dev/stdin`) can be read only once: whole, then parsed.
    if !before.is_file() {
        return parse(&read_whole()?, display, options, layout);
    }
    // The first block tells the encoding and the delimiter.
    let mut start = Vec::with_capacity(BLOCK);
    (&mut file)
        .take(BLOCK as u64)
        .read_to_end(&mut start)
        .map_err(cannot_read)?;
    refuse_spreadsheet(display, &start)?;
    if needs_decoding(&start, options) {
        return parse(&read_whole()?, display, options, layout);
    }
    let start_text = match std::str::from_utf8(&start) {
        Ok(text) => text,
        // The block may end inside a character, or the file may need the fallback encoding.
        Err(e) => std::str::from_utf8(&start[..e.valid_up_to()]).unwrap_or_default(),
    };
    let delimiter = delimiter(options, start_text, &layout);
    let input = std::io::Cursor::new(start).chain(file);
    let (records, read) = match read_rows(input, display, delimiter, &layout) {
        Ok(read) => read,
        Err(Stop::NotUtf8) => return parse(&read_whole()?, display, options, layout),
        Err(Stop::Invalid(e)) => return Err(e),
    };
    // The file must not change while it is read: what was hashed is what was parsed, and it is
    // the whole file as it was before and still is.
    let after = std::fs::metadata(path).map_err(cannot_read)?;
    if read.length != before.len()
        || after.len() != before.len()
        || after.modified().ok() != before.modified().ok()
    {
        return Err(Error::input(format!(
            "the HR file {display} changed while it was read; run again once the export is complete"
        )));
    }
    refuse_empty(display, &records)?;
    Ok(Snapshot::new(
        display.to_string(),
        read.sha256,
        layout,
        records,
    ))
}

fn cannot_read(display: &str, e: std::io::Error) -> Error {
    Error::input(format!("cannot read the HR file {display}: {e}"))
}

/// Whether the start of a file says it is not plain UTF-8: a UTF-16 file (by its byte order
/// mark, its NUL bytes, or the configured encoding) is decoded whole, as configured, or refused.
fn needs_decoding(start: &[u8], options: CsvOptions<'_>) -> bool {
    let utf16 = encoding_rs::Encoding::for_label(options.encoding.as_bytes())
        .is_some_and(|e| e == encoding_rs::UTF_16LE || e == encoding_rs::UTF_16BE);
    let other_bom = encoding_rs::Encoding::for_bom(start)
        .is_some_and(|(encoding, _)| encoding != encoding_rs::UTF_8);
    utf16 || other_bom || start.contains(&0)
}

/// Parses CSV bytes already read (from a file or a server).
pub fn parse(
    bytes: &[u8],
    display: &str,
    options: CsvOptions<'_>,
    layout: Layout,
) -> Result<Snapshot, Error> {
    let text = decode(bytes, display, options.encoding)?;
    let delimiter = delimiter(options, &text, &layout);
    let (records, read) = match read_rows(text.as_bytes(), display, delimiter, &layout) {
        Ok(read) => read,
        Err(Stop::Invalid(e)) => return Err(e),
        Err(Stop::NotUtf8) => unreachable!("decoded text is UTF-8"),
    };
    refuse_empty(display, &records)?;
    // The digest is of the bytes as they came: the reader's own when it read exactly those, not
    // a text decoding changed or a byte order mark was taken off.
    let sha256 = if std::ptr::eq(text.as_bytes(), bytes) {
        read.sha256
    } else {
        crate::digest::sha256_hex(bytes)
    };
    Ok(Snapshot::new(display.to_string(), sha256, layout, records))
}

/// The configured delimiter, or the one detected in the header: the first line of `start` that
/// is not blank.
fn delimiter(options: CsvOptions<'_>, start: &str, layout: &Layout) -> u8 {
    options.delimiter.byte().unwrap_or_else(|| {
        let header = start
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default();
        detect_delimiter(header, &layout.columns)
    })
}

/// Why reading stopped early.
enum Stop {
    /// A field is not UTF-8: the file needs decoding.
    NotUtf8,
    Invalid(Error),
}

/// Reads the rows of CSV `input` with the csv crate: the first row that is not blank is the
/// header, each later one a record or, when blank, nothing.
fn read_rows<R: std::io::Read + Send>(
    input: R,
    display: &str,
    delimiter: u8,
    layout: &Layout,
) -> Result<(Records, Parsed), Stop> {
    let mut rows = Rows {
        display,
        layout,
        delimiter,
        header: None,
        records: Records::default(),
    };
    // What the last row was read as.
    let mut last = None;
    // Stands in the parser's slot while a row is checked, so that no row allocates a record.
    let mut spare = Some(csv::ByteRecord::new());
    let parsed = rows::parse_rows(input, delimiter, |line, fields| {
        // Each field is checked on its own: a character cut by a delimiter is two fields that
        // are not UTF-8. The record's buffers go back to the parser either way.
        let fields_read = std::mem::replace(fields, spare.take().expect("put back each row"));
        let text = csv::StringRecord::from_byte_record(fields_read).map_err(|_| Stop::NotUtf8)?;
        last = Some(rows.take(line, &text)?);
        spare = Some(std::mem::replace(fields, text.into_byte_record()));
        Ok(())
    })
    .map_err(|halt| match halt {
        rows::Halt::Refused(stop) => stop,
        rows::Halt::Unreadable(e) => Stop::Invalid(cannot_read(display, e.into())),
    })?;
    if let (Some((line, bytes)), Some(taken)) = (&parsed.last_row, last) {
        rows.check_last_row(bytes, *line, taken)?;
    }
    if rows.header.is_none() {
        return Err(Stop::Invalid(Error::input(format!(
            "the HR file {display} is empty; refusing to plan from it (an empty export would look like everyone left)"
        ))));
    }
    Ok((rows.records, parsed))
}

/// What a row was read as.
enum Taken {
    Header,
    Blank,
    /// A person's row, with this many fields.
    Record {
        fields: usize,
    },
}

/// CSV rows to records: the header first, then the people.
struct Rows<'a> {
    display: &'a str,
    layout: &'a Layout,
    delimiter: u8,
    /// Header width and, per layout slot, the column it is read from.
    header: Option<(usize, Vec<usize>)>,
    records: Records,
}

impl Rows<'_> {
    /// A row read (starting on `line`): the header, a record, or nothing (a blank row).
    fn take(&mut self, line: u64, fields: &csv::StringRecord) -> Result<Taken, Stop> {
        if fields.iter().all(|f| f.trim_ascii().is_empty()) {
            return Ok(Taken::Blank);
        }
        let Some((width, columns)) = &self.header else {
            let header: Vec<&str> = fields.iter().collect();
            let columns = match_columns(
                &format!("{}:{line}", self.display),
                self.layout,
                &header,
                &format!(" (delimiter used: {:?})", self.delimiter as char),
            )
            .map_err(Stop::Invalid)?;
            self.header = Some((fields.len(), columns));
            return Ok(Taken::Header);
        };
        let width = *width;
        let mut record = Record::new(line, columns.iter().map(|&i| fields.get(i).unwrap_or("")));
        let mut problems = Vec::new();
        let over_lines = fields.as_slice().contains('\n');
        if fields.len() != width {
            problems.push(format!(
                "the row has {} fields where the header has {width}",
                fields.len(),
            ));
            // Its lines are noted one by one below when it runs over several.
            if !over_lines {
                let text = fields.iter().collect::<Vec<_>>();
                self.records.note_unread(UnreadText {
                    line,
                    row_line: line,
                    text: text.join(&(self.delimiter as char).to_string()).into(),
                });
            }
        }
        if over_lines {
            problems.extend(self.note_lines_that_look_like_rows(line, fields));
        }
        if !problems.is_empty() {
            record.problem = Some(problems.join("; "));
        }
        self.records.push(record);
        Ok(Taken::Record {
            fields: fields.len(),
        })
    }

    /// A value over several lines whose lines have the delimiter in them is most likely a quote
    /// not closed where it should be, which makes one value of the rows after it: those lines
    /// are noted as unread text, and the problem of each column holding them returned.
    fn note_lines_that_look_like_rows(
        &mut self,
        line: u64,
        fields: &csv::StringRecord,
    ) -> Vec<String> {
        let delimiter = self.delimiter as char;
        let mut value_line = line;
        let mut holds_rows = vec![false; fields.len()];
        for (value, holds_rows) in fields.iter().zip(&mut holds_rows) {
            for (k, inner) in value.split('\n').enumerate().skip(1) {
                if inner.contains(delimiter) {
                    *holds_rows = true;
                    self.records.note_unread(UnreadText {
                        line: value_line + k as u64,
                        row_line: line,
                        text: inner.trim().into(),
                    });
                }
            }
            value_line += value.matches('\n').count() as u64;
        }
        let Some((_, columns)) = &self.header else {
            return Vec::new();
        };
        (columns.iter().zip(&self.layout.columns))
            .filter(|&(&i, _)| holds_rows.get(i) == Some(&true))
            .map(|(_, column)| {
                format!(
                    "the value in column \"{column}\" runs over several lines that look like rows of \
                     their own: a quote in this row is probably not closed where it should be"
                )
            })
            .collect()
    }

    /// The last row, read as `taken`, with its bytes to the end of the input. A quote in it never closed took every line after it into one value: those people
    /// would look gone, so the file is refused rather than read that way. So is a last row cut
    /// short without a line end: an export that stopped half-way.
    fn check_last_row(&self, bytes: &[u8], line: u64, taken: Taken) -> Result<(), Stop> {
        let display = self.display;
        if quote_never_closed(bytes, self.delimiter) {
            return Err(Stop::Invalid(Error::input(format!(
                "{display}:{line}: a quoted value in the row on this line is never closed, so every \
                 line after it would be read as part of that value; refusing to plan from it. \
                 Close the quote, or write a quote inside a value as two (\"\"), and export \
                 again"
            ))));
        }
        let line_end = bytes.ends_with(b"\n") || bytes.ends_with(b"\r");
        match (&self.header, taken) {
            (Some((width, _)), Taken::Record { fields }) if !line_end && fields < *width => {
                Err(Stop::Invalid(Error::input(format!(
                    "{display}:{line}: the last row has {fields} fields where the header has \
                     {width}, and no line end: the export looks cut off; refusing to plan from \
                     it. Export again"
                ))))
            }
            _ => Ok(()),
        }
    }
}

/// Whether a quote in the last row of a file (`bytes`, to the file's end) is never closed. The
/// csv reader then ends the row at the end of the file, inside the quoted value. Read again with
/// a line end and a row more, such a row still takes everything, where a row whose quotes are
/// closed is followed by the row added.
fn quote_never_closed(bytes: &[u8], delimiter: u8) -> bool {
    let rows = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(bytes.chain(&b"\nrow\n"[..]))
        .into_byte_records()
        .count();
    rows < 2
}

/// A workbook given as CSV would read as one line of binary noise: said plainly instead.
fn refuse_spreadsheet(display: &str, start: &[u8]) -> Result<(), Error> {
    let kind = if start.starts_with(b"PK\x03\x04") {
        "an Excel workbook (.xlsx) or another zip file"
    } else if start.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        "an Excel 97-2003 workbook (.xls)"
    } else {
        return Ok(());
    };
    Err(Error::input(format!(
        "the HR file {display} is {kind}, not CSV: set `source.type: excel` for a workbook, or export CSV"
    )))
}

/// The file as text: a BOM decides (UTF-8, UTF-16LE/BE); without one, a configured UTF-16, else
/// UTF-8 if the bytes are UTF-8, else line by line with the fallback encoding for the lines that
/// are not (an error when the fallback is UTF-8 itself).
pub fn decode<'a>(bytes: &'a [u8], display: &str, fallback: &str) -> Result<Cow<'a, str>, Error> {
    refuse_spreadsheet(display, bytes)?;
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, had_errors) = encoding.decode_without_bom_handling(&bytes[bom..]);
        if had_errors {
            return Err(Error::input(format!(
                "{display}: the file starts with a {} byte order mark but is not valid {}; export it again",
                encoding.name(),
                encoding.name()
            )));
        }
        return Ok(text);
    }
    let encoding =
        encoding_rs::Encoding::for_label(fallback.as_bytes()).unwrap_or(encoding_rs::WINDOWS_1252);
    // UTF-16 is the file's encoding, not a fallback for a stray byte.
    if encoding == encoding_rs::UTF_16LE || encoding == encoding_rs::UTF_16BE {
        let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
        if had_errors {
            return Err(Error::input(format!(
                "{display}: not valid {}; set `source.encoding` to the file's encoding",
                encoding.name()
            )));
        }
        return Ok(text);
    }
    if bytes.contains(&0) {
        return Err(Error::input(format!(
            "{display}: the file has NUL bytes, as UTF-16 without a byte order mark has; set \
             `source.encoding: utf-16le` (or `utf-16be`), or export it as UTF-8"
        )));
    }
    let e = match std::str::from_utf8(bytes) {
        Ok(text) => return Ok(Cow::Borrowed(text)),
        Err(e) => e,
    };
    if encoding == encoding_rs::UTF_8 {
        let offset = e.valid_up_to();
        let line = line_ends(&bytes[..offset], &mut false) + 1;
        return Err(Error::input(format!(
            "{display}:{line}: not valid UTF-8 (byte 0x{:02X}); export the file as UTF-8, or set `source.encoding` to the encoding it has (e.g. windows-1252)",
            bytes[offset]
        )));
    }
    decode_line_by_line(bytes, display, encoding).map(Cow::Owned)
}

/// Line by line: a line that is UTF-8 stays UTF-8, so one stray byte in an otherwise UTF-8
/// export cannot turn every accented name in it into another; the other lines are read as
/// `encoding`.
fn decode_line_by_line(
    bytes: &[u8],
    display: &str,
    encoding: &'static encoding_rs::Encoding,
) -> Result<String, Error> {
    let mut text = String::with_capacity(bytes.len() + bytes.len() / 8);
    let (mut fallback_lines, mut utf8_accents) = (Vec::new(), false);
    for (i, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        match std::str::from_utf8(line) {
            Ok(utf8) => {
                utf8_accents |= !utf8.is_ascii();
                text.push_str(utf8);
            }
            Err(_) => {
                let (decoded, had_errors) = encoding.decode_without_bom_handling(line);
                if had_errors {
                    return Err(Error::input(format!(
                        "{display}:{}: neither UTF-8 nor {}; set `source.encoding` to the file's encoding",
                        i + 1,
                        encoding.name()
                    )));
                }
                fallback_lines.push(i + 1);
                text.push_str(&decoded);
            }
        }
    }
    if utf8_accents {
        warn_of_mixed_encodings(display, encoding, &fallback_lines);
    }
    Ok(text)
}

/// An export with accents in UTF-8 and lines in another encoding was written by two programs;
/// the names on those lines deserve a look.
fn warn_of_mixed_encodings(
    file: &str,
    encoding: &'static encoding_rs::Encoding,
    fallback_lines: &[usize],
) {
    let shown: Vec<String> = fallback_lines
        .iter()
        .take(10)
        .map(usize::to_string)
        .collect();
    tracing::warn!(
        "{}: the export mixes encodings: line(s) {}{} are not UTF-8 and were read as {}, the rest as UTF-8; check the names on those lines",
        file,
        shown.join(", "),
        if fallback_lines.len() > shown.len() {
            ", …"
        } else {
            ""
        },
        encoding.name()
    );
}

/// The candidate delimiter that splits the header into the most configured column names.
pub fn detect_delimiter(header: &str, wanted: &[String]) -> u8 {
    let wanted: Vec<String> = wanted.iter().map(|w| normalize(w)).collect();
    CANDIDATES
        .into_iter()
        .max_by_key(|&d| {
            let hits = header
                .split(d as char)
                .map(|h| normalize(h.trim().trim_matches('"')))
                .filter(|h| wanted.contains(h))
                .count();
            // With no header name matching, the delimiter the line has most of (so that an error
            // shows its cells); ties go to the earlier candidate: max_by_key keeps the last
            // maximum, so invert the index.
            (
                hits,
                header.matches(d as char).count(),
                usize::MAX - CANDIDATES.iter().position(|&c| c == d).unwrap_or(0),
            )
        })
        .unwrap_or(b',')
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::Delimiter;
    use crate::rules::FieldName;

    fn fields() -> Layout {
        Layout::new(vec![
            (FieldName::Xid, "Personeelsnummer".into()),
            (FieldName::Email, "E-mail".into()),
            (FieldName::Locations, "Vestiging".into()),
        ])
    }

    const UTF8_ONLY: CsvOptions<'static> = CsvOptions {
        delimiter: Delimiter::Auto,
        encoding: "utf-8",
    };
    const DEFAULT: CsvOptions<'static> = CsvOptions {
        delimiter: Delimiter::Auto,
        encoding: "windows-1252",
    };

    fn read_text(text: &[u8]) -> Result<Snapshot, Error> {
        read_with(text, UTF8_ONLY)
    }

    fn read_with(text: &[u8], options: CsvOptions<'_>) -> Result<Snapshot, Error> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hr.csv");
        std::fs::write(&path, text).unwrap();
        read(&path, "hr.csv", options, fields())
    }

    fn rows(snapshot: &Snapshot) -> Vec<(u64, Vec<&str>)> {
        snapshot
            .records
            .iter()
            .map(|r| (r.line, (0..3).map(|i| r.value(i)).collect()))
            .collect()
    }

    #[test]
    fn windows_1252_semicolons_as_dutch_excel_writes_them() {
        // "Sébastien" and "Vestiging ü" in Windows-1252: é = 0xE9, ü = 0xFC.
        let bytes = b"Personeelsnummer;E-mail;Vestiging\r\n1001;s\xE9b@x.nl;St\xFCtzpunkt\r\n";
        let snapshot = read_with(bytes, DEFAULT).unwrap();
        assert_eq!(
            rows(&snapshot),
            vec![(2, vec!["1001", "séb@x.nl", "Stützpunkt"])]
        );
        let error = read_with(bytes, UTF8_ONLY).unwrap_err().to_string();
        assert!(
            error.contains("hr.csv:2: not valid UTF-8 (byte 0xE9)"),
            "{error}"
        );
        // Lines ending in a lone CR are counted as csv-core counts them.
        let cr_only = b"Personeelsnummer;E-mail;Vestiging\r1001;s\xE9b@x.nl;St\xFCtzpunkt\r";
        let error = read_with(cr_only, UTF8_ONLY).unwrap_err().to_string();
        assert!(error.contains("hr.csv:2: not valid UTF-8"), "{error}");
    }

    #[test]
    fn utf16_without_a_bom_is_read_as_configured_or_refused() {
        let text = "Personeelsnummer\tE-mail\tVestiging\n1001\tzo\u{eb}@x.nl\tST001\n";
        let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let options = CsvOptions {
            delimiter: Delimiter::Auto,
            encoding: "utf-16le",
        };
        let snapshot = read_with(&le, options).unwrap();
        assert_eq!(
            rows(&snapshot),
            vec![(2, vec!["1001", "zo\u{eb}@x.nl", "ST001"])]
        );
        let error = read_with(&le, DEFAULT).unwrap_err().to_string();
        assert!(error.contains("set `source.encoding: utf-16le`"), "{error}");
    }

    #[test]
    fn utf16_with_bom_both_byte_orders() {
        let text = "Personeelsnummer\tE-mail\tVestiging\n1001\tzoë@x.nl\tST001\n";
        let mut le = vec![0xFF, 0xFE];
        le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let mut be = vec![0xFE, 0xFF];
        be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        for bytes in [le, be] {
            let snapshot = read_with(&bytes, UTF8_ONLY).unwrap();
            assert_eq!(
                rows(&snapshot),
                vec![(2, vec!["1001", "zoë@x.nl", "ST001"])]
            );
        }
    }

    #[test]
    fn quoted_fields_with_delimiters_and_newlines_pipes_and_trailing_blank_lines() {
        let bytes = b"Personeelsnummer|E-mail|Vestiging\n\"1001\"|\"a|b@x.nl\"|\"line one\nline two\"\n1002| c@x.nl |ST002\n\n\n  \n";
        let snapshot = read_with(bytes, DEFAULT).unwrap();
        assert_eq!(
            rows(&snapshot),
            vec![
                (2, vec!["1001", "a|b@x.nl", "line one\nline two"]),
                (4, vec!["1002", "c@x.nl", "ST002"])
            ]
        );
    }

    /// A file several read blocks long: CRLF line ends, multi-line quoted fields and multi-byte
    /// characters fall across block boundaries somewhere; `é` in `latin1_row` is written as
    /// Windows-1252 when given.
    fn long_file(rows: usize, latin1_row: Option<usize>) -> (Vec<u8>, Vec<(u64, Vec<String>)>) {
        let mut bytes = b"Personeelsnummer;E-mail;Vestiging\r\n".to_vec();
        let mut expected = Vec::new();
        let mut line = 2;
        for i in 0..rows {
            let place = if i % 1000 == 7 {
                format!("Store {i}\r\nsecond line")
            } else {
                format!("Caf\u{e9} {i}")
            };
            let row = format!("{i};p{i}@x.nl;\"{place}\"\r\n");
            if latin1_row == Some(i) {
                bytes.extend(
                    row.replace('\u{e9}', "\u{1}")
                        .bytes()
                        .map(|b| if b == 1 { 0xE9 } else { b }),
                );
            } else {
                bytes.extend(row.as_bytes());
            }
            expected.push((
                line,
                vec![i.to_string(), format!("p{i}@x.nl"), place.clone()],
            ));
            line += 1 + place.matches('\n').count() as u64;
        }
        (bytes, expected)
    }

    fn all_rows(snapshot: &Snapshot) -> Vec<(u64, Vec<String>)> {
        snapshot
            .records
            .iter()
            .map(|r| (r.line, (0..3).map(|i| r.value(i).to_string()).collect()))
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

        /// Where no blank line is in the way, the csv reader's own line count (of `\n`) says
        /// where each row starts: rows with stray quotes and values over several lines are on
        /// the lines it says, and blank rows are no records.
        #[test]
        fn rows_are_on_the_lines_the_csv_reader_counts(
            tokens in proptest::collection::vec(
                proptest::sample::select(vec![
                    "1", "ab", "\u{e9}", " ", ";", "\"", "\"\"", "\n", "\"q;\nr\"", "\"v;w\"",
                    ";\"t\"", "\"\n\n\"",
                ]),
                0..120,
            ),
        ) {
            let mut text = format!("Personeelsnummer;E-mail;Vestiging\n{}\n", tokens.concat());
            while text.contains("\n\n") {
                text = text.replace("\n\n", "\n");
            }
            let Ok(snapshot) = read_text(text.as_bytes()) else {
                return Ok(());
            };
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .flexible(true)
                .delimiter(b';')
                .from_reader(text.as_bytes());
            let expected: Vec<u64> = reader
                .records()
                .map(|r| r.unwrap())
                .filter(|r| r.iter().any(|f| !f.trim().is_empty()))
                .map(|r| r.position().unwrap().line())
                .collect();
            let lines: Vec<u64> = snapshot.records.iter().map(|r| r.line).collect();
            proptest::prop_assert_eq!(lines, expected);
        }
    }

    #[test]
    fn files_longer_than_a_block_are_streamed_whole_with_their_lines_and_digest() {
        let (bytes, expected) = long_file(150_000, None);
        assert!(bytes.len() > 3 * BLOCK);
        let snapshot = read_with(&bytes, UTF8_ONLY).unwrap();
        assert_eq!(all_rows(&snapshot), expected);
        assert_eq!(snapshot.sha256, crate::digest::sha256_hex(&bytes));
    }

    #[test]
    fn a_byte_that_is_not_utf8_after_the_first_block_reads_that_line_as_the_fallback() {
        // Every line is UTF-8 "Café" but one, written in Windows-1252: each reads as it was
        // written, instead of every UTF-8 "é" turning into two characters.
        let (bytes, expected) = long_file(150_000, Some(140_000));
        let snapshot = read_with(&bytes, DEFAULT).unwrap();
        assert_eq!(all_rows(&snapshot), expected);
        assert_eq!(snapshot.sha256, crate::digest::sha256_hex(&bytes));
        let error = read_with(&bytes, UTF8_ONLY).unwrap_err().to_string();
        assert!(error.contains("not valid UTF-8 (byte 0xE9)"), "{error}");
    }

    #[test]
    fn a_quote_never_closed_refuses_the_file_instead_of_swallowing_the_rows_after_it() {
        let error = read_text(b"Personeelsnummer;E-mail;Vestiging\n1;a@x.nl;ST001\n2;\"b@x.nl;ST002\n3;c@x.nl;ST003\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("hr.csv:3: a quoted value in the row on this line is never closed"),
            "{error}"
        );
        // Far into a long file, and without a line end after it.
        let mut text = "Personeelsnummer;E-mail;Vestiging\n".to_string();
        (1..150_000).for_each(|i| text.push_str(&format!("{i};p{i}@x.nl;ST{i}\n")));
        let text = text.replace("\n120000;", "\n120000;\"");
        let mut bytes = text.into_bytes();
        bytes.pop();
        let error = read_text(&bytes).unwrap_err().to_string();
        assert!(error.contains("hr.csv:120001: a quoted value"), "{error}");
    }

    fn unread(snapshot: &Snapshot) -> Vec<(u64, u64, &str)> {
        let unread = snapshot.records.unread().iter();
        unread.map(|u| (u.line, u.row_line, &*u.text)).collect()
    }

    #[test]
    fn rows_inside_a_value_and_rows_of_the_wrong_width_are_kept_as_unread_text() {
        // The quote opened on line 2 closes on line 4: the rows of 2 and 3 are inside one value.
        let snapshot = read_text(
            b"Personeelsnummer;E-mail;Vestiging\n1;\"a@x.nl;ST001\n2;b@x.nl;ST002\r\n3;c@x.nl\";ST003\n4;d@x.nl\n",
        )
        .unwrap();
        assert_eq!(
            unread(&snapshot),
            vec![
                (3, 2, "2;b@x.nl;ST002"),
                (4, 2, "3;c@x.nl"),
                (5, 5, "4;d@x.nl")
            ]
        );
        let first = snapshot.records.iter().next().unwrap();
        assert_eq!(first.line, 2);
        assert_eq!(
            first.problem.as_deref(),
            Some(
                "the value in column \"E-mail\" runs over several lines that look like rows of \
                 their own: a quote in this row is probably not closed where it should be"
            )
        );
        // A value over several lines without delimiters in them is only a value.
        let snapshot =
            read_text(b"Personeelsnummer;E-mail;Vestiging\n1;a@x.nl;\"Store\nNorth\"\n").unwrap();
        assert_eq!(unread(&snapshot), vec![]);
        assert_eq!(
            snapshot.records.iter().next().unwrap().problem.as_deref(),
            None
        );
        // Far into a long file, lines count from the file's start.
        let mut text = "Personeelsnummer;E-mail;Vestiging\n".to_string();
        (1..150_000).for_each(|i| text.push_str(&format!("{i};p{i}@x.nl;ST{i}\n")));
        let text = text.replace("\n120000;p120000@x.nl;", "\n120000;p120000@x.nl;\"");
        let text = text.replace("\n120002;p120002@x.nl;", "\n120002;p120002@x.nl\";");
        let snapshot = read_text(text.as_bytes()).unwrap();
        assert_eq!(
            unread(&snapshot),
            vec![
                (120_002, 120_001, "120001;p120001@x.nl;ST120001"),
                (120_003, 120_001, "120002;p120002@x.nl")
            ]
        );
    }

    #[test]
    fn a_last_row_cut_short_without_a_line_end_is_a_truncated_export() {
        let error = read_text(b"Personeelsnummer;E-mail;Vestiging\n1;a@x.nl;ST001\n2;b@x")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("hr.csv:3: the last row has 2 fields where the header has 3, and no line end: the export looks cut off"),
            "{error}"
        );
        // With its line end it is one malformed row, skipped with a problem.
        let snapshot =
            read_text(b"Personeelsnummer;E-mail;Vestiging\n1;a@x.nl;ST001\n2;b@x\n").unwrap();
        assert_eq!(snapshot.records.len(), 2);
        // A header alone without a line end is a header without rows, not a cut-off row.
        let error = read_text(b"Personeelsnummer;E-mail;Vestiging")
            .unwrap_err()
            .to_string();
        assert!(error.contains("has a header but no rows"), "{error}");
    }

    #[test]
    fn lines_end_in_lf_crlf_or_a_lone_cr() {
        for end in ["\n", "\r\n", "\r"] {
            let text = format!(
                "Personeelsnummer;E-mail;Vestiging{end}1;a@x.nl;N{end}{end}2;b@x.nl;S{end}"
            );
            let snapshot = read_text(text.as_bytes()).unwrap();
            let lines: Vec<u64> = snapshot.records.iter().map(|r| r.line).collect();
            assert_eq!(lines, [2, 4], "{end:?}");
        }
        // A `\r\n` split between two pieces is one line end.
        let mut after_cr = false;
        assert_eq!(line_ends(b"a\r", &mut after_cr), 1);
        assert_eq!(line_ends(b"\nb\n", &mut after_cr), 1);
        assert_eq!(line_ends(b"\r\r\n\n", &mut after_cr), 3);
    }

    #[test]
    fn a_header_is_shown_masked_and_a_column_in_it_twice_is_refused() {
        let error =
            read_text(b"1001;jan@x.nl;+31 6 1234 5678;ST001\n1002;piet@x.nl;0612345678;ST002\n")
                .unwrap_err()
                .to_string();
        assert!(
            error.contains("the header has: \"1001\", \"j*n@x.nl\", \"***78\", \"ST001\"")
                && error
                    .contains("the first row looks like data: does the export have a header row?"),
            "{error}"
        );
        let error = read_text(b"Personeelsnummer;E-mail;Vestiging;e-mail \n1;a@x.nl;N;b@x.nl\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("hr.csv:1: column \"E-mail\" is in the header twice (columns 2 and 4)"),
            "{error}"
        );
        let error = read_text(b"PK\x03\x04\x14\x00\x06\x00binary")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("is an Excel workbook (.xlsx) or another zip file, not CSV: set `source.type: excel`"),
            "{error}"
        );
    }

    #[test]
    fn a_last_row_without_a_line_end_is_read_quoted_or_not() {
        let snapshot = read_text(
            b"Personeelsnummer;E-mail;Vestiging\n1;a@x.nl;\"ST\n001\"\n2;b@x.nl;\"ST\n002\"",
        )
        .unwrap();
        assert_eq!(
            rows(&snapshot),
            vec![
                (2, vec!["1", "a@x.nl", "ST\n001"]),
                (4, vec!["2", "b@x.nl", "ST\n002"])
            ]
        );
        let snapshot = read_text(b"Personeelsnummer;E-mail;Vestiging\n1;a@x.nl;ST001").unwrap();
        assert_eq!(rows(&snapshot), vec![(2, vec!["1", "a@x.nl", "ST001"])]);
    }

    #[test]
    fn an_explicit_delimiter_is_used_even_if_another_would_match() {
        let options = CsvOptions {
            delimiter: Delimiter::Comma,
            encoding: "utf-8",
        };
        let error = read_with(b"Personeelsnummer;E-mail;Vestiging\n1;a@x.nl;X\n", options)
            .unwrap_err()
            .to_string();
        assert!(error.contains("delimiter used: ','"), "{error}");
    }

    #[test]
    fn a_file_and_the_same_bytes_fetched_have_the_digest_of_all_their_bytes() {
        for bytes in [
            &b"Personeelsnummer;E-mail;Vestiging\n1001;a@x.nl;ST001\n"[..],
            b"\xEF\xBB\xBFPersoneelsnummer;E-mail;Vestiging\n1001;a@x.nl;ST001\n",
            b"Personeelsnummer;E-mail;Vestiging\n1001;s\xE9b@x.nl;ST001\n",
        ] {
            let fetched = parse(bytes, "hr.csv", DEFAULT, fields()).unwrap();
            assert_eq!(fetched.sha256, crate::digest::sha256_hex(bytes));
            assert_eq!(read_with(bytes, DEFAULT).unwrap().sha256, fetched.sha256);
        }
    }

    #[test]
    fn detects_semicolons_strips_bom_and_matches_headers_loosely() {
        let snapshot = read_text(
            b"\xEF\xBB\xBF personeelsnummer ;E-MAIL;Vestiging\n1001;a@x.nl;\"ST001|ST002\"\n\n",
        )
        .unwrap();
        assert_eq!(snapshot.records.len(), 1);
        let r = snapshot.records.iter().next().unwrap();
        assert_eq!(
            (r.line, r.value(0), r.value(1), r.value(2)),
            (2, "1001", "a@x.nl", "ST001|ST002")
        );
    }

    #[test]
    fn missing_columns_are_named_with_the_columns_found() {
        let error = read_text(b"Personeelsnummer,Mail\n1,a@x.nl\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("\"E-mail\", \"Vestiging\" not found"),
            "{error}"
        );
        assert!(error.contains("\"Personeelsnummer\", \"Mail\""), "{error}");
    }

    #[test]
    fn empty_files_and_header_only_files_are_refused() {
        assert!(read_text(b"").unwrap_err().to_string().contains("is empty"));
        assert!(
            read_text(b"Personeelsnummer,E-mail,Vestiging\n")
                .unwrap_err()
                .to_string()
                .contains("no rows")
        );
    }

    #[test]
    fn short_rows_are_marked_not_dropped() {
        let snapshot = read_text(b"Personeelsnummer,E-mail,Vestiging\n1,a@x.nl\n").unwrap();
        assert!(
            snapshot
                .records
                .iter()
                .next()
                .unwrap()
                .problem
                .as_deref()
                .unwrap()
                .contains("2 fields")
        );
    }

    #[test]
    fn a_value_cut_inside_a_character_is_not_utf8() {
        // "\xC3" ends one value and "\xA9" starts the next: together they would be "é".
        let error = read_text(b"Personeelsnummer;E-mail;Vestiging\n1;a@x.nl\xC3;\xA9\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("hr.csv:2: not valid UTF-8 (byte 0xC3)"),
            "{error}"
        );
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let error = read_text(b"Personeelsnummer,E-mail,Vestiging\n1,b\xE9@x.nl,\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("hr.csv:2: not valid UTF-8 (byte 0xE9)"),
            "{error}"
        );
    }
}
