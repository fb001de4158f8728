//! CSV exports: a header row; UTF-8 with or without BOM, UTF-16 with BOM, or the configured
//! fallback encoding (Windows-1252 by default) for files that are not UTF-8; delimiter given or
//! detected; quoted fields with delimiters and newlines; blank lines ignored.

use std::borrow::Cow;
use std::path::Path;

use super::{CsvOptions, Layout, Record, Snapshot, match_columns, normalize, refuse_empty};
use crate::error::Error;

const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Reads `path` (shown to people as `display`) into a snapshot with the given layout.
pub fn read(
    path: &Path,
    display: &str,
    options: CsvOptions<'_>,
    layout: Layout,
) -> Result<Snapshot, Error> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::input(format!("cannot read the HR file {display}: {e}")))?;
    parse(&bytes, display, options, layout)
}

/// Parses CSV bytes already read (from a file or a server).
pub fn parse(
    bytes: &[u8],
    display: &str,
    options: CsvOptions<'_>,
    layout: Layout,
) -> Result<Snapshot, Error> {
    // The digest of a large export takes as long as parsing it: both at once.
    std::thread::scope(|scope| {
        let sha256 = scope.spawn(|| crate::digest::sha256_hex(bytes));
        let parsed = parse_text(bytes, display, options, layout);
        let sha256 = sha256
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        parsed.map(|(layout, records)| Snapshot::new(display.to_string(), sha256, layout, records))
    })
}

/// The layout and the records of CSV bytes.
fn parse_text(
    bytes: &[u8],
    display: &str,
    options: CsvOptions<'_>,
    layout: Layout,
) -> Result<(Layout, Vec<Record>), Error> {
    let text = decode(bytes, display, options.encoding)?;
    let header_line = text.lines().find(|l| !l.trim().is_empty()).ok_or_else(|| {
        Error::input(format!(
            "the HR file {display} is empty; refusing to plan from it (an empty export would look like everyone left)"
        ))
    })?;
    let delimiter = match options.delimiter.byte() {
        Some(byte) => byte,
        None => detect_delimiter(header_line, &layout.columns),
    };

    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| Error::input(format!("{display}: cannot read the header row: {e}")))?
        .clone();
    let header_names: Vec<&str> = headers.iter().collect();
    let header_line_no = reader.position().line().saturating_sub(1).max(1);
    let indexes = match_columns(
        &format!("{display}:{header_line_no}"),
        &layout,
        &header_names,
        &format!(" (delimiter used: {:?})", delimiter as char),
    )?;

    let mut records = Vec::new();
    let mut record = csv::ByteRecord::new();
    let width = headers.len();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record
                    .position()
                    .map_or(0, |p| start_line(text.as_bytes(), p));
                if record.iter().all(|v| v.trim_ascii().is_empty()) {
                    continue;
                }
                // The text is valid UTF-8 and the delimiters are ASCII, so every field is too.
                let mut row = Record::from_values(
                    line,
                    indexes.iter().map(|&i| {
                        record
                            .get(i)
                            .and_then(|v| std::str::from_utf8(v).ok())
                            .unwrap_or("")
                    }),
                );
                if record.len() != width {
                    row.problem = Some(format!(
                        "the row has {} fields where the header has {width}",
                        record.len(),
                    ));
                }
                records.push(row);
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(Error::input(format!(
                    "{display}:{line}: cannot read the CSV: {e}"
                )));
            }
        }
    }
    refuse_empty(display, &records)?;
    Ok((layout, records))
}

/// The line a record starts on. With CRLF line ends the csv crate places a record after the
/// previous line's `\r`, so the `\n` still ahead belongs to the previous line.
fn start_line(text: &[u8], position: &csv::Position) -> u64 {
    let mut line = position.line();
    let mut at = position.byte() as usize;
    while let Some(&b) = text.get(at) {
        match b {
            b'\n' => line += 1,
            b'\r' => {}
            _ => break,
        }
        at += 1;
    }
    line
}

/// The file as text: a BOM decides (UTF-8, UTF-16LE/BE); without one, UTF-8 if the bytes are
/// UTF-8, else the fallback encoding (an error when the fallback is UTF-8 itself).
fn decode<'a>(bytes: &'a [u8], display: &str, fallback: &str) -> Result<Cow<'a, str>, Error> {
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
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(Cow::Borrowed(text)),
        Err(e) => {
            let encoding = encoding_rs::Encoding::for_label(fallback.as_bytes())
                .unwrap_or(encoding_rs::WINDOWS_1252);
            if encoding == encoding_rs::UTF_8 {
                let offset = e.valid_up_to();
                let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
                return Err(Error::input(format!(
                    "{display}:{line}: not valid UTF-8 (byte 0x{:02X}); export the file as UTF-8, or set `source.encoding` to the encoding it has (e.g. windows-1252)",
                    bytes[offset]
                )));
            }
            let (text, _, had_errors) = encoding.decode(bytes);
            if had_errors {
                return Err(Error::input(format!(
                    "{display}: neither UTF-8 nor {}; set `source.encoding` to the file's encoding",
                    encoding.name()
                )));
            }
            Ok(text)
        }
    }
}

/// The candidate delimiter that splits the header into the most configured column names.
fn detect_delimiter(header: &str, wanted: &[String]) -> u8 {
    let wanted: Vec<String> = wanted.iter().map(|w| normalize(w)).collect();
    CANDIDATES
        .into_iter()
        .max_by_key(|&d| {
            let hits = header
                .split(d as char)
                .map(|h| normalize(h.trim().trim_matches('"')))
                .filter(|h| wanted.contains(h))
                .count();
            // Ties go to the earlier candidate: max_by_key keeps the last maximum, so invert the index.
            (
                hits,
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
    fn detects_semicolons_strips_bom_and_matches_headers_loosely() {
        let snapshot = read_text(
            b"\xEF\xBB\xBF personeelsnummer ;E-MAIL;Vestiging\n1001;a@x.nl;\"ST001|ST002\"\n\n",
        )
        .unwrap();
        assert_eq!(snapshot.records.len(), 1);
        let r = &snapshot.records[0];
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
            snapshot.records[0]
                .problem
                .as_deref()
                .unwrap()
                .contains("2 fields")
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
