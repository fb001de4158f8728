//! The HR record: rows read from the HR source, each remembering where it came from.
//!
//! Readers: [`csv`] (CSV dialects and encodings), [`excel`] (xlsx/xls/ods via calamine),
//! [`sftp`] (fetches a CSV or Excel file over SFTP) and [`afas`] (AFAS GetConnector over HTTPS).
//! Each produces a [`Snapshot`]: the records in [`Layout`] order plus where they came from.

pub mod afas;
pub mod csv;
pub mod excel;
pub mod sftp;

use std::fmt;

use serde::Serialize;

use crate::config::ColumnType;
use crate::rules::FieldName;

/// Which field lives in which slot of a [`Record`], the HR column it was read from, and how
/// spreadsheet cells of that column are read.
#[derive(Clone, Debug)]
pub struct Layout {
    pub fields: Vec<FieldName>,
    pub columns: Vec<String>,
    pub kinds: Vec<ColumnType>,
}

impl Layout {
    /// A layout with the default column types (dates for `start_date` and `end_date`).
    pub fn new(fields_and_columns: Vec<(FieldName, String)>) -> Layout {
        Layout::typed(
            fields_and_columns
                .into_iter()
                .map(|(f, c)| {
                    let kind = crate::rules::field_kind(&f, ColumnType::Auto);
                    (f, c, kind)
                })
                .collect(),
        )
    }

    pub fn typed(columns: Vec<(FieldName, String, ColumnType)>) -> Layout {
        let mut layout = Layout {
            fields: Vec::with_capacity(columns.len()),
            columns: Vec::with_capacity(columns.len()),
            kinds: Vec::with_capacity(columns.len()),
        };
        for (f, c, k) in columns {
            layout.fields.push(f);
            layout.columns.push(c);
            layout.kinds.push(k);
        }
        layout
    }

    pub fn slot_of(&self, field: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name() == field)
    }

    pub fn slot(&self, field: &FieldName) -> Option<usize> {
        self.fields.iter().position(|f| f == field)
    }
}

/// One HR row: trimmed values in layout order, plus its position in the source (the CSV line,
/// the sheet row, or the 1-based index over all connector rows; [`Locator`] turns it into a place).
#[derive(Clone, Debug)]
pub struct Record {
    pub line: u64,
    /// All values back to back; `ends[i]` is where value `i` ends. One allocation per row keeps a
    /// million-row export small.
    text: Box<str>,
    ends: Ends,
    /// Set when the row itself is malformed (for example a wrong number of fields).
    pub problem: Option<String>,
}

impl Record {
    pub fn new<S: AsRef<str>>(line: u64, values: Vec<S>) -> Record {
        Record::from_values(line, values.iter().map(|v| v.as_ref()))
    }

    /// Builds a record from values in layout order (each trimmed), sized exactly up front.
    pub fn from_values<'a>(line: u64, values: impl Iterator<Item = &'a str> + Clone) -> Record {
        let (count, len) = values
            .clone()
            .fold((0, 0), |(count, len), v| (count + 1, len + v.trim().len()));
        let mut text = String::with_capacity(len);
        let mut ends = Ends::with_capacity(count);
        for value in values {
            text.push_str(value.trim());
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
        }
        Record {
            line,
            text: text.into_boxed_str(),
            ends,
            problem: None,
        }
    }

    pub fn value(&self, slot: usize) -> &str {
        let ends = self.ends.as_slice();
        let Some(&end) = ends.get(slot) else {
            return "";
        };
        let start = if slot == 0 { 0 } else { ends[slot - 1] };
        self.text.get(start as usize..end as usize).unwrap_or("")
    }
}

/// Where a record's values end: kept in the record itself for the usual handful of mapped
/// columns, so a row costs one allocation (its text) rather than two.
#[derive(Clone, Debug)]
enum Ends {
    Inline { len: u8, ends: [u32; INLINE_ENDS] },
    Heap(Vec<u32>),
}

const INLINE_ENDS: usize = 14;

impl Ends {
    fn with_capacity(count: usize) -> Ends {
        if count <= INLINE_ENDS {
            Ends::Inline {
                len: 0,
                ends: [0; INLINE_ENDS],
            }
        } else {
            Ends::Heap(Vec::with_capacity(count))
        }
    }

    fn push(&mut self, end: u32) {
        match self {
            Ends::Inline { len, ends } if usize::from(*len) < INLINE_ENDS => {
                ends[usize::from(*len)] = end;
                *len += 1;
            }
            Ends::Inline { len, ends } => {
                let mut heap = ends[..usize::from(*len)].to_vec();
                heap.push(end);
                *self = Ends::Heap(heap);
            }
            Ends::Heap(ends) => ends.push(end),
        }
    }

