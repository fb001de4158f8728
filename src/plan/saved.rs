//! The plan as JSON, format 2: what `plan --format json` prints, `plan --out` writes, and
//! `apply --plan` and the apply journal read back. Each provenance is named once, in `sources`,
//! and each group (name and EID) once, in `groups`; a change refers to them by index. An HR
//! value's line is the person's own and is written only where it differs (`hr_line`), and so is
//! a `set_xid` target (`to`). Values a change starts from are left out when empty (an
//! invitee has none), and so are an invitee's missing EID and `admin: false`. The document is
//! indented down to its lists and no deeper: one person, source or skipped record per line.
//!
//! The checksum is the sha256 of the compact encoding without checksum and impact, so it
//! identifies exactly the plan. Format 1 (every provenance written out in full, the checksum over
//! `Plan`'s own serialization) is still read: its checksum is checked the old way, and the plan
//! is then the same as a format 2 plan of the same decisions.

use std::borrow::Cow;
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::impact::Impact;
use super::{
    Change, DeletedOutside, FORMAT_VERSION, Invitation, Leaving, Plan, SafetyVerdict, Scheduled,
    Summary, Unmanaged, UserAction, UserPlan,
};
use crate::config::{NetworkRole, Origin};
use crate::hr::SnapshotInfo;
use crate::resolve::{
    MappingSource, MembershipKind, ProfileField, Provenance, RuleList, SkippedRecord,
};
use crate::speakap::NetworkRead;

/// The plan as JSON with its checksum, and what the config change alone does (not covered by
/// the checksum: it is a comparison, not something apply does).
pub fn json(plan: &Plan, impact: Option<&Impact>) -> String {
    let mut document = Document::encode(plan);
    document.checksum = Some(Cow::Owned(document.checksum()));
    document.impact = impact.map(Cow::Borrowed);
    let mut out = Vec::with_capacity(plan.users.len() * 512 + 4096);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, Outline::new(2));
    document
        .serialize(&mut serializer)
        .expect("a plan serializes");
    out.push(b'\n');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// sha256 of the plan's canonical (compact, format 2) JSON.
pub(super) fn checksum(plan: &Plan) -> String {
    Document::encode(plan).checksum()
}

/// A plan read back from `plan --out` (for `apply --plan`) or from an apply's journal, with the
/// checksum it states for itself.
pub struct SavedPlan {
    pub checksum: String,
    pub plan: Plan,
}

impl SavedPlan {
    /// Reads format 2, or format 1 (checked against its own checksum, then carried over: a
    /// format 1 file that was edited keeps the checksum it states, which the plan no longer has).
    pub fn parse(text: &str) -> Result<SavedPlan, String> {
        match serde_json::from_str::<Document>(text) {
            Ok(document) if document.format_version == FORMAT_VERSION => document.decode(),
            Ok(document) => Err(unknown_version(document.format_version)),
            Err(e) => match probe_version(text) {
                Some(1) => read_format_1(text),
                Some(FORMAT_VERSION) | None => Err(e.to_string()),
                Some(version) => Err(unknown_version(version)),
            },
        }
    }
}

fn unknown_version(version: u32) -> String {
    format!(
        "it is in plan format {version}, and this speakap-sync reads formats 1 and {FORMAT_VERSION}: make the plan with this version (`speakap-sync plan --out`) and review it"
    )
}

fn probe_version(text: &str) -> Option<u32> {
    #[derive(Deserialize)]
    struct Version {
        format_version: Option<u32>,
    }
    serde_json::from_str::<Version>(text)
        .ok()
        .and_then(|v| v.format_version)
}

fn read_format_1(text: &str) -> Result<SavedPlan, String> {
    #[derive(Deserialize)]
    struct Format1 {
        checksum: String,
        #[serde(flatten)]
        plan: Plan,
    }
    let Format1 { checksum, mut plan } =
        serde_json::from_str(text).map_err(|e| format!("plan format 1: {e}"))?;
    let contents = format!(
        "sha256:{}",
        crate::digest::sha256_hex(serde_json::to_vec(&plan).expect("a plan serializes"))
    );
    plan.format_version = FORMAT_VERSION;
    let checksum = if contents == checksum {
        plan.checksum()
    } else {
        checksum
    };
    Ok(SavedPlan { checksum, plan })
}

