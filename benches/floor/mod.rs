//! The floor: the least work any faithful read + resolve of the benchmark CSV has to do, with
//! none of the resolving itself. It reads the file in two halves on two threads (finding rows
//! and values with memchr, as our reader does for simple lines), hashes it
//! (sha256, for the audit) on a third, keeps every configured value trimmed and UTF-8-checked
//! in chunks of rows with the hashes of its two keys, makes one small struct per row on two
//! threads, and finds repeated XIDs and addresses with tables of row positions in hash
//! partitions (one column per thread). No mapping, memberships, dates, overrides, case folding
//! or XID index.
//!
//! Its time is the best the real reader could reach on this machine; see BENCHMARKS.md.

use std::hash::BuildHasher;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Instant;

use sha2::Digest;

const BLOCK: usize = 1 << 20;
const CHUNK_ROWS: usize = 1 << 16;
/// The benchmark's configured columns are the file's first eleven.
const KEPT: usize = 11;

struct Chunk {
    text: Vec<u8>,
    ends: Vec<u32>,
    /// Per row, the hashes of its XID and address, taken as the row is kept (as ours does).
    key_hashes: Vec<u32>,
    rows: usize,
}

impl Chunk {
    fn new() -> Chunk {
        Chunk {
            text: Vec::new(),
            ends: Vec::new(),
            key_hashes: Vec::new(),
            rows: 0,
        }
    }

    fn value(&self, row: usize, slot: usize) -> &[u8] {
        let at = row * KEPT + slot;
        let start = if at == 0 { 0 } else { self.ends[at - 1] };
        &self.text[start as usize..self.ends[at] as usize]
    }
}

/// One resolved person, as small as a useful one could be (32 bytes, as ours).
#[allow(dead_code)] // written, never read: it stands for the result that is kept
struct Person {
    chunk: u32,
    row: u16,
    role: u8,
    line: u64,
    business_unit: u32,
    start_date: i32,
    overridden: Option<Box<()>>,
}

/// The seed both the parse and the repeated keys hash with.
fn key_hasher() -> foldhash::fast::FixedState {
    foldhash::fast::FixedState::with_seed(0x5eed)
}

fn sha256(path: &Path) -> [u8; 32] {
    let mut file = std::fs::File::open(path).unwrap();
    let mut block = vec![0; BLOCK];
    let mut hasher = sha2::Sha256::new();
    loop {
        let n = file.read(&mut block).unwrap();
        if n == 0 {
            return hasher.finalize().into();
        }
        hasher.update(&block[..n]);
    }
}

/// The rows of bytes `range` of the file (which starts at a row), kept in chunks. Rows are
/// found the way our reader finds the simple ones (memchr for line ends and quotes, then for
/// delimiters), as lean as that can be for this file: its only quoted value, the last, has no
/// quote or line end inside.
fn parse(path: &Path, range: std::ops::Range<u64>) -> Vec<Chunk> {
    let mut file = std::fs::File::open(path).unwrap();
    file.seek(SeekFrom::Start(range.start)).unwrap();
    let mut left = range.end - range.start;
    // A block, after the end of the last one's last line.
    let mut buffer = vec![0; BLOCK + (1 << 16)];
    let mut carried = 0;
    let (mut chunks, mut chunk) = (Vec::new(), Chunk::new());
    loop {
        let n = file
            .read(&mut buffer[carried..carried + left.min(BLOCK as u64) as usize])
            .unwrap();
        left -= n as u64;
        let data = &buffer[..carried + n];
        let mut at = 0;
        while let Some(end) = line_end(&data[at..]) {
            let line = &data[at..at + end];
            std::str::from_utf8(line).unwrap();
            let mut start = 0;
            for end in memchr::memchr_iter(b';', line).take(KEPT) {
                chunk.text.extend_from_slice(line[start..end].trim_ascii());
                chunk.ends.push(chunk.text.len() as u32);
                start = end + 1;
            }
            for slot in [0, 1] {
                let hash = key_hasher().hash_one(chunk.value(chunk.rows, slot)) as u32;
                chunk.key_hashes.push(hash);
            }
            chunk.rows += 1;
            if chunk.rows == CHUNK_ROWS {
                chunks.push(std::mem::replace(&mut chunk, Chunk::new()));
            }
            at += end + 1;
        }
        if n == 0 {
            chunks.push(chunk);
            return chunks;
        }
        buffer.copy_within(at..carried + n, 0);
        carried = carried + n - at;
    }
}

