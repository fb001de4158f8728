//! HR text stays inert: hostile values in the HR export render as plain text in the Markdown
//! plan (checked with a real GFM renderer), never start a `::` workflow-command line in any
//! output, unusable identifiers are skipped and held, personal text is masked, credentials a
//! server echoes are redacted, and size limits are counted the way GitHub counts them.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::{Value, json};

fn seed() -> Value {
    json!({"groups": seed_groups(), "users": [
        {"xid": "1001", "email": "anna@example.com", "firstName": "Anna", "familyName": "Smit", "groups": ["Store North", "Bakery"]},
        {"xid": "1002", "email": "bert@example.com", "firstName": "Bert", "familyName": "Bos", "groups": ["Store North", "Bakery"]}
    ]})
}

/// One CSV field, quoted when it has to be.
fn field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

fn csv(rows: &[[&str; 7]]) -> String {
    rows.iter()
        .map(|row| row.map(field).join(",") + "\n")
        .collect()
}

/// Rows holding the hostile values of issue 18, each beside a benign value that gives a plan of
/// the same shape (an update, invitations, skipped records).
fn rows(hostile: bool) -> String {
    let pick = |bad: &'static str, good: &'static str| if hostile { bad } else { good };
    csv(&[
        [
            "1001",
            "anna@example.com",
            pick("a\r\n::error::x", "Ann"),
            "Smit",
            "Baker",
            "N",
            "1",
        ],
        [
            pick("1002\n::warning title=pwned::x", "1002 x"),
            "bert@example.com",
            "Bert",
            "Bos",
            "Baker",
            "N",
            "1",
        ],
        [
            "1003",
            "carla@example.com",
            pick("@octo-org/admins", "Carla"),
            pick("$\\color{red}{APPROVED}$", "Kok"),
            "Baker",
            "N",
            "1",
        ],
        [
            "1004",
            "dirk@example.com",
            pick("https://evil.example/x www.evil.example", "Dirk"),
            pick("</details><img src=x onerror=alert(1)>", "Mol"),
            "Baker",
            "N",
            "1",
        ],
        [
            "1005",
            "eva@example.com",
            pick("```", "Eva"),
            pick("[x](javascript:alert(1)) | a | b |", "Vos"),
            "Baker",
            "N",
            "1",
        ],
        [
            "1006",
            "fred@example.com",
            pick("line one\n- approved", "Fred"),
            pick("**bold** _em_ #123 ~~s~~ [^1] &amp; <b>x</b>", "Jansen"),
            "Baker",
            "N",
            "1",
        ],
        [
            pick("@octo-org/team", "1007"),
            "gina@example.com",
            "Gina",
            "Vos",
            "Baker",
            "N",
            "1",
        ],
        [
            "1008",
            "hank@example.com",
            "Hank",
            "Ros",
            "Baker",
            pick("<b>N</b> #12 @here", "ZZ"),
            "1",
        ],
    ])
}

fn markdown_plan(repo: &ConfigRepo, redact: bool) -> String {
    let dir = path_str(repo.path());
    let mut args = vec![
        "plan",
        "--repo",
        &dir,
        "--format",
        "markdown",
        "--now",
        "2026-11-21",
    ];
    if !redact {
        args.push("--no-redact");
    }
    let output = run(&args, repo.path());
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    stdout(&output)
}

fn gfm_options() -> comrak::Options<'static> {
    let mut options = comrak::Options::default();
    options.extension.table = true;
    options.extension.strikethrough = true;
    options.extension.autolink = true;
    options.extension.tasklist = true;
    options.extension.footnotes = true;
    options.extension.math_dollars = true;
    options
}

/// The document's elements, depth first, with text runs merged: what a value could add to.
fn shape(markdown: &str) -> (Vec<String>, Vec<String>) {
    let arena = comrak::Arena::new();
    let root = comrak::parse_document(&arena, markdown, &gfm_options());
    let mut elements = Vec::new();
    let mut texts = Vec::new();
    for node in root.descendants() {
        let depth = node.ancestors().count();
        let value = &node.data().value;
        if let Some(text) = value.text() {
            texts.push(text.to_string());
            if elements
                .last()
                .is_some_and(|e: &String| e.ends_with(" text"))
            {
                continue;
            }
        }
        elements.push(format!("{depth} {}", value.xml_node_name()));
    }
    (elements, texts)
}