#[derive(Serialize, Deserialize)]
struct Document<'a> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checksum: Option<Cow<'a, str>>,
    format_version: u32,
    network: Cow<'a, str>,
    config_commit: Option<Cow<'a, str>>,
    hr: Cow<'a, SnapshotInfo>,
    network_fingerprint: Cow<'a, str>,
    #[serde(default)]
    network_read: NetworkRead,
    as_of: Date,
    /// Every provenance the changes cite, each once.
    sources: Vec<Source<'a>>,
    /// Every group the changes name, each once.
    groups: Vec<Group<'a>>,
    users: Vec<User<'a>>,
    scheduled: Cow<'a, [Scheduled]>,
    leaving: Cow<'a, [Leaving]>,
    deleted_outside: Cow<'a, [DeletedOutside]>,
    skipped: Cow<'a, [SkippedRecord]>,
    unmanaged: Cow<'a, [Unmanaged]>,
    warnings: Cow<'a, [String]>,
    safety: Cow<'a, SafetyVerdict>,
    summary: Cow<'a, Summary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    impact: Option<Cow<'a, Impact>>,
}

/// A provenance as the table holds it: an HR column without its line (that is the person's).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
enum Source<'a> {
    Hr {
        column: Cow<'a, str>,
    },
    Mapping {
        table: Cow<'a, str>,
        code: Cow<'a, str>,
        at: Cow<'a, Origin>,
    },
    Rule {
        list: RuleList,
        at: Cow<'a, Origin>,
    },
    Override {
        at: Cow<'a, Origin>,
    },
}

/// A group as the table holds it.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Group<'a> {
    name: Cow<'a, str>,
    eid: Cow<'a, str>,
}

#[derive(Serialize, Deserialize)]
struct User<'a> {
    xid: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    eid: Option<Cow<'a, str>>,
    name: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    action: UserAction,
    changes: Vec<Step<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    invitation: Option<Cow<'a, Invitation>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<Cow<'a, str>>,
    /// The HR lines of a person merged from several contracts.
    #[serde(default, skip_serializing_if = "<[u64]>::is_empty")]
    contracts: Cow<'a, [u64]>,
}

/// Where a change's value comes from: an index into `sources`, and the HR line when it is not
/// the person's own.
#[derive(Clone, Copy, Default, Serialize, Deserialize)]
struct Cite {
    source: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hr_line: Option<u64>,
}

/// A change; `group` is an index into `groups`, and `set_xid` leaves out a `to` that is the
/// person's own XID.
#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Step<'a> {
    SetXid {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<Cow<'a, str>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<Cow<'a, str>>,
    },
    SetProfile {
        field: ProfileField,
        #[serde(default, skip_serializing_if = "str::is_empty")]
        from: Cow<'a, str>,
        to: Cow<'a, str>,
        #[serde(flatten)]
        cite: Cite,
    },
    AddMembership {
        group: u32,
        kind: MembershipKind,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        admin: bool,
        #[serde(flatten)]
        cite: Cite,
    },
    RemoveMembership {
        group: u32,
        #[serde(flatten)]
        cite: Option<Cite>,
    },
    SetGroupAdmin {
        group: u32,
        admin: bool,
        #[serde(flatten)]
        cite: Option<Cite>,
    },
    SetNetworkRole {
        #[serde(default, skip_serializing_if = "str::is_empty")]
        from: Cow<'a, str>,
        to: NetworkRole,
        #[serde(flatten)]
        cite: Option<Cite>,
    },
    SetPrimaryBusinessUnit {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<Cow<'a, str>>,
        group: u32,
        #[serde(flatten)]
        cite: Cite,
    },
}

/// Items numbered in order of first use.
struct Table<T> {
    index: HashMap<T, u32>,
    items: Vec<T>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            index: HashMap::with_capacity(64),
            items: Vec::new(),
        }
    }
}

impl<T: Clone + Eq + std::hash::Hash> Table<T> {
    fn number(&mut self, item: T) -> u32 {
        let next = self.items.len() as u32;
        *self.index.entry(item).or_insert_with_key(|item| {
            self.items.push(item.clone());
            next
        })
    }
}

/// The tables built while the users are encoded.
#[derive(Default)]
struct Tables<'a> {
    sources: Table<Source<'a>>,
    groups: Table<Group<'a>>,
}

