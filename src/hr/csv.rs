//! CSV exports: a header row, UTF-8 with or without BOM, delimiter given or detected.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{Layout, Record, Snapshot};
use crate::config::Delimiter;
use crate::error::Error;
use crate::rules::FieldName;

const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Reads `path` (shown to people as `display`) into a snapshot with the given field → column layout.
pub fn read(
    path: &Path,
    display: &str,
    delimiter: Delimiter,
    fields: Vec<(FieldName, String)>,
) -> Result<Snapshot, Error> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::input(format!("cannot read the HR file {display}: {e}")))?;
    let sha256 = hex(&Sha256::digest(&bytes));
    let text = decode(&bytes, display)?;
    let header_line = text.lines().find(|l| !l.trim().is_empty()).ok_or_else(|| {
        Error::input(format!(
            "the HR file {display} is empty; refusing to plan from it (an empty export would look like everyone left)"
        ))
    })?;
    let wanted: Vec<&str> = fields.iter().map(|(_, column)| column.as_str()).collect();
    let delimiter = match delimiter.byte() {
        Some(byte) => byte,
        None => detect_delimiter(header_line, &wanted),
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
    let normalized: Vec<String> = headers.iter().map(normalize).collect();
    let mut indexes = Vec::with_capacity(fields.len());
    let mut missing = Vec::new();
    for (_, column) in &fields {
        match normalized.iter().position(|h| *h == normalize(column)) {
            Some(i) => indexes.push(i),
            None => missing.push(column.clone()),
        }
    }
    if !missing.is_empty() {
        let found: Vec<&str> = headers.iter().collect();
        return Err(Error::input(format!(
            "{display}:1: column(s) {} not found; the header has: {}. Fix `source.columns` or the export (delimiter used: {:?})",
            quote_list(&missing),
            quote_list(&found),
            delimiter as char
        )));
    }

    let mut records = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                if record.iter().all(|v| v.trim().is_empty()) {
                    continue;
                }
                let values = indexes
                    .iter()
                    .map(|&i| record.get(i).unwrap_or("").trim().to_string())
                    .collect();
                let mut row = Record::new(line, values);
                if record.len() != headers.len() {
                    row.problem = Some(format!(
                        "the row has {} fields where the header has {}",
                        record.len(),
                        headers.len()
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
    if records.is_empty() {
        return Err(Error::input(format!(
            "the HR file {display} has a header but no rows; refusing to plan from it (it would look like everyone left)"
        )));
    }
    Ok(Snapshot {
        source: display.to_string(),
        sha256,
        layout: Layout::new(fields),
        records,
    })
}

fn decode<'a>(bytes: &'a [u8], display: &str) -> Result<&'a str, Error> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
        Error::input(format!(
            "{display}:{line}: not valid UTF-8 (byte 0x{:02X}); export the file as UTF-8",
            bytes[offset]
        ))
    })
}

/// The candidate delimiter that splits the header into the most configured column names.
fn detect_delimiter(header: &str, wanted: &[&str]) -> u8 {
    let wanted: Vec<String> = wanted.iter().map(|w| normalize(w)).collect();
    CANDIDATES
        .into_iter()
        .max_by_key(|&d| {
            let hits = header
                .split(d as char)
                .map(|h| normalize(h.trim_matches('"')))
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

fn normalize(column: &str) -> String {
    column.trim().trim_start_matches('\u{feff}').to_lowercase()
}

fn quote_list<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| format!("\"{}\"", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<(FieldName, String)> {
        vec![
            (FieldName::Xid, "Personeelsnummer".into()),
            (FieldName::Email, "E-mail".into()),
            (FieldName::Locations, "Vestiging".into()),
        ]
    }

    fn read_text(text: &[u8]) -> Result<Snapshot, Error> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hr.csv");
        std::fs::write(&path, text).unwrap();
        read(&path, "hr.csv", Delimiter::Auto, fields())
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