#[test]
fn hostile_hr_text_forms_no_markdown_element_of_its_own() {
    let sim = Sim::start(&seed());
    let hostile = standard_repo(&sim, &rows(true));
    let benign = standard_repo(&sim, &rows(false));
    let pings = regex::Regex::new(r"@[A-Za-z0-9]|#[0-9]|://|(?i)www\.").unwrap();
    for redact in [true, false] {
        let bad = markdown_plan(&hostile, redact);
        let good = markdown_plan(&benign, redact);
        assert!(bad.contains("1003"), "{bad}");
        let (bad_shape, texts) = shape(&bad);
        let (good_shape, _) = shape(&good);
        assert_eq!(
            bad_shape, good_shape,
            "hostile values changed the document's structure:\n{bad}"
        );
        let html = comrak::markdown_to_html(&bad, &gfm_options());
        for forbidden in [
            "<img",
            "<b>",
            "href=\"javascript",
            "<a ",
            "<del>",
            "<strong>bold",
            "<em>em",
            "data-math",
            "<sup",
        ] {
            assert!(!html.contains(forbidden), "{forbidden} in\n{html}");
        }
        assert_eq!(
            html.matches("</details>").count(),
            comrak::markdown_to_html(&good, &gfm_options())
                .matches("</details>")
                .count()
        );
        // What GitHub links or pings in plain text after rendering.
        for text in &texts {
            assert!(!pings.is_match(text), "{text:?} in\n{bad}");
        }
        for line in bad.lines() {
            assert!(!line.starts_with("::"), "{line}");
        }
    }
}

fn no_workflow_command(what: &str, output: &Output) {
    for line in stdout(output).lines().chain(stderr(output).lines()) {
        assert!(
            !line.trim_start_matches('\u{feff}').starts_with("::"),
            "{what} printed a workflow command: {line:?}\nstdout:\n{}\nstderr:\n{}",
            stdout(output),
            stderr(output)
        );
    }
}

#[test]
fn no_output_carries_a_workflow_command_from_hr_data() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, &rows(true));
    let dir = path_str(repo.path());
    let plan = run(&["plan", "--repo", &dir], repo.path());
    no_workflow_command("plan", &plan);
    assert!(
        stdout(&plan).contains(r"first_name: a\r\n::error::x"),
        "{}",
        stdout(&plan)
    );
    for format in ["json", "markdown"] {
        no_workflow_command(
            format,
            &run(&["plan", "--repo", &dir, "--format", format], repo.path()),
        );
    }
    for xid in ["1001", "1002\n::warning title=pwned::x", "1006"] {
        no_workflow_command(
            "explain",
            &run(&["explain", xid, "--repo", &dir], repo.path()),
        );
    }
    let apply = run(&["apply", "--adopt", "--repo", &dir], repo.path());
    no_workflow_command("apply", &apply);
    assert_eq!(code(&apply), 0, "{}{}", stdout(&apply), stderr(&apply));
    assert!(
        stdout(&apply).contains("1006"),
        "the hostile names were invited: {}",
        stdout(&apply)
    );
    // The ID holding a line break was neither invited nor a reason to offboard 1002.
    assert!(
        sim.users().iter().all(|u| !u.to_string().contains("pwned")),
        "{:?}",
        sim.users()
    );
    let bert = sim.user_by_xid("1002").unwrap();
    assert_ne!(bert["status"], "suspended", "{bert}");
}

