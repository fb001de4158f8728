//! HR sources end to end through the real binary: CSV dialects and encodings, Excel workbooks,
//! and the AFAS GetConnector (a local fake following AFAS's documented format). Fixtures are
//! generated here. SFTP has its own file (`sftp.rs`, a real OpenSSH server).

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::json;

fn seed() -> serde_json::Value {
    json!({"groups": seed_groups(), "users": []})
}

/// The standard config with another `source:` block (indented two spaces, without `source:`).
fn config_with_source(sim: &Sim, source: &str) -> String {
    let standard = sync_yaml(&sim.url);
    let start = standard.find("source:\n").unwrap();
    let end = standard.find("policy:\n").unwrap();
    format!(
        "{}source:\n{source}{}",
        &standard[..start],
        &standard[end..]
    )
}

const COLUMNS: &str = "  columns:
    xid: Employee ID
    email: Email
    first_name: First name
    last_name: Last name
    job_title: Job title
    locations: Location
    departments: Department
";

fn repo_with(sim: &Sim, source: &str) -> ConfigRepo {
    let repo = ConfigRepo::new();
    repo.write("sync.yaml", &config_with_source(sim, source));
    repo.write("rules.yaml", RULES_YAML);
    repo
}

fn plan_text(repo: &ConfigRepo) -> String {
    let output = run(&["plan", "--repo", &path_str(repo.path())], repo.path());
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    stdout(&output)
}

/// Runs `args` expecting exit 1 and an untouched network; returns stderr.
fn fails(sim: &Sim, repo: &ConfigRepo, args: &[&str]) -> String {
    let before = sim.users();
    let output = run(args, repo.path());
    assert_eq!(
        code(&output),
        1,
        "stdout: {}\nstderr: {}",
        stdout(&output),
        stderr(&output)
    );
    assert_eq!(sim.users(), before, "nothing may be applied");
    assert_eq!(repo.state_commit_count(), 0, "no audit commit");
    stderr(&output)
}

fn windows_1252(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
    assert!(!unmappable);
    bytes.into_owned()
}

fn utf16(text: &str, little_endian: bool) -> Vec<u8> {
    let mut out = if little_endian {
        vec![0xFF, 0xFE]
    } else {
        vec![0xFE, 0xFF]
    };
    for unit in text.encode_utf16() {
        out.extend(if little_endian {
            unit.to_le_bytes()
        } else {
            unit.to_be_bytes()
        });
    }
    out
}

/// The same three people in every dialect: names with diacritics, a job title with every
/// candidate delimiter and a line break in it (quoted), two locations in one cell.
fn people(delimiter: &str, newline: &str) -> String {
    let rows = [
        [
            " employee id ",
            "EMAIL",
            "First Name",
            "Last name",
            "Job title",
            "Location",
            "Department",
        ],
        ["100", "zoe@example.com", "Zoë", "Smit", "Baker", "N", "1"],
        [
            "101",
            "seb@example.com",
            "Sébastien",
            "Bos",
            "Baker, nights; weekends | holidays\nand more",
            "N|S",
            "1",
        ],
        [
            "102",
            "carla@example.com",
            "Carla",
            "Kök",
            "Store Manager",
            "S",
            "2",
        ],
    ];
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .map(|c| {
                if c.contains(delimiter) || c.contains('\n') {
                    format!("\"{c}\"")
                } else {
                    c.to_string()
                }
            })
            .collect();
        out.push_str(&cells.join(delimiter));
        out.push_str(newline);
    }
    // Trailing empty lines, as spreadsheet exports often have.
    out.push_str(newline);
    out.push_str(newline);
    out
}

