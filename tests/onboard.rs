//! Onboarding a company with the real binary: `init` on generated exports in three dialects,
//! then `validate` and `plan` in the written repository with no edits; `init --network` against
//! a simulator whose group names differ from the codes; the seed changed under a kept state.

mod common;

use std::path::Path;

use common::*;
use serde_json::json;

/// Commits everything in `dir` into a new repository, as a user does after init.
fn git_init_and_commit(dir: &Path) {
    let repo = git2::Repository::init(dir).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let signature = git2::Signature::now("Test Admin", "admin@example.com").unwrap();
    repo.commit(Some("HEAD"), &signature, &signature, "config", &tree, &[])
        .unwrap();
}

/// `init`, commit, `validate` and `plan --format json` with no edits; returns init's stdout and the plan.
fn init_validate_plan(hr: &Path, extra: &[&str]) -> (tempfile::TempDir, String, serde_json::Value) {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("config");
    let mut args = vec!["init", dir.to_str().unwrap(), "--hr", hr.to_str().unwrap()];
    args.extend_from_slice(extra);
    let init = run(&args, out.path());
    assert_eq!(code(&init), 0, "{}{}", stdout(&init), stderr(&init));
    for file in [
        "sync.yaml",
        "mapping.yaml",
        "exclusions.yaml",
        "overrides.yaml",
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=schema/speakap-sync.schema.json\n"),
            "{file}"
        );
        assert!(dir.join("schema/speakap-sync.schema.json").exists());
    }
    let gitignore = std::fs::read_to_string(dir.join(".gitignore")).unwrap();
    assert!(gitignore.contains(".speakap-sim/"), "{gitignore}");
    assert!(dir.join(".github/workflows/speakap-apply.yml").exists());
    git_init_and_commit(&dir);
    let validate = run(&["validate", "--repo", dir.to_str().unwrap()], &dir);
    assert_eq!(
        code(&validate),
        0,
        "{}{}",
        stdout(&validate),
        stderr(&validate)
    );
    let plan = run(
        &[
            "plan",
            "--repo",
            dir.to_str().unwrap(),
            "--format",
            "json",
            "--now",
            "2026-12-01",
        ],
        &dir,
    );
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    (out, stdout(&init), plan)
}

/// The XIDs the plan invites.
fn invited(plan: &serde_json::Value) -> Vec<String> {
    let text = plan.to_string();
    let mut xids: Vec<String> = plan["users"]
        .as_array()
        .unwrap_or_else(|| panic!("users in {text}"))
        .iter()
        .filter(|u| u.to_string().contains("invite"))
        .filter_map(|u| u["xid"].as_str().map(str::to_string))
        .collect();
    xids.sort();
    xids
}

#[test]
fn init_reads_a_dutch_afas_export_and_the_repository_plans_without_edits() {
    let dir = tempfile::tempdir().unwrap();
    // AFAS style: Windows-1252, `;`, leading zeros, Dutch headers, hostile location codes.
    let codes = ["AMS", "UTR", "0012", "yes", "a: x #"];
    let mut text = String::from(
        "Personeelsnummer;Roepnaam;Voorvoegsel;Achternaam;E-mail werk;E-mail privé;Telefoon;Functie;Vestiging;Afdeling;Datum in dienst;Datum uit dienst\r\n",
    );
    for i in 0..12 {
        text.push_str(&format!(
            "{:06};Renée{i};van;Dijk{i};r{i}@bakkerij.nl;prive{i}@home.nl;06 1234 56{i:02};Bakker;{};10{};{:02}-03-2026;\r\n",
            100 + i,
            codes[i % codes.len()],
            i % 2,
            13 + i
        ));
    }
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
    let hr = dir.path().join("Medewerkers.csv");
    std::fs::write(&hr, &bytes).unwrap();
    let (out, init, plan) = init_validate_plan(&hr, &[]);
    assert!(init.contains("CSV, windows-1252, delimiter `;`"), "{init}");
    assert!(init.contains("To confirm"), "{init}");
    let sync = std::fs::read_to_string(out.path().join("config/sync.yaml")).unwrap();
    assert!(sync.contains("email: \"E-mail werk\""), "{sync}");
    assert!(sync.contains("first_name: \"Roepnaam\""), "{sync}");
    assert!(sync.contains("infix: \"Voorvoegsel\""), "{sync}");
    assert!(sync.contains("date_format: \"%d-%m-%Y\""), "{sync}");
    assert!(sync.contains("# TODO: confirm"), "{sync}");
    // Every code reads back as the same string from the written YAML.
    let files =
        speakap_sync::config::read_config_files(&out.path().join("config"), "HEAD", false).unwrap();
    let config = speakap_sync::config::load(files).unwrap();
    let table = config.rules.business_units.as_ref().unwrap();
    for code in codes {
        assert!(table.map.contains_key(code), "{code:?} in {:?}", table.map);
    }
    let expected: Vec<String> = (0..12).map(|i| format!("{:06}", 100 + i)).collect();
    assert_eq!(invited(&plan), expected, "{plan}");
}