/// The person a change belongs to: what a change may leave to them.
#[derive(Clone, Copy)]
struct Person<'p> {
    xid: &'p str,
    line: Option<u64>,
}

impl<'a> Tables<'a> {
    fn cite(&mut self, provenance: &'a Provenance, person: Person) -> Cite {
        let (source, line) = match provenance {
            Provenance::Hr { column, line } => (
                Source::Hr {
                    column: Cow::Borrowed(column),
                },
                Some(*line),
            ),
            Provenance::Mapping(mapping) => (
                Source::Mapping {
                    table: Cow::Borrowed(&mapping.table),
                    code: Cow::Borrowed(&mapping.code),
                    at: Cow::Borrowed(&mapping.at),
                },
                None,
            ),
            Provenance::Rule { list, at } => (
                Source::Rule {
                    list: *list,
                    at: Cow::Borrowed(at),
                },
                None,
            ),
            Provenance::Override { at } => (
                Source::Override {
                    at: Cow::Borrowed(at),
                },
                None,
            ),
        };
        Cite {
            source: self.sources.number(source),
            hr_line: line.filter(|line| Some(*line) != person.line),
        }
    }

    fn group(&mut self, name: &'a str, eid: &'a str) -> u32 {
        self.groups.number(Group {
            name: Cow::Borrowed(name),
            eid: Cow::Borrowed(eid),
        })
    }
}

/// The tables read back.
struct Lookup {
    /// An HR source's line is 0 here: it is the citing person's, filled in per change.
    sources: Vec<Provenance>,
    groups: Vec<(String, String)>,
}

impl Lookup {
    fn provenance(&self, cite: Cite, person: Person) -> Result<Provenance, String> {
        let source = self.sources.get(cite.source as usize).ok_or_else(|| {
            format!(
                "a change of {} cites source {}, and there are {}",
                person.xid,
                cite.source,
                self.sources.len()
            )
        })?;
        Ok(match source {
            Provenance::Hr { column, .. } => Provenance::Hr {
                column: column.clone(),
                line: cite.hr_line.or(person.line).ok_or_else(|| {
                    format!(
                        "a change of {} cites an HR column without a line",
                        person.xid
                    )
                })?,
            },
            other => other.clone(),
        })
    }

    fn optional(&self, cite: Option<Cite>, person: Person) -> Result<Option<Provenance>, String> {
        cite.map(|cite| self.provenance(cite, person)).transpose()
    }

    fn group(&self, group: u32, person: Person) -> Result<(String, String), String> {
        self.groups.get(group as usize).cloned().ok_or_else(|| {
            format!(
                "a change of {} names group {group}, and there are {}",
                person.xid,
                self.groups.len()
            )
        })
    }
}

impl<'a> Document<'a> {
    fn encode(plan: &'a Plan) -> Document<'a> {
        let mut tables = Tables::default();
        let users = plan
            .users
            .iter()
            .map(|user| User::encode(user, &mut tables))
            .collect();
        Document {
            checksum: None,
            format_version: plan.format_version,
            network: Cow::Borrowed(&plan.network),
            config_commit: plan.config_commit.as_deref().map(Cow::Borrowed),
            hr: Cow::Borrowed(&plan.hr),
            network_fingerprint: Cow::Borrowed(&plan.network_fingerprint),
            network_read: plan.network_read,
            as_of: plan.as_of,
            sources: tables.sources.items,
            groups: tables.groups.items,
            users,
            scheduled: Cow::Borrowed(&plan.scheduled),
            leaving: Cow::Borrowed(&plan.leaving),
            deleted_outside: Cow::Borrowed(&plan.deleted_outside),
            skipped: Cow::Borrowed(&plan.skipped),
            unmanaged: Cow::Borrowed(&plan.unmanaged),
            warnings: Cow::Borrowed(&plan.warnings),
            safety: Cow::Borrowed(&plan.safety),
            summary: Cow::Borrowed(&plan.summary),
            impact: None,
        }
    }

    /// The checksum of the plan: the sha256 of this document as `encode` made it (no checksum,
    /// no impact), compact.
    fn checksum(&self) -> String {
        debug_assert!(self.checksum.is_none() && self.impact.is_none());
        let bytes = serde_json::to_vec(self).expect("a plan serializes");
        format!("sha256:{}", crate::digest::sha256_hex(bytes))
    }

    fn decode(self) -> Result<SavedPlan, String> {
        let lookup = Lookup {
            sources: self.sources.into_iter().map(Source::decode).collect(),
            groups: self
                .groups
                .into_iter()
                .map(|g| (g.name.into_owned(), g.eid.into_owned()))
                .collect(),
        };
        let users = self
            .users
            .into_iter()
            .map(|user| user.decode(&lookup))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SavedPlan {
            checksum: self.checksum.map(Cow::into_owned).unwrap_or_default(),
            plan: Plan {
                format_version: self.format_version,
                network: self.network.into_owned(),
                config_commit: self.config_commit.map(Cow::into_owned),
                hr: self.hr.into_owned(),
                network_fingerprint: self.network_fingerprint.into_owned(),
                network_read: self.network_read,
                as_of: self.as_of,
                users,
                scheduled: self.scheduled.into_owned(),
                leaving: self.leaving.into_owned(),
                deleted_outside: self.deleted_outside.into_owned(),
                skipped: self.skipped.into_owned(),
                unmanaged: self.unmanaged.into_owned(),
                warnings: self.warnings.into_owned(),
                safety: self.safety.into_owned(),
                summary: self.summary.into_owned(),
            },
        })
    }
}

