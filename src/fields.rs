//! The shared vocabulary at the bottom of the layers: the names of a person's fields, the
//! profile fields the sync manages, column types, date parsing and header normalisation. It
//! imports nothing of the crate, so every other module may use it.

use jiff::civil::Date;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A field of a person, as named in matchers and in `source.columns`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FieldName {
    Xid,
    Email,
    FirstName,
    Infix,
    LastName,
    JobTitle,
    Phone,
    Locations,
    Departments,
    StartDate,
    EndDate,
    Upn,
    Extra(String),
}

impl FieldName {
    /// Every field the config can name a column for, in the order of the column table.
    pub const BUILTIN: [FieldName; 12] = [
        FieldName::Xid,
        FieldName::Email,
        FieldName::FirstName,
        FieldName::Infix,
        FieldName::LastName,
        FieldName::JobTitle,
        FieldName::Phone,
        FieldName::Locations,
        FieldName::Departments,
        FieldName::StartDate,
        FieldName::EndDate,
        FieldName::Upn,
    ];

    pub fn builtin(name: &str) -> Option<FieldName> {
        FieldName::BUILTIN.into_iter().find(|f| f.name() == name)
    }

    pub fn name(&self) -> &str {
        match self {
            FieldName::Xid => "xid",
            FieldName::Email => "email",
            FieldName::FirstName => "first_name",
            FieldName::Infix => "infix",
            FieldName::LastName => "last_name",
            FieldName::JobTitle => "job_title",
            FieldName::Phone => "phone",
            FieldName::Locations => "locations",
            FieldName::Departments => "departments",
            FieldName::StartDate => "start_date",
            FieldName::EndDate => "end_date",
            FieldName::Upn => "upn",
            FieldName::Extra(name) => name,
        }
    }

    /// Fields holding several values in one cell.
    pub fn is_multi_valued(&self) -> bool {
        matches!(self, FieldName::Locations | FieldName::Departments)
    }
}

/// The type a field's column is read as: dates for the date fields, whatever was declared otherwise.
pub fn field_kind(field: &FieldName, declared: ColumnType) -> ColumnType {
    match field {
        FieldName::StartDate | FieldName::EndDate => ColumnType::Date,
        _ => declared,
    }
}

/// How a column's values are read: as text, as dates, or guessed from the field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    #[default]
    Auto,
    Text,
    Date,
}

/// The profile fields the sync can manage. `None` means the field is not managed (no column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileField {
    Email,
    FirstName,
    Infix,
    LastName,
    JobTitle,
    Phone,
}

impl ProfileField {
    pub const ALL: [ProfileField; 6] = [
        ProfileField::Email,
        ProfileField::FirstName,
        ProfileField::Infix,
        ProfileField::LastName,
        ProfileField::JobTitle,
        ProfileField::Phone,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ProfileField::Email => "email",
            ProfileField::FirstName => "first_name",
            ProfileField::Infix => "infix",
            ProfileField::LastName => "last_name",
            ProfileField::JobTitle => "job_title",
            ProfileField::Phone => "phone",
        }
    }

    /// Personal contact data, masked in redacted output.
    pub fn is_contact(self) -> bool {
        matches!(self, ProfileField::Email | ProfileField::Phone)
    }

    /// The position in [`ProfileField::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The HR field it is read from.
    pub fn hr_field(self) -> FieldName {
        match self {
            ProfileField::Email => FieldName::Email,
            ProfileField::FirstName => FieldName::FirstName,
            ProfileField::Infix => FieldName::Infix,
            ProfileField::LastName => FieldName::LastName,
            ProfileField::JobTitle => FieldName::JobTitle,
            ProfileField::Phone => FieldName::Phone,
        }
    }
}

/// The six profile values of an account, in [`ProfileField::ALL`] order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile([Box<str>; 6]);

impl Profile {
    /// The values in [`ProfileField::ALL`] order.
    pub fn new(values: [&str; 6]) -> Profile {
        Profile(values.map(Box::from))
    }

    pub fn get(&self, field: ProfileField) -> &str {
        &self.0[field.index()]
    }
}

impl serde::Serialize for Profile {
    /// As a map of field name to value, every field included.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(ProfileField::ALL.map(|f| (f, self.get(f))))
    }
}

/// Parses a date written in `format` (strftime-style); `None` when it does not fit.
pub fn parse_date(format: &str, text: &str) -> Option<Date> {
    jiff::fmt::strtime::parse(format, text).ok()?.to_date().ok()
}

/// A header as compared with the configured column names: trimmed, without a byte order mark,
/// lower case.
pub fn normalize(column: &str) -> String {
    column.trim().trim_start_matches('\u{feff}').to_lowercase()
}
