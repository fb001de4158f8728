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
use std::sync::Arc;

use serde::Serialize;

use crate::config::ColumnType;
use crate::fields::FieldName;

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
                    let kind = crate::fields::field_kind(&f, ColumnType::Auto);
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

/// Email addresses compare without case; most are written in lower case already and are
/// borrowed as they are.
pub fn case_folded(email: &str) -> std::borrow::Cow<'_, str> {
    if email
        .bytes()
        .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
    {
        std::borrow::Cow::Owned(email.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(email)
    }
}

/// The rows of an HR export in source order, and the text of a CSV file that may be a person's
/// row but was not read as one.
#[derive(Clone, Debug, Default)]
pub struct Records {
    /// Shared, so that a desired person holds their row rather than a copy of its values.
    rows: Vec<Arc<Record>>,
    unread: Vec<UnreadText>,
}

/// Text of a CSV file that was not read as one person's row although it may be one: a row with
/// the wrong number of fields, or a line inside a quoted value running over several lines that
/// looks like a row (a quote not closed where it should be makes such values of the rows after
/// it). Kept so that an account this text names is never offboarded because of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadText {
    pub line: u64,
    /// The line the row holding the text starts on (`line` itself for a whole row).
    pub row_line: u64,
    pub text: Box<str>,
}

impl Records {
    /// Records from rows of values in layout order (`width` slots each: missing values are
    /// empty, values beyond are ignored), for tests and small sources.
    pub fn from_rows<S: AsRef<str>>(
        width: usize,
        rows: impl IntoIterator<Item = (u64, Vec<S>)>,
    ) -> Records {
        let mut records = Records::default();
        for (line, values) in rows {
            let values = values
                .iter()
                .map(AsRef::as_ref)
                .chain(std::iter::repeat(""));
            records.push(Record::new(line, values.take(width)));
        }
        records
    }

    pub fn push(&mut self, record: Record) {
        self.rows.push(Arc::new(record));
    }

    /// Notes text that may be a person's row but was not read as one (see [`UnreadText`]).
    pub fn note_unread(&mut self, unread: UnreadText) {
        self.unread.push(unread);
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Record> + Clone {
        self.rows.iter().map(|row| &**row)
    }

    /// The rows, each for a desired person to hold.
    pub fn shared(&self) -> &[Arc<Record>] {
        &self.rows
    }

    /// Text that may be a person's row but was not read as one (see [`UnreadText`]).
    pub fn unread(&self) -> &[UnreadText] {
        &self.unread
    }
}

/// One HR row: its values in layout order, trimmed, and its position in the source (the CSV
/// line, the sheet row, or the 1-based index over all connector rows; [`Locator`] turns it into
/// a place).
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    pub line: u64,
    /// Set when the row itself is malformed (for example a wrong number of fields).
    pub problem: Option<String>,
    /// The values one after another, `ends[i]` being where value `i` ends: one allocation for
    /// the text of a row rather than one per value keeps a million rows in a few hundred MB.
    text: Box<str>,
    ends: Box<[u32]>,
}

impl Record {
    /// A row of `values` in layout order, each trimmed.
    pub fn new<'v, I>(line: u64, values: I) -> Record
    where
        I: IntoIterator<Item = &'v str>,
        I::IntoIter: Clone,
    {
        let values = values.into_iter();
        // Sized up front, untrimmed (few values have spaces to trim): a million rows grown
        // value by value cost a copy or two each.
        let mut text = String::with_capacity(values.clone().map(str::len).sum());
        let mut ends = Vec::with_capacity(values.size_hint().0);
        for value in values {
            text.push_str(value.trim());
            ends.push(u32::try_from(text.len()).expect("a row of the HR record under 4 GB"));
        }
        Record {
            line,
            problem: None,
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    /// The value in `slot`; empty beyond the row's values.
    pub fn value(&self, slot: usize) -> &str {
        let Some(&end) = self.ends.get(slot) else {
            return "";
        };
        let start = match slot {
            0 => 0,
            _ => self.ends[slot - 1],
        };
        &self.text[start as usize..end as usize]
    }

    /// The row's values in layout order.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        (0..self.ends.len()).map(|slot| self.value(slot))
    }

    /// The length in bytes of all the row's values together.
    pub fn values_len(&self) -> usize {
        self.text.len()
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("line", &self.line)
            .field("problem", &self.problem)
            .field("values", &self.values().collect::<Vec<_>>())
            .finish()
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

    /// A person's contracts (HR positions) in words: `2 contracts: lines 14 and 52`.
    pub fn contracts(&self, positions: &[u64]) -> String {
        let each: Vec<String> = match self {
            Locator::File | Locator::Sheet { .. } => positions.iter().map(u64::to_string).collect(),
            Locator::Connector { .. } => positions.iter().map(|p| self.short(*p)).collect(),
        };
        let plural = match self {
            Locator::File => "lines ",
            Locator::Sheet { .. } => "rows ",
            Locator::Connector { .. } => "",
        };
        let listed = match each.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        };
        format!("{} contracts: {plural}{listed}", positions.len())
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
    /// Pages read from a paged source (the empty page that ends the read included).
    pub pages: Option<u64>,
    /// The file's modification time, when it was fetched from a server (RFC 3339).
    pub modified: Option<String>,
    pub layout: Layout,
    pub records: Records,
}

/// What the plan and audit record say about the HR snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SnapshotInfo {
    pub source: String,
    pub sha256: String,
    pub records: usize,
    /// Pages read from a paged source (the empty page that ends the read included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<u64>,
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
    pub fn new(source: String, sha256: String, layout: Layout, records: Records) -> Snapshot {
        Snapshot {
            source,
            sha256,
            locator: Locator::File,
            pages: None,
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
            pages: self.pages,
            locator: self.locator.clone(),
            modified: self.modified.clone(),
        }
    }

    pub fn origin(&self, record: &Record) -> RecordOrigin {
        self.locator.origin(&self.source, record.line)
    }
}

/// Refuses a source without rows: an empty export would look like everyone left.
pub(crate) fn refuse_empty(display: &str, records: &Records) -> Result<(), crate::error::Error> {
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
        let wanted = normalize(column);
        let mut at = normalized.iter().enumerate().filter(|(_, h)| **h == wanted);
        match (at.next(), at.next()) {
            (Some((i, _)), None) => indexes.push(i),
            (Some((first, _)), Some((second, _))) => {
                // Which of the two is meant cannot be guessed: a private address before the
                // work one, say, would be given to everyone.
                return Err(crate::error::Error::input(format!(
                    "{display}: column \"{column}\" is in the header twice (columns {} and {}); \
                     rename or remove one in the export",
                    first + 1,
                    second + 1
                )));
            }
            (None, _) => missing.push(column.as_str()),
        }
    }
    if !missing.is_empty() {
        let found: Vec<String> = header
            .iter()
            .take(40)
            .map(|h| shown_cell(h.as_ref()))
            .collect();
        // A header of addresses and numbers is a first row of data.
        let looks_like_data = header.iter().any(|h| {
            let h = h.as_ref();
            h.contains('@')
                || (!h.trim().is_empty() && h.trim().chars().all(|c| c.is_ascii_digit()))
        });
        return Err(crate::error::Error::input(format!(
            "{display}: column(s) {} not found; the header has: {}{}. Fix `source.columns` or the export{hint}{}",
            quote_list(&missing),
            if found.is_empty() {
                "nothing".to_string()
            } else {
                quote_list(&found)
            },
            if header.len() > found.len() {
                ", …"
            } else {
                ""
            },
            if looks_like_data {
                "; the first row looks like data: does the export have a header row?"
            } else {
                ""
            },
        )));
    }
    Ok(indexes)
}