#[test]
fn csv_dialects_and_encodings_read_the_same_people() {
    let sim = Sim::start(&seed());
    let source = format!("  type: csv\n  path: hr.csv\n{COLUMNS}");
    let dialects: Vec<(&str, Vec<u8>)> = vec![
        ("comma, UTF-8", people(",", "\n").into_bytes()),
        (
            "semicolon, Windows-1252, CRLF (Dutch Excel)",
            windows_1252(&people(";", "\r\n")),
        ),
        ("tab, UTF-16LE with BOM", utf16(&people("\t", "\r\n"), true)),
        ("tab, UTF-16BE with BOM", utf16(&people("\t", "\n"), false)),
        ("pipe, UTF-8 with BOM", {
            let mut bytes = b"\xEF\xBB\xBF".to_vec();
            // The multi-value separator must differ from the delimiter here.
            bytes.extend(people("|", "\n").replace("N|S", "N;S").into_bytes());
            bytes
        }),
    ];
    let mut plans = Vec::new();
    for (name, bytes) in &dialects {
        let repo = repo_with(&sim, &source);
        if name.starts_with("pipe") {
            repo.write(
                "sync.yaml",
                &config_with_source(
                    &sim,
                    &format!(
                        "  type: csv\n  path: hr.csv\n  multi_value_separator: \";\"\n{COLUMNS}"
                    ),
                ),
            );
        }
        std::fs::write(repo.path().join("hr.csv"), bytes).unwrap();
        repo.commit(name);
        let text = plan_text(&repo);
        for expected in [
            "+ invite 100 Zoë Smit  (HR line 2)",
            "+ invite 101 Sébastien Bos  (HR line 3)",
            "job_title: Baker",
            "+ invite 102 Carla Kök  (HR line 5)",
            "Plan: 3 to invite",
        ] {
            assert!(text.contains(expected), "{name}: {expected:?} in\n{text}");
        }
        assert!(
            text.contains("Store South"),
            "{name}: two locations\n{text}"
        );
        // The plan without the file-specific header lines is the same for every dialect.
        let body: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains("HR:") && !l.starts_with("Checksum") && !l.contains("config:"))
            .collect();
        plans.push((name, body.join("\n")));
    }
    for (name, body) in &plans[1..] {
        assert_eq!(body, &plans[0].1, "{name} differs from {}", plans[0].0);
    }
}

#[test]
fn a_non_utf8_file_with_a_utf8_only_encoding_is_refused_with_its_line() {
    let sim = Sim::start(&seed());
    let repo = repo_with(
        &sim,
        &format!("  type: csv\n  path: hr.csv\n  encoding: utf-8\n{COLUMNS}"),
    );
    std::fs::write(repo.path().join("hr.csv"), windows_1252(&people(";", "\n"))).unwrap();
    repo.commit("latin-1 export");
    let err = fails(
        &sim,
        &repo,
        &["apply", "--adopt", "--repo", &path_str(repo.path())],
    );
    assert!(
        err.contains("hr.csv:2: not valid UTF-8 (byte 0xEB)"),
        "{err}"
    );
    assert!(err.contains("source.encoding"), "{err}");
}

// ---------------------------------------------------------------- Excel

fn excel_source(sheet: Option<&str>) -> String {
    excel_source_at("hr.xlsx", sheet)
}

fn excel_source_at(path: &str, sheet: Option<&str>) -> String {
    let sheet = sheet.map_or(String::new(), |s| format!("  sheet: {s}\n"));
    format!(
        "  type: excel
  path: {path}
{sheet}  date_format: \"%d-%m-%Y\"
  columns:
    xid: {{ name: Employee ID, type: text }}
    email: Email
    first_name: First name
    last_name: Last name
    job_title: Job title
    phone: Phone
    locations: Location
    departments: Department
    start_date: Start date
"
    )
}

