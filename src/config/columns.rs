//! The fields a config reads from the HR source: which have a column, under which header, as
//! which type.

use super::{ColumnType, SyncConfig};
use crate::fields::{FieldName, field_kind};

/// The fields with a configured HR column, with that column's header name, in record slot order.
pub fn configured_fields(sync: &SyncConfig) -> Vec<(FieldName, String)> {
    configured_columns(sync)
        .into_iter()
        .map(|(field, column, _)| (field, column))
        .collect()
}

/// As [`configured_fields`], with each column's declared type (`start_date` and `end_date` are
/// always dates).
pub fn configured_columns(sync: &SyncConfig) -> Vec<(FieldName, String, ColumnType)> {
    let c = sync.source.columns();
    let optional = [
        (FieldName::FirstName, &c.first_name),
        (FieldName::Infix, &c.infix),
        (FieldName::LastName, &c.last_name),
        (FieldName::JobTitle, &c.job_title),
        (FieldName::Phone, &c.phone),
        (FieldName::Locations, &c.locations),
        (FieldName::Departments, &c.departments),
        (FieldName::StartDate, &c.start_date),
        (FieldName::EndDate, &c.end_date),
        (FieldName::Upn, &c.upn),
    ];
    let mut fields = vec![(FieldName::Xid, &c.xid), (FieldName::Email, &c.email)];
    fields.extend(
        optional
            .into_iter()
            .filter_map(|(f, col)| col.as_ref().map(|col| (f, col))),
    );
    let mut out: Vec<(FieldName, String, ColumnType)> = fields
        .into_iter()
        .map(|(f, col)| {
            let kind = field_kind(&f, col.kind());
            (f, col.name().to_string(), kind)
        })
        .collect();
    out.extend(c.extra.iter().map(|(name, col)| {
        (
            FieldName::Extra(name.clone()),
            col.name().to_string(),
            col.kind(),
        )
    }));
    out
}

/// Names usable in matchers: the fields that have a column.
pub fn known_fields(sync: &SyncConfig) -> Vec<String> {
    configured_fields(sync)
        .into_iter()
        .map(|(f, _)| f.name().to_string())
        .collect()
}
