//! CSV exports: a header row; UTF-8 with or without BOM, UTF-16 with BOM, or the configured
//! fallback encoding (Windows-1252 by default) for files that are not UTF-8; delimiter given or
//! detected; quoted fields with delimiters and newlines; blank lines ignored.
//!
//! A UTF-8 file is streamed: read in blocks through reused buffers and parsed with csv-core,
//! a large one in two halves at once (split at a row boundary the first half confirms), while
//! another thread reads it again to hash it; it is never held whole in memory. Anything else (a
//! UTF-16 byte order mark, bytes that are not UTF-8) is read whole and decoded first.

use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

use csv_core::ReadRecordResult;
use sha2::{Digest, Sha256};

use super::{
    CsvOptions, Layout, Records, RecordsBuilder, Snapshot, UnreadText, match_columns, normalize,
    refuse_empty,
};
use crate::error::Error;

const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Bytes read from the file at a time.
const BLOCK: usize = 1 << 20;

/// Reads `path` (shown to people as `display`) into a snapshot with the given layout.
pub fn read(
    path: &Path,
    display: &str,
    options: CsvOptions<'_>,
    layout: Layout,
) -> Result<Snapshot, Error> {
    read_in_segments(path, display, options, layout, SEGMENTS)
}

/// How large files are split: from `parallel_from` bytes on, in segments of about
/// `segment_bytes` (at least two, at most `max_segments`) parsed on all cores at once, after a
/// first block of `first_block` bytes read alone (the header, and the delimiter found in it).
#[derive(Clone, Copy)]
struct Segmenting {
    parallel_from: u64,
    segment_bytes: u64,
    max_segments: u64,
    first_block: u64,
}

/// Segments of 8 MiB are few enough that guessing where each starts costs nothing, and many
/// enough that the cores finish together whatever else (the digest) runs beside them.
const SEGMENTS: Segmenting = Segmenting {
    parallel_from: 8 << 20,
    segment_bytes: 8 << 20,
    max_segments: 256,
    first_block: BLOCK as u64,
};

/// [`read`], splitting large files as `segmenting` says.
fn read_in_segments(
    path: &Path,
    display: &str,
    options: CsvOptions<'_>,
    layout: Layout,
    segmenting: Segmenting,
) -> Result<Snapshot, Error> {
    // A pipe (`--hr /dev/stdin`) can be read only once: whole, then parsed.
    let regular = std::fs::metadata(path)
        .map_err(|e| cannot_read(display, e))?
        .is_file();
    if !regular {
        let bytes = std::fs::read(path).map_err(|e| cannot_read(display, e))?;
        return parse(&bytes, display, options, layout);
    }
    let layout = match stream(path, display, options, layout, segmenting)? {
        Streamed::Read(snapshot) => return Ok(snapshot),
        Streamed::NeedsDecoding(layout) => layout,
    };
    let bytes = std::fs::read(path).map_err(|e| cannot_read(display, e))?;
    parse(&bytes, display, options, layout)
}

fn cannot_read(display: &str, e: std::io::Error) -> Error {
    Error::input(format!("cannot read the HR file {display}: {e}"))
}

/// Parses CSV bytes already read (from a file or a server).
pub fn parse(
    bytes: &[u8],
    display: &str,
    options: CsvOptions<'_>,
    layout: Layout,
) -> Result<Snapshot, Error> {
    // The digest of a large export takes about as long as parsing it: both at once.
    std::thread::scope(|scope| {
        let sha256 = scope.spawn(|| crate::digest::sha256_hex(bytes));
        let parsed = parse_text(bytes, display, options, &layout);
        let sha256 = joined(sha256);
        parsed.map(|records| Snapshot::new(display.to_string(), sha256, layout, records))
    })
}

/// The records of CSV bytes, decoded first.
fn parse_text(
    bytes: &[u8],
    display: &str,
    options: CsvOptions<'_>,
    layout: &Layout,
) -> Result<Records, Error> {
    let text = decode(bytes, display, options.encoding)?;
    let mut rows = Rows::new(text.as_bytes(), display, options, layout);
    match rows.feed(text.as_bytes()).and_then(|()| rows.end()) {
        Ok(records) => {
            refuse_empty(display, &records)?;
            Ok(records)
        }
        Err(Stop::Invalid(e)) => Err(e),
        Err(Stop::NotUtf8) => unreachable!("decoded text is UTF-8"),
    }
}

enum Streamed {
    Read(Snapshot),
    /// The file is not plain UTF-8: it has to be read whole and decoded.
    NeedsDecoding(Layout),
}