/// A workbook with an info sheet first and the staff on sheet "Medewerkers".
fn workbook() -> Vec<u8> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut book = Workbook::new();
    book.add_worksheet()
        .set_name("Info")
        .unwrap()
        .write_string(0, 0, "Exported from HR")
        .unwrap();
    let sheet = book.add_worksheet();
    sheet.set_name("Medewerkers").unwrap();
    let zeros = Format::new().set_num_format("000000");
    let date = Format::new().set_num_format("dd-mm-yyyy");
    // A title row and an empty row before the header, as some exports have.
    sheet.write_string(0, 0, "Staff list").unwrap();
    let header = [
        "Employee ID",
        "Email",
        "First name",
        "Last name",
        "Job title",
        "Phone",
        "Location",
        "Department",
        "Start date",
    ];
    for (c, h) in header.iter().enumerate() {
        sheet.write_string(2, c as u16, *h).unwrap();
    }
    // Row 4: a numeric ID shown as 000042, a department code as a number, a date cell.
    sheet.write_number_with_format(3, 0, 42, &zeros).unwrap();
    sheet.write_string(3, 1, "anna@example.com").unwrap();
    sheet.write_string(3, 2, " Anna ").unwrap();
    sheet.write_string(3, 3, "Smit").unwrap();
    sheet.write_string(3, 4, "Baker").unwrap();
    sheet.write_string(3, 5, "0612345678").unwrap();
    sheet.write_string(3, 6, "N").unwrap();
    sheet.write_number(3, 7, 1).unwrap();
    sheet
        .write_datetime_with_format(3, 8, ExcelDateTime::from_ymd(2026, 3, 1).unwrap(), &date)
        .unwrap();
    // Row 5: the ID as text with its zeros, a date written as text in date_format.
    sheet.write_string(4, 0, "000043").unwrap();
    sheet.write_string(4, 1, "bert@example.com").unwrap();
    sheet.write_string(4, 2, "Bert").unwrap();
    sheet.write_string(4, 3, "Bos").unwrap();
    sheet.write_string(4, 4, "Store Manager").unwrap();
    sheet.write_string(4, 6, "S").unwrap();
    sheet.write_number(4, 7, 2).unwrap();
    sheet.write_string(4, 8, "15-01-2026").unwrap();
    // Row 6: a plain number ID (no padding format) and a future start date cell.
    sheet.write_number(5, 0, 102).unwrap();
    sheet.write_string(5, 1, "carla@example.com").unwrap();
    sheet.write_string(5, 2, "Carla").unwrap();
    sheet.write_string(5, 3, "Kok").unwrap();
    sheet.write_string(5, 4, "Baker").unwrap();
    sheet.write_string(5, 6, "N").unwrap();
    sheet.write_number(5, 7, 1).unwrap();
    sheet
        .write_datetime_with_format(5, 8, ExcelDateTime::from_ymd(2027, 6, 1).unwrap(), &date)
        .unwrap();
    book.save_to_buffer().unwrap()
}

#[test]
fn an_xlsx_workbook_is_read_from_a_named_sheet_with_ids_and_dates_as_people_see_them() {
    let sim = Sim::start(&seed());
    let repo = repo_with(&sim, &excel_source(Some("Medewerkers")));
    std::fs::write(repo.path().join("hr.xlsx"), workbook()).unwrap();
    repo.commit("xlsx export");
    let (text, explained) = plan_and_explain_000042(&repo, "hr.xlsx");
    assert!(!text.contains(" 42 "), "{text}");
    assert!(explained.contains("Phone: 0612345678"), "{explained}");

    let dir = path_str(repo.path());
    let apply = run(
        &["apply", "--adopt", "--repo", &dir, "--now", "2026-05-01"],
        repo.path(),
    );
    assert_eq!(code(&apply), 0, "{}", stderr(&apply));
    let anna = sim
        .user_by_xid("000042")
        .expect("invited with the padded ID");
    assert_eq!(sim.group_names(&anna), ["Bakery", "Store North"]);
    let sha = repo.state_file("apply.json").unwrap()["hr"]["sha256"].clone();
    assert_eq!(sha.as_str().unwrap().len(), 64);
}

