//! The HR record: rows read from the HR export, each remembering the line it came from.

pub mod csv;

use serde::Serialize;

use crate::rules::FieldName;

/// Which field lives in which slot of a [`Record`], and the HR column it was read from.
#[derive(Clone, Debug)]
pub struct Layout {
    pub fields: Vec<FieldName>,
    pub columns: Vec<String>,
}

impl Layout {
    pub fn new(fields_and_columns: Vec<(FieldName, String)>) -> Layout {
        let (fields, columns) = fields_and_columns.into_iter().unzip();
        Layout { fields, columns }
    }

    pub fn slot_of(&self, field: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name() == field)
    }

    pub fn slot(&self, field: &FieldName) -> Option<usize> {
        self.fields.iter().position(|f| f == field)
    }
}

/// One HR row: trimmed values in layout order, plus its line in the file.
#[derive(Clone, Debug)]
pub struct Record {
    pub line: u64,
    values: Box<[Box<str>]>,
    /// Set when the row itself is malformed (for example a wrong number of fields).
    pub problem: Option<String>,
}

impl Record {
    pub fn new(line: u64, values: Vec<String>) -> Record {
        Record {
            line,
            values: values.into_iter().map(String::into_boxed_str).collect(),
            problem: None,
        }
    }

    pub fn value(&self, slot: usize) -> &str {
        self.values.get(slot).map_or("", |v| v)
    }
}

/// An HR export as read: what and where from, its checksum, and the rows.
#[derive(Debug)]
pub struct Snapshot {
    /// The file as the user named it (for messages and `explain`).
    pub source: String,
    /// sha256 of the file's bytes, recorded in plans and audit commits.
    pub sha256: String,
    pub layout: Layout,
    pub records: Vec<Record>,
}

/// What the plan and audit record say about the HR snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SnapshotInfo {
    pub source: String,
    pub sha256: String,
    pub records: usize,
}

impl Snapshot {
    pub fn info(&self) -> SnapshotInfo {
        SnapshotInfo {
            source: self.source.clone(),
            sha256: self.sha256.clone(),
            records: self.records.len(),
        }
    }
}