/// A header cell as an error message shows it: a header that is really a row of data must not
/// spill addresses or phone numbers into logs, nor a binary file its control bytes.
fn shown_cell(cell: &str) -> String {
    let cell = cell.trim();
    let digits = cell.chars().filter(char::is_ascii_digit).count();
    let shown = if cell.contains('@') {
        crate::redact::mask_email(cell)
    } else if digits >= 6
        && cell
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()./".contains(c))
    {
        crate::redact::mask_phone(cell)
    } else {
        cell.to_string()
    };
    let mut escaped = shown.chars().flat_map(char::escape_debug);
    let mut shown: String = escaped.by_ref().take(60).collect();
    if escaped.next().is_some() {
        shown.push('…');
    }
    shown
}

pub(crate) use crate::fields::normalize;

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
    fn header_cells_are_shown_masked_escaped_and_cut_only_when_long() {
        assert_eq!(
            shown_cell("Persönlichkeit Straße Größe Übung Äpfel Öl Grüße Füße"),
            "Persönlichkeit Straße Größe Übung Äpfel Öl Grüße Füße"
        );
        assert_eq!(shown_cell(&"x".repeat(61)), format!("{}…", "x".repeat(60)));
        assert_eq!(shown_cell("a\u{0}b"), "a\\0b");
        assert_eq!(shown_cell("jan@x.nl"), "j*n@x.nl");
    }

    proptest::proptest! {
        /// Rows of short and long values read back as given, trimmed as `str::trim` trims.
        #[test]
        fn rows_read_back_as_given(
            width in 0usize..5,
            rows in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof!["[ a\t\u{a0}\u{e9}\u{2003}\n]{0,4}", "[a-z\u{e9}]{120,140}"],
                    0..7,
                ),
                0..20,
            ),
        ) {
            let records = Records::from_rows(
                width,
                rows.iter().enumerate().map(|(i, values)| (i as u64, values.clone())),
            );
            proptest::prop_assert_eq!(records.len(), rows.len());
            for (record, values) in records.iter().zip(&rows) {
                let kept: Vec<&str> = (0..width)
                    .map(|slot| values.get(slot).map_or("", |v| v.trim()))
                    .collect();
                proptest::prop_assert_eq!(record.values().collect::<Vec<_>>(), kept.clone());
                proptest::prop_assert_eq!(record.value(width), "");
                proptest::prop_assert_eq!(
                    record.values_len(),
                    kept.iter().map(|v| v.len()).sum::<usize>()
                );
            }
        }
    }

    #[test]
    fn records_keep_trimmed_values_in_slots() {
        let records = Records::from_rows(3, [(7, vec![" a ", "", "ccc"]), (9, vec!["d"])]);
        let rows: Vec<_> = records.iter().collect();
        let r = rows[0];
        assert_eq!(
            (r.line, r.value(0), r.value(1), r.value(2), r.value(3)),
            (7, "a", "", "ccc", "")
        );
        assert_eq!(
            (rows[1].line, rows[1].value(0), rows[1].value(1)),
            (9, "d", "")
        );
    }

    #[test]
    fn contracts_are_listed_in_the_words_of_their_source() {
        assert_eq!(
            Locator::File.contracts(&[14, 52]),
            "2 contracts: lines 14 and 52"
        );
        let sheet = Locator::Sheet { sheet: "A".into() };
        assert_eq!(sheet.contracts(&[3, 4, 9]), "3 contracts: rows 3, 4 and 9");
        let pages = Locator::Connector { page_size: 10 };
        assert_eq!(
            pages.contracts(&[3, 14]),
            "2 contracts: page 1 row 3 and page 2 row 4"
        );
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