#[test]
fn unusable_identifiers_are_skipped_held_and_never_invited() {
    let sim = Sim::start(&seed());
    let long_xid = "9".repeat(256);
    let long_email = format!("{}@{}.example.com", "l".repeat(64), "d".repeat(178));
    assert_eq!(long_email.len(), 255);
    let hr = csv(&[
        [
            "1001",
            "anna@example.com",
            "Anna",
            "Smit",
            "Baker",
            "N",
            "1",
        ],
        [
            "1002\u{1}",
            "bert@example.com",
            "Bert",
            "Bos",
            "Baker",
            "N",
            "1",
        ],
        ["10 09", "ivo@example.com", "Ivo", "Kok", "Baker", "N", "1"],
        [
            &long_xid,
            "joop@example.com",
            "Joop",
            "Mol",
            "Baker",
            "N",
            "1",
        ],
        [
            "1011",
            "karel\u{7f}@example.com",
            "Karel",
            "Ros",
            "Baker",
            "N",
            "1",
        ],
        [
            "1012",
            "lies\u{202e}@example.com",
            "Lies",
            "Vos",
            "Baker",
            "N",
            "1",
        ],
        ["1013", &long_email, "Mark", "Bos", "Baker", "N", "1"],
    ]);
    let repo = standard_repo(&sim, &hr);
    let dir = path_str(repo.path());
    let plan = run(&["plan", "--repo", &dir], repo.path());
    let text = stdout(&plan);
    assert_eq!(code(&plan), 0, "{text}{}", stderr(&plan));
    for expected in [
        r#"hr.csv:3  XID 1002\u{1}: the employee ID (column "Employee ID") holds a control character (U+0001, character 5)"#,
        r#"hr.csv:4  XID 10 09: the employee ID (column "Employee ID") holds a space (U+0020, character 3)"#,
        r#"hr.csv:5  XID 9999"#,
        "is 256 characters long; at most 255 are read",
        r#"hr.csv:6  XID 1011: the email address (column "Email") holds a control character (U+007F, character 6)"#,
        r#"hr.csv:7  XID 1012: the email address (column "Email") holds a bidirectional text control (U+202E, character 5)"#,
        r#"hr.csv:8  XID 1013: the email address (column "Email") is 255 characters long; at most 254 are read"#,
    ] {
        assert!(text.contains(expected), "{expected}\nnot in\n{text}");
    }
    assert!(!text.contains("+ invite"), "{text}");
    assert!(!text.contains("- suspend"), "1002 is held: {text}");

    let apply = run(&["apply", "--adopt", "--repo", &dir], repo.path());
    assert_eq!(code(&apply), 0, "{}{}", stdout(&apply), stderr(&apply));
    assert_eq!(sim.users().len(), 2, "{:?}", sim.users());
    assert_ne!(sim.user_by_xid("1002").unwrap()["status"], "suspended");
}

#[test]
fn rows_split_differently_from_their_header_are_masked_in_the_markdown_plan() {
    let sim = Sim::start(&seed());
    let repo = ConfigRepo::new();
    repo.write(
        "sync.yaml",
        &sync_yaml(&sim.url).replace(
            "    departments: Department\n",
            "    departments: Department\n    phone: Phone\n",
        ),
    );
    repo.write("rules.yaml", RULES_YAML);
    repo.write(
        "hr.csv",
        "Employee ID;Email;First name;Last name;Job title;Location;Department;Phone\n\
         1001;anna@example.com;Anna;Smit;Baker;N;1;+31 6 1111 2222\n\
         1002,bert@example.com,Bert,Bosman,Baker,N,1,+31 6 1357 9246\n\
         1003;carla@example.com;Carla;Kok;Baker;N;1;06-87654321\n",
    );
    repo.commit("config");
    let dir = path_str(repo.path());
    let output = run(
        &["plan", "--repo", &dir, "--format", "markdown"],
        repo.path(),
    );
    let markdown = stdout(&output);
    assert_eq!(code(&output), 0, "{markdown}{}", stderr(&output));
    assert!(markdown.contains("hr.csv:3"), "{markdown}");
    for personal in [
        "Bosman", "1357", "9246", "bert", "8765", "4321", "1111", "2222",
    ] {
        assert!(
            !markdown.contains(personal),
            "{personal} in the shareable plan at {:?}:\n{markdown}",
            markdown
                .find(personal)
                .map(|at| &markdown[at.saturating_sub(40)..at + 10])
        );
    }
}

/// A server on 127.0.0.1 answering every request (at most 20) with `status` and a body
/// echoing the request's headers, the Authorization header first, as some proxies do; as a
/// JSON error body when `json`.
fn echo_server(status: u16, json: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                headers.push(line.trim_end().to_string());
            }
            headers.sort_by_key(|h| !h.to_ascii_lowercase().starts_with("authorization"));
            let echoed = headers.join("\n");
            let (body, kind) = if json {
                (
                    json!({"code": -1, "message": echoed}).to_string(),
                    "application/json",
                )
            } else {
                (echoed, "text/plain")
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} Echo\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn run_with(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_speakap-sync"));
    command
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env("SPEAKAP_TOKEN", TOKEN)
        .env_remove("RUST_LOG")
        .env_remove("GITHUB_STEP_SUMMARY");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn assert_redacted(output: &Output, secrets: &[&str]) {
    let text = format!("{}{}", stdout(output), stderr(output));
    assert_eq!(code(output), 1, "{text}");
    assert!(text.contains("[redacted]"), "{text}");
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }
}

