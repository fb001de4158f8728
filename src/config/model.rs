//! The typed configuration. These types are the single source of the JSON schemas in `schema/`
//! (doc comments become schema descriptions), so a field added here shows up in editors too.

use std::collections::BTreeMap;

use jiff::civil::Date;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::speakap::{ApiError, Client};

/// Where a config item was written: used for provenance in plans and `explain`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// Shared by every value that cites it.
    pub file: std::sync::Arc<str>,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// `kind: SyncConfig`: the network, the API connection, the HR source and the policy. One per repository
/// (it may be split over several documents as long as no key is set twice).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// The Speakap network EID: 16 lowercase hexadecimal characters. Quote it in YAML.
    #[schemars(regex(pattern = r"^[0-9a-f]{16}$"))]
    pub network: String,
    pub speakap: SpeakapSettings,
    pub source: Source,
    #[serde(default)]
    pub policy: Policy,
    /// Where `apply --notify` also reports a blocked or failed apply, besides the issue it opens.
    #[serde(default)]
    pub notify: Option<NotifySettings>,
}

impl SyncConfig {
    /// A client for the network at `url` (the configured one, or the embedded simulator's) with
    /// the configured API version, rate, concurrency and page size.
    pub fn client(&self, url: &str, token: &str) -> Result<Client, ApiError> {
        let settings = &self.speakap;
        Ok(Client::new(
            url,
            &self.network,
            token,
            &settings.api_version,
            settings.requests_per_second,
        )?
        .with_concurrency(settings.concurrency as usize)
        .with_page_size(settings.page_size as usize))
    }
}

/// Alerts beyond the code host's issue.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// Name of the environment variable holding an incoming-webhook URL (Slack, Microsoft Teams, or
    /// any endpoint taking JSON `{"text": …}`): a short, redacted message goes there when an apply
    /// is blocked or fails. The URL is a secret: keep it in CI secrets, never in the repository.
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub webhook_env: String,
}

/// How to reach the Speakap API.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpeakapSettings {
    /// Base URL of the API, for example `https://api.speakap.io`. The value `embedded` runs the bundled
    /// simulator in-process on a loopback port (no credentials; see `embedded`).
    #[serde(default = "default_url")]
    pub url: String,
    /// Name of the environment variable holding the token `{appEID}_{appSecret}`. The token itself never
    /// belongs in the repository.
    #[serde(default = "default_token_env")]
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub token_env: String,
    /// API version sent in the Accept header (`application/vnd.speakap.api-v{version}+json+hal`).
    #[serde(default = "default_api_version")]
    #[schemars(regex(pattern = r"^[0-9]+\.[0-9]+\.[0-9]+$"))]
    pub api_version: String,
    /// Upper bound on requests per second.
    #[serde(default = "default_rps")]
    #[schemars(range(min = 1, max = 1000))]
    pub requests_per_second: u32,
    /// How many users are worked on at once during apply.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 64))]
    pub concurrency: u32,
    /// How many users or groups one listing request asks for when the network is read. The API
    /// may serve fewer per page (its cap is not documented); the client then follows what it is
    /// given. A large network is read in total ÷ page size requests at `requests_per_second`.
    #[serde(default = "default_listing_page_size")]
    #[schemars(range(min = 1, max = 1000))]
    pub page_size: u32,
    /// Only with `url: embedded`: where the simulator's network comes from and where it is kept.
    #[serde(default)]
    pub embedded: Option<EmbeddedSimulator>,
}

/// The Speakap API, where the token belongs.
pub const DEFAULT_URL: &str = "https://api.speakap.io";
pub const DEFAULT_TOKEN_ENV: &str = "SPEAKAP_TOKEN";
pub const DEFAULT_API_VERSION: &str = "1.8.2";
pub const DEFAULT_REQUESTS_PER_SECOND: u32 = 10;

fn default_url() -> String {
    DEFAULT_URL.into()
}
fn default_token_env() -> String {
    DEFAULT_TOKEN_ENV.into()
}
fn default_api_version() -> String {
    DEFAULT_API_VERSION.into()
}
fn default_rps() -> u32 {
    DEFAULT_REQUESTS_PER_SECOND
}
fn default_listing_page_size() -> u32 {
    crate::speakap::DEFAULT_PAGE_SIZE as u32
}
fn default_concurrency() -> u32 {
    8
}

