//! The first version of the mapping, as Speakap makes it from an employee record: which column
//! feeds which field (by header names in Dutch, English and German, checked and completed by
//! content), how dates are written, the location and department codes with their counts, and
//! which group each code goes to. A guess that is not sure carries the reason to confirm it.

use std::collections::BTreeMap;

use super::export::{CellKind, Export, Format};
use super::similarity::similarity;
use crate::fields::{FieldName, parse_date};
use crate::text::counted;

/// A proposed value, and why to confirm it when it is not sure.
#[derive(Clone, Debug)]
pub struct Guess<T> {
    pub value: T,
    pub confirm: Option<String>,
}

impl<T> Guess<T> {
    fn sure(value: T) -> Guess<T> {
        Guess {
            value,
            confirm: None,
        }
    }

    fn unsure(value: T, why: impl Into<String>) -> Guess<T> {
        Guess {
            value,
            confirm: Some(why.into()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    Dutch,
    English,
    German,
}

impl Language {
    pub fn timezone(self) -> &'static str {
        match self {
            Language::Dutch => "Europe/Amsterdam",
            Language::English => "Europe/London",
            Language::German => "Europe/Berlin",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Language::Dutch => "Dutch",
            Language::English => "English",
            Language::German => "German",
        }
    }

    /// The word a made-up group name starts with for a location or a department code.
    fn group_word(self, field: &FieldName) -> &'static str {
        match (self, field) {
            (Language::Dutch, FieldName::Locations) => "Vestiging",
            (Language::Dutch, _) => "Afdeling",
            (Language::German, FieldName::Locations) => "Standort",
            (Language::German, _) => "Abteilung",
            (Language::English, FieldName::Locations) => "Location",
            (Language::English, _) => "Department",
        }
    }
}

/// Header names (normalised by [`header_key`]) per field and language.
const HEADERS: &[(FieldName, Language, &[&str])] = {
    use FieldName::*;
    use Language::*;
    &[
        (
            Xid,
            Dutch,
            &[
                "personeelsnummer",
                "personeelsnr",
                "medewerker",
                "medewerkernummer",
                "werknemersnummer",
                "medewerker id",
                "personeels id",
            ],
        ),
        (
            Xid,
            English,
            &[
                "employee id",
                "employee number",
                "employee no",
                "emp id",
                "employee",
                "staff id",
                "staff number",
                "personnel number",
                "id",
            ],
        ),
        (
            Xid,
            German,
            &[
                "personalnummer",
                "personal nr",
                "personalnr",
                "mitarbeiternummer",
                "mitarbeiter id",
                "mitarbeiter nr",
            ],
        ),
        (
            Email,
            Dutch,
            &[
                "e mail werk",
                "email werk",
                "e mail",
                "email",
                "e mailadres",
                "emailadres",
                "e mailadres werk",
                "zakelijk e mailadres",
                "e mail zakelijk",
            ],
        ),
        (
            Email,
            English,
            &[
                "work email",
                "email",
                "e mail",
                "email address",
                "e mail address",
                "business email",
                "work e mail",
            ],
        ),
        (
            Email,
            German,
            &[
                "e mail geschäftlich",
                "e mail adresse",
                "dienstliche e mail",
                "e mail",
                "email geschäftlich",
                "e mail dienstlich",
            ],
        ),
        (FirstName, Dutch, &["roepnaam", "voornaam", "voornamen"]),
        (
            FirstName,
            English,
            &[
                "first name",
                "firstname",
                "given name",
                "preferred name",
                "known as",
            ],
        ),
        (FirstName, German, &["vorname", "rufname"]),
        (
            Infix,
            Dutch,
            &[
                "voorvoegsel",
                "tussenvoegsel",
                "voorvoegsels",
                "tussenvoegsels",
            ],
        ),
        (Infix, English, &["infix", "name prefix"]),
        (
            Infix,
            German,
            &["namenszusatz", "vorsatzwort", "namensvorsatz"],
        ),
        (LastName, Dutch, &["achternaam", "geslachtsnaam"]),
        (
            LastName,
            English,
            &["last name", "lastname", "surname", "family name"],
        ),
        (LastName, German, &["nachname", "familienname"]),
        (
            JobTitle,
            Dutch,
            &[
                "functie",
                "functienaam",
                "functie omschrijving",
                "functieomschrijving",
            ],
        ),
        (
            JobTitle,
            English,
            &["job title", "jobtitle", "position", "job"],
        ),
        (
            JobTitle,
            German,
            &[
                "stellenbezeichnung",
                "funktion",
                "position",
                "berufsbezeichnung",
                "tätigkeit",
                "stelle",
            ],
        ),
        (
            Phone,
            Dutch,
            &[
                "telefoon",
                "telefoonnummer",
                "mobiel",
                "mobiel nummer",
                "mobielnummer",
                "telefoon werk",
                "mobiel werk",
                "telefoonnummer werk",
            ],
        ),
        (
            Phone,
            English,
            &[
                "phone",
                "phone number",
                "mobile",
                "mobile phone",
                "mobile number",
                "work phone",
                "telephone",
            ],
        ),
        (
            Phone,
            German,
            &[
                "telefon",
                "telefonnummer",
                "mobilnummer",
                "handy",
                "mobiltelefon",
                "telefon geschäftlich",
            ],
        ),
        (
            Locations,
            Dutch,
            &[
                "vestiging",
                "vestigingen",
                "vestigingscode",
                "locatie",
                "locaties",
                "filiaal",
                "winkel",
                "winkelnummer",
                "kostenplaats",
            ],
        ),
        (
            Locations,
            English,
            &[
                "location",
                "locations",
                "location code",
                "site",
                "store",
                "store code",
                "branch",
                "business unit",
            ],
        ),
        (
            Locations,
            German,
            &[
                "standort",
                "standorte",
                "filiale",
                "niederlassung",
                "betrieb",
                "filialnummer",
            ],
        ),
        (
            Departments,
            Dutch,
            &[
                "afdeling",
                "afdelingen",
                "afdelingscode",
                "organisatorische eenheid",
            ],
        ),
        (
            Departments,
            English,
            &[
                "department",
                "departments",
                "department code",
                "dept",
                "team",
            ],
        ),
        (
            Departments,
            German,
            &[
                "abteilung",
                "abteilungen",
                "bereich",
                "organisationseinheit",
            ],
        ),
        (
            StartDate,
            Dutch,
            &[
                "datum in dienst",
                "in dienst",
                "startdatum",
                "begindatum",
                "datum indiensttreding",
                "begindatum dienstverband",
            ],
        ),
        (
            StartDate,
            English,
            &[
                "start date",
                "hire date",
                "date of hire",
                "employment start",
                "start",
            ],
        ),
        (
            StartDate,
            German,
            &["eintrittsdatum", "eintritt", "beginn", "startdatum"],
        ),
        (
            EndDate,
            Dutch,
            &[
                "datum uit dienst",
                "uit dienst",
                "einddatum",
                "einddatum dienstverband",
                "datum uitdiensttreding",
            ],
        ),
        (
            EndDate,
            English,
            &[
                "end date",
                "termination date",
                "leaving date",
                "leave date",
                "last working day",
            ],
        ),
        (EndDate, German, &["austrittsdatum", "austritt", "enddatum"]),
        (
            Upn,
            English,
            &[
                "upn",
                "userprincipalname",
                "user principal name",
                "login",
                "sso login",
            ],
        ),
    ]
};

/// Words that say a column is not the work one: a private address must never get the invitation.
const PRIVATE_WORDS: [&str; 8] = [
    "privé",
    "prive",
    "private",
    "privat",
    "persoonlijk",
    "personal",
    "home",
    "thuis",
];

/// A header as the dictionary has it: lower case, punctuation and `_` as spaces, single spaces.
pub fn header_key(header: &str) -> String {
    crate::fields::normalize(header)
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a header is a name the proposal knows for some field.
pub fn is_known_header(header: &str) -> bool {
    let key = header_key(header);
    HEADERS
        .iter()
        .any(|(_, _, names)| names.contains(&key.as_str()))
}

/// The column chosen for a field.
#[derive(Clone, Debug)]
pub struct ColumnChoice {
    pub field: FieldName,
    pub index: usize,
    pub header: String,
    /// Excel numbers in an ID column: read as the text the cell shows (leading zeros kept).
    pub as_text: bool,
    pub confirm: Option<String>,
}

/// A location or department code and how many people have it.
#[derive(Clone, Debug)]
pub struct CodeCount {
    pub code: String,
    pub people: usize,
}

/// Where a code goes.
#[derive(Clone, Debug)]
pub struct CodeMapping {
    pub code: CodeCount,
    /// The group; `None` when nothing resembles the code.
    pub group: Option<Guess<String>>,
}

#[derive(Debug)]
pub struct Proposal {
    pub language: Language,
    pub columns: Vec<ColumnChoice>,
    pub date_format: Guess<String>,
    pub multi_value_separator: String,
    /// Remarks on the export: for stdout, with the TODOs.
    pub notes: Vec<String>,
}

impl Proposal {
    pub fn column(&self, field: &FieldName) -> Option<&ColumnChoice> {
        self.columns.iter().find(|c| &c.field == field)
    }
}

/// Proposes the column mapping and the record format for an export.
pub fn propose(export: &Export) -> Result<Proposal, String> {
    let language = language(&export.header);
    let mut taken = vec![false; export.header.len()];
    let mut columns = Vec::new();
    for field in FieldName::BUILTIN {
        if let Some(choice) = choose_column(export, &field, &taken) {
            taken[choice.index] = true;
            columns.push(choice);
        }
    }
    for required in [FieldName::Xid, FieldName::Email] {
        if !columns.iter().any(|c| c.field == required) {
            return Err(format!(
                "no column of the export looks like the {} (the header has: {}); name it in the export, or write `source.columns` by hand",
                if required == FieldName::Xid {
                    "employee ID"
                } else {
                    "work email address"
                },
                crate::hr::quote_list(&export.header)
            ));
        }
    }
    let mut notes = Vec::new();
    let date_format = date_format(export, &columns, language);
    let multi_value_separator = "|".to_string();
    if let Some(xid) = columns.iter().find(|c| c.field == FieldName::Xid) {
        let values: Vec<&str> = export.column(xid.index).map(|c| c.text.trim()).collect();
        let mut rows_per_id: BTreeMap<&str, usize> = BTreeMap::new();
        for value in &values {
            *rows_per_id.entry(value).or_default() += 1;
        }
        let repeated: Vec<usize> = rows_per_id.into_values().filter(|&n| n > 1).collect();
        if !repeated.is_empty() {
            notes.push(format!(
                "{} in column {} on more than one row ({}): those records are skipped until HR fixes them",
                counted(repeated.len(), "employee ID is", "employee IDs are"),
                super::yaml::quoted(&xid.header),
                counted(repeated.iter().sum(), "row", "rows"),
            ));
        }
        let blank = export.rows.len() - values.len();
        if blank > 0 {
            notes.push(format!(
                "{} no employee ID: skipped",
                counted(blank, "row has", "rows have")
            ));
        }
    }
    Ok(Proposal {
        language,
        columns,
        date_format,
        multi_value_separator,
        notes,
    })
}

/// The language most header names are in (Dutch when none is known).
fn language(header: &[String]) -> Language {
    let mut counts = [
        (Language::Dutch, 0),
        (Language::English, 0),
        (Language::German, 0),
    ];
    for name in header.iter().map(|h| header_key(h)) {
        for (_, language, names) in HEADERS {
            if names.contains(&name.as_str())
                && let Some(count) = counts.iter_mut().find(|(l, _)| l == language)
            {
                count.1 += 1;
            }
        }
    }
    counts
        .iter()
        .rev()
        .max_by_key(|(_, n)| *n)
        .map_or(Language::Dutch, |(l, _)| *l)
}

/// The best column for `field` among those not taken: by name, then checked by content.
fn choose_column(export: &Export, field: &FieldName, taken: &[bool]) -> Option<ColumnChoice> {
    let names: Vec<&str> = HEADERS
        .iter()
        .filter(|(f, _, _)| f == field)
        .flat_map(|(_, _, names)| names.iter().copied())
        .collect();
    let mut best: Option<(i32, usize, Option<String>)> = None;
    for (index, header) in export.header.iter().enumerate() {
        if taken[index] || header.trim().is_empty() {
            continue;
        }
        let key = header_key(header);
        let (mut score, mut confirm) = if names.contains(&key.as_str()) {
            (100, None)
        } else if names
            .iter()
            .any(|n| n.len() >= 4 && contains_words(&key, n))
        {
            (
                60,
                Some(format!(
                    "the header {} only resembles a {} column",
                    super::yaml::quoted(header),
                    field.name()
                )),
            )
        } else if content_misfit(export, index, field).is_none()
            && matches!(field, FieldName::Xid | FieldName::Email)
        {
            (
                40,
                Some(format!(
                    "chosen by its content; the header {} is not a known name",
                    super::yaml::quoted(header)
                )),
            )
        } else {
            continue;
        };
        if PRIVATE_WORDS
            .iter()
            .any(|w| key.split(' ').any(|k| k == *w))
        {
            score -= 50;
            confirm = Some(format!(
                "{} sounds like a private column",
                super::yaml::quoted(header)
            ));
        }
        if score >= 60
            && let Some(misfit) = content_misfit(export, index, field)
        {
            score -= 30;
            confirm = Some(format!(
                "the values of {} do not look like a {} column: {misfit}",
                super::yaml::quoted(header),
                field.name()
            ));
        }
        if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
            best = Some((score, index, confirm));
        }
    }
    let (_, index, confirm) = best?;
    let as_text =
        *field == FieldName::Xid && export.column(index).any(|c| c.kind == CellKind::Number);
    Some(ColumnChoice {
        field: field.clone(),
        index,
        header: export.header[index].clone(),
        as_text,
        confirm,
    })
}

/// Whether `phrase`'s words appear in order, next to each other, among `key`'s.
fn contains_words(key: &str, phrase: &str) -> bool {
    let key: Vec<&str> = key.split(' ').collect();
    let phrase: Vec<&str> = phrase.split(' ').collect();
    key.windows(phrase.len()).any(|w| w == phrase.as_slice())
        || key
            .iter()
            .any(|k| phrase.len() == 1 && k.starts_with(phrase[0]))
}

/// Why the values of a column do not look like what `field` holds, if most of them do not.
fn content_misfit(export: &Export, index: usize, field: &FieldName) -> Option<String> {
    let values: Vec<&str> = export.column(index).map(|c| c.text.trim()).collect();
    if values.is_empty() {
        return None;
    }
    let most = |test: &dyn Fn(&str) -> bool| {
        values.iter().filter(|v| test(v)).count() * 10 >= values.len() * 8
    };
    let fewer = |what: &str| format!("fewer than 8 in 10 values are {what}");
    match field {
        FieldName::Email => (!most(&|v| {
            v.split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
        }))
        .then(|| fewer("email addresses")),
        FieldName::Xid => {
            let distinct: std::collections::BTreeSet<&str> = values.iter().copied().collect();
            if distinct.len() * 10 < values.len() * 9 {
                Some(format!(
                    "{} distinct values in {} rows, where employee IDs are unique",
                    distinct.len(),
                    values.len()
                ))
            } else {
                (!most(&|v| !v.contains(' ') && !v.contains('@')))
                    .then(|| fewer("free of spaces and @"))
            }
        }
        FieldName::Phone => (!most(&|v| {
            v.chars().filter(char::is_ascii_digit).count() >= 6
                && v.chars()
                    .all(|c| c.is_ascii_digit() || " +-()./".contains(c))
        }))
        .then(|| fewer("phone numbers")),
        FieldName::StartDate | FieldName::EndDate => {
            (!most(&|v| DATE_FORMATS.iter().any(|f| parse_date(f, v).is_some()))
                && !export.column(index).all(|c| c.kind == CellKind::Date))
            .then(|| fewer("dates"))
        }
        _ => None,
    }
}

/// Date formats seen in HR exports, tried in this order.
const DATE_FORMATS: [&str; 6] = [
    "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d",
];

/// The date format that reads every date in the date columns; workbook date cells need none.
fn date_format(export: &Export, columns: &[ColumnChoice], language: Language) -> Guess<String> {
    let texts: Vec<&str> = columns
        .iter()
        .filter(|c| matches!(c.field, FieldName::StartDate | FieldName::EndDate))
        .flat_map(|c| export.column(c.index))
        .filter(|cell| cell.kind != CellKind::Date)
        .map(|cell| cell.text.trim())
        .collect();
    if texts.is_empty() {
        return Guess::sure(DATE_FORMATS[0].to_string());
    }
    let reading: Vec<&str> = DATE_FORMATS
        .into_iter()
        .filter(|f| texts.iter().all(|t| parse_date(f, t).is_some()))
        .collect();
    match reading.as_slice() {
        [only] => Guess::sure(only.to_string()),
        [] => {
            let best = DATE_FORMATS
                .into_iter()
                .max_by_key(|f| texts.iter().filter(|t| parse_date(f, t).is_some()).count())
                .unwrap_or(DATE_FORMATS[0]);
            let unread = texts
                .iter()
                .filter(|t| parse_date(best, t).is_none())
                .count();
            Guess::unsure(
                best.to_string(),
                format!(
                    "{} not written this way; those records are skipped",
                    counted(unread, "date is", "dates are")
                ),
            )
        }
        several => {
            // Days and months both up to 12: the language decides which comes first.
            let preferred = several
                .iter()
                .find(|f| language == Language::English || !f.starts_with("%m"))
                .unwrap_or(&several[0]);
            Guess::unsure(
                preferred.to_string(),
                format!(
                    "the dates also read as {}; {} headers suggest this one",
                    several
                        .iter()
                        .filter(|f| *f != preferred)
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    language.name()
                ),
            )
        }
    }
}

/// The distinct codes of a multi-valued column with their counts, most people first.
pub fn codes(export: &Export, column: &ColumnChoice, separator: &str) -> Vec<CodeCount> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for cell in export.column(column.index) {
        for code in cell
            .text
            .split(separator)
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            *counts.entry(code.to_string()).or_default() += 1;
        }
    }
    let mut codes: Vec<CodeCount> = counts
        .into_iter()
        .map(|(code, people)| CodeCount { code, people })
        .collect();
    codes.sort_by(|a, b| b.people.cmp(&a.people).then_with(|| a.code.cmp(&b.code)));
    codes
}

