//! Mapping codes through the lookup tables: each code of a record's `locations` and
//! `departments` (several to a cell, split at the separator) to the group its table names, or
//! the table's default; an unknown code is a problem or ignored, as the table says.

use std::sync::Arc;

use foldhash::HashMap;

use super::desired::{DesiredMembership, MappingSource, MembershipKind, Provenance, Sourced};
use super::rules::MembershipList;
use crate::config::{Config, Origin, UnknownCode};
use crate::fields::FieldName;
use crate::hr::{Layout, Record};
use crate::rules::split_values;

/// The lookup tables (`business_units`, `departments`) the layout has a column for.
pub(super) struct Tables<'c> {
    tables: Vec<Table<'c>>,
    separator: char,
}

/// A lookup table ready for the records.
struct Table<'c> {
    name: &'static str,
    field: FieldName,
    kind: MembershipKind,
    slot: usize,
    column: &'c str,
    /// Code → group and the provenance every person with that code shares.
    map: HashMap<&'c str, (Arc<str>, Provenance)>,
    unknown: UnknownCode,
    default: Option<(Arc<str>, &'c Origin)>,
}

/// What the tables make of a record's codes.
#[derive(Default)]
pub(super) struct Mapped {
    pub memberships: MembershipList,
    /// The group of the record's first business unit code: the person's primary one.
    pub primary_business_unit: Option<Sourced<Arc<str>>>,
    /// Codes no table knows, as problems.
    pub problems: Vec<String>,
    /// Codes a table ignores, as (table, code).
    pub ignored: Vec<(&'static str, String)>,
}

impl<'c> Tables<'c> {
    pub fn new(config: &'c Config, layout: &'c Layout) -> Tables<'c> {
        let rules = &config.rules;
        let tables = [
            (
                FieldName::Locations,
                "business_units",
                MembershipKind::BusinessUnit,
                &rules.business_units,
            ),
            (
                FieldName::Departments,
                "departments",
                MembershipKind::Department,
                &rules.departments,
            ),
        ];
        let tables = tables
            .into_iter()
            .filter_map(|(field, name, kind, table)| {
                let (slot, table) = (layout.slot(&field)?, table.as_ref()?);
                let map = (table.map.iter())
                    .map(|(code, group)| {
                        let from = Provenance::Mapping(Arc::new(MappingSource {
                            table: name.into(),
                            code: code.clone(),
                            at: table.origins.get(code).cloned().unwrap_or_default(),
                        }));
                        (code.as_str(), (Arc::from(group.as_str()), from))
                    })
                    .collect();
                let default = (table.default.as_deref())
                    .map(|group| (Arc::from(group), &table.default_origin));
                Some(Table {
                    name,
                    field,
                    kind,
                    slot,
                    column: &layout.columns[slot],
                    map,
                    unknown: table.unknown,
                    default,
                })
            })
            .collect();
        Tables {
            tables,
            separator: super::separator(config),
        }
    }

    /// The memberships a record's codes give, in table order and code order within each (the
    /// first reason for a group wins).
    pub fn map(&self, record: &Record) -> Mapped {
        let mut mapped = Mapped::default();
        for table in &self.tables {
            for code in split_values(record.value(table.slot), self.separator) {
                table.map_code(code, &mut mapped);
            }
        }
        mapped
    }
}

impl Table<'_> {
    fn map_code(&self, code: &str, mapped: &mut Mapped) {
        let (group, from) = match self.map.get(code) {
            Some((group, from)) => (group.clone(), from.clone()),
            None => match (self.unknown, &self.default) {
                (UnknownCode::Default, Some((group, at))) => {
                    let from = Provenance::Mapping(Arc::new(MappingSource {
                        table: self.name.into(),
                        code: code.into(),
                        at: (*at).clone(),
                    }));
                    (group.clone(), from)
                }
                (UnknownCode::Ignore, _) => {
                    mapped.ignored.push((self.name, code.to_string()));
                    return;
                }
                _ => {
                    mapped.problems.push(format!(
                        "unknown {} code \"{code}\" (column \"{}\"; not in {}.map)",
                        self.field.name().trim_end_matches('s'),
                        self.column,
                        self.name
                    ));
                    return;
                }
            },
        };
        if self.kind == MembershipKind::BusinessUnit && mapped.primary_business_unit.is_none() {
            mapped.primary_business_unit = Some(Sourced {
                value: group.clone(),
                from: from.clone(),
            });
        }
        let membership = DesiredMembership {
            kind: self.kind,
            from,
            admin: None,
        };
        mapped.memberships.add(group, membership);
    }
}