    fn as_slice(&self) -> &[u32] {
        match self {
            Ends::Inline { len, ends } => &ends[..usize::from(*len)],
            Ends::Heap(ends) => ends,
        }
    }
}

/// What kind of place a record's position is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Locator {
    /// A text file: positions are line numbers.
    #[default]
    File,
    /// A spreadsheet: positions are row numbers in this sheet.
    Sheet { sheet: String },
    /// A paged connector: position `n` is row `(n-1) % page_size + 1` of page `(n-1) / page_size + 1`.
    Connector { page_size: u64 },
}

impl Locator {
    pub fn is_file(&self) -> bool {
        *self == Locator::File
    }

    pub fn origin(&self, source: &str, position: u64) -> RecordOrigin {
        match self {
            Locator::File => RecordOrigin::Line {
                file: source.to_string(),
                line: position,
            },
            Locator::Sheet { sheet } => RecordOrigin::Row {
                file: source.to_string(),
                sheet: sheet.clone(),
                row: position,
            },
            Locator::Connector { page_size } => {
                let size = (*page_size).max(1);
                let index = position.saturating_sub(1);
                RecordOrigin::Page {
                    source: source.to_string(),
                    page: index / size + 1,
                    index: index % size + 1,
                }
            }
        }
    }

    /// The position alone, for lists that already name the source: `line 5`, `row 5`, `page 2 row 5`.
    pub fn short(&self, position: u64) -> String {
        match self.origin("", position) {
            RecordOrigin::Line { line, .. } => format!("line {line}"),
            RecordOrigin::Row { row, .. } => format!("row {row}"),
            RecordOrigin::Page { page, index, .. } => format!("page {page} row {index}"),
        }
    }
}

/// Where one HR record came from, for messages and `explain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordOrigin {
    Line {
        file: String,
        line: u64,
    },
    Row {
        file: String,
        sheet: String,
        row: u64,
    },
    Page {
        source: String,
        page: u64,
        index: u64,
    },
}

impl fmt::Display for RecordOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordOrigin::Line { file, line } => write!(f, "{file}:{line}"),
            RecordOrigin::Row { file, sheet, row } => write!(f, "{file} [{sheet}] row {row}"),
            RecordOrigin::Page {
                source,
                page,
                index,
            } => write!(f, "{source} page {page} row {index}"),
        }
    }
}

/// An HR export as read: what and where from, its checksum, and the rows.
#[derive(Debug)]
pub struct Snapshot {
    /// The file or connector as people know it (for messages and `explain`).
    pub source: String,
    /// sha256 of the bytes read (the file, or the connector's responses), recorded in plans and
    /// audit commits.
    pub sha256: String,
    /// How record positions read.
    pub locator: Locator,
    /// The file's modification time, when it was fetched from a server (RFC 3339).
    pub modified: Option<String>,
    pub layout: Layout,
    pub records: Vec<Record>,
}

/// What the plan and audit record say about the HR snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SnapshotInfo {
    pub source: String,
    pub sha256: String,
    pub records: usize,
    #[serde(default, skip_serializing_if = "Locator::is_file")]
    pub locator: Locator,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
}

impl SnapshotInfo {
    /// Where the record at `position` came from.
    pub fn origin(&self, position: u64) -> RecordOrigin {
        self.locator.origin(&self.source, position)
    }
}

impl Snapshot {
    /// A snapshot of a text file (positions are lines).
    pub fn new(source: String, sha256: String, layout: Layout, records: Vec<Record>) -> Snapshot {
        Snapshot {
            source,
            sha256,
            locator: Locator::File,
            modified: None,
            layout,
            records,
        }
    }

    pub fn info(&self) -> SnapshotInfo {
        SnapshotInfo {
            source: self.source.clone(),
            sha256: self.sha256.clone(),
            records: self.records.len(),
            locator: self.locator.clone(),
            modified: self.modified.clone(),
        }
    }

    pub fn origin(&self, record: &Record) -> RecordOrigin {
        self.locator.origin(&self.source, record.line)
    }
}

/// Refuses a source without rows: an empty export would look like everyone left.
pub(crate) fn refuse_empty(display: &str, records: &[Record]) -> Result<(), crate::error::Error> {
    if records.is_empty() {
        return Err(crate::error::Error::input(format!(
            "the HR source {display} has a header but no rows; refusing to plan from it (it would look like everyone left)"
        )));
    }
    Ok(())
}