/// Parses a UTF-8 file block by block while it is read again to hash it; a large file in
/// segments on all cores at once, the hashing one more task for them. The file must not change
/// meanwhile: its size and modification time are compared before and after, and every byte must
/// have been both parsed and hashed.
fn stream(
    path: &Path,
    display: &str,
    options: CsvOptions<'_>,
    layout: Layout,
    segmenting: Segmenting,
) -> Result<Streamed, Error> {
    let cannot_read = |e| cannot_read(display, e);
    let mut file = std::fs::File::open(path).map_err(cannot_read)?;
    let before = file.metadata().map_err(cannot_read)?;
    let mut first = Vec::with_capacity(BLOCK);
    (&mut file)
        .take(segmenting.first_block)
        .read_to_end(&mut first)
        .map_err(cannot_read)?;
    refuse_spreadsheet(display, &first)?;
    // UTF-16 without a byte order mark is valid UTF-8 byte by byte (NULs and ASCII): it is
    // decoded whole, as configured, or refused.
    let utf16 = encoding_rs::Encoding::for_label(options.encoding.as_bytes())
        .is_some_and(|e| e == encoding_rs::UTF_16LE || e == encoding_rs::UTF_16BE);
    if utf16 || first.contains(&0) {
        return Ok(Streamed::NeedsDecoding(layout));
    }
    if let Some((encoding, _)) = encoding_rs::Encoding::for_bom(&first)
        && encoding != encoding_rs::UTF_8
    {
        return Ok(Streamed::NeedsDecoding(layout));
    }
    let mut rows = Rows::new(&first, display, options, &layout);
    let outcome = rows.feed(&first).and_then(|()| {
        let read = first.len() as u64;
        let starts = match (&rows.header, before.len() >= segmenting.parallel_from) {
            (Some((width, _)), true) => {
                segment_starts(path, before.len(), rows.delimiter, *width, segmenting)
                    .map_err(|e| Stop::Invalid(cannot_read(e)))?
            }
            _ => Vec::new(),
        };
        // The first block is parsed already.
        let starts = starts.into_iter().filter(|&at| at > read).collect();
        Ok(parse_segments(path, before.len(), rows, read, starts))
    });
    let (records, read, hashed) = match outcome {
        Err(Stop::NotUtf8) | Ok((Err(Stop::NotUtf8), _)) => {
            return Ok(Streamed::NeedsDecoding(layout));
        }
        Err(Stop::Invalid(e)) | Ok((Err(Stop::Invalid(e)), _)) => return Err(e),
        Ok((Ok((records, read)), hashed)) => (records, read, hashed),
    };
    let (sha256, hashed) = hashed.map_err(cannot_read)?;
    let after = std::fs::metadata(path).map_err(cannot_read)?;
    if read != hashed
        || hashed != before.len()
        || after.len() != before.len()
        || after.modified().ok() != before.modified().ok()
    {
        return Err(Error::input(format!(
            "the HR file {display} changed while it was read; run again once the export is complete"
        )));
    }
    refuse_empty(display, &records)?;
    Ok(Streamed::Read(Snapshot::new(
        display.to_string(),
        sha256,
        layout,
        records,
    )))
}

/// A scoped thread's result; a panic in it goes on in the caller.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The sha256 of a file and its length, read through one reused buffer.
fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let (mut sha, mut buffer, mut length) = (Sha256::new(), vec![0; BLOCK], 0);
    loop {
        match file.read(&mut buffer)? {
            0 => return Ok((crate::digest::hex(&sha.finalize()), length)),
            n => {
                sha.update(&buffer[..n]);
                length += n as u64;
            }
        }
    }
}

/// Parses the rest of the file after `rows` (which has read its first `read` bytes) in
/// segments, from each of `starts` (guessed row starts) on, on all cores; one of them also
/// hashes the whole file. Then joins the segments in order. Where a guessed start turns out to
/// be inside a value (the segment before does not end between two rows there), that segment is
/// dropped and the one before reads on through it instead: a wrong guess costs time, never a
/// record. The records and the bytes parsed; the digest and the bytes hashed.
fn parse_segments<'a>(
    path: &Path,
    length: u64,
    mut rows: Rows<'a>,
    read: u64,
    starts: Vec<u64>,
) -> (Parsed, Hashed) {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Each segment's bytes, the last to the file's end (`u64::MAX`: however long it is by then).
    let ranges: Vec<(u64, u64)> = std::iter::once(read)
        .chain(starts.iter().copied())
        .zip(starts.iter().copied().chain([u64::MAX]))
        .collect();
    // Each segment's chunk is sized for the rows its bytes likely hold, judged by the first block.
    let rows_read = rows.records.len() as u64;
    let rows_in = |(from, to): (u64, u64)| {
        let bytes = to.min(length).saturating_sub(from);
        usize::try_from(bytes.saturating_mul(rows_read) / read.max(1)).unwrap_or(usize::MAX)
    };
    rows.records.reserve(rows_in(ranges[0]));
    // Each segment after the first counts its lines from 1 until the one before tells where
    // it starts.
    let parsers = (ranges[1..].iter())
        .map(|&range| rows.continuation(1, rows_in(range)))
        .collect::<Vec<_>>();
    let segments: Vec<Mutex<Option<Rows<'a>>>> = std::iter::once(rows)
        .chain(parsers)
        .map(|rows| Mutex::new(Some(rows)))
        .collect();
    let parsed: Vec<Mutex<Option<SegmentRead<'a>>>> =
        segments.iter().map(|_| Mutex::new(None)).collect();
    let digest = Mutex::new(None);
    // Task 0 is the digest (the longest, so it starts first), then the segments in file order:
    // whichever core is free takes the next, and all finish close together.
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(2, usize::from)
        .clamp(2, segments.len() + 1);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    match next.fetch_add(1, Ordering::Relaxed) {
                        0 => *digest.lock().expect("no task panicked") = Some(hash_file(path)),
                        task if task <= segments.len() => {
                            let mut rows = (segments[task - 1].lock())
                                .expect("no task panicked")
                                .take()
                                .expect("each segment is parsed once");
                            let (from, to) = ranges[task - 1];
                            let outcome = rows.read_range(path, from, to).map(|n| (rows, n));
                            *parsed[task - 1].lock().expect("no task panicked") = Some(outcome);
                        }
                        _ => break,
                    }
                }
            });
        }
    });
    let digest = digest.into_inner().expect("no task panicked");
    let mut parsed = parsed
        .into_iter()
        .map(|p| p.into_inner().expect("no task panicked"))
        .map(|p| p.expect("every segment was parsed"));
    let joined = (|| {
        let (mut current, first_read) = parsed.next().expect("a first segment")?;
        let mut read = read + first_read;
        let mut records: Option<Records> = None;
        for (segment, &(from, to)) in parsed.zip(&ranges[1..]) {
            if current.between_rows() {
                // The segment before ended between two rows, just where this one began.
                let (mut next, next_read) = segment?;
                let line = current.line + current.line_offset;
                append(&mut records, current.finish()?);
                next.line_offset = line - 1;
                current = next;
                read += next_read;
            } else {
                // The start was inside a quoted value after all: read on through this segment
                // instead (what it made of it, errors too, does not count).
                read += current.read_range(path, from, to)?;
            }
        }
        append(&mut records, current.finish()?);
        Ok((records.expect("a first segment"), read))
    })();
    (joined, digest.expect("the file was hashed"))
}

