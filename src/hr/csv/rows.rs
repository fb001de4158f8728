//! The rows of CSV input, each with the line it starts on, parsed on a thread of their own while
//! the calling thread turns them into records: the parse (with the hash of the input and the
//! count of its lines) and the building of records each take about half of a read, so a large
//! file reads in about half the time on two cores.
//!
//! [`parse_rows`] is the one way in. Rows travel in batches whose buffers go back to the parser
//! to be filled again, and reach the caller in file order, so what the caller sees is what a
//! plain loop over the csv reader would show it.

use std::io::Read;
use std::sync::mpsc;

use sha2::Sha256;

/// Bytes the csv reader asks for at a time, and the input kept before it is let go of.
pub(super) const BLOCK: usize = 1 << 20;

/// Rows handed over at a time: enough that handing them over costs nothing next to parsing
/// them, few enough that the two threads start working together at once.
const BATCH: usize = 512;

/// What a parse of the whole input saw.
pub(super) struct Parsed {
    pub sha256: String,
    /// The bytes read.
    pub length: u64,
    /// The line the last row starts on, and its bytes with what follows it to the end of the
    /// input (a quote never closed, or a row cut short, shows there).
    pub last_row: Option<(u64, Vec<u8>)>,
}

/// Why parsing stopped: the input could not be read as CSV, or `take` refused a row.
pub(super) enum Halt<E> {
    Unreadable(csv::Error),
    Refused(E),
}

/// A row: the line it starts on, and its fields (not yet known to be UTF-8).
type Row = (u64, csv::ByteRecord);

/// Parses CSV `input` on a thread of its own, calling `take` on this one with each row (the
/// line it starts on and its fields) in input order. Blank lines are no rows. Stops at the
/// first row `take` refuses or the first that cannot be read, as a plain loop would.
pub(super) fn parse_rows<R, E>(
    input: R,
    delimiter: u8,
    take: impl FnMut(u64, &mut csv::ByteRecord) -> Result<(), E>,
) -> Result<Parsed, Halt<E>>
where
    R: Read + Send,
{
    let (full, filled) = mpsc::sync_channel(2);
    let (emptied, empty) = mpsc::channel();
    std::thread::scope(|scope| {
        let parser = scope.spawn(move || parse(input, delimiter, &full, &empty));
        let halt = take_rows(filled, &emptied, take);
        let parsed = (parser.join()).unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match halt {
            Some(halt) => Err(halt),
            None => Ok(parsed.expect("the parser stops early only on an error it sent")),
        }
    })
}

/// The caller's side: each row of each batch in turn to `take`, the emptied batches back to
/// the parser. Returning hangs up, which stops the parser at its next batch.
fn take_rows<E>(
    filled: mpsc::Receiver<Result<Vec<Row>, csv::Error>>,
    emptied: &mpsc::Sender<Vec<Row>>,
    mut take: impl FnMut(u64, &mut csv::ByteRecord) -> Result<(), E>,
) -> Option<Halt<E>> {
    for batch in filled {
        let mut rows = match batch {
            Ok(rows) => rows,
            Err(e) => return Some(Halt::Unreadable(e)),
        };
        for (line, fields) in &mut rows {
            if let Err(e) = take(*line, fields) {
                return Some(Halt::Refused(e));
            }
        }
        // Once the parser is done the batch is not needed.
        let _ = emptied.send(rows);
    }
    None
}

/// The parser's side: fills batches (emptied ones first) and sends them on, until the input
/// ends (what it saw is returned), or an error is sent or the caller hangs up (`None`).
fn parse<R: Read>(
    input: R,
    delimiter: u8,
    full: &mpsc::SyncSender<Result<Vec<Row>, csv::Error>>,
    empty: &mpsc::Receiver<Vec<Row>>,
) -> Option<Parsed> {
    let mut parser = Parser::new(input, delimiter);
    loop {
        let mut rows = empty.try_recv().unwrap_or_default();
        let read = parser.fill(&mut rows);
        // The rows before an error first, as a plain loop would take them.
        if full.send(Ok(rows)).is_err() {
            return None;
        }
        match read {
            Ok(true) => {}
            Ok(false) => return Some(parser.finish()),
            Err(e) => {
                let _ = full.send(Err(e));
                return None;
            }
        }
    }
}