/// The legacy .xls format (BIFF8), from a small committed fixture: no Rust crate writes it
/// (`tests/fixtures/make_xls.py` made it).
#[test]
fn a_legacy_xls_workbook_is_read_like_an_xlsx_one() {
    let sim = Sim::start(&seed());
    let repo = repo_with(&sim, &excel_source_at("hr.xls", Some("Medewerkers")));
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/medewerkers.xls");
    std::fs::copy(fixture, repo.path().join("hr.xls")).unwrap();
    repo.commit("xls export");
    plan_and_explain_000042(&repo, "hr.xls");
}

/// Plans and explains the three people of the workbook fixtures (committed as `file`), checks
/// what both Excel formats must show alike, and returns the plan and explain texts.
fn plan_and_explain_000042(repo: &ConfigRepo, file: &str) -> (String, String) {
    let dir = path_str(repo.path());
    let output = run(
        &["plan", "--repo", &dir, "--now", "2026-05-01"],
        repo.path(),
    );
    let text = stdout(&output);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    for expected in [
        &format!("HR:     {file} (3 records"),
        "+ invite 000042 Anna Smit  (HR row 4)",
        "+ invite 000043 Bert Bos  (HR row 5)",
        "102 Carla Kok  invite on 2027-06-01  (HR row 6)",
        "Plan: 2 to invite",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    assert!(!text.contains("102.0"), "{text}");

    let explain = run(
        &["explain", "000042", "--repo", &dir, "--now", "2026-05-01"],
        repo.path(),
    );
    let explained = stdout(&explain);
    assert!(
        explained.contains(&format!("HR record: {file} [Medewerkers] row 4")),
        "{explained}"
    );
    assert!(explained.contains("Department: 1\n"), "{explained}");
    assert!(explained.contains("Start date: 01-03-2026"), "{explained}");
    // A value's source names the place as the workbook does: a row, not a line.
    assert!(
        explained.contains("HR column \"Email\", row 4"),
        "{explained}"
    );
    (text, explained)
}

#[test]
fn the_first_sheet_is_read_when_none_is_named_and_a_missing_sheet_lists_the_sheets() {
    let sim = Sim::start(&seed());
    let repo = repo_with(&sim, &excel_source(None));
    std::fs::write(repo.path().join("hr.xlsx"), workbook()).unwrap();
    repo.commit("xlsx export");
    let dir = path_str(repo.path());
    // The first sheet is the info sheet: its "header" lacks the columns, which are listed.
    let err = fails(&sim, &repo, &["plan", "--repo", &dir]);
    assert!(
        err.contains("hr.xlsx [Info] row 1: column(s) \"Employee ID\", \"Email\""),
        "{err}"
    );
    assert!(
        err.contains("the header has: \"Exported from HR\""),
        "{err}"
    );

    repo.write(
        "sync.yaml",
        &config_with_source(&sim, &excel_source(Some("Staff"))),
    );
    repo.commit("wrong sheet");
    let err = fails(&sim, &repo, &["plan", "--repo", &dir]);
    assert!(
        err.contains("hr.xlsx: no sheet \"Staff\"; the workbook has: \"Info\", \"Medewerkers\""),
        "{err}"
    );
}

#[test]
fn broken_spreadsheets_are_refused_and_nothing_is_applied() {
    let sim = Sim::start(&seed());
    let repo = repo_with(&sim, &excel_source(Some("Medewerkers")));
    let dir = path_str(repo.path());
    let whole = workbook();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "not a spreadsheet",
            b"Employee ID,Email\n1,a@x.nl\n".to_vec(),
            "hr.xlsx is not a readable spreadsheet",
        ),
        (
            "truncated",
            whole[..whole.len() / 2].to_vec(),
            "hr.xlsx is not a readable spreadsheet",
        ),
        ("empty", Vec::new(), "the HR file hr.xlsx is empty"),
    ];
    for (name, bytes, expected) in cases {
        std::fs::write(repo.path().join("hr.xlsx"), bytes).unwrap();
        repo.commit(name);
        let err = fails(&sim, &repo, &["apply", "--adopt", "--repo", &dir]);
        assert!(err.contains(expected), "{name}: {err}");
    }
    // A file that is missing.
    repo.remove("hr.xlsx");
    repo.commit("gone");
    let err = fails(&sim, &repo, &["apply", "--adopt", "--repo", &dir]);
    assert!(err.contains("cannot read the HR file hr.xlsx"), "{err}");
}

