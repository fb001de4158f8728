//! An HR export as `init` sees it: its header and rows as text, with what was detected about
//! the file (format, encoding, delimiter, where the header is). CSV is decoded and its delimiter
//! found by the CSV reader's own functions; workbooks are read with calamine, their header
//! looked for as the spreadsheet reader looks for it.

use std::path::Path;

use calamine::{Data, Reader};

use crate::error::Error;
use crate::hr;

/// What kind of file the export is, and how it is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    Csv {
        delimiter: u8,
        /// `utf-8` when the bytes are UTF-8 (or UTF-16 with a byte order mark), else the
        /// fallback the CSV reader decodes them with.
        encoding: &'static str,
    },
    Excel {
        sheet: String,
        /// The 1-based row of the header.
        header_row: u32,
    },
}

/// What a spreadsheet cell held: the proposal reads numbers and dates differently from text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    Text,
    Number,
    Date,
}

#[derive(Clone, Debug)]
pub struct Cell {
    pub text: String,
    pub kind: CellKind,
}

/// The export read for proposing a config: every row, as text.
#[derive(Debug)]
pub struct Export {
    pub format: Format,
    pub header: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl Export {
    /// The cells of column `index`, blank ones left out.
    pub fn column(&self, index: usize) -> impl Iterator<Item = &Cell> {
        self.rows
            .iter()
            .filter_map(move |row| row.get(index))
            .filter(|cell| !cell.text.trim().is_empty())
    }
}

/// The CSV reader's fallback for bytes that are not UTF-8 (Dutch and other western exports).
const FALLBACK_ENCODING: &str = "windows-1252";

const EXCEL_EXTENSIONS: [&str; 5] = ["xlsx", "xlsm", "xlsb", "xls", "ods"];

/// Reads the export at `path`: a workbook by its extension or its first bytes, else CSV.
/// `is_known` tells a header name the proposal knows: the delimiter is the one that splits the
/// header into known names, the header row of a sheet the one naming most.
pub fn read(path: &Path, is_known: &dyn Fn(&str) -> bool) -> Result<Export, Error> {
    let display = path.display().to_string();
    let bytes = std::fs::read(path)
        .map_err(|e| Error::input(format!("cannot read the HR file {display}: {e}")))?;
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let zip_or_ole =
        bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]);
    if EXCEL_EXTENSIONS.contains(&extension.as_str()) || zip_or_ole {
        read_workbook(bytes, &display, is_known)
    } else {
        read_csv(&bytes, &display, is_known)
    }
}

fn read_csv(bytes: &[u8], display: &str, is_known: &dyn Fn(&str) -> bool) -> Result<Export, Error> {
    let encoding = match encoding_rs::Encoding::for_bom(bytes) {
        Some((bom, _)) if bom == encoding_rs::UTF_16LE => "utf-16le",
        Some((bom, _)) if bom == encoding_rs::UTF_16BE => "utf-16be",
        Some(_) => "utf-8",
        None if std::str::from_utf8(bytes).is_ok() => "utf-8",
        None => FALLBACK_ENCODING,
    };
    let text = hr::csv::decode(bytes, display, FALLBACK_ENCODING)?;
    let text = text.trim_start_matches('\u{feff}');
    // The CSV reader takes the first non-blank line as the header.
    let first_line = text
        .lines()
        .find(|line| !line.trim().is_empty())
        .ok_or_else(|| Error::input(format!("the HR file {display} is empty")))?;
    // The CSV reader picks the delimiter that splits the header into wanted names: here the
    // known names found when splitting at any candidate.
    let wanted: Vec<String> = first_line
        .split([',', ';', '\t', '|'])
        .map(|cell| cell.trim().trim_matches('"').to_string())
        .filter(|cell| is_known(cell))
        .collect();
    let delimiter = hr::csv::detect_delimiter(first_line, &wanted);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| Error::input(format!("{display}: {e}")))?;
        // Blank rows are no rows, before the header as after it.
        if record.iter().all(|field| field.trim().is_empty()) {
            continue;
        }
        rows.push(
            record
                .iter()
                .map(|text| Cell {
                    text: text.to_string(),
                    kind: CellKind::Text,
                })
                .collect::<Vec<_>>(),
        );
    }
    let mut rows = rows.into_iter();
    let header = rows
        .next()
        .map(|row| row.into_iter().map(|c| c.text.trim().to_string()).collect())
        .unwrap_or_default();
    Ok(Export {
        format: Format::Csv {
            delimiter,
            encoding,
        },
        header,
        rows: rows.collect(),
    })
}

fn read_workbook(
    bytes: Vec<u8>,
    display: &str,
    is_known: &dyn Fn(&str) -> bool,
) -> Result<Export, Error> {
    let mut workbook = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes))
        .map_err(|e| Error::input(format!("{display} is not a readable spreadsheet: {e}")))?;
    let sheet = workbook
        .sheet_names()
        .first()
        .cloned()
        .ok_or_else(|| Error::input(format!("{display}: the workbook has no sheets")))?;
    let range = workbook
        .worksheet_range(&sheet)
        .map_err(|e| Error::input(format!("{display}: cannot read sheet \"{sheet}\": {e}")))?;
    let first_row = range.start().map_or(0, |(row, _)| row);
    let non_empty: Vec<(usize, &[Data])> = range
        .rows()
        .enumerate()
        .filter(|(_, row)| row.iter().any(|c| !c.to_string().trim().is_empty()))
        .collect();
    // The header: among the rows the spreadsheet reader searches, the one naming the most known
    // columns (a title row above it names none).
    let known = |row: &[Data]| row.iter().filter(|c| is_known(&c.to_string())).count();
    let (header_index, header) = non_empty
        .iter()
        .take(hr::excel::HEADER_SEARCH_ROWS)
        .rev()
        .max_by_key(|(_, row)| known(row))
        .copied()
        .ok_or_else(|| Error::input(format!("the HR sheet {display} [{sheet}] is empty")))?;
    let rows = non_empty
        .iter()
        .filter(|(i, _)| *i > header_index)
        .map(|(_, row)| row.iter().map(cell).collect())
        .collect();
    Ok(Export {
        format: Format::Excel {
            sheet,
            header_row: first_row + header_index as u32 + 1,
        },
        header: header
            .iter()
            .map(|c| c.to_string().trim().to_string())
            .collect(),
        rows,
    })
}

fn cell(data: &Data) -> Cell {
    let (text, kind) = match data {
        Data::DateTime(date) => {
            let (y, m, d, ..) = date.to_ymd_hms_milli();
            match jiff::civil::Date::new(y as i16, m as i8, d as i8) {
                Ok(day) if date.is_datetime() => (day.to_string(), CellKind::Date),
                _ => (crate::hr::excel::number(date.as_f64()), CellKind::Number),
            }
        }
        Data::DateTimeIso(text) => (text.chars().take(10).collect(), CellKind::Date),
        Data::Int(n) => (n.to_string(), CellKind::Number),
        Data::Float(f) => (crate::hr::excel::number(*f), CellKind::Number),
        Data::String(text) => (text.trim().to_string(), CellKind::Text),
        _ => (data.to_string(), CellKind::Text),
    };
    Cell { text, kind }
}