/// The in-process simulator used by the quick start and for trying rules safely.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedSimulator {
    /// JSON file (relative to the config directory) describing the starting network: groups and users.
    pub seed: String,
    /// JSON file (relative to the config directory) where the simulated network is kept between runs.
    /// Keep it out of git; delete it to start again from the seed.
    pub state: String,
}

/// The HR record: the source of truth for who works here. Every type has `columns`,
/// `multi_value_separator` and `date_format`; the rest says where the rows come from.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Source {
    /// A CSV export with a header row (UTF-8 with or without BOM, UTF-16 with BOM, or the
    /// `encoding` fallback).
    Csv(CsvSource),
    /// An Excel workbook (.xlsx, .xlsm, .xlsb, .xls) or OpenDocument spreadsheet (.ods): the first
    /// sheet or the one named by `sheet`, with a header row.
    Excel(ExcelSource),
    /// A CSV or Excel file fetched over SFTP; the host key is checked against `known_hosts`.
    Sftp(SftpSource),
    /// AFAS Profit's GetConnector REST endpoint, read page by page.
    Afas(AfasSource),
}

/// What every source type shares: how HR fields map onto columns and how values are written.
#[derive(Clone, Copy, Debug)]
pub struct RecordFormat<'a> {
    pub columns: &'a Columns,
    pub multi_value_separator: &'a str,
    pub date_format: &'a str,
}