/// The csv reader over the tapped input, and the lines counted so far.
struct Parser<R> {
    reader: csv::Reader<Tap<R>>,
    lines: Lines,
    /// Where the last row read starts, and its line.
    last: Option<(u64, u64)>,
}

impl<R: Read> Parser<R> {
    fn new(input: R, delimiter: u8) -> Parser<R> {
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .buffer_capacity(BLOCK)
            .from_reader(Tap::new(input));
        Parser {
            reader,
            lines: Lines::default(),
            last: None,
        }
    }

    /// Reads up to a batch of rows into `rows`, reusing the buffers it has; false once the
    /// input has ended. On an error `rows` holds the rows read before it.
    fn fill(&mut self, rows: &mut Vec<Row>) -> Result<bool, csv::Error> {
        let mut filled = 0;
        let more = loop {
            if filled == BATCH {
                break Ok(true);
            }
            if filled == rows.len() {
                rows.push((0, csv::ByteRecord::new()));
            }
            let (line, fields) = &mut rows[filled];
            let start = self.reader.position().byte();
            match self.reader.read_byte_record(fields) {
                Ok(true) => {}
                Ok(false) => break Ok(false),
                Err(e) => break Err(e),
            }
            let end = self.reader.position().byte();
            let tap = self.reader.get_mut();
            *line = self.lines.row_starting(tap.between(start, end));
            tap.forget_before(start);
            self.last = Some((start, *line));
            filled += 1;
        };
        rows.truncate(filled);
        more
    }

    /// What the parse saw, once the input has ended.
    fn finish(self) -> Parsed {
        let tap = self.reader.into_inner();
        Parsed {
            last_row: (self.last)
                .map(|(start, line)| (line, tap.between(start, tap.length).to_vec())),
            length: tap.length,
            sha256: crate::digest::hex(&sha2::Digest::finalize(tap.sha256)),
        }
    }
}

/// CSV input on its way to the csv reader: hashed, counted, and kept from the start of the row
/// being read, so that the lines of each row can be counted as they were written.
struct Tap<R> {
    input: R,
    sha256: Sha256,
    length: u64,
    kept: Vec<u8>,
    /// Where `kept` starts in the input.
    kept_from: u64,
}

impl<R> Tap<R> {
    fn new(input: R) -> Tap<R> {
        Tap {
            input,
            sha256: sha2::Digest::new(),
            length: 0,
            kept: Vec::new(),
            kept_from: 0,
        }
    }

    /// The input from byte `from` to byte `to`, both read and not forgotten yet.
    fn between(&self, from: u64, to: u64) -> &[u8] {
        let at = |byte: u64| usize::try_from(byte - self.kept_from).expect("kept bytes fit memory");
        &self.kept[at(from)..at(to)]
    }

    /// Lets go of the input before byte `at` (now and then: not a copy per row).
    fn forget_before(&mut self, at: u64) {
        let done = usize::try_from(at - self.kept_from).expect("kept bytes fit memory");
        if done >= BLOCK {
            self.kept.drain(..done);
            self.kept_from = at;
        }
    }
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let n = self.input.read(buffer)?;
        sha2::Digest::update(&mut self.sha256, &buffer[..n]);
        self.kept.extend_from_slice(&buffer[..n]);
        self.length += n as u64;
        Ok(n)
    }
}

/// The line count through the input, as people count lines: `\n`, `\r\n` and a lone `\r` (old
/// Mac exports) end one each.
#[derive(Default)]
struct Lines {
    /// Line ends so far.
    ended: u64,
    /// The input so far ends with `\r` (a `\n` next ends the same line).
    after_cr: bool,
}