impl Source<'_> {
    fn decode(self) -> Provenance {
        match self {
            // The line is the citing person's; filled in per change.
            Source::Hr { column } => Provenance::Hr {
                column: Arc::from(column.as_ref()),
                line: 0,
            },
            Source::Mapping { table, code, at } => Provenance::Mapping(Arc::new(MappingSource {
                table: table.into_owned(),
                code: code.into_owned(),
                at: at.into_owned(),
            })),
            Source::Rule { list, at } => Provenance::Rule {
                list,
                at: at.into_owned(),
            },
            Source::Override { at } => Provenance::Override {
                at: at.into_owned(),
            },
        }
    }
}

impl<'a> User<'a> {
    fn encode(user: &'a UserPlan, tables: &mut Tables<'a>) -> User<'a> {
        let person = Person {
            xid: &user.xid,
            line: user.line,
        };
        let changes = user
            .changes
            .iter()
            .map(|change| Step::encode(change, person, tables))
            .collect();
        User {
            xid: Cow::Borrowed(&user.xid),
            eid: user.eid.as_deref().map(Cow::Borrowed),
            name: Cow::Borrowed(&user.name),
            line: user.line,
            action: user.action,
            changes,
            reason: user.reason.as_deref().map(Cow::Borrowed),
            invitation: user.invitation.as_ref().map(Cow::Borrowed),
            after: user.after.as_deref().map(Cow::Borrowed),
            contracts: Cow::Borrowed(&user.contracts),
        }
    }

    fn decode(self, lookup: &Lookup) -> Result<UserPlan, String> {
        let person = Person {
            xid: &self.xid,
            line: self.line,
        };
        let changes = self
            .changes
            .into_iter()
            .map(|step| step.decode(person, lookup))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(UserPlan {
            xid: self.xid.into_owned(),
            eid: self.eid.map(Cow::into_owned),
            name: self.name.into_owned(),
            line: self.line,
            action: self.action,
            changes,
            reason: self.reason.map(Cow::into_owned),
            invitation: self.invitation.map(Cow::into_owned),
            after: self.after.map(Cow::into_owned),
            contracts: self.contracts.into_owned(),
        })
    }
}

