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

/// Rows per [`RecordChunk`]: chunks are what resolving splits between cores.
pub(crate) const CHUNK_ROWS: usize = 1 << 16;

/// The rows of an HR export, in source order. Values are kept back to back in one text buffer
/// per chunk of rows, with their end offsets beside them: a million-row export costs a few
/// dozen allocations rather than one or more per row.
#[derive(Clone, Debug, Default)]
pub struct Records {
    chunks: Vec<Arc<RecordChunk>>,
    len: usize,
    unread: Vec<UnreadText>,
    key_hashes: KeyHashes,
}

/// How a key column's values compare: XIDs exactly, email addresses without case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyCompare {
    Exact,
    CaseFolded,
}

/// The key columns (the XID and the email address) whose values [`RecordsBuilder`] hashes as it
/// keeps each row, while the values are in the processor's cache: finding repeated keys in a
/// million rows then reads four bytes a row instead of every key from memory again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyHashes {
    seed: u64,
    /// The slot of each hashed key and how its values compare, in the order a row's hashes are.
    keys: Vec<(usize, KeyCompare)>,
}

impl KeyHashes {
    /// The XID and email slots of `layout`, with a seed of their own.
    fn for_layout(layout: &Layout) -> KeyHashes {
        let keys = [
            (FieldName::Xid, KeyCompare::Exact),
            (FieldName::Email, KeyCompare::CaseFolded),
        ]
        .into_iter()
        .filter_map(|(field, compare)| Some((layout.slot(&field)?, compare)))
        .collect();
        KeyHashes {
            keys,
            ..KeyHashes::unhashed()
        }
    }

    /// No key hashed, with a seed of its own.
    fn unhashed() -> KeyHashes {
        use std::hash::BuildHasher;
        KeyHashes {
            seed: foldhash::fast::RandomState::default().hash_one(0u8),
            keys: Vec::new(),
        }
    }

    /// Which of a row's hashes is of `slot`'s values compared so, if any.
    pub fn position(&self, slot: usize, compare: KeyCompare) -> Option<usize> {
        self.keys.iter().position(|&key| key == (slot, compare))
    }

    /// The hash of a key value (case-folded already where that is how it compares): 0 for an
    /// empty value and never for another.
    #[inline]
    pub fn hash(&self, value: &str) -> u32 {
        use std::hash::BuildHasher;
        if value.is_empty() {
            return 0;
        }
        // The low half: tables of row positions keep it beside each row.
        let hash = foldhash::fast::FixedState::with_seed(self.seed).hash_one(value) as u32;
        hash.max(1)
    }

    #[inline]
    fn of_value(&self, value: &str, compare: KeyCompare) -> u32 {
        match compare {
            KeyCompare::Exact => self.hash(value),
            KeyCompare::CaseFolded => self.hash(&case_folded(value)),
        }
    }
}