#[test]
fn credentials_a_server_echoes_are_redacted_from_error_excerpts() {
    // The Speakap API, with a plain-text and a JSON error body.
    for json in [false, true] {
        let repo = standard_repo(
            &Sim::attach(&echo_server(400, json)),
            "1001,anna@example.com,Anna,Smit,Baker,N,1\n",
        );
        let dir = path_str(repo.path());
        let output = run_with(&["plan", "--repo", &dir], repo.path(), &[]);
        assert_redacted(&output, &["secret", "app0000000000001"]);
    }

    // AFAS.
    let sim = Sim::start(&seed());
    let repo = ConfigRepo::new();
    let afas = format!(
        "apiVersion: speakap-sync/v1\nkind: SyncConfig\nnetwork: \"{NETWORK}\"\nspeakap:\n  url: {}\n\
         source:\n  type: afas\n  url: {}/ProfitRestServices\n  connector: Medewerkers\n  token_env: AFAS_TOKEN\n\
         \x20 columns: {{ xid: Medewerker, email: Email }}\n",
        sim.url,
        echo_server(500, false)
    );
    repo.write("sync.yaml", &afas);
    repo.commit("config");
    let dir = path_str(repo.path());
    let afas_token = "AfasAppToken0123456789ABCDEFabcdef";
    let output = run_with(
        &["plan", "--repo", &dir],
        repo.path(),
        &[("AFAS_TOKEN", afas_token)],
    );
    assert_redacted(&output, &[afas_token, "AfasToken PH"]);

    // GitHub, for the plan comment.
    let repo = standard_repo(&sim, "1001,anna@example.com,Anna,Smit,Baker,N,1\n");
    let dir = path_str(repo.path());
    let event = repo.path().join("event.json");
    std::fs::write(&event, r#"{"pull_request": {"number": 7}}"#).unwrap();
    let github_token = "ghs_0123456789abcdefSECRETvalue";
    let output = run_with(
        &["plan", "--repo", &dir, "--comment"],
        repo.path(),
        &[
            ("GITHUB_TOKEN", github_token),
            ("GITHUB_REPOSITORY", "acme/speakap-config"),
            ("GITHUB_API_URL", &echo_server(400, false)),
            ("GITHUB_EVENT_PATH", &path_str(&event)),
        ],
    );
    assert_redacted(&output, &[github_token, "SECRETvalue"]);
}

/// A GitHub API on 127.0.0.1 for at most 10 requests: no comments yet, and the body of each
/// comment created kept.
fn fake_github() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let created = Arc::new(Mutex::new(Vec::new()));
    let kept = created.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(10) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            let mut length = 0;
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            // `GET /user` answers 403 for the Actions token: its login is github-actions[bot].
            if request.starts_with("GET /user ") {
                let _ = write!(
                    stream,
                    "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                continue;
            }
            let answer = if request.starts_with("POST") {
                let posted: Value = serde_json::from_slice(&body).unwrap();
                kept.lock()
                    .unwrap()
                    .push(posted["body"].as_str().unwrap().to_string());
                r#"{"id": 1, "body": "", "html_url": "http://github.test/c/1"}"#
            } else {
                "[]"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (url, created)
}

#[test]
fn the_summary_and_the_comment_fit_as_github_counts_them() {
    let sim = Sim::start(&json!({"groups": seed_groups(), "users": []}));
    let emoji = "😀".repeat(60);
    let hr: String = (0..3_000)
        .map(|i| {
            format!(
                "{},p{i}@example.com,{emoji},{emoji},Baker,N,1\n",
                10_000 + i
            )
        })
        .collect();
    let repo = standard_repo(&sim, &hr);
    let dir = path_str(repo.path());
    let summary = repo.path().join("summary.md");
    let event = repo.path().join("event.json");
    std::fs::write(&event, r#"{"pull_request": {"number": 7}}"#).unwrap();
    let (github, comments) = fake_github();
    let output = run_with(
        &["plan", "--repo", &dir, "--comment"],
        repo.path(),
        &[
            ("GITHUB_STEP_SUMMARY", &path_str(&summary)),
            ("GITHUB_TOKEN", "ghs_test"),
            ("GITHUB_REPOSITORY", "acme/speakap-config"),
            ("GITHUB_API_URL", &github),
            ("GITHUB_EVENT_PATH", &path_str(&event)),
        ],
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let written = std::fs::read_to_string(&summary).unwrap();
    assert!(
        written.len() <= 1 << 20,
        "{} bytes in the job summary",
        written.len()
    );
    assert!(written.contains("was cut"), "the summary was cut");
    let comments = comments.lock().unwrap();
    assert_eq!(comments.len(), 1);
    let utf16 = comments[0].encode_utf16().count();
    assert!(utf16 < 65_536, "{utf16} UTF-16 code units in the comment");
    assert!(comments[0].contains("was cut"));
}