impl<'a> Step<'a> {
    fn encode(change: &'a Change, person: Person, tables: &mut Tables<'a>) -> Step<'a> {
        match change {
            Change::SetXid { from, to } => Step::SetXid {
                from: from.as_deref().map(Cow::Borrowed),
                to: (to != person.xid).then_some(Cow::Borrowed(to)),
            },
            Change::SetProfile {
                field,
                from,
                to,
                source,
            } => Step::SetProfile {
                field: *field,
                from: Cow::Borrowed(from),
                to: Cow::Borrowed(to),
                cite: tables.cite(source, person),
            },
            Change::AddMembership {
                group,
                group_eid,
                kind,
                admin,
                source,
            } => Step::AddMembership {
                group: tables.group(group, group_eid),
                kind: *kind,
                admin: *admin,
                cite: tables.cite(source, person),
            },
            Change::RemoveMembership {
                group,
                group_eid,
                source,
            } => Step::RemoveMembership {
                group: tables.group(group, group_eid),
                cite: source.as_ref().map(|s| tables.cite(s, person)),
            },
            Change::SetGroupAdmin {
                group,
                group_eid,
                admin,
                source,
            } => Step::SetGroupAdmin {
                group: tables.group(group, group_eid),
                admin: *admin,
                cite: source.as_ref().map(|s| tables.cite(s, person)),
            },
            Change::SetNetworkRole { from, to, source } => Step::SetNetworkRole {
                from: Cow::Borrowed(from),
                to: *to,
                cite: source.as_ref().map(|s| tables.cite(s, person)),
            },
            Change::SetPrimaryBusinessUnit {
                from,
                to,
                group_eid,
                source,
            } => Step::SetPrimaryBusinessUnit {
                from: from.as_deref().map(Cow::Borrowed),
                group: tables.group(to, group_eid),
                cite: tables.cite(source, person),
            },
        }
    }

    fn decode(self, person: Person, lookup: &Lookup) -> Result<Change, String> {
        Ok(match self {
            Step::SetXid { from, to } => Change::SetXid {
                from: from.map(Cow::into_owned),
                to: to.map_or_else(|| person.xid.to_string(), Cow::into_owned),
            },
            Step::SetProfile {
                field,
                from,
                to,
                cite,
            } => Change::SetProfile {
                field,
                from: from.into_owned(),
                to: to.into_owned(),
                source: lookup.provenance(cite, person)?,
            },
            Step::AddMembership {
                group,
                kind,
                admin,
                cite,
            } => {
                let (group, group_eid) = lookup.group(group, person)?;
                Change::AddMembership {
                    group,
                    group_eid,
                    kind,
                    admin,
                    source: lookup.provenance(cite, person)?,
                }
            }
            Step::RemoveMembership { group, cite } => {
                let (group, group_eid) = lookup.group(group, person)?;
                Change::RemoveMembership {
                    group,
                    group_eid,
                    source: lookup.optional(cite, person)?,
                }
            }
            Step::SetGroupAdmin { group, admin, cite } => {
                let (group, group_eid) = lookup.group(group, person)?;
                Change::SetGroupAdmin {
                    group,
                    group_eid,
                    admin,
                    source: lookup.optional(cite, person)?,
                }
            }
            Step::SetNetworkRole { from, to, cite } => Change::SetNetworkRole {
                from: from.into_owned(),
                to,
                source: lookup.optional(cite, person)?,
            },
            Step::SetPrimaryBusinessUnit { from, group, cite } => {
                let (to, group_eid) = lookup.group(group, person)?;
                Change::SetPrimaryBusinessUnit {
                    from: from.map(Cow::into_owned),
                    to,
                    group_eid,
                    source: lookup.provenance(cite, person)?,
                }
            }
        })
    }
}

/// JSON indented down to `depth` levels of nesting and compact below: a list of people reads one
/// person per line, at a fraction of the size of indenting every value.
struct Outline {
    depth: usize,
    max: usize,
    has_value: bool,
}

impl Outline {
    fn new(max: usize) -> Outline {
        Outline {
            depth: 0,
            max,
            has_value: false,
        }
    }

    fn open<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        bracket: &[u8],
    ) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        writer.write_all(bracket)
    }

    fn close<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        bracket: &[u8],
    ) -> std::io::Result<()> {
        let laid_out = self.depth <= self.max;
        self.depth -= 1;
        if laid_out && self.has_value {
            self.newline(writer)?;
        }
        writer.write_all(bracket)
    }

    fn item<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if !first {
            writer.write_all(b",")?;
        }
        if self.depth <= self.max {
            self.newline(writer)?;
        }
        Ok(())
    }

    fn newline<W: ?Sized + std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(b"\n")?;
        for _ in 0..self.depth {
            writer.write_all(b"  ")?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for Outline {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.open(writer, b"[")
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.close(writer, b"]")
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(writer, first)
    }

    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.open(writer, b"{")
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.close(writer, b"}")
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(writer, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(if self.depth <= self.max { b": " } else { b":" })
    }

    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}
