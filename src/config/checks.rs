//! The semantic checks: what the schema cannot say (a URL that parses, a time zone that exists,
//! a matcher naming a configured field, an XID excluded twice), each reported at its place.

use std::collections::BTreeMap;

use super::tree::Span;
use super::{
    AfasSource, DuplicateXids, Exclusion, InviteChannel, Kind, Loader, LookupTable, MappingRules,
    Matcher, Merged, Override, SftpSource, Source, SyncConfig, UnknownCode, configured_columns,
    known_fields, paths,
};
use crate::diag::Diagnostic;
use crate::fields::FieldName;

pub(super) struct SemanticChecks<'a> {
    pub(super) merged: &'a BTreeMap<Kind, Merged>,
    pub(super) sync: &'a SyncConfig,
    /// The config directory in the repository: paths may not climb out of the repository.
    pub(super) prefix: &'a str,
}

impl SemanticChecks<'_> {
    fn span(&self, kind: Kind, path: &[&str]) -> Span {
        super::span_at(self.merged, kind, path)
    }

    fn check_paths(&self, loader: &mut Loader) {
        for setting in paths::path_settings(self.sync) {
            if let Some(why) = paths::written_outside(self.prefix, setting.value) {
                loader.error(
                    "path",
                    self.span(Kind::SyncConfig, setting.keys),
                    format!(
                        "`{}` is {:?}: {why}; files named in the config must be inside the config repository",
                        setting.name(),
                        setting.value
                    ),
                    setting.hint,
                );
            }
        }
    }

    fn check_source(&self, loader: &mut Loader) {
        self.check_shared_columns(loader);
        self.check_encoding(loader);
        match &self.sync.source {
            Source::Sftp(sftp) => self.check_sftp(loader, sftp),
            Source::Afas(afas) => self.check_afas(loader, afas),
            _ => {}
        }
    }

    fn source_span(&self, key: &str) -> Span {
        self.span(Kind::SyncConfig, &["source", key])
    }

    /// One HR column feeding two profile fields is a slip (`phone: Functie`); the XID and the
    /// UPN may well be the email column, and extra fields may reuse any column.
    fn check_shared_columns(&self, loader: &mut Loader) {
        let columns = configured_columns(self.sync);
        let profile_fields = columns.iter().filter(|(field, _, _)| {
            !matches!(field, FieldName::Xid | FieldName::Upn | FieldName::Extra(_))
        });
        let mut seen: Vec<(String, &FieldName)> = Vec::new();
        for (field, column, _) in profile_fields {
            let key = crate::fields::normalize(column);
            if let Some((_, first)) = seen.iter().find(|(c, _)| *c == key) {
                loader.warning(
                    "columns",
                    self.source_span("columns"),
                    format!(
                        "column \"{column}\" feeds both `{}` and `{}`",
                        first.name(),
                        field.name()
                    ),
                    "check `source.columns`: each profile field has its own column",
                );
            } else {
                seen.push((key, field));
            }
        }
    }

    fn check_encoding(&self, loader: &mut Loader) {
        let encoding = match &self.sync.source {
            Source::Csv(s) => Some(&s.encoding),
            Source::Sftp(s) => Some(&s.encoding),
            _ => None,
        };
        if let Some(label) = encoding
            && encoding_rs::Encoding::for_label(label.as_bytes()).is_none()
        {
            loader.error(
                "encoding",
                self.source_span("encoding"),
                format!("unknown encoding `{label}`"),
                "use a WHATWG encoding label such as windows-1252, iso-8859-15 or utf-8",
            );
        }
    }

    fn check_sftp(&self, loader: &mut Loader, sftp: &SftpSource) {
        if sftp.key_env.is_some() == sftp.password_env.is_some() {
            loader.error(
                "sftp",
                self.source_span("user"),
                "give exactly one of `key_env` and `password_env`",
                "name the environment variable holding the private key or the password",
            );
        }
        if sftp.key_passphrase_env.is_some() && sftp.key_env.is_none() {
            loader.error(
                "sftp",
                self.source_span("key_passphrase_env"),
                "`key_passphrase_env` needs `key_env`",
                "remove it, or set `key_env`",
            );
        }
        if !sftp.path.starts_with('/') {
            loader.error(
                "sftp",
                self.source_span("path"),
                format!("`{}` is not an absolute remote path", sftp.path),
                "write the full path on the server, e.g. /upload/employees-*.csv",
            );
        }
    }

    fn check_afas(&self, loader: &mut Loader, afas: &AfasSource) {
        let url = reqwest::Url::parse(&afas.url);
        if !matches!(&url, Ok(u) if u.scheme() == "https" || u.scheme() == "http") {
            loader.error(
                "afas",
                self.source_span("url"),
                format!("`{}` is not an http(s) URL", afas.url),
                "for example https://12345.rest.afas.online/ProfitRestServices",
            );
        }
        if afas.connector.is_empty()
            || !afas
                .connector
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        {
            loader.error(
                "afas",
                self.source_span("connector"),
                format!("`{}` is not a GetConnector name", afas.connector),
                "use the connector's name as shown in AFAS Profit, e.g. Speakap_Medewerkers",
            );
        }
    }

    /// Every check after the schema, each reporting all it finds.
    pub(super) fn run(
        &self,
        loader: &mut Loader,
        rules: &MappingRules,
        exclusions: &[Exclusion],
        overrides: &[Override],
    ) {
        self.check_speakap(loader);
        self.check_timezone_and_date_format(loader);
        self.check_source(loader);
        self.check_paths(loader);
        self.check_invite_channel(loader);
        self.check_contract_policy(loader);
        self.check_extra_fields(loader);
        for (table_name, table) in [
            ("business_units", &rules.business_units),
            ("departments", &rules.departments),
        ] {
            if let Some(table) = table {
                self.check_table(loader, table_name, table);
            }
        }
        self.check_matchers(loader, rules, exclusions);
        self.check_exclusions(loader, exclusions);
        self.check_overrides(loader, overrides);
    }

    fn check_speakap(&self, loader: &mut Loader) {
        let speakap = &self.sync.speakap;
        let url_span = self.span(Kind::SyncConfig, &["speakap", "url"]);
        let embedded = speakap.url == "embedded";
        if embedded && speakap.embedded.is_none() {
            loader.error(
                "embedded",
                url_span,
                "`url: embedded` needs `speakap.embedded` with `seed` and `state` files",
                "add `embedded: {seed: simulator/seed.json, state: .speakap-sim/state.json}`",
            );
        }
        if embedded && !cfg!(feature = "simulator") {
            loader.error(
                "embedded",
                url_span,
                "`url: embedded` runs the bundled simulator, which this build of speakap-sync \
                 leaves out (it was built without the `simulator` feature)",
                "set `url` to the Speakap API, or use a build with the default features",
            );
        }
        if embedded {
            return;
        }
        if speakap.embedded.is_some() {
            loader.error(
                "embedded",
                self.span(Kind::SyncConfig, &["speakap", "embedded"]),
                "`speakap.embedded` only applies with `url: embedded`",
                "remove `embedded`, or set `url: embedded` to use the simulator",
            );
        }
        if reqwest::Url::parse(&speakap.url).is_err() {
            loader.error(
                "url",
                url_span,
                format!("`{}` is not a URL", speakap.url),
                "for example https://api.speakap.io, or `embedded` for the simulator",
            );
        }
    }

    fn check_timezone_and_date_format(&self, loader: &mut Loader) {
        let timezone = &self.sync.policy.timezone.0;
        if jiff::tz::TimeZone::get(timezone).is_err() {
            loader.error(
                "timezone",
                self.span(Kind::SyncConfig, &["policy", "timezone"]),
                format!("unknown time zone `{timezone}`"),
                "use an IANA name such as Europe/Amsterdam",
            );
        }
        let date_format = self.sync.source.format().date_format;
        let sample = jiff::civil::date(2026, 12, 31);
        let round_trip = jiff::fmt::strtime::format(date_format, sample)
            .ok()
            .and_then(|text| crate::fields::parse_date(date_format, &text));
        if round_trip != Some(sample) {
            loader.error(
                "date-format",
                self.span(Kind::SyncConfig, &["source", "date_format"]),
                format!("date_format `{date_format}` cannot write and read back a date"),
                "use strftime directives for day, month and year, e.g. %d-%m-%Y or %Y-%m-%d",
            );
        }
    }

    fn check_invite_channel(&self, loader: &mut Loader) {
        let columns = self.sync.source.format().columns;
        let channel_needs = match self.sync.policy.invite.channel {
            InviteChannel::Sms => Some((
                "phone",
                columns.phone.is_some(),
                "SMS invitations go to the phone number",
            )),
            InviteChannel::Sso => Some((
                "upn",
                columns.upn.is_some(),
                "SSO accounts are made for the UPN",
            )),
            _ => None,
        };
        if let Some((column, false, why)) = channel_needs {
            loader.error(
                "invite",
                self.span(Kind::SyncConfig, &["policy", "invite", "channel"]),
                format!("this invite channel needs `source.columns.{column}`"),
                format!("{why}: map the HR column that holds it"),
            );
        }
    }

    /// The contract and business-unit policies need what they read: a primary contract only
    /// matters when contracts are merged, and a business unit cannot be required without the
    /// column its codes come from.
    fn check_contract_policy(&self, loader: &mut Loader) {
        let policy = &self.sync.policy;
        if policy.primary_contract.is_some() && policy.duplicate_xids != DuplicateXids::Merge {
            loader.warning(
                "policy",
                self.span(Kind::SyncConfig, &["policy", "primary_contract"]),
                "`primary_contract` has no effect: rows with one employee ID are skipped",
                "set `policy.duplicate_xids: merge` to merge a person's contracts",
            );
        }
        let has_locations = self.sync.source.format().columns.locations.is_some();
        if policy.require_business_unit == Some(true) && !has_locations {
            loader.error(
                "policy",
                self.span(Kind::SyncConfig, &["policy", "require_business_unit"]),
                "a business unit is required but `source.columns.locations` is not mapped",
                "map the HR column of the location codes, or drop `require_business_unit`",
            );
        }
    }

    /// An extra field may not take the name of a built-in one.
    fn check_extra_fields(&self, loader: &mut Loader) {
        for (name, column) in &self.sync.source.format().columns.extra {
            if FieldName::builtin(name).is_some() {
                loader.error(
                    "columns",
                    self.span(Kind::SyncConfig, &["source", "columns", "extra", name]),
                    format!("extra field `{name}` has the name of a built-in field"),
                    format!("map `{}` under another name", column.name()),
                );
            }
        }
    }

    /// A lookup table (`business_units` or `departments`): its codes, its `unknown` policy and
    /// the column it reads.
    fn check_table(&self, loader: &mut Loader, table_name: &str, table: &LookupTable) {
        for (code, group) in &table.map {
            if code.trim().is_empty() {
                loader.error(
                    "mapping",
                    self.span(Kind::MappingRules, &[table_name, "map", code]),
                    format!("empty code in {table_name}.map"),
                    "every code maps a value that occurs in the HR record",
                );
            }
            if group.trim().is_empty() {
                loader.error(
                    "mapping",
                    self.span(Kind::MappingRules, &[table_name, "map", code]),
                    format!("code `{code}` in {table_name}.map maps to an empty group name"),
                    "give the exact name of the Speakap group",
                );
            }
        }
        if table.unknown != UnknownCode::Default && table.default.is_some() {
            loader.warning(
                "mapping",
                self.span(Kind::MappingRules, &[table_name, "default"]),
                format!("{table_name}: `default` is used only with `unknown: default`"),
                "set `unknown: default`, or remove `default:`",
            );
        }
        if table.unknown == UnknownCode::Default && table.default.is_none() {
            loader.error(
                "mapping",
                self.span(Kind::MappingRules, &[table_name, "unknown"]),
                format!("{table_name}: `unknown: default` needs `default: <group name>`"),
                "add `default:` or choose `unknown: reject` or `ignore`",
            );
        }
        let columns = self.sync.source.format().columns;
        let (column, column_present) = match table_name {
            "business_units" => ("locations", columns.locations.is_some()),
            _ => ("departments", columns.departments.is_some()),
        };
        if !column_present {
            loader.warning(
                "mapping",
                self.span(Kind::MappingRules, &[table_name]),
                format!("{table_name} is mapped but no `{column}` column is configured"),
                format!("add `source.columns.{column}`, or remove the table"),
            );
        }
    }

    /// Every `when` of the rules, the primary contract and the exclusions.
    fn check_matchers(&self, loader: &mut Loader, rules: &MappingRules, exclusions: &[Exclusion]) {
        let fields = known_fields(self.sync);
        let rule_matchers = [
            (
                "groups",
                rules.groups.iter().map(|r| &r.when).collect::<Vec<_>>(),
            ),
            ("roles", rules.roles.iter().map(|r| &r.when).collect()),
            (
                "local_admins",
                rules.local_admins.iter().map(|r| &r.when).collect(),
            ),
        ];
        for (section, matchers) in rule_matchers {
            for (i, matcher) in matchers.into_iter().enumerate() {
                let path = vec![section.into(), i.to_string(), "when".into()];
                self.check_matcher(loader, Kind::MappingRules, path, matcher, &fields);
            }
        }
        if let Some(primary) = &self.sync.policy.primary_contract {
            let path = vec!["policy".into(), "primary_contract".into(), "when".into()];
            self.check_matcher(loader, Kind::SyncConfig, path, &primary.when, &fields);
        }
        for (i, exclusion) in exclusions.iter().enumerate() {
            if let Some(when) = &exclusion.when {
                let path = vec!["exclude".into(), i.to_string(), "when".into()];
                self.check_matcher(loader, Kind::Exclusions, path, when, &fields);
            }
        }
    }

    fn check_exclusions(&self, loader: &mut Loader, exclusions: &[Exclusion]) {
        let mut seen_exclusions: BTreeMap<&str, Span> = BTreeMap::new();
        for (i, exclusion) in exclusions.iter().enumerate() {
            let span = self.span(Kind::Exclusions, &["exclude", &i.to_string()]);
            match (&exclusion.xid, &exclusion.when) {
                (Some(_), Some(_)) | (None, None) => loader.error(
                    "exclusion",
                    span,
                    "an exclusion names either `xid` or `when`, not both or neither",
                    "split it into two exclusions, or add the missing one",
                ),
                (Some(xid), None) => {
                    if xid.trim().is_empty() {
                        loader.error(
                            "exclusion",
                            span,
                            "empty `xid`",
                            "give the employee ID to exclude",
                        );
                    } else if let Some(first) = seen_exclusions.insert(xid, span) {
                        let d = Diagnostic::error(
                            "duplicate-key",
                            format!("XID `{xid}` is excluded twice"),
                        )
                        .at(loader.location(span))
                        .related(loader.location(first), "first excluded at")
                        .hint("keep one exclusion per XID");
                        loader.diagnostics.push(d);
                    }
                }
                (None, Some(_)) => {}
            }
        }
    }

    fn check_overrides(&self, loader: &mut Loader, overrides: &[Override]) {
        let mut seen_overrides: BTreeMap<&str, Span> = BTreeMap::new();
        for (i, o) in overrides.iter().enumerate() {
            let span = self.span(Kind::Overrides, &["overrides", &i.to_string()]);
            if let Some(first) = seen_overrides.insert(&o.xid, span) {
                let d = Diagnostic::error(
                    "duplicate-key",
                    format!("XID `{}` has two overrides", o.xid),
                )
                .at(loader.location(span))
                .related(loader.location(first), "first override at")
                .hint("merge them into one override");
                loader.diagnostics.push(d);
            }
            if let Some(x) = o.add_groups.iter().find(|g| o.remove_groups.contains(g)) {
                loader.error(
                    "override",
                    span,
                    format!("group `{x}` is both added and removed"),
                    "keep it in one of add_groups or remove_groups",
                );
            }
        }
    }

    fn check_matcher(
        &self,
        loader: &mut Loader,
        kind: Kind,
        path: Vec<String>,
        matcher: &Matcher,
        fields: &[String],
    ) {
        let span =
            |p: &[String]| self.span(kind, &p.iter().map(String::as_str).collect::<Vec<_>>());
        let field = match matcher {
            Matcher::All { all: list } | Matcher::Any { any: list } => {
                let key = if matches!(matcher, Matcher::All { .. }) {
                    "all"
                } else {
                    "any"
                };
                if list.is_empty() {
                    loader.error(
                        "matcher",
                        span(&path),
                        format!("`{key}` has no matchers"),
                        "list at least one matcher",
                    );
                }
                for (i, m) in list.iter().enumerate() {
                    let mut child = path.clone();
                    child.extend([key.to_string(), i.to_string()]);
                    self.check_matcher(loader, kind, child, m, fields);
                }
                return;
            }
            Matcher::Not { not } => {
                let mut child = path.clone();
                child.push("not".into());
                self.check_matcher(loader, kind, child, not, fields);
                return;
            }
            Matcher::Matches { field, matches } => {
                if let Err(e) = regex::Regex::new(matches) {
                    let mut at = path.clone();
                    at.push("matches".into());
                    let detail = e.to_string();
                    let last = detail.lines().last().unwrap_or_default().to_string();
                    loader.error(
                        "regex",
                        span(&at),
                        format!("invalid regular expression `{matches}`: {last}"),
                        "fix the pattern (Rust regex syntax)",
                    );
                }
                field
            }
            Matcher::Equals { field, .. } | Matcher::In { field, .. } => field,
        };
        if !fields.iter().any(|f| f == field) {
            let mut at = path;
            at.push("field".into());
            loader.error(
                "matcher",
                span(&at),
                format!("unknown field `{field}`"),
                format!("fields with a configured column: {}", fields.join(", ")),
            );
        }
    }
}