#[test]
fn init_says_why_a_column_found_by_its_name_does_not_look_right() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("Employee ID,Email,First name,Last name,Phone\n");
    for (i, xid) in ["7", "7", "8", "8", "9", "10"].iter().enumerate() {
        text.push_str(&format!("{xid},p{i}@example.com,P{i},N{i},ask reception\n"));
    }
    let hr = dir.path().join("hr.csv");
    std::fs::write(&hr, text).unwrap();
    let (_, init, _) = init_validate_plan(&hr, &[]);
    assert!(
        init.contains("the values of \"Employee ID\" do not look like a xid column: 4 distinct values in 6 rows, where employee IDs are unique"),
        "{init}"
    );
    assert!(
        init.contains("the values of \"Phone\" do not look like a phone column: fewer than 8 in 10 values are phone numbers"),
        "{init}"
    );
    assert!(
        init.contains("Note: 2 employee IDs are in column \"Employee ID\" on more than one row (4 rows): those records are skipped"),
        "{init}"
    );
}

#[test]
fn init_reads_an_english_workbook_with_zero_padded_ids_and_date_cells() {
    let dir = tempfile::tempdir().unwrap();
    let hr = dir.path().join("Employees.xlsx");
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let padded = rust_xlsxwriter::Format::new().set_num_format("000000");
    let date = rust_xlsxwriter::Format::new().set_num_format("dd/mm/yyyy");
    sheet.write_string(0, 0, "Staff export, December").unwrap();
    let header = [
        "Employee ID",
        "First Name",
        "Last Name",
        "Work Email",
        "Job Title",
        "Location",
        "Department",
        "Start Date",
    ];
    for (col, name) in header.iter().enumerate() {
        sheet.write_string(2, col as u16, *name).unwrap();
    }
    for i in 0..11u32 {
        let row = 3 + i;
        sheet
            .write_number_with_format(row, 0, (40 + i) as f64, &padded)
            .unwrap();
        sheet.write_string(row, 1, format!("Ann{i}")).unwrap();
        sheet.write_string(row, 2, format!("Lee{i}")).unwrap();
        sheet
            .write_string(row, 3, format!("ann{i}@example.com"))
            .unwrap();
        sheet.write_string(row, 4, "Cashier").unwrap();
        sheet
            .write_string(row, 5, if i % 2 == 0 { "London" } else { "Leeds" })
            .unwrap();
        sheet.write_number(row, 6, 7.0).unwrap();
        let day = rust_xlsxwriter::ExcelDateTime::from_ymd(2026, 1, 1 + i as u8).unwrap();
        sheet
            .write_datetime_with_format(row, 7, &day, &date)
            .unwrap();
    }
    workbook.save(&hr).unwrap();
    let (out, init, plan) = init_validate_plan(&hr, &[]);
    assert!(init.contains("header on row 3"), "{init}");
    let sync = std::fs::read_to_string(out.path().join("config/sync.yaml")).unwrap();
    assert!(
        sync.contains("xid: { name: \"Employee ID\", type: text }"),
        "{sync}"
    );
    assert!(sync.contains("type: excel"), "{sync}");
    let expected: Vec<String> = (0..11).map(|i| format!("{:06}", 40 + i)).collect();
    assert_eq!(invited(&plan), expected, "{plan}");
    let mapping = std::fs::read_to_string(out.path().join("config/mapping.yaml")).unwrap();
    assert!(mapping.contains("\"7\": \"Department 7\""), "{mapping}");
}

