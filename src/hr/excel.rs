//! Spreadsheets (.xlsx, .xlsm, .xlsb, .xls, .ods) through calamine: the first sheet or a named
//! one, the first non-empty row as the header. Cells become text the way a person reads them:
//! whole numbers without `.0`, `type: text` columns with the zero padding their number format
//! shows, dates written with `date_format`.

use std::io::Cursor;
use std::path::Path;

use calamine::{Data, Range, Reader, Sheets, StyleRange};

use super::{Layout, Locator, Record, Records, Snapshot, format_date, match_columns, refuse_empty};
use crate::config::ColumnType;
use crate::error::Error;

/// How many non-empty rows may come before the header (titles, export notes).
pub const HEADER_SEARCH_ROWS: usize = 20;

/// Reads the workbook at `path` (shown to people as `display`).
pub fn read(
    path: &Path,
    display: &str,
    sheet: Option<&str>,
    date_format: &str,
    layout: Layout,
) -> Result<Snapshot, Error> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::input(format!("cannot read the HR file {display}: {e}")))?;
    parse(bytes, display, sheet, date_format, layout)
}

/// Reads a workbook already in memory (from a file or a server).
pub fn parse(
    bytes: Vec<u8>,
    display: &str,
    sheet: Option<&str>,
    date_format: &str,
    layout: Layout,
) -> Result<Snapshot, Error> {
    if bytes.is_empty() {
        return Err(Error::input(format!(
            "the HR file {display} is empty; refusing to plan from it (an empty export would look like everyone left)"
        )));
    }
    let sha256 = crate::digest::sha256_hex(&bytes);
    let mut workbook = calamine::open_workbook_auto_from_rs(Cursor::new(bytes)).map_err(|e| {
        Error::input(format!(
            "{display} is not a readable spreadsheet (xlsx, xlsm, xlsb, xls or ods): {e}. Is the file complete (not truncated), and is `source.type` right?"
        ))
    })?;
    let sheet_name = sheet_name(&workbook, display, sheet)?;
    let range = workbook.worksheet_range(&sheet_name).map_err(|e| {
        Error::input(format!(
            "{display}: cannot read sheet \"{sheet_name}\": {e}. Is the file complete (not truncated)?"
        ))
    })?;
    let place = format!("{display} [{sheet_name}]");
    // Number formats only matter for zero-padded numbers in `type: text` columns.
    let styles = if layout.kinds.contains(&ColumnType::Text) && matches!(workbook, Sheets::Xlsx(_))
    {
        workbook.worksheet_style(&sheet_name).ok()
    } else {
        None
    };
    let (header_index, columns) = header(&range, &place, &layout)?;
    let sheet = Sheet {
        range: &range,
        styles: styles.as_ref(),
        layout: &layout,
        columns: &columns,
        date_format,
    };
    let records = sheet.records(header_index + 1);
    refuse_empty(&place, &records)?;
    Ok(Snapshot {
        source: display.to_string(),
        sha256,
        locator: Locator::Sheet { sheet: sheet_name },
        pages: None,
        modified: None,
        layout,
        records,
    })
}

/// The sheet asked for (by name, else ignoring case), or the first.
fn sheet_name<R: std::io::Read + std::io::Seek>(
    workbook: &Sheets<R>,
    display: &str,
    sheet: Option<&str>,
) -> Result<String, Error> {
    let names = workbook.sheet_names();
    match sheet {
        Some(wanted) => names
            .iter()
            .find(|n| n.as_str() == wanted)
            .or_else(|| names.iter().find(|n| n.eq_ignore_ascii_case(wanted)))
            .cloned()
            .ok_or_else(|| {
                Error::input(format!(
                    "{display}: no sheet \"{wanted}\"; the workbook has: {}. Fix `source.sheet`",
                    super::quote_list(&names)
                ))
            }),
        None => names
            .first()
            .cloned()
            .ok_or_else(|| Error::input(format!("{display}: the workbook has no sheets"))),
    }
}

/// The header's index among the range's rows and, per layout slot, the column it is read
/// from. The header is the first row naming the XID column (exports may start with a title
/// row), else the first non-empty row (whose cells the error message then lists).
fn header(range: &Range<Data>, place: &str, layout: &Layout) -> Result<(usize, Vec<usize>), Error> {
    let xid_column = layout.columns.first().map(|c| super::normalize(c));
    let non_empty = || {
        range
            .rows()
            .enumerate()
            .filter(|(_, row)| row.iter().any(|c| !cell_is_blank(c)))
    };
    let header = non_empty()
        .take(HEADER_SEARCH_ROWS)
        .find(|(_, row)| {
            row.iter()
                .any(|c| Some(super::normalize(&c.to_string())) == xid_column)
        })
        .or_else(|| non_empty().next());
    let Some((header_index, header)) = header else {
        return Err(Error::input(format!(
            "the HR sheet {place} is empty; refusing to plan from it (an empty export would look like everyone left)"
        )));
    };
    let header_names: Vec<String> = header.iter().map(|c| c.to_string()).collect();
    let (first_row, _) = range.start().unwrap_or((0, 0));
    let header_row = first_row as u64 + header_index as u64 + 1;
    let columns = match_columns(
        &format!("{place} row {header_row}"),
        layout,
        &header_names,
        " (or `source.sheet`)",
    )?;
    Ok((header_index, columns))
}