impl Source {
    pub fn format(&self) -> RecordFormat<'_> {
        let (columns, multi_value_separator, date_format) = match self {
            Source::Csv(s) => (&s.columns, &s.multi_value_separator, &s.date_format),
            Source::Excel(s) => (&s.columns, &s.multi_value_separator, &s.date_format),
            Source::Sftp(s) => (&s.columns, &s.multi_value_separator, &s.date_format),
            Source::Afas(s) => (&s.columns, &s.multi_value_separator, &s.date_format),
        };
        RecordFormat {
            columns,
            multi_value_separator,
            date_format,
        }
    }

    pub fn columns(&self) -> &Columns {
        self.format().columns
    }

    /// The `type:` as written in the config.
    pub fn type_name(&self) -> &'static str {
        match self {
            Source::Csv(_) => "csv",
            Source::Excel(_) => "excel",
            Source::Sftp(_) => "sftp",
            Source::Afas(_) => "afas",
        }
    }
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvSource {
    /// Path of the CSV file, relative to the config directory (or given with `--hr`).
    pub path: String,
    /// Field delimiter; `auto` picks the one among `,` `;` tab `|` that splits the header into the
    /// configured column names.
    #[serde(default)]
    pub delimiter: Delimiter,
    /// Encoding of files that are neither UTF-8 (with or without BOM) nor UTF-16 with a BOM, as a
    /// WHATWG label: `windows-1252` (Dutch and other western Excel exports), `iso-8859-15`,
    /// `utf-8` (refuse anything that is not UTF-8), …
    #[serde(default = "default_encoding")]
    pub encoding: String,
    /// Separator inside multi-valued columns (several locations or departments in one cell).
    #[serde(default = "default_multi_value_separator")]
    #[schemars(length(min = 1, max = 1))]
    pub multi_value_separator: String,
    /// How dates are written in the date columns (strftime-style, e.g. `%d-%m-%Y`).
    #[serde(default = "default_date_format")]
    pub date_format: String,
    /// Which HR column feeds which field.
    pub columns: Columns,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExcelSource {
    /// Path of the workbook, relative to the config directory (or given with `--hr`).
    pub path: String,
    /// The sheet to read; the first sheet when not given.
    #[serde(default)]
    pub sheet: Option<String>,
    /// Separator inside multi-valued columns (several locations or departments in one cell).
    #[serde(default = "default_multi_value_separator")]
    #[schemars(length(min = 1, max = 1))]
    pub multi_value_separator: String,
    /// How dates written as text are read in `type: date` columns (strftime-style, e.g. `%d-%m-%Y`);
    /// date cells need no format.
    #[serde(default = "default_date_format")]
    pub date_format: String,
    /// Which HR column feeds which field.
    pub columns: Columns,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SftpSource {
    /// Host name or address of the SFTP server.
    pub host: String,
    #[serde(default = "default_sftp_port")]
    pub port: u16,
    /// Login name.
    pub user: String,
    /// Environment variable holding the private key (OpenSSH format, the text itself). Give this
    /// or `password_env`.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub key_env: Option<String>,
    /// Environment variable holding the passphrase of the key in `key_env`, if it has one.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub key_passphrase_env: Option<String>,
    /// Environment variable holding the password. Give this or `key_env`.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub password_env: Option<String>,
    /// OpenSSH known_hosts file (relative to the config directory) with the server's host key. An
    /// unknown or changed key is refused. Get it with `ssh-keyscan -p PORT HOST` and check the
    /// fingerprint with the server's administrator.
    pub known_hosts: String,
    /// Remote path of the export; may be a glob in its last part (`/drop/employees-*.csv`): the
    /// newest matching file is used.
    pub path: String,
    /// `auto` (by the file's extension: .xlsx, .xlsm, .xlsb, .xls, .ods are Excel, the rest CSV),
    /// `csv` or `excel`.
    #[serde(default)]
    pub format: FileFormat,
    /// CSV only: as `delimiter` of `type: csv`.
    #[serde(default)]
    pub delimiter: Delimiter,
    /// CSV only: as `encoding` of `type: csv`.
    #[serde(default = "default_encoding")]
    pub encoding: String,
    /// Excel only: the sheet to read; the first sheet when not given.
    #[serde(default)]
    pub sheet: Option<String>,
    /// Separator inside multi-valued columns (several locations or departments in one cell).
    #[serde(default = "default_multi_value_separator")]
    #[schemars(length(min = 1, max = 1))]
    pub multi_value_separator: String,
    /// How dates are written in the date columns (strftime-style, e.g. `%d-%m-%Y`).
    #[serde(default = "default_date_format")]
    pub date_format: String,
    /// Which HR column feeds which field.
    pub columns: Columns,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    #[default]
    Auto,
    Csv,
    Excel,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AfasSource {
    /// Base URL of the AFAS Profit REST service, e.g. `https://12345.rest.afas.online/ProfitRestServices`.
    pub url: String,
    /// Name of the GetConnector, e.g. `Speakap_Medewerkers`.
    pub connector: String,
    /// Environment variable holding the app connector token (the `<data>` part of the AFAS token).
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub token_env: String,
    /// Rows asked for per request (`take`). The connector may serve fewer per page; reading goes
    /// on, each `skip` past the rows received, until a page is empty.
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = 100000))]
    pub page_size: u32,
    /// The most pages one read makes, the empty page that ends it included: a connector that
    /// never comes to an empty page stops the run with an error naming this setting, and
    /// nothing is planned.
    #[serde(default = "default_max_pages")]
    #[schemars(range(min = 1))]
    pub max_pages: u32,
    /// Separator inside multi-valued fields (several locations or departments in one value).
    #[serde(default = "default_multi_value_separator")]
    #[schemars(length(min = 1, max = 1))]
    pub multi_value_separator: String,
    /// How dates are written in the date fields (strftime-style). AFAS sends `2026-03-01T00:00:00Z`;
    /// the time part is ignored in `type: date` fields, so the default fits.
    #[serde(default = "default_date_format")]
    pub date_format: String,
    /// Which connector field feeds which HR field (matched like CSV columns).
    pub columns: Columns,
}

fn default_date_format() -> String {
    "%Y-%m-%d".into()
}

fn default_multi_value_separator() -> String {
    "|".into()
}

fn default_encoding() -> String {
    "windows-1252".into()
}

fn default_sftp_port() -> u16 {
    22
}

fn default_page_size() -> u32 {
    1000
}

/// 10 million rows at the default page size, 500,000 from a connector capping pages at 50.
fn default_max_pages() -> u32 {
    10_000
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum Delimiter {
    #[default]
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = ",")]
    Comma,
    #[serde(rename = ";")]
    Semicolon,
    #[serde(rename = "\t")]
    Tab,
    #[serde(rename = "|")]
    Pipe,
}