/// A file's records and the bytes parsed for them.
type Parsed = Result<(Records, u64), Stop>;
/// A file's sha256 and the bytes hashed.
type Hashed = std::io::Result<(String, u64)>;
/// A segment's parser after its range, and the bytes it read.
type SegmentRead<'a> = Result<(Rows<'a>, u64), Stop>;

/// Adds `more` after `records`, or makes them the records.
fn append(records: &mut Option<Records>, more: Records) {
    match records {
        Some(records) => records.append(more),
        None => *records = Some(more),
    }
}

/// Where segments after the first can start, about `segment_bytes` apart (at least two
/// segments, at most `max_segments`): near each, the first line start from which the next rows
/// read with the header's number of fields (see [`find_split`]); ascending, each once.
fn segment_starts(
    path: &Path,
    length: u64,
    delimiter: u8,
    width: usize,
    segmenting: Segmenting,
) -> std::io::Result<Vec<u64>> {
    let count = (length / segmenting.segment_bytes.max(1)).clamp(2, segmenting.max_segments.max(2));
    let mut starts: Vec<u64> = Vec::new();
    for k in 1..count {
        let Some(start) = find_split(path, length / count * k, delimiter, width)? else {
            continue;
        };
        if starts.last().is_none_or(|&last| start > last) {
            starts.push(start);
        }
    }
    Ok(starts)
}

/// Where a segment of a file can start near byte `near`: the first line start past it from
/// which the next rows read with the header's number of fields. Only a small window there is
/// read, so this is a guess: the segment before confirms it by ending between two rows exactly
/// there.
fn find_split(path: &Path, near: u64, delimiter: u8, width: usize) -> std::io::Result<Option<u64>> {
    use std::io::Seek;
    const WINDOW: u64 = 64 << 10;
    let mut file = std::fs::File::open(path)?;
    file.seek(std::io::SeekFrom::Start(near))?;
    let mut window = Vec::with_capacity(WINDOW as usize);
    file.take(WINDOW).read_to_end(&mut window)?;
    let split = (0..window.len())
        .filter(|&i| window[i] == b'\n')
        .take(64)
        .map(|i| i + 1)
        .find(|&start| rows_fit(&window[start..], delimiter, width));
    Ok(split.map(|start| near + start as u64))
}

/// Whether `text` starts with a few complete rows of exactly `width` fields. Starting inside a
/// quoted value that spans lines, the quotes pair up wrongly and the counts rarely fit.
fn rows_fit(mut text: &[u8], delimiter: u8, width: usize) -> bool {
    const ROWS: usize = 4;
    let mut core = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
    // Room for every byte of `text`, and for one field more than a fitting row has.
    let mut out = vec![0; text.len()];
    let mut ends = vec![0; width + 1];
    let mut fields = 0;
    for _ in 0..ROWS {
        loop {
            let (result, read, _, ended) = core.read_record(text, &mut out, &mut ends[fields..]);
            text = &text[read..];
            fields += ended;
            match result {
                ReadRecordResult::Record if fields == width => {
                    fields = 0;
                    break;
                }
                ReadRecordResult::InputEmpty if !text.is_empty() => {}
                _ => return false,
            }
        }
    }
    true
}