#[test]
fn init_reads_an_excel_unicode_text_export() {
    // Excel's "Unicode text": UTF-16LE with a byte order mark, tab-delimited, CRLF.
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("Employee ID\tFirst name\tLast name\tEmail\tLocation\r\n");
    for i in 0..4 {
        text.push_str(&format!(
            "{}\tZoë{i}\tÇelik{i}\tz{i}@example.com\tNorth\r\n",
            300 + i
        ));
    }
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let hr = dir.path().join("export.txt");
    std::fs::write(&hr, bytes).unwrap();
    let (_, init, plan) = init_validate_plan(&hr, &[]);
    assert!(init.contains("CSV, utf-16le, delimiter tab"), "{init}");
    assert_eq!(invited(&plan), ["300", "301", "302", "303"], "{plan}");
}

#[test]
fn init_reads_a_german_export_with_personalnummer() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from(
        "Personalnummer;Vorname;Nachname;E-Mail;Funktion;Standort;Abteilung;Eintrittsdatum\n",
    );
    for i in 0..10 {
        text.push_str(&format!(
            "{};Jürgen{i};Groß{i};j{i}@firma.de;Verkäufer;{};Verkauf;{:02}.02.2026\n",
            7000 + i,
            if i < 5 { "München" } else { "Köln" },
            14 + i
        ));
    }
    let hr = dir.path().join("mitarbeiter.csv");
    std::fs::write(&hr, text).unwrap();
    let (out, init, plan) = init_validate_plan(&hr, &[]);
    assert!(init.contains("CSV, utf-8, delimiter `;`"), "{init}");
    let sync = std::fs::read_to_string(out.path().join("config/sync.yaml")).unwrap();
    assert!(sync.contains("xid: \"Personalnummer\""), "{sync}");
    assert!(sync.contains("date_format: \"%d.%m.%Y\""), "{sync}");
    assert!(sync.contains("timezone: Europe/Berlin"), "{sync}");
    assert_eq!(invited(&plan).len(), 10, "{plan}");
}

#[test]
fn init_with_network_matches_codes_to_differently_named_groups() {
    let sim = Sim::start(&json!({
        "groups": [
            {"name": "Filiale Berlin Mitte", "type": "business_unit"},
            {"name": "Standort Hamburg", "type": "business_unit"},
            {"name": "Hamburg Fans", "type": "public"},
            {"name": "Abteilung Verkauf", "type": "department"},
            {"name": "Logistics", "type": "department"}
        ],
        "users": []
    }));
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("Personalnummer,E-Mail,Vorname,Nachname,Standort,Abteilung\n");
    for i in 0..10 {
        let (location, department) = match i % 3 {
            0 => ("berlin-mitte", "Verkauf"),
            1 => ("HAMBURG", "Logistik"),
            _ => ("XQ9", "Verkauf"),
        };
        text.push_str(&format!(
            "{},p{i}@firma.de,P{i},N{i},{location},{department}\n",
            500 + i
        ));
    }
    text.push_str("510,p10@firma.de,P10,N10,HAMBURG,Kasse\n");
    let hr = dir.path().join("export.csv");
    std::fs::write(&hr, text).unwrap();
    let (out, init, plan) = init_validate_plan(&hr, &["--network", NETWORK, "--url", &sim.url]);
    let mapping = std::fs::read_to_string(out.path().join("config/mapping.yaml")).unwrap();
    assert!(
        mapping.contains("\"berlin-mitte\": \"Filiale Berlin Mitte\"   # 4 people\n"),
        "{mapping}"
    );
    assert!(
        mapping.contains("\"HAMBURG\": \"Standort Hamburg\"   # 4 people\n"),
        "{mapping}"
    );
    assert!(
        mapping.contains("\"Logistik\": \"Logistics\"   # TODO: confirm; 3 people"),
        "{mapping}"
    );
    assert!(mapping.contains("# \"XQ9\": ?"), "{mapping}");
    assert!(
        mapping
            .contains("# \"Kasse\": ?   # TODO: confirm: no group resembles this code; 1 person\n"),
        "{mapping}"
    );
    assert!(
        init.contains("\"Kasse\": no department group resembles it; its 1 person is skipped"),
        "{init}"
    );
    assert!(
        init.contains("\"XQ9\": no business_unit group resembles it"),
        "{init}"
    );
    let sync = std::fs::read_to_string(out.path().join("config/sync.yaml")).unwrap();
    assert!(sync.contains(&format!("url: \"{}\"", sim.url)), "{sync}");
    // The people with the unmapped code are skipped and reported, the rest invited.
    assert_eq!(invited(&plan).len(), 7, "{plan}");
}