impl Delimiter {
    pub fn byte(self) -> Option<u8> {
        match self {
            Delimiter::Auto => None,
            Delimiter::Comma => Some(b','),
            Delimiter::Semicolon => Some(b';'),
            Delimiter::Tab => Some(b'\t'),
            Delimiter::Pipe => Some(b'|'),
        }
    }
}

/// An HR column: its header name, or `{name, type}`. `type: text` keeps a spreadsheet cell's text
/// as displayed (numbers formatted `000123` keep their leading zeros); `type: date` turns
/// spreadsheet date cells (and date serial numbers) into dates and reads text with `date_format`.
/// Columns without a type take a cell's value as it is (whole numbers without `.0`).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Column {
    Name(String),
    Typed(TypedColumn),
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TypedColumn {
    /// The header name.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
}

pub use crate::fields::ColumnType;

impl Column {
    pub fn name(&self) -> &str {
        match self {
            Column::Name(name) => name,
            Column::Typed(typed) => &typed.name,
        }
    }

    pub fn kind(&self) -> ColumnType {
        match self {
            Column::Name(_) => ColumnType::Auto,
            Column::Typed(typed) => typed.kind,
        }
    }
}

/// HR column names (as in the header row, matched ignoring case and surrounding spaces) for each
/// field. `xid` and `email` are required; a field without a column is not managed by the sync.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    /// The employee ID: the permanent anchor between HR and Speakap.
    pub xid: Column,
    pub email: Column,
    #[serde(default)]
    pub first_name: Option<Column>,
    /// Dutch "tussenvoegsel" (van, de, van der).
    #[serde(default)]
    pub infix: Option<Column>,
    #[serde(default)]
    pub last_name: Option<Column>,
    #[serde(default)]
    pub job_title: Option<Column>,
    #[serde(default)]
    pub phone: Option<Column>,
    /// Location codes, mapped to business units by `MappingRules.business_units`.
    #[serde(default)]
    pub locations: Option<Column>,
    /// Department codes, mapped to department groups by `MappingRules.departments`.
    #[serde(default)]
    pub departments: Option<Column>,
    /// First working day: people are invited on it, not before (see `policy.invite.on_start_date`).
    #[serde(default)]
    pub start_date: Option<Column>,
    /// Last working day: people are offboarded the day after it.
    #[serde(default)]
    pub end_date: Option<Column>,
    /// The single-sign-on login name, for `policy.invite.channel: sso`.
    #[serde(default)]
    pub upn: Option<Column>,
    /// Further columns usable in matchers under the given field name, e.g. `contract: Contracttype`.
    #[serde(default)]
    pub extra: BTreeMap<String, Column>,
}

/// How the sync behaves.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The network's time zone (IANA name): start and end dates are days there.
    #[serde(default = "default_timezone")]
    pub timezone: Timezone,
    #[serde(default)]
    pub invite: InvitePolicy,
    #[serde(default)]
    pub offboarding: Offboarding,
    #[serde(default)]
    pub safety: Safety,
    /// A user deleted in Speakap by hand while still in HR: `respect` (not recreated until their HR
    /// record or the rules' outcome for them changes, or an override says `restore: true`) or `recreate`.
    #[serde(default)]
    pub manual_deletions: ManualDeletions,
    /// A new XID whose email belongs to an account whose XID left the record: `block` (report it,
    /// touch neither) or `relink` (give that account the new XID).
    #[serde(default)]
    pub xid_change: XidChange,
    /// Several rows with the same employee ID (one per contract, as AFAS exports them): `skip`
    /// every one of them and leave the account alone, or `merge` them into one person when their
    /// email address (in any case), first name, infix and last name agree.
    #[serde(default)]
    pub duplicate_xids: DuplicateXids,
    /// Which of a merged person's contracts is primary: the first row this matcher selects
    /// (else the earliest start date, ties to the first row). Profile values, group rules and
    /// role rules come from the primary contract.
    #[serde(default)]
    pub primary_contract: Option<PrimaryContract>,
    /// `true`: a person whose location codes give no business unit (no code, or only ignored
    /// ones) is skipped and reported. `false`: invited without a business unit, and the plan
    /// says so. Unset: as before the option existed (unknown codes as `business_units.unknown`
    /// says; a person without a code is invited without a business unit).
    #[serde(default)]
    pub require_business_unit: Option<bool>,
    /// `true`: a person whose mappings, rules and override give no business unit, department or
    /// group is skipped and reported (their account left alone) rather than invited into nothing.
    #[serde(default)]
    pub require_group: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DuplicateXids {
    #[default]
    Skip,
    Merge,
}