impl Lines {
    /// Counts the bytes of a row (with the line ends around it) and returns the line the row
    /// starts on: that of its first byte that is not a line end.
    fn row_starting(&mut self, bytes: &[u8]) -> u64 {
        let first = bytes
            .iter()
            .position(|&b| b != b'\n' && b != b'\r')
            .unwrap_or(bytes.len());
        self.ended += line_ends(&bytes[..first], &mut self.after_cr);
        let line = self.ended + 1;
        self.ended += line_ends(&bytes[first..], &mut self.after_cr);
        line
    }
}

/// The line ends in `bytes`: `\n`, `\r\n` and a lone `\r` are one each. `after_cr` says the
/// bytes before ended with `\r`, and is updated.
pub(super) fn line_ends(bytes: &[u8], after_cr: &mut bool) -> u64 {
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return 0;
    };
    // Every `\r` ends a line, and every `\n` that does not follow one. Counted pair by pair of
    // neighbouring bytes, with no state carried from one byte to the next: the compiler can then
    // count many bytes at a time.
    let ends = |before: u8, b: u8| b == b'\r' || (b == b'\n' && before != b'\r');
    let first_ends = ends(if *after_cr { b'\r' } else { 0 }, first);
    let rest = (bytes.iter().zip(&bytes[1..]))
        .filter(|&(&before, &b)| ends(before, b))
        .count();
    *after_cr = last == b'\r';
    u64::from(first_ends) + rest as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rows` rows of one field each, `row N` on line N.
    fn text(rows: usize) -> Vec<u8> {
        (1..=rows)
            .map(|n| format!("row {n}\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn rows_of_many_batches_arrive_in_order_on_their_lines_with_the_digest_of_the_input() {
        let input = text(5 * BATCH + 7);
        let mut taken = Vec::new();
        let parsed = parse_rows(&input[..], b';', |line, fields| {
            taken.push((line, String::from_utf8(fields[0].to_vec()).unwrap()));
            Ok::<_, ()>(())
        });
        let Ok(parsed) = parsed else {
            panic!("the input reads")
        };
        let expected: Vec<_> = (1..=5 * BATCH as u64 + 7)
            .map(|n| (n, format!("row {n}")))
            .collect();
        assert_eq!(taken, expected);
        assert_eq!(parsed.length, input.len() as u64);
        assert_eq!(parsed.sha256, crate::digest::sha256_hex(&input));
        assert_eq!(
            parsed.last_row,
            Some((
                5 * BATCH as u64 + 7,
                format!("row {}\n", 5 * BATCH + 7).into_bytes()
            ))
        );
    }

    #[test]
    fn a_refused_row_stops_the_parse_and_no_row_after_it_is_taken() {
        let input = text(50 * BATCH);
        let mut taken = 0;
        let parsed = parse_rows(&input[..], b';', |line, _| {
            taken += 1;
            if line == 3 * BATCH as u64 + 1 {
                return Err(line);
            }
            Ok(())
        });
        assert!(matches!(parsed, Err(Halt::Refused(line)) if line == 3 * BATCH as u64 + 1));
        assert_eq!(taken, 3 * BATCH + 1);
    }

    /// Input that fails to read after `good` bytes.
    struct FailingAfter<'a> {
        good: &'a [u8],
    }

    impl Read for FailingAfter<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            if self.good.is_empty() {
                return Err(std::io::Error::other("the disk went away"));
            }
            self.good.read(buffer)
        }
    }

    #[test]
    fn input_that_cannot_be_read_halts_after_the_rows_before_it() {
        let input = text(2 * BATCH + 3);
        let mut lines = Vec::new();
        let parsed = parse_rows(FailingAfter { good: &input }, b';', |line, _| {
            lines.push(line);
            Ok::<_, ()>(())
        });
        let Err(Halt::Unreadable(e)) = parsed else {
            panic!("the input cannot be read to its end")
        };
        assert!(e.to_string().contains("the disk went away"), "{e}");
        assert_eq!(lines, (1..=2 * BATCH as u64 + 3).collect::<Vec<_>>());
    }
}