// ---------------------------------------------------------------- AFAS

const AFAS_TOKEN: &str = "1A2B3C4D5E6F7A8B9C0D1E2F3A4B5C6D7E8F9A0B1C2D3E4F5A6B7C8D9E0F1A2B";

#[derive(Clone, Copy, PartialEq)]
enum Fake {
    /// `rows` employees, at most `cap` a page whatever `take` asks for.
    Json { rows: usize, cap: usize },
    /// A full page for every `skip`: a connector that never ends.
    Endless,
    /// A login page instead of JSON.
    Html,
}

/// The five employees most tests read, in pages of whatever size is asked for.
const FIVE: Fake = Fake::Json {
    rows: 5,
    cap: usize::MAX,
};

/// A local AFAS GetConnector: `GET /ProfitRestServices/connectors/Speakap_Medewerkers?skip&take`.
struct AfasFake {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
    _thread: std::thread::JoinHandle<()>,
}

/// Employee `i` of the connector: XID `100 + i`, a store manager at 4, bakers otherwise.
fn afas_row(i: usize) -> serde_json::Value {
    json!({
        "Medewerker": format!("{}", 100 + i),
        "Email_werk": format!("person{i}@example.com"),
        "Voornaam": format!("Person{i}"),
        "Achternaam": "Jansen",
        "Functie": if i == 4 { json!("Store Manager") } else { json!("Baker") },
        "Vestiging": if i.is_multiple_of(2) { "N" } else { "S" },
        "Afdeling": 1,
        "Datum_in_dienst": "2020-01-01T00:00:00Z",
        "Telefoon": null
    })
}

fn start_afas(kind: Fake) -> AfasFake {
    use axum::extract::{Query, State};
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;
    use std::collections::HashMap;

    let requests = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let log = requests.clone();
    let thread = std::thread::spawn(move || {
        runtime().block_on(async move {
            let expected = format!(
                "AfasToken {}",
                base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    format!("<token><version>1</version><data>{AFAS_TOKEN}</data></token>")
                )
            );
            let handler =
                move |State(log): State<Arc<Mutex<Vec<String>>>>,
                      headers: HeaderMap,
                      Query(q): Query<HashMap<String, String>>| {
                    let expected = expected.clone();
                    async move {
                        let skip: usize = q.get("skip").and_then(|s| s.parse().ok()).unwrap_or(0);
                        let take: usize = q.get("take").and_then(|s| s.parse().ok()).unwrap_or(100);
                        log.lock().unwrap().push(format!("skip={skip}&take={take}"));
                        if kind == Fake::Html {
                            return (
                                StatusCode::OK,
                                [(header::CONTENT_TYPE, "text/html")],
                                "<!DOCTYPE html><html><body>Inloggen bij AFAS Online</body></html>"
                                    .to_string(),
                            )
                                .into_response();
                        }
                        let auth = headers
                            .get(header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok());
                        if auth != Some(expected.as_str()) {
                            return (
                                StatusCode::UNAUTHORIZED,
                                [(header::CONTENT_TYPE, "application/json")],
                                r#"{"externalMessage":"Ongeldige token"}"#.to_string(),
                            )
                                .into_response();
                        }
                        let served = match kind {
                            Fake::Json { rows, cap } => {
                                skip.min(rows)..rows.min(skip + take.min(cap))
                            }
                            _ => skip..skip + take,
                        };
                        let rows: Vec<_> = served.map(afas_row).collect();
                        axum::Json(json!({"skip": skip, "take": take, "rows": rows}))
                            .into_response()
                    }
                };
            let app = axum::Router::new()
                .route(
                    "/ProfitRestServices/connectors/Speakap_Medewerkers",
                    axum::routing::get(handler),
                )
                .with_state(log);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        })
    });
    let addr = rx.recv().unwrap();
    AfasFake {
        url: format!("http://{addr}/ProfitRestServices"),
        requests,
        _thread: thread,
    }
}