/// Where the line at the start of `text` ends, past any quoted value in it.
fn line_end(text: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        at += memchr::memchr2(b'\n', b'"', &text[at..])?;
        if text[at] == b'\n' {
            return Some(at);
        }
        at += 2 + memchr::memchr(b'"', &text[at + 1..])?;
    }
}

fn people(chunks: &[Chunk], first: usize) -> Vec<Person> {
    let mut people = Vec::new();
    for (c, chunk) in chunks.iter().enumerate() {
        for row in 0..chunk.rows {
            people.push(Person {
                chunk: (first + c) as u32,
                row: row as u16,
                role: chunk.value(row, 5).len() as u8,
                line: row as u64,
                business_unit: (chunk.value(row, 7).len() + chunk.value(row, 8).len()) as u32,
                start_date: chunk.value(row, 9).len() as i32,
                overridden: None,
            });
        }
    }
    people
}

/// How many rows repeat an earlier row's value of `slot` (0 or 1): the rows spread over
/// partitions by the hashes kept with them first, then one small table per partition, ~80%
/// full (as our resolve does).
fn repeats(chunks: &[Chunk], slot: usize) -> usize {
    let key = |at: u32| chunks[(at >> 16) as usize].value((at & 0xFFFF) as usize, slot);
    let rows: usize = chunks.iter().map(|c| c.rows).sum();
    let partitions = rows.div_ceil(26_000).clamp(1, 512) as u32;
    let partition = |hash: u32| ((((hash >> 16) & 0x1FF) * partitions) >> 9) as usize;
    let mut spread: Vec<Vec<(u32, u32)>> = (0..partitions)
        .map(|_| Vec::with_capacity(rows / partitions as usize * 9 / 8 + 16))
        .collect();
    for (c, chunk) in chunks.iter().enumerate() {
        for row in 0..chunk.rows {
            let hash = chunk.key_hashes[row * 2 + slot];
            let at = (c as u32) << 16 | row as u32;
            spread[partition(hash)].push((at, hash));
        }
    }
    let mut repeats = 0;
    for rows in spread {
        let mut seen = hashbrown::HashTable::<(u32, u32)>::with_capacity(rows.len());
        let table_hash = |low: u32| u64::from(low) << 32 | u64::from(low);
        for (at, low) in rows {
            match seen.entry(
                table_hash(low),
                |&(o, other)| other == low && key(o) == key(at),
                |&(_, other)| table_hash(other),
            ) {
                hashbrown::hash_table::Entry::Occupied(_) => repeats += 1,
                hashbrown::hash_table::Entry::Vacant(slot) => {
                    slot.insert((at, low));
                }
            }
        }
    }
    repeats
}

/// Runs the floor on `path`; returns the seconds since `started`, taken before the result is
/// dropped (as for our read + resolve), and what it found.
pub fn run(path: &Path, started: Instant) -> (f64, String) {
    let size = std::fs::metadata(path).unwrap().len();
    // The benchmark file has no line breaks inside values: a row starts after any line end.
    let mut file = std::fs::File::open(path).unwrap();
    file.seek(SeekFrom::Start(size / 2)).unwrap();
    let mut window = [0; 4096];
    let n = file.read(&mut window).unwrap();
    let middle = size / 2 + 1 + window[..n].iter().position(|&b| b == b'\n').unwrap() as u64;

    let (chunks, digest) = std::thread::scope(|scope| {
        let digest = scope.spawn(|| sha256(path));
        let second = scope.spawn(|| parse(path, middle..size));
        let mut chunks = parse(path, 0..middle);
        chunks.extend(second.join().unwrap());
        (chunks, digest.join().unwrap())
    });
    let half = chunks.len() / 2;
    let (people, repeats) = std::thread::scope(|scope| {
        let second = scope.spawn(|| people(&chunks[half..], half));
        let mut people = people(&chunks[..half], 0);
        people.extend(second.join().unwrap());
        let addresses = scope.spawn(|| repeats(&chunks, 1));
        (people, repeats(&chunks, 0) + addresses.join().unwrap())
    });
    let seconds = started.elapsed().as_secs_f64();
    let detail = format!(
        "{} rows kept as people, {repeats} repeated keys, digest {:02x}{:02x}…",
        people.len(),
        digest[0],
        digest[1]
    );
    (seconds, detail)
}
