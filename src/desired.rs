//! `resolve`: HR records + config → the desired users, each value with its provenance, plus the
//! records that could not be processed. Pure: no I/O, the date is a parameter.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::civil::Date;
use serde::Serialize;

use crate::config::{Config, LookupTable, NetworkRole, Origin, UnknownCode};
use crate::hr::{Layout, Record, Snapshot};
use crate::redact::mask_email;
use crate::rules::{CompiledMatcher, FieldName, split_values};

/// Where a desired value comes from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Provenance {
    /// An HR column on a line of the HR file.
    Hr { column: String, line: u64 },
    /// A lookup table entry (`business_units` or `departments`), or its default.
    Mapping {
        table: String,
        code: String,
        at: Origin,
    },
    /// A rule in MappingRules (`groups`, `roles`, `local_admins`).
    Rule { list: String, at: Origin },
    /// An override.
    Override { at: Origin },
}

impl std::fmt::Display for Provenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Provenance::Hr { column, line } => write!(f, "HR column \"{column}\", line {line}"),
            Provenance::Mapping { table, code, at } => write!(f, "{table} code {code} ({at})"),
            Provenance::Rule { list, at } => write!(f, "{list} rule ({at})"),
            Provenance::Override { at } => write!(f, "override ({at})"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sourced<T> {
    pub value: T,
    pub from: Provenance,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MembershipKind {
    BusinessUnit,
    Department,
    Group,
}

impl MembershipKind {
    pub fn label(self) -> &'static str {
        match self {
            MembershipKind::BusinessUnit => "business unit",
            MembershipKind::Department => "department",
            MembershipKind::Group => "group",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DesiredMembership {
    pub kind: MembershipKind,
    pub from: Provenance,
    /// Local admin of this group, and why.
    pub admin: Option<Provenance>,
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

    fn hr_field(self) -> FieldName {
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

#[derive(Clone, Debug, Serialize)]
pub struct DesiredUser {
    pub xid: String,
    /// The HR line this person was read from.
    pub line: u64,
    pub profile: BTreeMap<ProfileField, Sourced<String>>,
    /// Group name → why the person belongs there.
    pub memberships: BTreeMap<String, DesiredMembership>,
    pub role: Option<Sourced<NetworkRole>>,
    /// The first business unit of the record: the person's primary one.
    pub primary_business_unit: Option<Sourced<String>>,
    /// Overrides in effect for this person, with their reasons.
    pub overrides: Vec<(Origin, String)>,
    /// Groups an override takes away, even when they were granted by hand (a deliberate,
    /// reasoned instruction about this person).
    pub withdrawn: BTreeMap<String, Provenance>,
    /// First working day, when the HR record has one.
    pub start_date: Option<Date>,
    /// Single-sign-on login name, for SSO accounts.
    pub upn: Option<String>,
    /// An override asks to recreate the account even though it was deleted by hand.
    pub restore: bool,
}

impl DesiredUser {
    /// Identifies what HR and the rules say about this person (not where it was written), so
    /// the ledger can tell whether anything changed since the last apply.
    pub fn digest(&self) -> String {
        let outcome = serde_json::json!({
            "profile": self.profile.iter().map(|(f, v)| (f.name(), &v.value)).collect::<BTreeMap<_, _>>(),
            "memberships": self.memberships.iter().map(|(g, m)| (g, m.admin.is_some())).collect::<BTreeMap<_, _>>(),
            "role": self.role.as_ref().map(|r| r.value),
            "primary_business_unit": self.primary_business_unit.as_ref().map(|p| &p.value),
            "start_date": self.start_date,
            "upn": self.upn,
        });
        crate::digest::sha256_hex(outcome.to_string())
    }

    pub fn get(&self, field: ProfileField) -> Option<&str> {
        self.profile.get(&field).map(|s| s.value.as_str())
    }

    pub fn display_name(&self) -> String {
        let parts = [
            ProfileField::FirstName,
            ProfileField::Infix,
            ProfileField::LastName,
        ]
        .into_iter()
        .filter_map(|f| self.get(f))
        .filter(|v| !v.is_empty())
        .collect::<Vec<_>>();
        if parts.is_empty() {
            self.get(ProfileField::Email)
                .unwrap_or(&self.xid)
                .to_string()
        } else {
            parts.join(" ")
        }
    }
}

/// A record that could not be processed: reported, skipped, and its account left alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SkippedRecord {
    pub line: u64,
    pub xid: Option<String>,
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Excluded {
    pub xid: String,
    pub reason: String,
    pub at: Origin,
}

#[derive(Debug, Default)]
pub struct Resolution {
    pub desired: BTreeMap<String, DesiredUser>,
    pub skipped: Vec<SkippedRecord>,
    /// XIDs excluded by an exclusion that occur in the HR record.
    pub excluded: BTreeMap<String, Excluded>,
    /// XIDs with an input problem: their accounts must not be touched, least of all offboarded.
    pub held: BTreeSet<String>,
    /// XIDs whose end date has passed: leavers, with that date.
    pub ended: BTreeMap<String, Date>,
    pub warnings: Vec<String>,
    pub record_count: usize,
}

struct Compiled {
    separator: char,
    groups: Vec<(CompiledMatcher, String, Origin)>,
    roles: Vec<(CompiledMatcher, NetworkRole, Origin)>,
    local_admins: Vec<(CompiledMatcher, Origin)>,
    exclusion_ids: HashMap<String, (String, Origin)>,
    exclusion_matchers: Vec<(CompiledMatcher, (String, Origin))>,
}

/// Turns HR records into desired users under the config, as of `today`.
pub fn resolve(config: &Config, snapshot: &Snapshot, today: Date) -> Resolution {
    let layout = &snapshot.layout;
    let format = config.sync.source.format();
    let separator = format.multi_value_separator.chars().next().unwrap_or('|');
    let compile = |m| CompiledMatcher::compile(m, layout);
    let compiled = Compiled {
        separator,
        groups: config
            .rules
            .groups
            .iter()
            .map(|r| (compile(&r.when), r.group.clone(), r.origin.clone()))
            .collect(),
        roles: config
            .rules
            .roles
            .iter()
            .map(|r| (compile(&r.when), r.role, r.origin.clone()))
            .collect(),
        local_admins: config
            .rules
            .local_admins
            .iter()
            .map(|r| (compile(&r.when), r.origin.clone()))
            .collect(),
        exclusion_ids: config
            .exclusions
            .iter()
            .filter_map(|e| {
                e.xid
                    .clone()
                    .map(|xid| (xid, (e.reason.clone(), e.origin.clone())))
            })
            .collect(),
        exclusion_matchers: config
            .exclusions
            .iter()
            .filter_map(|e| {
                e.when
                    .as_ref()
                    .map(|w| (compile(w), (e.reason.clone(), e.origin.clone())))
            })
            .collect(),
    };

    let xid_slot = layout
        .slot(&FieldName::Xid)
        .expect("xid is always configured");
    let email_slot = layout
        .slot(&FieldName::Email)
        .expect("email is always configured");
    let mut lines_by_xid: HashMap<&str, Vec<u64>> = HashMap::new();
    let mut lines_by_email: HashMap<String, Vec<u64>> = HashMap::new();
    for record in &snapshot.records {
        let xid = record.value(xid_slot);
        if !xid.is_empty() {
            lines_by_xid.entry(xid).or_default().push(record.line);
        }
        let email = record.value(email_slot);
        if !email.is_empty() {
            lines_by_email
                .entry(email.to_lowercase())
                .or_default()
                .push(record.line);
        }
    }

    let mut resolution = Resolution {
        record_count: snapshot.records.len(),
        ..Resolution::default()
    };
    let mut ignored_codes: BTreeMap<(String, String), usize> = BTreeMap::new();
    for record in &snapshot.records {
        let xid = record.value(xid_slot).to_string();
        if !xid.is_empty() {
            let exclusion = compiled.exclusion_ids.get(&xid).or_else(|| {
                compiled
                    .exclusion_matchers
                    .iter()
                    .find(|(m, _)| m.holds(record, separator))
                    .map(|(_, exclusion)| exclusion)
            });
            if let Some((reason, at)) = exclusion {
                let excluded = Excluded {
                    xid: xid.clone(),
                    reason: reason.clone(),
                    at: at.clone(),
                };
                resolution.excluded.insert(xid, excluded);
                continue;
            }
        }

        let mut problems = Vec::new();
        if let Some(problem) = &record.problem {
            problems.push(problem.clone());
        }
        if xid.is_empty() {
            problems.push(format!(
                "missing employee ID (column \"{}\")",
                layout.columns[xid_slot]
            ));
        } else if let Some(lines) = lines_by_xid.get(xid.as_str()).filter(|l| l.len() > 1) {
            problems.push(format!(
                "duplicate employee ID, on lines {}",
                join_lines(lines)
            ));
        }
        let email = record.value(email_slot);
        if email.is_empty() {
            problems.push(format!(
                "missing email address (column \"{}\")",
                layout.columns[email_slot]
            ));
        } else if !plausible_email(email) {
            problems.push(format!("invalid email address {}", mask_email(email)));
        } else if let Some(lines) = lines_by_email
            .get(&email.to_lowercase())
            .filter(|l| l.len() > 1)
        {
            problems.push(format!(
                "duplicate email address, on lines {}",
                join_lines(lines)
            ));
        }
        let name_slots: Vec<usize> = [FieldName::FirstName, FieldName::LastName]
            .iter()
            .filter_map(|f| layout.slot(f))
            .collect();
        if !name_slots.is_empty() && name_slots.iter().all(|&s| record.value(s).is_empty()) {
            problems.push("missing name".to_string());
        }
        let mut date_of = |field: FieldName, label: &str| {
            let slot = layout.slot(&field)?;
            let text = record.value(slot);
            if text.is_empty() {
                return None;
            }
            match parse_date(format.date_format, text) {
                Some(date) => Some(date),
                None => {
                    problems.push(format!(
                        "unparseable {label} \"{text}\" (column \"{}\"; expected the format {})",
                        layout.columns[slot], format.date_format
                    ));
                    None
                }
            }
        };
        let start_date = date_of(FieldName::StartDate, "start date");
        let end_date = date_of(FieldName::EndDate, "end date");

        let mut memberships = BTreeMap::new();
        let mut primary_business_unit = None;
        let tables = [
            (
                FieldName::Locations,
                "business_units",
                MembershipKind::BusinessUnit,
                &config.rules.business_units,
            ),
            (
                FieldName::Departments,
                "departments",
                MembershipKind::Department,
                &config.rules.departments,
            ),
        ];
        for (field, table_name, kind, table) in tables {
            let (Some(slot), Some(table)) = (layout.slot(&field), table) else {
                continue;
            };
            for code in split_values(record.value(slot), separator) {
                match lookup(table, table_name, code) {
                    Lookup::Found(group, from) => {
                        if kind == MembershipKind::BusinessUnit && primary_business_unit.is_none() {
                            primary_business_unit = Some(Sourced {
                                value: group.clone(),
                                from: from.clone(),
                            });
                        }
                        memberships.entry(group).or_insert(DesiredMembership {
                            kind,
                            from,
                            admin: None,
                        });
                    }
                    Lookup::Reject => problems.push(format!(
                        "unknown {} code \"{code}\" (column \"{}\"; not in {table_name}.map)",
                        field.name().trim_end_matches('s'),
                        layout.columns[slot]
                    )),
                    Lookup::Ignore => {
                        *ignored_codes
                            .entry((table_name.to_string(), code.to_string()))
                            .or_default() += 1
                    }
                }
            }
        }

        if !problems.is_empty() {
            if !xid.is_empty() {
                resolution.held.insert(xid.clone());
            }
            resolution.skipped.push(SkippedRecord {
                line: record.line,
                xid: (!xid.is_empty()).then_some(xid),
                reasons: problems,
            });
            continue;
        }
        // Offboarded the day after the last working day.
        if let Some(end) = end_date.filter(|end| *end < today) {
            resolution.ended.insert(xid, end);
            continue;
        }

        let user = desired_user(
            config,
            &compiled,
            layout,
            record,
            xid,
            memberships,
            primary_business_unit,
            start_date,
            today,
            &mut resolution.warnings,
        );
        resolution.desired.insert(user.xid.clone(), user);
    }

    for ((table, code), count) in ignored_codes {
        resolution.warnings.push(format!(
            "{table}: code \"{code}\" is not mapped and was ignored ({count} record(s))"
        ));
    }
    for o in &config.overrides {
        let known = resolution.desired.contains_key(&o.xid)
            || resolution.held.contains(&o.xid)
            || resolution.excluded.contains_key(&o.xid);
        if !known {
            resolution.warnings.push(format!(
                "override for XID {} ({}) has no record in the HR file",
                o.xid, o.origin
            ));
        }
    }
    resolution.skipped.sort_by_key(|s| s.line);
    resolution
}

#[allow(clippy::too_many_arguments)]
fn desired_user(
    config: &Config,
    compiled: &Compiled,
    layout: &Layout,
    record: &Record,
    xid: String,
    mut memberships: BTreeMap<String, DesiredMembership>,
    primary_business_unit: Option<Sourced<String>>,
    start_date: Option<Date>,
    today: Date,
    warnings: &mut Vec<String>,
) -> DesiredUser {
    let separator = compiled.separator;
    let mut profile = BTreeMap::new();
    for field in ProfileField::ALL {
        if let Some(slot) = layout.slot(&field.hr_field()) {
            profile.insert(
                field,
                Sourced {
                    value: record.value(slot).to_string(),
                    from: Provenance::Hr {
                        column: layout.columns[slot].clone(),
                        line: record.line,
                    },
                },
            );
        }
    }
    for (matcher, group, origin) in &compiled.groups {
        if matcher.holds(record, separator) {
            memberships
                .entry(group.clone())
                .or_insert(DesiredMembership {
                    kind: MembershipKind::Group,
                    from: Provenance::Rule {
                        list: "groups".into(),
                        at: origin.clone(),
                    },
                    admin: None,
                });
        }
    }
    let mut role = compiled
        .roles
        .iter()
        .find(|(m, _, _)| m.holds(record, separator))
        .map(|(_, role, origin)| Sourced {
            value: *role,
            from: Provenance::Rule {
                list: "roles".into(),
                at: origin.clone(),
            },
        });
    if let Some((_, origin)) = compiled
        .local_admins
        .iter()
        .find(|(m, _)| m.holds(record, separator))
    {
        for membership in memberships
            .values_mut()
            .filter(|m| m.kind == MembershipKind::BusinessUnit)
        {
            membership.admin = Some(Provenance::Rule {
                list: "local_admins".into(),
                at: origin.clone(),
            });
        }
    }

    let mut overrides = Vec::new();
    let mut withdrawn = BTreeMap::new();
    let mut overrides_restore = false;
    if let Some(o) = config.overrides.iter().find(|o| o.xid == xid) {
        match o.until {
            Some(until) if until < today => {
                warnings.push(format!(
                    "override for XID {xid} ({}) expired on {until} and is ignored",
                    o.origin
                ));
            }
            _ => {
                let from = Provenance::Override {
                    at: o.origin.clone(),
                };
                let set = [
                    (ProfileField::FirstName, &o.set.first_name),
                    (ProfileField::Infix, &o.set.infix),
                    (ProfileField::LastName, &o.set.last_name),
                    (ProfileField::JobTitle, &o.set.job_title),
                    (ProfileField::Phone, &o.set.phone),
                ];
                for (field, value) in set {
                    if let Some(value) = value {
                        profile.insert(
                            field,
                            Sourced {
                                value: value.clone(),
                                from: from.clone(),
                            },
                        );
                    }
                }
                for group in &o.add_groups {
                    memberships.insert(
                        group.clone(),
                        DesiredMembership {
                            kind: MembershipKind::Group,
                            from: from.clone(),
                            admin: None,
                        },
                    );
                }
                for group in &o.remove_groups {
                    memberships.remove(group);
                    withdrawn.insert(group.clone(), from.clone());
                }
                if let Some(value) = o.role {
                    role = Some(Sourced {
                        value,
                        from: from.clone(),
                    });
                }
                overrides_restore = o.restore;
                overrides.push((o.origin.clone(), o.reason.clone()));
            }
        }
    }
    let upn = layout
        .slot(&FieldName::Upn)
        .map(|slot| record.value(slot).to_string())
        .filter(|upn| !upn.is_empty());
    DesiredUser {
        xid,
        line: record.line,
        profile,
        memberships,
        role,
        primary_business_unit,
        start_date,
        upn,
        restore: overrides_restore,
        overrides,
        withdrawn,
    }
}

/// Parses a date written in `format` (strftime-style); `None` when it does not fit.
pub fn parse_date(format: &str, text: &str) -> Option<Date> {
    jiff::fmt::strtime::parse(format, text).ok()?.to_date().ok()
}

enum Lookup {
    Found(String, Provenance),
    Reject,
    Ignore,
}

fn lookup(table: &LookupTable, table_name: &str, code: &str) -> Lookup {
    if let Some(group) = table.map.get(code) {
        let at = table.origins.get(code).cloned().unwrap_or_default();
        return Lookup::Found(
            group.clone(),
            Provenance::Mapping {
                table: table_name.into(),
                code: code.into(),
                at,
            },
        );
    }
    match (table.unknown, &table.default) {
        (UnknownCode::Default, Some(group)) => Lookup::Found(
            group.clone(),
            Provenance::Mapping {
                table: table_name.into(),
                code: code.into(),
                at: table.default_origin.clone(),
            },
        ),
        (UnknownCode::Ignore, _) => Lookup::Ignore,
        _ => Lookup::Reject,
    }
}

fn join_lines(lines: &[u64]) -> String {
    lines
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A deliberately loose check: Speakap is the judge of deliverability; this catches export accidents.
fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.contains(char::is_whitespace)
        && !domain.contains('@')
}