fn afas_source(url: &str) -> String {
    afas_source_paged(url, "  page_size: 2\n")
}

/// The AFAS source with its own paging settings (lines indented two spaces).
fn afas_source_paged(url: &str, paging: &str) -> String {
    format!(
        "  type: afas
  url: {url}
  connector: Speakap_Medewerkers
  token_env: AFAS_TOKEN
{paging}  columns:
    xid: Medewerker
    email: email_werk
    first_name: Voornaam
    last_name: Achternaam
    job_title: Functie
    phone: Telefoon
    locations: Vestiging
    departments: Afdeling
    start_date: Datum_in_dienst
"
    )
}

fn run_with_afas_token(args: &[&str], repo: &ConfigRepo, token: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_speakap-sync"))
        .args(args)
        .current_dir(repo.path())
        .env("NO_COLOR", "1")
        .env("SPEAKAP_TOKEN", TOKEN)
        .env("AFAS_TOKEN", token)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn the_afas_getconnector_is_read_page_by_page_and_applied() {
    let sim = Sim::start(&seed());
    let afas = start_afas(FIVE);
    let repo = repo_with(&sim, &afas_source(&afas.url));
    repo.commit("afas");
    let dir = path_str(repo.path());
    let endpoint = format!("{}/connectors/Speakap_Medewerkers", afas.url);

    let plan = run_with_afas_token(&["plan", "--repo", &dir], &repo, AFAS_TOKEN);
    let text = stdout(&plan);
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    assert!(
        text.contains(&format!("HR:     {endpoint} (5 records in 4 pages")),
        "{text}"
    );
    assert!(
        text.contains("+ invite 100 Person0 Jansen  (HR page 1 row 1)"),
        "{text}"
    );
    assert!(
        text.contains("+ invite 104 Person4 Jansen  (HR page 3 row 1)"),
        "{text}"
    );
    assert!(text.contains("Plan: 5 to invite"), "{text}");
    // Pages of 2, the short third one, and the empty fourth that ends the record.
    assert_eq!(
        *afas.requests.lock().unwrap(),
        [
            "skip=0&take=2",
            "skip=2&take=2",
            "skip=4&take=2",
            "skip=5&take=2"
        ]
    );

    let explain = run_with_afas_token(&["explain", "103", "--repo", &dir], &repo, AFAS_TOKEN);
    let explained = stdout(&explain);
    assert!(
        explained.contains(&format!("HR record: {endpoint} page 2 row 2")),
        "{explained}"
    );
    assert!(
        explained.contains("Datum_in_dienst: 2020-01-01\n"),
        "{explained}"
    );
    assert!(
        explained.contains("\", page 2 row 2"),
        "a value's source names the connector page and row: {explained}"
    );

    let apply = run_with_afas_token(&["apply", "--adopt", "--repo", &dir], &repo, AFAS_TOKEN);
    assert_eq!(code(&apply), 0, "{}", stderr(&apply));
    let manager = sim.user_by_xid("104").expect("invited");
    assert_eq!(
        sim.group_names(&manager),
        ["Bakery", "Managers", "Store North (admin)"]
    );
    let hr = &repo.state_file("apply.json").unwrap()["hr"];
    assert_eq!(hr["source"], endpoint.as_str());
    assert_eq!(hr["sha256"].as_str().unwrap().len(), 64);
}

/// Accounts for the connector's employees `from..to`, as an earlier sync left them.
fn seed_with_afas_employees(from: usize, to: usize) -> serde_json::Value {
    let users: Vec<_> = (from..to)
        .map(|i| {
            json!({
                "xid": format!("{}", 100 + i),
                "email": format!("person{i}@example.com"),
                "firstName": format!("Person{i}"),
                "familyName": "Jansen",
                "jobTitle": "Baker",
                "groups": [if i.is_multiple_of(2) { "Store North" } else { "Store South" }, "Bakery"]
            })
        })
        .collect();
    json!({"groups": seed_groups(), "users": users})
}

#[test]
fn an_afas_connector_serving_shorter_pages_than_asked_is_read_to_its_empty_page() {
    // 61 employees, pages capped at 50 while 100 are asked for: the 11 on the short second
    // page already have accounts. Stopping at the first short page would plan from 50 of 61
    // and offboard those 11.
    let sim = Sim::start(&seed_with_afas_employees(50, 61));
    let afas = start_afas(Fake::Json { rows: 61, cap: 50 });
    let repo = repo_with(&sim, &afas_source_paged(&afas.url, "  page_size: 100\n"));
    repo.commit("afas");
    let endpoint = format!("{}/connectors/Speakap_Medewerkers", afas.url);

    let plan = run_with_afas_token(
        &["plan", "--repo", &path_str(repo.path())],
        &repo,
        AFAS_TOKEN,
    );
    let text = stdout(&plan);
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    assert!(
        text.contains(&format!("HR:     {endpoint} (61 records in 3 pages")),
        "all 61 rows, in two pages and the empty one: {text}"
    );
    assert_eq!(
        *afas.requests.lock().unwrap(),
        ["skip=0&take=100", "skip=50&take=100", "skip=61&take=100"],
        "each skip advances by the rows received"
    );
    assert!(
        text.contains("Plan: 50 to invite, 0 to update, 0 to suspend"),
        "the 11 already there are left as they are, no one offboarded: {text}"
    );
    // Positions name the pages as served.
    assert!(
        text.contains("+ invite 149 Person49 Jansen  (HR page 1 row 50)"),
        "{text}"
    );
    let json = run_with_afas_token(
        &["plan", "--repo", &path_str(repo.path()), "--format", "json"],
        &repo,
        AFAS_TOKEN,
    );
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        (&json["hr"]["records"], &json["hr"]["pages"]),
        (&json!(61), &json!(3))
    );
    let explain = run_with_afas_token(
        &["explain", "160", "--repo", &path_str(repo.path())],
        &repo,
        AFAS_TOKEN,
    );
    assert!(
        stdout(&explain).contains(&format!("HR record: {endpoint} page 2 row 11")),
        "{}",
        stdout(&explain)
    );
}