#[test]
fn a_seed_changed_since_the_state_was_made_is_named_with_its_reset() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("Employee ID,Email,Location\n");
    for i in 0..4 {
        text.push_str(&format!("{},p{i}@example.com,North\n", 10 + i));
    }
    let hr = dir.path().join("hr.csv");
    std::fs::write(&hr, text).unwrap();
    let (out, _, _) = init_validate_plan(&hr, &[]);
    let config = out.path().join("config");
    let repo = config.to_str().unwrap();
    let quiet = run(&["plan", "--repo", repo], &config);
    assert!(
        !stderr(&quiet).contains("simulator reset"),
        "{}",
        stderr(&quiet)
    );
    let seed_path = config.join("simulator/seed.json");
    let mut seed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&seed_path).unwrap()).unwrap();
    seed["groups"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "South", "type": "business_unit"}));
    std::fs::write(&seed_path, serde_json::to_string_pretty(&seed).unwrap()).unwrap();
    let warned = run(&["plan", "--repo", repo], &config);
    assert!(
        stderr(&warned).contains("speakap-sync simulator reset --repo"),
        "{}",
        stderr(&warned)
    );
    let reset = run(&["simulator", "reset", "--repo", repo], &config);
    assert_eq!(code(&reset), 0, "{}", stderr(&reset));
    assert!(!config.join(".speakap-sim/state.json").exists());
    let again = run(&["plan", "--repo", repo], &config);
    assert!(
        !stderr(&again).contains("simulator reset"),
        "{}",
        stderr(&again)
    );
}

/// A network with every kind of account the seed must carry: XIDs and none, an admin, a local
/// admin, a suspended account, a second address, a phone.
fn varied_network() -> serde_json::Value {
    json!({
        "groups": seed_groups(),
        "users": [
            {"xid": "1000", "email": "p0@example.com", "firstName": "Piet", "familyName": "Smit",
             "jobTitle": "Store Manager", "phone": "+31 6 1234 5678", "groups": ["Store North", "Bakery"],
             "adminOf": ["Store North"]},
            {"xid": "1001", "email": "p1@example.com", "firstName": "Els", "infix": "de", "familyName": "Vries",
             "jobTitle": "HR Manager", "role": "admin", "groups": ["Store South", "Office", "Book club"],
             "otherEmails": ["els@private.example"]},
            {"xid": "1002", "email": "p2@example.com", "firstName": "Old", "familyName": "Timer",
             "suspended": true, "groups": ["Store North"]},
            {"email": "p3@example.com", "firstName": "No", "familyName": "Xid", "groups": ["Store South"]}
        ]
    })
}

#[test]
fn a_plan_against_a_dump_is_the_plan_against_the_live_network() {
    let sim = Sim::start(&varied_network());
    let rows = "1000,p0@example.com,Piet,Smit,Store Manager,N,1\n\
                1001,p1@example.com,Els,Vries,HR Manager,S,2\n\
                1003,p3@example.com,No,Xid,Baker,S,1\n\
                1004,p4@example.com,New,Person,Baker,N,1\n";
    let repo = standard_repo(&sim, rows);
    let dump = repo.path().join("network.json");
    let out = run(
        &["dump", "--repo", ".", "--out", dump.to_str().unwrap()],
        repo.path(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("personal data"), "{}", stderr(&out));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dump).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
    let plan = |repo: &ConfigRepo| {
        let out = run(
            &[
                "plan",
                "--repo",
                ".",
                "--format",
                "json",
                "--now",
                "2026-12-01",
            ],
            repo.path(),
        );
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let mut plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // Where the network was read from, and what it cost, may differ; nothing else.
        for key in [
            "checksum",
            "network_fingerprint",
            "config_commit",
            "network_read",
        ] {
            plan.as_object_mut().unwrap().remove(key);
        }
        plan
    };
    let live = plan(&repo);
    let copy = ConfigRepo::new();
    copy.write("hr.csv", &format!("{HR_HEADER}{rows}"));
    copy.write("rules.yaml", RULES_YAML);
    copy.write("seed.json", &std::fs::read_to_string(&dump).unwrap());
    copy.write(
        "sync.yaml",
        &sync_yaml("embedded").replace(
            "  url: embedded\n",
            "  url: embedded\n  embedded: { seed: seed.json, state: .speakap-sim/state.json }\n",
        ),
    );
    copy.commit("rehearsal");
    let rehearsed = plan(&copy);
    assert_eq!(live, rehearsed);
    assert!(live.to_string().contains("1004"), "{live}");
}