/// Email addresses compare without case; most are written in lower case already and are
/// borrowed as they are.
pub(crate) fn case_folded(email: &str) -> std::borrow::Cow<'_, str> {
    // Every byte looked at without stopping early: the compiler then checks many at a time.
    let upper_or_not_ascii = email.bytes().fold(false, |found, b| {
        found | b.is_ascii_uppercase() | !b.is_ascii()
    });
    if upper_or_not_ascii {
        std::borrow::Cow::Owned(email.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(email)
    }
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
    /// Records from rows of values in layout order (`width` slots each), for tests and small sources.
    pub fn from_rows<S: AsRef<str>>(
        width: usize,
        rows: impl IntoIterator<Item = (u64, Vec<S>)>,
    ) -> Records {
        let mut builder = RecordsBuilder::new(width);
        for (line, values) in rows {
            builder.push(line, values.iter().map(AsRef::as_ref));
        }
        builder.finish()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `by` to every row's line (rows read from the middle of a file, counted from there).
    pub(crate) fn shift_lines(&mut self, by: u64) {
        for chunk in &mut self.chunks {
            for line in &mut Arc::make_mut(chunk).lines {
                *line += by;
            }
        }
        for unread in &mut self.unread {
            unread.line += by;
            unread.row_line += by;
        }
    }

    /// Adds the rows of `more` after these.
    pub fn append(&mut self, more: Records) {
        // Rows hashed otherwise (another seed or other keys) are looked at by their values.
        if more.key_hashes != self.key_hashes {
            self.key_hashes.keys.clear();
        }
        self.chunks.extend(more.chunks);
        self.len += more.len;
        self.unread.extend(more.unread);
    }

    /// Text that may be a person's row but was not read as one (see [`UnreadText`]).
    pub fn unread(&self) -> &[UnreadText] {
        &self.unread
    }

    pub fn chunks(&self) -> &[Arc<RecordChunk>] {
        &self.chunks
    }

    /// Which key values every row has a hash of, and how they are hashed.
    pub fn key_hashes(&self) -> &KeyHashes {
        &self.key_hashes
    }

    pub fn iter(&self) -> impl Iterator<Item = Record<'_>> {
        self.chunks.iter().flat_map(|chunk| chunk.iter())
    }

    /// The rows in `range` (by position over all chunks), as chunk and row in it.
    pub fn rows(
        &self,
        range: std::ops::Range<usize>,
    ) -> impl Iterator<Item = (&Arc<RecordChunk>, usize)> {
        let (mut skip, mut take) = (range.start, range.len());
        self.chunks.iter().flat_map(move |chunk| {
            let from = skip.min(chunk.len());
            skip -= from;
            let count = take.min(chunk.len() - from);
            take -= count;
            (from..from + count).map(move |row| (chunk, row))
        })
    }
}

/// Consecutive rows of [`Records`].
#[derive(Clone, Debug)]
pub struct RecordChunk {
    width: usize,
    /// Every value of every row, back to back.
    text: String,
    /// `width` ends per row: where each value ends in `text`.
    ends: Vec<u32>,
    lines: Vec<u64>,
    /// Rows that are malformed themselves (for example a wrong number of fields), by row.
    problems: Vec<(u32, Box<str>)>,
    /// Per row, the hash of each of its key values ([`KeyHashes`]).
    key_hashes: Vec<u32>,
    keys: usize,
}

impl RecordChunk {
    fn new(width: usize, keys: usize) -> RecordChunk {
        RecordChunk {
            width,
            text: String::new(),
            ends: Vec::new(),
            lines: Vec::new(),
            problems: Vec::new(),
            key_hashes: Vec::new(),
            keys,
        }
    }