#[test]
fn an_afas_connector_that_never_ends_stops_at_max_pages_and_offboards_no_one() {
    let sim = Sim::start(&seed_with_afas_employees(0, 5));
    let afas = start_afas(Fake::Endless);
    let repo = repo_with(
        &sim,
        &afas_source_paged(&afas.url, "  page_size: 2\n  max_pages: 5\n"),
    );
    repo.commit("endless");
    let before = sim.users();

    let apply = run_with_afas_token(
        &["apply", "--repo", &path_str(repo.path())],
        &repo,
        AFAS_TOKEN,
    );
    let err = stderr(&apply);
    assert_eq!(code(&apply), 1, "{err}");
    assert!(
        err.contains("5 pages read (10 rows) without reaching the empty page that ends the record; stopped at `source.max_pages` (5)"),
        "{err}"
    );
    assert!(err.contains("raise `source.max_pages`"), "{err}");
    assert_eq!(
        afas.requests.lock().unwrap().len(),
        5,
        "no page past the maximum"
    );
    assert_eq!(sim.users(), before, "nothing applied, no one offboarded");
    assert_eq!(repo.state_commit_count(), 0, "no audit commit");
}

#[test]
fn a_refused_afas_token_or_an_html_page_stops_everything_without_echoing_the_token() {
    let sim = Sim::start(&seed());
    let afas = start_afas(FIVE);
    let repo = repo_with(&sim, &afas_source(&afas.url));
    repo.commit("afas");
    let dir = path_str(repo.path());
    let before = sim.users();

    let wrong = "WRONG0000000000000000000000000000000000000000000000000000000000";
    let output = run_with_afas_token(&["apply", "--adopt", "--repo", &dir], &repo, wrong);
    let err = stderr(&output);
    assert_eq!(code(&output), 1, "{err}");
    assert!(
        err.contains("the token in $AFAS_TOKEN was refused (401 Unauthorized)"),
        "{err}"
    );
    assert!(
        !err.contains(wrong) && !stdout(&output).contains(wrong),
        "{err}"
    );

    let html = start_afas(Fake::Html);
    repo.write(
        "sync.yaml",
        &config_with_source(&sim, &afas_source(&html.url)),
    );
    repo.commit("html");
    let output = run_with_afas_token(&["apply", "--adopt", "--repo", &dir], &repo, AFAS_TOKEN);
    let err = stderr(&output);
    assert_eq!(code(&output), 1, "{err}");
    assert!(
        err.contains("page 1 is an HTML page instead of JSON"),
        "{err}"
    );
    assert!(!err.contains(AFAS_TOKEN), "{err}");

    // An unset variable is named, not guessed.
    let output = run(&["plan", "--repo", &dir], repo.path());
    assert!(
        stderr(&output).contains("the environment variable AFAS_TOKEN"),
        "{}",
        stderr(&output)
    );

    assert_eq!(sim.users(), before, "nothing applied");
    assert_eq!(repo.state_commit_count(), 0);
}