#[test]
fn a_pseudonymized_dump_keeps_xids_and_structure_and_no_personal_data() {
    let sim = Sim::start(&varied_network());
    let repo = standard_repo(&sim, "1000,p0@example.com,Piet,Smit,Store Manager,N,1\n");
    let dump = repo.path().join("network.json");
    let out = run(
        &[
            "dump",
            "--repo",
            ".",
            "--out",
            dump.to_str().unwrap(),
            "--pseudonymize",
        ],
        repo.path(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = std::fs::read_to_string(&dump).unwrap();
    for personal in [
        "Piet",
        "Smit",
        "Vries",
        "p0@example.com",
        "els@private",
        "1234 5678",
    ] {
        assert!(!text.contains(personal), "{personal} in {text}");
    }
    let seed: serde_json::Value = serde_json::from_str(&text).unwrap();
    let users = seed["users"].as_array().unwrap();
    assert_eq!(users.len(), 4);
    let xids: Vec<&str> = users.iter().filter_map(|u| u["xid"].as_str()).collect();
    assert_eq!(xids.len(), 3);
    for xid in ["1000", "1001", "1002"] {
        assert!(xids.contains(&xid), "{xids:?}");
    }
    let admin = users.iter().find(|u| u["role"] == "admin").unwrap();
    let mut groups: Vec<&str> = admin["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g.as_str())
        .collect();
    groups.sort();
    assert_eq!(groups, ["Book club", "Office", "Store South"]);
    assert_ne!(admin["otherEmails"][0], admin["email"]);
    assert!(users.iter().any(|u| u["suspended"] == true));
    // The same address twice gets the same made-up one: a second dump names it alike.
    let again = repo.path().join("again.json");
    run(
        &[
            "dump",
            "--repo",
            ".",
            "--out",
            again.to_str().unwrap(),
            "--pseudonymize",
        ],
        repo.path(),
    );
    assert_eq!(text, std::fs::read_to_string(&again).unwrap());
    let refused = run(
        &["dump", "--repo", ".", "--out", dump.to_str().unwrap()],
        repo.path(),
    );
    assert_eq!(code(&refused), 1);
    assert!(
        stderr(&refused).contains("never overwrites"),
        "{}",
        stderr(&refused)
    );
}

/// A repository ready to apply against `sim`: HR file, workflows, and the state ref here and on
/// origin (a bare repository beside it).
fn ready_repo(sim: &Sim) -> (ConfigRepo, tempfile::TempDir) {
    let repo = standard_repo(sim, "1000,p0@example.com,Piet,Smit,Store Manager,N,1\n");
    for workflow in ["speakap-plan.yml", "speakap-apply.yml"] {
        let text = std::fs::read_to_string(example_repo().join(".github/workflows").join(workflow))
            .unwrap();
        repo.write(&format!(".github/workflows/{workflow}"), &text);
    }
    repo.commit("workflows");
    let applied = run(&["apply", "--repo", ".", "--adopt"], repo.path());
    assert_eq!(code(&applied), 0, "{}", stderr(&applied));
    let origin = tempfile::tempdir().unwrap();
    git2::Repository::init_bare(origin.path()).unwrap();
    let git = git2::Repository::open(repo.path()).unwrap();
    let mut remote = git
        .remote("origin", origin.path().to_str().unwrap())
        .unwrap();
    remote
        .push(&["refs/speakap-sync/state:refs/speakap-sync/state"], None)
        .unwrap();
    (repo, origin)
}

fn doctor(repo: &ConfigRepo, env: &[(&str, Option<&str>)]) -> (i32, String) {
    let mut command = sync_command(&["doctor", "--repo", "."], repo.path());
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let out = command.output().unwrap();
    (code(&out), stdout(&out))
}

#[test]
fn doctor_passes_a_ready_repository_and_fails_one_check_at_a_time() {
    let sim = Sim::start(&varied_network());
    let (repo, _origin) = ready_repo(&sim);
    let (status, report) = doctor(&repo, &[]);
    assert_eq!(status, 0, "{report}");
    assert!(report.contains("ready to apply"), "{report}");
    assert!(report.contains("observed:     XID on accounts"), "{report}");
    assert!(
        report.contains("not observed: POST /users/{u}/suspend"),
        "{report}"
    );
    assert!(!report.contains("FAIL"), "{report}");

    let (status, report) = doctor(&repo, &[("SPEAKAP_TOKEN", None)]);
    assert_eq!(status, 1, "{report}");
    assert!(
        report.contains("FAIL token      SPEAKAP_TOKEN is not set"),
        "{report}"
    );
    assert_eq!(report.matches("FAIL").count(), 1, "{report}");

    let (status, report) = doctor(&repo, &[("SPEAKAP_TOKEN", Some("app0000000000001_wrong"))]);
    assert_eq!(status, 1, "{report}");
    assert!(
        report.contains("FAIL token      the API refuses the token"),
        "{report}"
    );
    assert!(
        !report.contains("wrong"),
        "the token is not echoed: {report}"
    );
    assert_eq!(report.matches("FAIL").count(), 1, "{report}");

    // A plain clone lacks the state ref that origin has.
    git2::Repository::open(repo.path())
        .unwrap()
        .find_reference("refs/speakap-sync/state")
        .unwrap()
        .delete()
        .unwrap();
    let (status, report) = doctor(&repo, &[]);
    assert_eq!(status, 1, "{report}");
    assert!(
        report
            .contains("FAIL state ref  origin has refs/speakap-sync/state but this clone does not"),
        "{report}"
    );
    assert!(report.contains("fix: git fetch origin"), "{report}");
    assert_eq!(report.matches("FAIL").count(), 1, "{report}");
}

#[test]
fn doctor_fails_an_sftp_source_whose_host_key_is_unknown() {
    let sshd = common::sshd::Sshd::start();
    let sim = Sim::start(&varied_network());
    let (repo, _origin) = ready_repo(&sim);
    let sync = sync_yaml(&sim.url);
    let start = sync.find("source:\n").unwrap();
    let end = sync.find("policy:\n").unwrap();
    let source = format!(
        "source:\n  type: sftp\n  host: 127.0.0.1\n  port: {}\n  user: {}\n  password_env: SFTP_PASSWORD\n  known_hosts: known_hosts\n  path: /drop/hr.csv\n  columns: {{ xid: Employee ID, email: Email, first_name: First name, last_name: Last name, job_title: Job title, locations: Location, departments: Department }}\n",
        sshd.port,
        common::sshd::current_user()
    );
    repo.write(
        "sync.yaml",
        &format!("{}{source}{}", &sync[..start], &sync[end..]),
    );
    repo.write("known_hosts", "");
    repo.commit("sftp");
    let (status, report) = doctor(&repo, &[("SFTP_PASSWORD", Some("unused"))]);
    assert_eq!(status, 1, "{report}");
    assert!(report.contains("FAIL hr source"), "{report}");
    assert!(report.to_lowercase().contains("host key"), "{report}");
    assert_eq!(report.matches("FAIL").count(), 1, "{report}");
}

#[test]
fn explain_suggests_the_xid_with_its_leading_zeros_and_usage_names_dir() {
    let sim = Sim::start(&json!({"groups": seed_groups(), "users": []}));
    let repo = standard_repo(&sim, "000004,p4@example.com,Ann,Lee,Baker,N,1\n");
    let out = run(
        &["explain", "4", "--repo", ".", "--now", "2026-12-01"],
        repo.path(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("did you mean `000004`?"),
        "{}",
        stdout(&out)
    );
    let help = run(&["plan", "--help"], repo.path());
    assert!(stdout(&help).contains("--repo <DIR>"), "{}", stdout(&help));
    let bad_date = run(&["plan", "--now", "21-11-2026"], repo.path());
    assert!(
        stderr(&bad_date).contains("YYYY-MM-DD"),
        "{}",
        stderr(&bad_date)
    );
}