    /// The hash of row `row`'s key `key` (the [`KeyHashes::position`] of its slot).
    #[inline]
    pub fn key_hash(&self, row: usize, key: usize) -> u32 {
        self.key_hashes[row * self.keys + key]
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Row `row` of this chunk.
    #[inline]
    pub fn get(&self, row: usize) -> Record<'_> {
        let problem = self
            .problems
            .binary_search_by_key(&row, |(r, _)| *r as usize)
            .ok()
            .map(|i| &*self.problems[i].1);
        Record {
            line: self.lines[row],
            problem,
            chunk: self,
            row,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Record<'_>> {
        (0..self.len()).map(|row| self.get(row))
    }

    /// The line (or position) of row `row`.
    pub fn line(&self, row: usize) -> u64 {
        self.lines[row]
    }

    /// Value `slot` of row `row` (as `get(row).value(slot)`).
    // This and the other accessors of values are inlined where they are called (resolving
    // reads each value of a million rows): out of line, the calls were ~10% of resolving.
    #[inline]
    pub fn value(&self, row: usize, slot: usize) -> &str {
        if slot >= self.width {
            return "";
        }
        let at = row * self.width + slot;
        self.text
            .get(self.start(at) as usize..self.ends[at] as usize)
            .unwrap_or("")
    }

    /// Value `slot` of row `row` as one number when it is shorter than 16 bytes: its bytes, then
    /// zeros, and its length in the last byte (so that two values are equal exactly when their
    /// numbers are). A cache keyed by it hashes and compares values without a loop or a call.
    #[inline]
    pub fn packed_value(&self, row: usize, slot: usize) -> Option<u128> {
        if slot >= self.width {
            return Some(0);
        }
        let at = row * self.width + slot;
        let (start, end) = (self.start(at) as usize, self.ends[at] as usize);
        let length = end - start;
        if length >= 16 {
            return None;
        }
        let bytes = self.text.as_bytes();
        let number = match bytes.get(start..start + 16) {
            // Sixteen bytes read at once; those past the value are masked off.
            Some(sixteen) => {
                let sixteen: [u8; 16] = sixteen.try_into().expect("sixteen bytes");
                u128::from_le_bytes(sixteen) & ((1u128 << (8 * length)) - 1)
            }
            None => {
                let mut padded = [0u8; 16];
                padded[..length].copy_from_slice(&bytes[start..end]);
                u128::from_le_bytes(padded)
            }
        };
        Some(number | (length as u128) << 120)
    }

    /// Where value `at` (counted over all rows' values) starts in `text`.
    #[inline]
    fn start(&self, at: usize) -> u32 {
        match at {
            0 => 0,
            _ => self.ends[at - 1],
        }
    }
}

/// Builds [`Records`] row by row.
#[derive(Debug)]
pub struct RecordsBuilder {
    width: usize,
    done: Vec<Arc<RecordChunk>>,
    len: usize,
    chunk: RecordChunk,
    unread: Vec<UnreadText>,
    key_hashes: KeyHashes,
}

impl RecordsBuilder {
    /// For rows of `width` values (the layout's slots), with no key hashed.
    pub fn new(width: usize) -> RecordsBuilder {
        RecordsBuilder::hashing(width, KeyHashes::unhashed())
    }

    /// For rows of `layout`, hashing its key values ([`KeyHashes::for_layout`]).
    pub fn for_layout(layout: &Layout) -> RecordsBuilder {
        RecordsBuilder::hashing(layout.columns.len(), KeyHashes::for_layout(layout))
    }

    fn hashing(width: usize, key_hashes: KeyHashes) -> RecordsBuilder {
        RecordsBuilder {
            width,
            done: Vec::new(),
            len: 0,
            chunk: RecordChunk::new(width, key_hashes.keys.len()),
            unread: Vec::new(),
            key_hashes,
        }
    }

    /// A builder for rows that go after these ([`Records::append`]), hashed the same way.
    /// With room for about `rows` more rows like those so far (up to a chunk's worth), so that
    /// the chunk's buffers are not copied to grow.
    pub fn continuation(&self, rows: usize) -> RecordsBuilder {
        let mut next = RecordsBuilder::hashing(self.width, self.key_hashes.clone());
        next.reserve_rows(rows, self.text_per_row());
        next
    }

    /// Room for about `rows` more rows like those so far (up to a chunk's worth).
    pub fn reserve(&mut self, rows: usize) {
        self.reserve_rows(rows, self.text_per_row());
    }

    fn text_per_row(&self) -> usize {
        self.chunk.text.len().div_ceil(self.chunk.len().max(1))
    }

    fn reserve_rows(&mut self, rows: usize, text_per_row: usize) {
        let chunk = &mut self.chunk;
        let rows = rows.min(CHUNK_ROWS - chunk.len());
        // An eighth more: rows vary in length, and room never written to costs no memory.
        chunk
            .text
            .reserve(rows * text_per_row + rows * text_per_row / 8);
        chunk.ends.reserve(rows * chunk.width);
        chunk.lines.reserve(rows);
        chunk.key_hashes.reserve(rows * chunk.keys);
    }