/// Similarity from which a code and a group are taken to be the same without asking.
const SURE: f64 = 0.95;
/// Similarity under which a group is not proposed at all.
const AT_LEAST: f64 = 0.5;

/// Each code's group among `groups` (the network's groups of the right type): the most similar
/// name, unsure below [`SURE`], none below [`AT_LEAST`].
pub fn match_groups(codes: &[CodeCount], groups: &[String]) -> Vec<CodeMapping> {
    codes
        .iter()
        .map(|code| {
            let best = groups
                .iter()
                .map(|name| (similarity(&code.code, name), name))
                .filter(|(score, _)| *score >= AT_LEAST)
                .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)));
            let group = best.map(|(score, name)| {
                if score >= SURE {
                    Guess::sure(name.clone())
                } else {
                    Guess::unsure(
                        name.clone(),
                        format!("the names are {:.0}% alike", score * 100.0),
                    )
                }
            });
            CodeMapping {
                code: code.clone(),
                group,
            }
        })
        .collect()
}

/// Group names made from the codes, for a network whose groups are not known: a code that reads
/// as a name is the name, another gets a word before it ("Vestiging 12").
pub fn name_groups(codes: &[CodeCount], field: &FieldName, language: Language) -> Vec<CodeMapping> {
    codes
        .iter()
        .map(|code| {
            let reads_as_name = code.code.chars().any(char::is_lowercase);
            let name = if reads_as_name {
                code.code.clone()
            } else {
                format!("{} {}", language.group_word(field), code.code)
            };
            CodeMapping {
                code: code.clone(),
                group: Some(Guess::unsure(
                    name,
                    "named after the code: rename it to the Speakap group",
                )),
            }
        })
        .collect()
}

/// How the CSV export is written, for the summary.
pub fn describe_format(format: &Format) -> String {
    match format {
        Format::Csv {
            delimiter,
            encoding,
        } => format!(
            "CSV, {encoding}, delimiter {}",
            match delimiter {
                b'\t' => "tab".to_string(),
                d => format!("`{}`", *d as char),
            }
        ),
        Format::Excel { sheet, header_row } => {
            format!(
                "workbook, sheet {}, header on row {header_row}",
                super::yaml::quoted(sheet)
            )
        }
    }
}