/// Matches configured column names against the header found, ignoring case and surrounding
/// spaces; a missing column is an error listing the columns found.
pub(crate) fn match_columns<S: AsRef<str>>(
    display: &str,
    layout: &Layout,
    header: &[S],
    hint: &str,
) -> Result<Vec<usize>, crate::error::Error> {
    let normalized: Vec<String> = header.iter().map(|h| normalize(h.as_ref())).collect();
    let mut indexes = Vec::with_capacity(layout.columns.len());
    let mut missing = Vec::new();
    for column in &layout.columns {
        match normalized.iter().position(|h| *h == normalize(column)) {
            Some(i) => indexes.push(i),
            None => missing.push(column.as_str()),
        }
    }
    if !missing.is_empty() {
        let found: Vec<&str> = header.iter().map(|h| h.as_ref()).collect();
        return Err(crate::error::Error::input(format!(
            "{display}: column(s) {} not found; the header has: {}. Fix `source.columns` or the export{hint}",
            quote_list(&missing),
            if found.is_empty() {
                "nothing".to_string()
            } else {
                quote_list(&found)
            },
        )));
    }
    Ok(indexes)
}

pub(crate) fn normalize(column: &str) -> String {
    column.trim().trim_start_matches('\u{feff}').to_lowercase()
}

pub(crate) fn quote_list<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| format!("\"{}\"", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a CSV file is read (from `type: csv` or `type: sftp`).
#[derive(Clone, Copy, Debug)]
pub struct CsvOptions<'a> {
    pub delimiter: crate::config::Delimiter,
    pub encoding: &'a str,
}

/// Turns an Excel date serial number into a date (the 1900 system, with Excel's phantom
/// 29 February 1900; or the 1904 system).
pub(crate) fn excel_serial_date(serial: f64, is_1904: bool) -> Option<jiff::civil::Date> {
    if !serial.is_finite() || serial < 0.0 {
        return None;
    }
    let days = serial.floor() as i64;
    let (base, days) = if is_1904 {
        (jiff::civil::date(1904, 1, 1), days)
    } else if days < 60 {
        (jiff::civil::date(1899, 12, 31), days)
    } else {
        // Day 60 is the 29 February 1900 Excel believes in; from day 61 on, count from 30 Dec 1899.
        (jiff::civil::date(1899, 12, 30), days)
    };
    base.checked_add(jiff::Span::new().days(days)).ok()
}

/// A date as the config's `date_format` writes it (falls back to ISO when the format cannot).
pub(crate) fn format_date(date: jiff::civil::Date, date_format: &str) -> String {
    jiff::fmt::strtime::format(date_format, date).unwrap_or_else(|_| date.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_trimmed_values_in_slots() {
        let r = Record::new(7, vec![" a ", "", "ccc"]);
        assert_eq!(
            (r.value(0), r.value(1), r.value(2), r.value(3)),
            ("a", "", "ccc", "")
        );
    }

    #[test]
    fn records_with_many_columns_keep_every_value() {
        let values: Vec<String> = (0..INLINE_ENDS + 6).map(|i| format!("v{i}")).collect();
        let r = Record::new(2, values.clone());
        for (slot, value) in values.iter().enumerate() {
            assert_eq!(r.value(slot), value);
        }
        assert_eq!(r.value(values.len()), "");
    }

    #[test]
    fn origins_name_file_line_sheet_row_and_page() {
        assert_eq!(Locator::File.origin("hr.csv", 3).to_string(), "hr.csv:3");
        let sheet = Locator::Sheet {
            sheet: "Staff".into(),
        };
        assert_eq!(
            sheet.origin("hr.xlsx", 4).to_string(),
            "hr.xlsx [Staff] row 4"
        );
        let pages = Locator::Connector { page_size: 10 };
        assert_eq!(pages.origin("afas", 1).to_string(), "afas page 1 row 1");
        assert_eq!(pages.origin("afas", 10).to_string(), "afas page 1 row 10");
        assert_eq!(pages.origin("afas", 23).to_string(), "afas page 3 row 3");
        assert_eq!(pages.short(23), "page 3 row 3");
    }

    #[test]
    fn excel_serial_dates() {
        assert_eq!(
            excel_serial_date(1.0, false),
            Some(jiff::civil::date(1900, 1, 1))
        );
        assert_eq!(
            excel_serial_date(61.0, false),
            Some(jiff::civil::date(1900, 3, 1))
        );
        assert_eq!(
            excel_serial_date(46082.0, false),
            Some(jiff::civil::date(2026, 3, 1))
        );
        assert_eq!(
            excel_serial_date(0.0, true),
            Some(jiff::civil::date(1904, 1, 1))
        );
    }
}