#[test]
fn a_pull_request_plan_reads_afas_where_the_base_commit_says() {
    let sim = Sim::start(&seed());
    let reviewed = start_afas(FIVE);
    let repo = repo_with(&sim, &afas_source(&reviewed.url));
    let base = repo.commit("afas");
    let elsewhere = start_afas(FIVE);
    repo.write(
        "sync.yaml",
        &config_with_source(
            &sim,
            &afas_source(&elsewhere.url)
                .replace("token_env: AFAS_TOKEN", "token_env: SPEAKAP_TOKEN"),
        ),
    );
    repo.commit("read AFAS elsewhere, sending it the Speakap token");
    let dir = path_str(repo.path());
    let plan = run_with_afas_token(
        &["plan", "--repo", &dir, "--base", &base],
        &repo,
        AFAS_TOKEN,
    );
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    assert!(
        elsewhere.requests.lock().unwrap().is_empty(),
        "nothing goes where the change says"
    );
    assert!(!reviewed.requests.lock().unwrap().is_empty());
    let text = stdout(&plan);
    assert!(
        text.contains(&format!(
            "source.url: {:?} → {:?} (this change)",
            reviewed.url, elsewhere.url
        )) && text.contains("source.token_env: \"AFAS_TOKEN\" → \"SPEAKAP_TOKEN\" (this change)"),
        "{text}"
    );
    assert!(text.contains("+ invite"), "{text}");
}

#[test]
fn an_export_piped_in_is_read_once_whole() {
    let sim = Sim::start(&seed());
    let source = format!("  type: csv\n  path: hr.csv\n{COLUMNS}");
    let repo = repo_with(&sim, &source);
    let people = people(";", "\n");
    std::fs::write(repo.path().join("hr.csv"), &people).unwrap();
    repo.commit("config");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_speakap-sync"))
        .args([
            "plan",
            "--repo",
            &path_str(repo.path()),
            "--hr",
            "/dev/stdin",
        ])
        .env("SPEAKAP_TOKEN", TOKEN)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(people.as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        code(&output),
        0,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("HR:     /dev/stdin (3 records"), "{text}");
    assert!(text.contains("Plan: 3 to invite"), "{text}");
}