    /// Adds a row: its values in layout order, each trimmed; missing values are empty, values
    /// beyond the layout are ignored.
    pub fn push<'v>(&mut self, line: u64, values: impl Iterator<Item = &'v str>) {
        let mut values = values.map(trimmed).fuse();
        // A chunk's offsets are u32: start a new chunk well before its text could outgrow them.
        if self.chunk.len() == CHUNK_ROWS || self.chunk.text.len() > (u32::MAX / 2) as usize {
            self.seal();
        }
        for _ in 0..self.width {
            let value = values.next().unwrap_or_default();
            self.chunk.text.push_str(value);
            self.chunk.ends.push(
                u32::try_from(self.chunk.text.len()).expect("a row of the HR record under 2 GB"),
            );
        }
        let row = self.chunk.lines.len();
        for &(slot, compare) in &self.key_hashes.keys {
            let hash = self
                .key_hashes
                .of_value(self.chunk.value(row, slot), compare);
            self.chunk.key_hashes.push(hash);
        }
        self.chunk.lines.push(line);
        self.len += 1;
    }

    /// The rows pushed so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Notes text that may be a person's row but was not read as one (see [`UnreadText`]).
    pub fn note_unread(&mut self, unread: UnreadText) {
        self.unread.push(unread);
    }

    /// Marks the row pushed last as malformed.
    pub fn set_problem(&mut self, problem: String) {
        let row = self.chunk.len().checked_sub(1).expect("a row was pushed");
        self.chunk.problems.push((row as u32, problem.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn seal(&mut self) {
        // The next chunk is likely as large as this one: sized up front, it is never copied to grow.
        let next = RecordChunk {
            text: String::with_capacity(self.chunk.text.len()),
            ends: Vec::with_capacity(self.chunk.ends.len()),
            lines: Vec::with_capacity(self.chunk.lines.len()),
            key_hashes: Vec::with_capacity(self.chunk.key_hashes.len()),
            ..RecordChunk::new(self.width, self.key_hashes.keys.len())
        };
        let full = std::mem::replace(&mut self.chunk, next);
        if !full.is_empty() {
            self.done.push(Arc::new(full));
        }
    }

    pub fn finish(mut self) -> Records {
        self.seal();
        Records {
            chunks: self.done,
            len: self.len,
            unread: self.unread,
            key_hashes: self.key_hashes,
        }
    }
}

/// `value` without the whitespace around it; most values have none, which their first and last
/// bytes tell without `str::trim`'s walk through characters.
fn trimmed(value: &str) -> &str {
    match (value.as_bytes().first(), value.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => value,
        _ => value.trim(),
    }
}

/// One HR row: trimmed values in layout order, plus its position in the source (the CSV line,
/// the sheet row, or the 1-based index over all connector rows; [`Locator`] turns it into a place).
#[derive(Clone, Copy)]
pub struct Record<'a> {
    pub line: u64,
    /// Set when the row itself is malformed (for example a wrong number of fields).
    pub problem: Option<&'a str>,
    chunk: &'a RecordChunk,
    row: usize,
}

impl<'a> Record<'a> {
    #[inline]
    pub fn value(&self, slot: usize) -> &'a str {
        self.chunk.value(self.row, slot)
    }

    /// [`RecordChunk::packed_value`] of value `slot`.
    #[inline]
    pub fn packed_value(&self, slot: usize) -> Option<u128> {
        self.chunk.packed_value(self.row, slot)
    }

    /// The length in bytes of all the row's values together.
    pub fn values_len(&self) -> usize {
        let width = self.chunk.width;
        if width == 0 {
            return 0;
        }
        let first = self.row * width;
        (self.chunk.ends[first + width - 1] - self.chunk.start(first)) as usize
    }
}

impl fmt::Debug for Record<'_> {
    /// The row's own values, not the whole chunk they are kept in.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values: Vec<&str> = (0..self.chunk.width).map(|slot| self.value(slot)).collect();
        f.debug_struct("Record")
            .field("line", &self.line)
            .field("problem", &self.problem)
            .field("values", &values)
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