/// The line ends in `bytes` as csv-core reads them: `\n`, `\r\n` and a lone `\r` (old Mac
/// exports) are one each. `after_cr` says the bytes before ended with `\r`, and is updated.
fn line_ends(bytes: &[u8], after_cr: &mut bool) -> u64 {
    let Some(&last) = bytes.last() else {
        return 0;
    };
    if !bytes.contains(&b'\r') {
        // The common case, counted the fast way; a `\n` first completes a `\r\n` counted before.
        let newlines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        let completes = *after_cr && bytes[0] == b'\n';
        *after_cr = false;
        return newlines - u64::from(completes);
    }
    let mut count = 0;
    let mut previous_cr = *after_cr;
    for &b in bytes {
        count += u64::from(b == b'\r' || (b == b'\n' && !previous_cr));
        previous_cr = b == b'\r';
    }
    *after_cr = last == b'\r';
    count
}

/// Why parsing stopped early.
enum Stop {
    /// A field is not UTF-8: the file needs decoding.
    NotUtf8,
    Invalid(Error),
}

/// CSV bytes, fed in pieces, to records: the first non-blank row is the header.
struct Rows<'a> {
    display: &'a str,
    layout: &'a Layout,
    delimiter: u8,
    core: csv_core::Reader,
    /// The current row's fields, back to back, and where each ends.
    fields: Vec<u8>,
    ends: Vec<usize>,
    fields_len: usize,
    ends_len: usize,
    /// The line at the parse position, and the line the current row started on.
    line: u64,
    row_line: Option<u64>,
    /// Header width and, per layout slot, the column it is read from.
    header: Option<(usize, Vec<usize>)>,
    records: RecordsBuilder,
    /// A UTF-8 byte order mark at the very start is not part of the header.
    at_start: bool,
    /// Added to `line` in messages: a second half counts its lines from 1 until the first half
    /// tells where it starts (its records are shifted then).
    line_offset: u64,
    /// How many fields the last row had.
    last_row_fields: usize,
    /// The input so far ends with `\r` (a `\n` next ends the same line).
    after_cr: bool,
    /// Where the values of a simple line start and end (reused from line to line).
    simple_starts: Vec<usize>,
    simple_ends: Vec<usize>,
}

/// A parsed row's values: value `i` is `bytes[start(i)..ends[i]]`. csv-core writes the values
/// back to back; a simple line is read where it is, its values between delimiters and quotes.
struct RowText<'b> {
    bytes: &'b [u8],
    ends: &'b [usize],
    /// A simple line's value starts: it has no line end inside, and ASCII delimiters or quotes
    /// around each value.
    simple_starts: Option<&'b [usize]>,
}

impl<'b> RowText<'b> {
    fn start(&self, i: usize) -> usize {
        match (self.simple_starts, i) {
            (Some(starts), _) => starts[i],
            (None, 0) => 0,
            (None, _) => self.ends[i - 1],
        }
    }
}

/// Splits the line at the start of `rest` as csv-core would, when that is simple: each value
/// unquoted, or quoted whole without a quote or line end inside; no carriage return but one
/// right before the line feed; and the line end in `rest`. Fills `starts` and `ends` and returns
/// the line's length with its line end; `None` for any other line. `has_cr` says whether `rest`
/// has a carriage return at all.
fn split_simple_line(
    rest: &[u8],
    delimiter: u8,
    has_cr: bool,
    starts: &mut Vec<usize>,
    ends: &mut Vec<usize>,
) -> Option<usize> {
    starts.clear();
    ends.clear();
    // Where the current value starts.
    let mut at = 0;
    let (content, length) = 'values: loop {
        if rest.get(at) == Some(&b'"') {
            let close = at + 1 + memchr::memchr(b'"', &rest[at + 1..])?;
            if memchr::memchr2(b'\n', b'\r', &rest[at + 1..close]).is_some() {
                return None;
            }
            starts.push(at + 1);
            ends.push(close);
            match rest.get(close + 1) {
                Some(&b) if b == delimiter => at = close + 2,
                Some(b'\n') => break (close + 1, close + 2),
                Some(b'\r') if rest.get(close + 2) == Some(&b'\n') => break (close + 1, close + 3),
                // A doubled quote, or text after the closing one.
                _ => return None,
            }
            continue;
        }
        let from = at;
        // csv-core keeps a quote inside an unquoted value as it is.
        for i in memchr::memchr2_iter(delimiter, b'\n', &rest[from..]).map(|i| i + from) {
            match rest[i] {
                b'\n' => {
                    let end = if i > at && rest[i - 1] == b'\r' {
                        i - 1
                    } else {
                        i
                    };
                    starts.push(at);
                    ends.push(end);
                    break 'values (end, i + 1);
                }
                _ => {
                    starts.push(at);
                    ends.push(i);
                    at = i + 1;
                    if rest.get(at) == Some(&b'"') {
                        continue 'values;
                    }
                }
            }
        }
        return None;
    };
    // csv-core ends a row at any other carriage return.
    if has_cr && memchr::memchr(b'\r', &rest[..content]).is_some() {
        return None;
    }
    Some(length)
}