/// A sheet's rows with what is needed to read them as records.
struct Sheet<'a> {
    range: &'a Range<Data>,
    styles: Option<&'a StyleRange>,
    layout: &'a Layout,
    /// Per layout slot, the column it is read from.
    columns: &'a [usize],
    date_format: &'a str,
}

impl Sheet<'_> {
    /// The records of the rows from index `first` on (blank rows left out).
    fn records(&self, first: usize) -> Records {
        let (first_row, first_col) = self.range.start().unwrap_or((0, 0));
        let mut records = Records::default();
        let mut values: Vec<String> = Vec::with_capacity(self.columns.len());
        for (i, row) in self.range.rows().enumerate().skip(first) {
            if row.iter().all(cell_is_blank) {
                continue;
            }
            let row_number = first_row as u64 + i as u64 + 1;
            values.clear();
            for (slot, &column) in self.columns.iter().enumerate() {
                let cell = row.get(column).unwrap_or(&Data::Empty);
                let format = self.styles.and_then(|s| {
                    number_format(s, (first_row + i as u32, first_col + column as u32))
                });
                values.push(cell_text(
                    cell,
                    self.layout.kinds[slot],
                    format,
                    self.date_format,
                ));
            }
            let mut record = Record::new(row_number, values.iter().map(String::as_str));
            record.problem = self.formula_errors(row);
            records.push(record);
        }
        records
    }

    /// A formula error is not a value: the row is skipped rather than read as "#N/A".
    fn formula_errors(&self, row: &[Data]) -> Option<String> {
        let errors: Vec<String> = (self.columns.iter().enumerate())
            .filter_map(|(slot, &column)| match row.get(column) {
                Some(Data::Error(e)) => {
                    Some(format!("{e} in column \"{}\"", self.layout.columns[slot]))
                }
                _ => None,
            })
            .collect();
        (!errors.is_empty()).then(|| format!("spreadsheet error {}", errors.join(", ")))
    }
}

fn cell_is_blank(cell: &Data) -> bool {
    match cell {
        Data::Empty => true,
        Data::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn number_format(styles: &StyleRange, at: (u32, u32)) -> Option<&str> {
    styles
        .get(at)?
        .number_format
        .as_ref()
        .map(|f| f.format_code.as_str())
}

/// A cell as text for a column of the given type.
fn cell_text(cell: &Data, kind: ColumnType, format: Option<&str>, date_format: &str) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_string(),
        Data::Bool(b) => b.to_string(),
        Data::Error(e) => e.to_string(),
        Data::Int(n) => number_text(*n as f64, kind, format, date_format),
        Data::Float(f) => number_text(*f, kind, format, date_format),
        Data::DateTime(dt) => {
            let (y, m, d, ..) = dt.to_ymd_hms_milli();
            match jiff::civil::Date::new(y as i16, m as i8, d as i8) {
                Ok(date) if dt.is_datetime() => format_date(date, date_format),
                // A duration, or a date Excel cannot have: keep the number.
                _ => number_text(dt.as_f64(), ColumnType::Auto, None, date_format),
            }
        }
        Data::DateTimeIso(s) => match s
            .get(..10)
            .and_then(|d| d.parse::<jiff::civil::Date>().ok())
        {
            Some(date) => format_date(date, date_format),
            None => s.clone(),
        },
        Data::DurationIso(s) => s.clone(),
    }
}

/// A number as people read it in a cell: whole numbers without `.0`.
pub(crate) fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

fn number_text(value: f64, kind: ColumnType, format: Option<&str>, date_format: &str) -> String {
    if kind == ColumnType::Date
        && let Some(date) = super::excel_serial_date(value, false)
    {
        return format_date(date, date_format);
    }
    let text = number(value);
    if kind == ColumnType::Text
        && let Some(width) = format.and_then(zero_pad_width)
        && value >= 0.0
        && text.len() < width
        && !text.contains('.')
    {
        return format!("{text:0>width$}");
    }
    text
}

/// The width of a number format made of zeros only (`000000`, as used for employee numbers).
fn zero_pad_width(format: &str) -> Option<usize> {
    let format = format.trim_matches('"');
    (!format.is_empty() && format.bytes().all(|b| b == b'0')).then_some(format.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_see_them() {
        let auto = |v| number_text(v, ColumnType::Auto, None, "%d-%m-%Y");
        assert_eq!(auto(102.0), "102");
        assert_eq!(auto(1.5), "1.5");
        assert_eq!(auto(612345678.0), "612345678");
        let text = |v, f| number_text(v, ColumnType::Text, Some(f), "%d-%m-%Y");
        assert_eq!(text(42.0, "000000"), "000042");
        assert_eq!(text(42.0, "General"), "42");
        let date = |v| number_text(v, ColumnType::Date, None, "%d-%m-%Y");
        assert_eq!(date(46082.0), "01-03-2026");
    }
}