/// The contract that counts for the person as a whole.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrimaryContract {
    pub when: Matcher,
    #[serde(skip)]
    #[schemars(skip)]
    pub origin: Origin,
}

/// An IANA time zone name such as `Europe/Amsterdam`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Timezone(pub String);

impl Default for Timezone {
    fn default() -> Self {
        default_timezone()
    }
}

fn default_timezone() -> Timezone {
    Timezone("Europe/Amsterdam".into())
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitePolicy {
    /// `email` (an invitation mail), `sms` (needs a phone number), `printable` (credentials to
    /// hand out, written by `apply --credentials FILE`) or `sso` (an account for the UPN, no mail).
    #[serde(default)]
    pub channel: InviteChannel,
    /// Invite on the start date rather than as soon as the record appears.
    #[serde(default = "yes")]
    pub on_start_date: bool,
}

impl Default for InvitePolicy {
    fn default() -> Self {
        InvitePolicy {
            channel: InviteChannel::default(),
            on_start_date: true,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InviteChannel {
    #[default]
    Email,
    Sms,
    Printable,
    Sso,
}

/// What happens to leavers: suspended (recoverable) for `grace_days`, then `then`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Offboarding {
    /// Days a leaver stays suspended and can come back; 0 deletes at once.
    #[serde(default = "default_grace_days")]
    #[schemars(range(max = 30))]
    pub grace_days: u32,
    /// After the grace period: `delete` the account or `anonymize` it.
    #[serde(default)]
    pub then: AfterGrace,
}

fn default_grace_days() -> u32 {
    30
}

impl Default for Offboarding {
    fn default() -> Self {
        Offboarding {
            grace_days: default_grace_days(),
            then: AfterGrace::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AfterGrace {
    #[default]
    Delete,
    Anonymize,
}

impl AfterGrace {
    pub fn past_tense(self) -> &'static str {
        match self {
            AfterGrace::Delete => "deleted",
            AfterGrace::Anonymize => "anonymized",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ManualDeletions {
    #[default]
    Respect,
    Recreate,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum XidChange {
    #[default]
    Block,
    Relink,
}

/// Brakes against a wrong HR export or a wrong rule. A plan over a limit is blocked (exit 3) unless
/// `apply --force <checksum>` names exactly that plan.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Safety {
    /// Block when more than this percentage of the managed users would be removed.
    #[serde(default = "default_max_offboard")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub max_offboard_percent: f64,
    /// Block when more than this percentage of the managed users would be updated or removed.
    #[serde(default = "default_max_change")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub max_change_percent: f64,
    /// Block when the HR record has fewer rows than this (a truncated export).
    #[serde(default = "default_min_records")]
    pub min_records: usize,
}

fn default_max_offboard() -> f64 {
    10.0
}
fn default_max_change() -> f64 {
    25.0
}
fn default_min_records() -> usize {
    10
}

impl Default for Safety {
    fn default() -> Self {
        Safety {
            max_offboard_percent: default_max_offboard(),
            max_change_percent: default_max_change(),
            min_records: default_min_records(),
        }
    }
}

/// `kind: MappingRules`: how HR values become Speakap business units, departments, groups and roles.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingRules {
    /// Location code → business unit group name.
    #[serde(default)]
    pub business_units: Option<LookupTable>,
    /// Department code → department group name.
    #[serde(default)]
    pub departments: Option<LookupTable>,
    /// Groups granted to everyone a matcher selects.
    #[serde(default)]
    pub groups: Vec<GroupRule>,
    /// Network roles; the first matching rule wins.
    #[serde(default)]
    pub roles: Vec<RoleRule>,
    /// Local admin rights in the person's own business unit(s).
    #[serde(default)]
    pub local_admins: Vec<LocalAdminRule>,
}

/// A lookup table from HR codes to Speakap group names.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupTable {
    /// HR code → exact Speakap group name. Quote codes with leading zeros.
    pub map: BTreeMap<String, String>,
    /// What to do with a code missing from `map`: `reject` skips the record (reported), `ignore`
    /// drops the code, `default` uses `default`.
    #[serde(default)]
    pub unknown: UnknownCode,
    /// Group used for unknown codes when `unknown: default`.
    #[serde(default)]
    pub default: Option<String>,
    #[serde(skip)]
    #[schemars(skip)]
    pub origins: BTreeMap<String, Origin>,
    #[serde(skip)]
    #[schemars(skip)]
    pub default_origin: Origin,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UnknownCode {
    #[default]
    Reject,
    Ignore,
    Default,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupRule {
    /// Exact name of an existing Speakap group.
    #[schemars(length(min = 1))]
    pub group: String,
    pub when: Matcher,
    #[serde(skip)]
    #[schemars(skip)]
    pub origin: Origin,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRule {
    pub role: NetworkRole,
    pub when: Matcher,
    #[serde(skip)]
    #[schemars(skip)]
    pub origin: Origin,
}

/// Network role. The sync only takes back an admin role it granted itself.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum NetworkRole {
    Admin,
    Member,
}

impl NetworkRole {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkRole::Admin => "admin",
            NetworkRole::Member => "member",
        }
    }
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalAdminRule {
    /// Which groups of the person the admin right applies to.
    pub of: LocalAdminScope,
    pub when: Matcher,
    #[serde(skip)]
    #[schemars(skip)]
    pub origin: Origin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LocalAdminScope {
    /// Admin of each business unit the person belongs to.
    BusinessUnit,
}

/// A condition on a person's HR fields. Fields: `xid`, `email`, `first_name`, `infix`, `last_name`,
/// `job_title`, `phone`, `locations`, `departments` and any name under `columns.extra`.
/// Values compare exactly (use `matches` with `(?i)` for case-insensitive); on multi-valued fields a
/// test holds when any value passes.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum Matcher {
    All {
        /// Every matcher must hold.
        all: Vec<Matcher>,
    },
    Any {
        /// At least one matcher must hold.
        any: Vec<Matcher>,
    },
    Not {
        /// The matcher must not hold.
        not: Box<Matcher>,
    },
    Equals {
        field: String,
        equals: String,
    },
    In {
        field: String,
        #[serde(rename = "in")]
        #[schemars(length(min = 1))]
        values: Vec<String>,
    },
    Matches {
        field: String,
        /// A regular expression (Rust `regex` syntax), unanchored unless you write `^…$`.
        matches: String,
    },
}

/// `kind: Exclusions`: people the sync never manages: never invites, updates or removes.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exclusions {
    #[serde(default)]
    pub exclude: Vec<Exclusion>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exclusion {
    /// The employee ID to exclude. Quote it in YAML.
    #[serde(default)]
    pub xid: Option<String>,
    /// Or: everyone this matcher selects.
    #[serde(default)]
    pub when: Option<Matcher>,
    /// Why: shown in plans and audits.
    #[schemars(length(min = 1))]
    pub reason: String,
    #[serde(skip)]
    #[schemars(skip)]
    pub origin: Origin,
}

/// `kind: Overrides`: deliberate per-person exceptions to what HR and the rules say.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    #[serde(default)]
    pub overrides: Vec<Override>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// The employee ID this override is for. Quote it in YAML.
    #[schemars(length(min = 1))]
    pub xid: String,
    /// Why the exception exists: required, shown in plans and audits.
    #[schemars(length(min = 1))]
    pub reason: String,
    /// Last day (inclusive) the override applies; after it, it is ignored with a warning.
    #[serde(default)]
    pub until: Option<Date>,
    /// Extra groups (exact Speakap names).
    #[serde(default)]
    pub add_groups: Vec<String>,
    /// Groups the rules would grant that this person must not get.
    #[serde(default)]
    pub remove_groups: Vec<String>,
    /// Network role, replacing what the rules say.
    #[serde(default)]
    pub role: Option<NetworkRole>,
    /// Profile values replacing the HR values.
    #[serde(default)]
    pub set: ProfileValues,
    /// Recreate this person's account even though it was deleted by hand in Speakap.
    #[serde(default)]
    pub restore: bool,
    #[serde(skip)]
    #[schemars(skip)]
    pub origin: Origin,
}

/// Profile values an override can set.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileValues {
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub infix: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub job_title: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}