impl<'a> Rows<'a> {
    /// `start` is the beginning of the input, where the header line is looked for to detect the
    /// delimiter.
    fn new(
        start: &[u8],
        display: &'a str,
        options: CsvOptions<'_>,
        layout: &'a Layout,
    ) -> Rows<'a> {
        let delimiter = options.delimiter.byte().unwrap_or_else(|| {
            let text = match std::str::from_utf8(start) {
                Ok(text) => text,
                Err(e) => std::str::from_utf8(&start[..e.valid_up_to()]).unwrap_or_default(),
            };
            let header = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or_default();
            detect_delimiter(header, &layout.columns)
        });
        Rows {
            display,
            layout,
            delimiter,
            core: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            fields: vec![0; 1024],
            ends: vec![0; 64],
            fields_len: 0,
            ends_len: 0,
            line: 1,
            row_line: None,
            header: None,
            records: RecordsBuilder::for_layout(layout),
            at_start: true,
            line_offset: 0,
            last_row_fields: 0,
            after_cr: false,
            simple_starts: Vec::new(),
            simple_ends: Vec::new(),
        }
    }

    /// A parser for the rest of the same file from a row boundary on `line`.
    fn continuation(&self, line: u64, rows: usize) -> Rows<'a> {
        let mut core = csv_core::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .build();
        // A line end between rows is skipped, and marks the parser as having read: it takes a
        // byte order mark only at the very start of its input, which the middle of a file is not.
        core.read_record(b"\n", &mut [0], &mut [0]);
        Rows {
            core,
            fields: vec![0; self.fields.len()],
            ends: vec![0; self.ends.len()],
            fields_len: 0,
            ends_len: 0,
            line,
            row_line: None,
            header: self.header.clone(),
            records: self.records.continuation(rows),
            at_start: false,
            after_cr: false,
            simple_starts: Vec::new(),
            simple_ends: Vec::new(),
            ..*self
        }
    }

    /// Between two rows: nothing of a row read yet.
    fn between_rows(&self) -> bool {
        self.row_line.is_none() && self.fields_len == 0 && self.ends_len == 0
    }

    /// Parses up to `limit` more bytes of `file` (to its end with `u64::MAX`); the bytes read.
    fn read_rest(&mut self, file: &mut std::fs::File, limit: u64) -> Result<u64, Stop> {
        let mut block = Vec::with_capacity(BLOCK);
        let mut read = 0;
        while read < limit {
            block.clear();
            let n = file
                .take((limit - read).min(BLOCK as u64))
                .read_to_end(&mut block)
                .map_err(|e| Stop::Invalid(cannot_read(self.display, e)))?;
            if n == 0 {
                break;
            }
            read += n as u64;
            self.feed(&block)?;
        }
        Ok(read)
    }

    /// Parses `path` from byte `from` up to byte `to` (its end with `u64::MAX`); the bytes read.
    fn read_range(&mut self, path: &Path, from: u64, to: u64) -> Result<u64, Stop> {
        use std::io::Seek;
        let failed = |e| Stop::Invalid(cannot_read(self.display, e));
        let mut file = std::fs::File::open(path).map_err(failed)?;
        file.seek(std::io::SeekFrom::Start(from)).map_err(failed)?;
        self.read_rest(&mut file, to.saturating_sub(from))
    }

    /// Ends a segment: its records, with their lines counted from the file's first.
    fn finish(self) -> Result<Records, Stop> {
        let offset = self.line_offset;
        let mut records = self.end()?;
        records.shift_lines(offset);
        Ok(records)
    }

    fn feed(&mut self, mut input: &[u8]) -> Result<(), Stop> {
        if self.at_start && !input.is_empty() {
            self.at_start = false;
            input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
        }
        let has_cr = memchr::memchr(b'\r', input).is_some();
        loop {
            if !input.is_empty() && self.header.is_some() && self.between_rows() {
                input = &input[self.read_simple_lines(input, has_cr)?..];
                if input.is_empty() {
                    return Ok(());
                }
            }
            let (result, read, written, ended) = self.core.read_record(
                input,
                &mut self.fields[self.fields_len..],
                &mut self.ends[self.ends_len..],
            );
            self.count_lines(&input[..read]);
            input = &input[read..];
            self.fields_len += written;
            self.ends_len += ended;
            match result {
                ReadRecordResult::InputEmpty if input.is_empty() => return Ok(()),
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => self.fields.resize(self.fields.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                ReadRecordResult::Record => self.row()?,
                ReadRecordResult::End => return Ok(()),
            }
        }
    }

    /// Ends the input (the last row may have no line end): the records.
    fn end(mut self) -> Result<Records, Stop> {
        // The last row has no line end: one ends it as the end of input would, unless a quote
        // in it is never closed. Such a quote takes every row after it into one value; those
        // people would look gone, so the file is refused rather than read that way.
        if !self.between_rows() {
            let line = self.row_line.unwrap_or(self.line) + self.line_offset;
            let records_before = self.records.len();
            self.feed(b"\n")?;
            if !self.between_rows() {
                return Err(Stop::Invalid(Error::input(format!(
                    "{}:{line}: a quoted value in the row on this line is never closed, so every \
                     line after it would be read as part of that value; refusing to plan from it. \
                     Close the quote, or write a quote inside a value as two (\"\"), and export \
                     again",
                    self.display
                ))));
            }
            // A last row cut short without a line end is an export that stopped half-way: the
            // people after the cut would look gone.
            if let Some((width, _)) = &self.header
                && self.records.len() > records_before
                && self.last_row_fields < *width
            {
                return Err(Stop::Invalid(Error::input(format!(
                    "{}:{line}: the last row has {} fields where the header has {width}, and no \
                     line end: the export looks cut off; refusing to plan from it. Export again",
                    self.display, self.last_row_fields
                ))));
            }
        }
        // Empty input is csv-core's end of input.
        self.feed(&[])?;
        if self.header.is_none() {
            return Err(Stop::Invalid(Error::input(format!(
                "the HR file {} is empty; refusing to plan from it (an empty export would look like everyone left)",
                self.display
            ))));
        }
        Ok(self.records.finish())
    }

    /// Keeps the line count: a row starts on the line of its first byte that is not a line end.
    fn count_lines(&mut self, consumed: &[u8]) {
        if self.row_line.is_none()
            && let Some(first) = consumed.iter().position(|&b| b != b'\n' && b != b'\r')
        {
            let mut after_cr = self.after_cr;
            self.row_line = Some(self.line + line_ends(&consumed[..first], &mut after_cr));
        }
        self.line += line_ends(consumed, &mut self.after_cr);
    }

    /// Reads the whole lines at the start of `input` (between rows) that [`split_simple_line`]
    /// splits: memchr finds their delimiters, quotes and line ends many bytes at a time, which
    /// splits a typical export about twice as fast as csv-core does. Stops before any other
    /// line, which csv-core reads; the bytes read.
    fn read_simple_lines(&mut self, input: &[u8], has_cr: bool) -> Result<usize, Stop> {
        let mut starts = std::mem::take(&mut self.simple_starts);
        let mut ends = std::mem::take(&mut self.simple_ends);
        let mut at = 0;
        let read = loop {
            // Line ends between rows are blank lines: csv-core skips them.
            let Some(blank) = input[at..].iter().position(|&b| b != b'\n' && b != b'\r') else {
                self.line += line_ends(&input[at..], &mut self.after_cr);
                break Ok(input.len());
            };
            self.line += line_ends(&input[at..at + blank], &mut self.after_cr);
            at += blank;
            let rest = &input[at..];
            let Some(length) =
                split_simple_line(rest, self.delimiter, has_cr, &mut starts, &mut ends)
            else {
                break Ok(at);
            };
            let row_line = self.line;
            self.line += 1;
            self.after_cr = false;
            at += length;
            let text = RowText {
                bytes: &rest[..length],
                ends: &ends,
                simple_starts: Some(&starts),
            };
            if let Err(stop) = self.take_row(row_line, &text) {
                break Err(stop);
            }
        };
        (self.simple_starts, self.simple_ends) = (starts, ends);
        read
    }

    /// The row csv-core just parsed.
    fn row(&mut self) -> Result<(), Stop> {
        let line = self.row_line.take().unwrap_or(self.line);
        let (fields, ends) = (
            std::mem::take(&mut self.fields),
            std::mem::take(&mut self.ends),
        );
        let text = RowText {
            bytes: &fields[..self.fields_len],
            ends: &ends[..self.ends_len],
            simple_starts: None,
        };
        let taken = self.take_row(line, &text);
        (self.fields, self.ends) = (fields, ends);
        self.fields_len = 0;
        self.ends_len = 0;
        taken
    }

    /// A row read (starting on `line`): the header, a record, or nothing (a blank row).
    fn take_row(&mut self, line: u64, row: &RowText<'_>) -> Result<(), Stop> {
        let (fields, ends) = (row.bytes, row.ends);
        // The row's values are UTF-8 when all of them together are and each ends on a character
        // boundary (delimiters and quotes are ASCII, so with ASCII bytes, or with a delimiter or
        // quote around each value, both hold).
        let all = match std::str::from_utf8(fields) {
            Ok(all)
                if row.simple_starts.is_some()
                    || fields.is_ascii()
                    || ends.iter().all(|&end| all.is_char_boundary(end)) =>
            {
                all
            }
            _ => return Err(Stop::NotUtf8),
        };
        let text = |i: usize| &all[row.start(i)..ends[i]];
        if (0..ends.len()).all(|i| text(i).trim_ascii().is_empty()) {
            return Ok(());
        }
        let Some((width, columns)) = &self.header else {
            let names: Vec<&str> = (0..ends.len()).map(text).collect();
            let columns = match_columns(
                &format!("{}:{line}", self.display),
                self.layout,
                &names,
                &format!(" (delimiter used: {:?})", self.delimiter as char),
            )
            .map_err(Stop::Invalid)?;
            self.header = Some((names.len(), columns));
            return Ok(());
        };
        self.last_row_fields = ends.len();
        let mut problems = Vec::new();
        let delimiter = self.delimiter as char;
        let over_lines = row.simple_starts.is_none() && fields.contains(&b'\n');
        if ends.len() != *width {
            problems.push(format!(
                "the row has {} fields where the header has {width}",
                ends.len(),
            ));
            // Its lines are noted one by one below when it runs over several.
            if !over_lines {
                let whole: Vec<&str> = (0..ends.len()).map(text).collect();
                self.records.note_unread(UnreadText {
                    line,
                    row_line: line,
                    text: whole.join(&delimiter.to_string()).into(),
                });
            }
        }
        // A value over several lines whose lines have the delimiter in them is most likely a
        // quote not closed where it should be, which makes one value of the rows after it.
        if over_lines {
            let mut value_line = line;
            let mut holds_rows = vec![false; ends.len()];
            for (i, holds_rows) in holds_rows.iter_mut().enumerate() {
                let value = text(i);
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
            for (slot, &i) in columns.iter().enumerate() {
                if holds_rows.get(i) == Some(&true) {
                    problems.push(format!(
                        "the value in column \"{}\" runs over several lines that look like rows of \
                         their own: a quote in this row is probably not closed where it should be",
                        self.layout.columns[slot]
                    ));
                }
            }
        }
        self.records.push(
            line,
            columns
                .iter()
                .map(|&i| if i < ends.len() { text(i) } else { "" }),
        );
        if !problems.is_empty() {
            self.records.set_problem(problems.join("; "));
        }
        Ok(())
    }
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
    // Line by line: a line that is UTF-8 stays UTF-8, so one stray byte in an otherwise UTF-8
    // export cannot turn every accented name in it into another.
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
        let file = display;
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
    Ok(Cow::Owned(text))
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

    /// Everything `bytes` parse to, fed in pieces of `piece` bytes: each record (line, values,
    /// problem) and the unread text, or the error.
    fn parsed_in_pieces(bytes: &[u8], piece: usize) -> String {
        let layout = fields();
        let mut rows = Rows::new(bytes, "hr.csv", UTF8_ONLY, &layout);
        let fed = bytes.chunks(piece).try_for_each(|piece| rows.feed(piece));
        match fed.and_then(|()| rows.end()) {
            Ok(records) => format!(
                "{:?}\n{:?}",
                records
                    .iter()
                    .map(|r| (
                        r.line,
                        (0..3).map(|i| r.value(i)).collect::<Vec<_>>(),
                        r.problem
                    ))
                    .collect::<Vec<_>>(),
                records.unread()
            ),
            Err(Stop::Invalid(e)) => format!("error: {e}"),
            Err(Stop::NotUtf8) => "not UTF-8".into(),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Simple lines are read without csv-core only when a whole line is in the input: fed a
        /// byte at a time, csv-core reads every row. Both must agree on every file.
        #[test]
        fn simple_lines_read_as_csv_core_reads_them(
            tokens in proptest::collection::vec(
                proptest::sample::select(vec![
                    "1", "ab", "\u{e9}", " ", "\u{a0}", ";", ",", "\"", "\"\"", "\r", "\n", "\r\n",
                    "\n\n", "x y", "\"q;\nr\"", "\"v;w\"", "\"\r\"", ";\"t\"",
                ]),
                0..120,
            ),
            header_end in proptest::sample::select(vec!["\n", "\r\n", "\r"]),
        ) {
            let bytes = format!("Personeelsnummer;E-mail;Vestiging{header_end}{}", tokens.concat());
            let bytes = bytes.as_bytes();
            let whole = parsed_in_pieces(bytes, bytes.len().max(1));
            proptest::prop_assert_eq!(&whole, &parsed_in_pieces(bytes, 1));
            proptest::prop_assert_eq!(&whole, &parsed_in_pieces(bytes, 7));
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

    const WHOLE: Segmenting = Segmenting {
        parallel_from: u64::MAX,
        ..SEGMENTS
    };
    const HALVES: Segmenting = Segmenting {
        parallel_from: 0,
        segment_bytes: u64::MAX,
        max_segments: 2,
        first_block: BLOCK as u64,
    };
    /// Segments of 64 KiB: dozens in a test file, several inside one long quoted value.
    const MANY: Segmenting = Segmenting {
        parallel_from: 0,
        segment_bytes: 64 << 10,
        max_segments: 256,
        first_block: BLOCK as u64,
    };

    /// The records of `bytes` read in one piece, in two halves and in many segments.
    fn one_piece_and_segments(bytes: &[u8]) -> (Snapshot, Snapshot, Snapshot) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hr.csv");
        std::fs::write(&path, bytes).unwrap();
        let read = |segmenting| read_in_segments(&path, "hr.csv", UTF8_ONLY, fields(), segmenting);
        (
            read(WHOLE).unwrap(),
            read(HALVES).unwrap(),
            read(MANY).unwrap(),
        )
    }

    /// Everything a snapshot read holds: each record (line, values, problem), the unread text
    /// and the digest; or the error.
    fn read_summary(read: Result<Snapshot, Error>) -> String {
        match read {
            Ok(snapshot) => format!(
                "{:?}\n{:?}\n{}",
                (snapshot.records.iter())
                    .map(|r| (
                        r.line,
                        (0..3).map(|i| r.value(i)).collect::<Vec<_>>(),
                        r.problem
                    ))
                    .collect::<Vec<_>>(),
                snapshot.records.unread(),
                snapshot.sha256
            ),
            Err(e) => format!("error: {e}"),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// Rows with stray quotes, values over several lines, blank lines and mixed line ends
        /// among them read the same in one piece as in segments of a few hundred bytes, whose
        /// guessed starts land anywhere among them.
        #[test]
        fn segments_read_as_one_piece_reads_whatever_the_rows(
            rows in proptest::collection::vec(
                (
                    0u32..1000,
                    proptest::sample::select(vec![
                        "", "", "", "\"", "\"\"", "\r", "\n", "\r\n", "\n\n", ";",
                        "\"q;\nr\"", "\"v;w\"", "\"a\nb;c\n\"",
                    ]),
                    proptest::sample::select(vec!["\n", "\n", "\r\n"]),
                ),
                1..400,
            ),
            segment_bytes in 64u64..600,
        ) {
            let mut text = "Personeelsnummer;E-mail;Vestiging\n".to_string();
            for (i, noise, end) in &rows {
                text.push_str(&format!("{i};p{i}@x.nl;{noise}ST{i}{end}"));
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("hr.csv");
            std::fs::write(&path, &text).unwrap();
            let read = |segmenting| {
                read_summary(read_in_segments(&path, "hr.csv", UTF8_ONLY, fields(), segmenting))
            };
            // A first block of 128 bytes: the header, a row or so.
            let segments = Segmenting {
                parallel_from: 0,
                segment_bytes,
                max_segments: 256,
                first_block: 128,
            };
            proptest::prop_assert_eq!(read(WHOLE), read(segments));
        }
    }

    #[test]
    fn halves_and_segments_read_the_same_records_as_one_piece() {
        let (bytes, expected) = long_file(150_000, None);
        let (one, halves, many) = one_piece_and_segments(&bytes);
        assert_eq!(all_rows(&one), expected);
        for split in [&halves, &many] {
            assert_eq!(all_rows(split), expected);
            assert_eq!(split.sha256, crate::digest::sha256_hex(&bytes));
        }
        assert!(halves.records.chunks().len() > one.records.chunks().len());
        assert!(many.records.chunks().len() > 2 * halves.records.chunks().len());
    }

    #[test]
    fn a_split_inside_a_quoted_value_is_noticed_and_read_through() {
        // The middle of the file falls inside one quoted value whose lines look like rows, so
        // the guessed split lands inside it; the first half must notice and read on.
        let row = |i: usize| format!("{i};p{i}@x.nl;Store {i}\n");
        let mut text = "Personeelsnummer;E-mail;Vestiging\n".to_string();
        (1..60_000).for_each(|i| text.push_str(&row(i)));
        let notes: String = (0..10_000).map(row).collect();
        text.push_str(&format!("60000;p60000@x.nl;\"{notes}\"\n"));
        (60_001..120_000).for_each(|i| text.push_str(&row(i)));
        let middle = text.len() / 2;
        let inside = text.find("60000;p60000").unwrap()..text.find("\n60001;").unwrap();
        assert!(inside.contains(&middle) && middle > BLOCK);

        let (one, halves, many) = one_piece_and_segments(text.as_bytes());
        assert_eq!(one.records.len(), 119_999);
        assert_eq!(all_rows(&halves), all_rows(&one));
        assert_eq!(all_rows(&many), all_rows(&one));
        assert_eq!(unread(&many), unread(&one));
        let long = one.records.iter().nth(59_999).unwrap();
        assert_eq!((long.line, long.value(2)), (60_001, notes.trim_end()));
        let last = one.records.iter().last().unwrap();
        assert_eq!(last.line, 120_000 + 10_000);
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
        // In the second half of a file read in two, and without a line end after it.
        let mut text = "Personeelsnummer;E-mail;Vestiging\n".to_string();
        (1..150_000).for_each(|i| text.push_str(&format!("{i};p{i}@x.nl;ST{i}\n")));
        let text = text.replace("\n120000;", "\n120000;\"");
        let mut bytes = text.into_bytes();
        bytes.pop();
        let line = 120_001;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hr.csv");
        std::fs::write(&path, &bytes).unwrap();
        for segmenting in [WHOLE, HALVES, MANY] {
            let error = read_in_segments(&path, "hr.csv", UTF8_ONLY, fields(), segmenting)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(&format!("hr.csv:{line}: a quoted value")),
                "{error}"
            );
        }
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
            first.problem,
            Some(
                "the value in column \"E-mail\" runs over several lines that look like rows of \
                 their own: a quote in this row is probably not closed where it should be"
            )
        );
        // A value over several lines without delimiters in them is only a value.
        let snapshot =
            read_text(b"Personeelsnummer;E-mail;Vestiging\n1;a@x.nl;\"Store\nNorth\"\n").unwrap();
        assert_eq!(unread(&snapshot), vec![]);
        assert_eq!(snapshot.records.iter().next().unwrap().problem, None);
        // In the second half of a file read in two, or a later segment, lines count from the
        // file's start.
        let mut text = "Personeelsnummer;E-mail;Vestiging\n".to_string();
        (1..150_000).for_each(|i| text.push_str(&format!("{i};p{i}@x.nl;ST{i}\n")));
        let text = text.replace("\n120000;p120000@x.nl;", "\n120000;p120000@x.nl;\"");
        let text = text.replace("\n120002;p120002@x.nl;", "\n120002;p120002@x.nl\";");
        let (one, halves, many) = one_piece_and_segments(text.as_bytes());
        for snapshot in [one, halves, many] {
            assert_eq!(
                unread(&snapshot),
                vec![
                    (120_002, 120_001, "120001;p120001@x.nl;ST120001"),
                    (120_003, 120_001, "120002;p120002@x.nl")
                ]
            );
        }
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