    pub fn origin(&self, record: &Record<'_>) -> RecordOrigin {
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
        #[test]
        fn values_are_trimmed_as_str_trim_trims(value in "[ a\t\u{a0}\u{2003}\n\u{e9}x-]{0,6}") {
            proptest::prop_assert_eq!(trimmed(&value), value.trim());
        }

        /// Two values have the same packed number exactly when they are the same, wherever
        /// they stand in their chunk (the last ones are read without sixteen bytes after them).
        #[test]
        fn packed_values_are_equal_exactly_when_the_values_are(
            values in proptest::collection::vec("[ab\u{e9}\u{0}]{0,9}|[a-z]{14,17}", 1..40),
        ) {
            let records = Records::from_rows(
                2,
                values.chunks(2).map(|pair| (1, pair.to_vec())),
            );
            let read: Vec<(&str, Option<u128>)> = records
                .iter()
                .flat_map(|r| (0..2).map(move |slot| (r.value(slot), r.packed_value(slot))))
                .collect();
            for &(a, packed_a) in &read {
                proptest::prop_assert_eq!(packed_a.is_some(), a.len() < 16);
                for &(b, packed_b) in &read {
                    if let (Some(x), Some(y)) = (packed_a, packed_b) {
                        proptest::prop_assert_eq!(x == y, a == b, "{:?} {:?}", a, b);
                    }
                }
            }
        }

        /// Rows of short and long values read back as pushed (trimmed), across chunks.
        #[test]
        fn rows_read_back_as_pushed(
            width in 0usize..5,
            rows in proptest::collection::vec(
                (
                    proptest::prop_oneof![0u64..3, proptest::strategy::Just(u64::from(u32::MAX))],
                    proptest::collection::vec(
                        proptest::prop_oneof!["[ a\u{e9}\u{2003}]{0,4}", "[a-z\u{e9}]{120,140}"],
                        0..7,
                    ),
                ),
                0..40,
            ),
        ) {
            let mut line = 1u64;
            let mut builder = RecordsBuilder::new(width);
            let mut expected = Vec::new();
            for (step, values) in &rows {
                line += step;
                builder.push(line, values.iter().map(String::as_str));
                let kept: Vec<&str> = (0..width)
                    .map(|slot| values.get(slot).map_or("", |v| v.trim()))
                    .collect();
                expected.push((line, kept));
            }
            let records = builder.finish();
            proptest::prop_assert_eq!(records.len(), expected.len());
            for (record, (line, kept)) in records.iter().zip(&expected) {
                let values: Vec<&str> = (0..=width).map(|slot| record.value(slot)).collect();
                proptest::prop_assert_eq!(record.line, *line);
                proptest::prop_assert_eq!(&values[..width], &kept[..]);
                proptest::prop_assert_eq!(values[width], "");
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
    fn records_span_chunks_and_keep_problems_on_their_row() {
        let mut builder = RecordsBuilder::new(2);
        for i in 0..CHUNK_ROWS + 3 {
            let id = i.to_string();
            builder.push(i as u64 + 2, [id.as_str(), "x"].into_iter());
            if i % 1000 == 999 {
                builder.set_problem(format!("row {i}"));
            }
        }
        let mut records = builder.finish();
        assert_eq!((records.len(), records.chunks().len()), (CHUNK_ROWS + 3, 2));
        // A range across the chunk boundary gives those rows, in order.
        let ids: Vec<&str> = records
            .rows(CHUNK_ROWS - 2..CHUNK_ROWS + 2)
            .map(|(chunk, row)| chunk.value(row, 0))
            .collect();
        let expected: Vec<String> = (CHUNK_ROWS - 2..CHUNK_ROWS + 2)
            .map(|i| i.to_string())
            .collect();
        assert_eq!(ids, expected);
        records.shift_lines(10);
        for (i, record) in records.iter().enumerate() {
            assert_eq!(
                (record.line, record.value(0)),
                (i as u64 + 12, &*i.to_string())
            );
            let expected = (i % 1000 == 999).then(|| format!("row {i}"));
            assert_eq!(record.problem, expected.as_deref());
        }
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
