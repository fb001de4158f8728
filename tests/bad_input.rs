//! Bad input: a clear error with its location or cause, exit 1, and nothing applied.

mod common;

use common::*;
use serde_json::json;

const HR: &str =
    "100,anna@example.com,Anna,Smit,Baker,N,1\n101,bert@example.com,Bert,Bos,Baker,S,1\n";

fn seed() -> serde_json::Value {
    json!({"groups": seed_groups(), "users": [
        {"xid": "100", "email": "anna@example.com", "firstName": "Anna", "familyName": "Smit", "groups": ["Store North"]},
        {"xid": "150", "email": "piet@example.com", "firstName": "Piet", "familyName": "Paap", "groups": ["Store South"]}
    ]})
}

/// Runs `args` expecting exit 1, and checks the network was not touched.
fn fails(sim: &Sim, repo: &ConfigRepo, args: &[&str]) -> (String, String) {
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
    (stdout(&output), stderr(&output))
}

fn redact_dir(text: &str, repo: &ConfigRepo) -> String {
    text.replace(&path_str(repo.path()), "[repo]")
}

#[test]
fn malformed_yaml_names_file_line_and_column() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    repo.write("rules.yaml", "apiVersion: speakap-sync/v1\nkind: MappingRules\ngroups:\n  - group: Managers\n    when: { field: job_title, equals: [unclosed\n");
    repo.commit("broken");
    let dir = path_str(repo.path());
    let (out, _) = fails(&sim, &repo, &["validate", "--repo", &dir]);
    insta::assert_snapshot!(out);
    let (_, err) = fails(&sim, &repo, &["apply", "--adopt", "--repo", &dir]);
    assert!(err.contains("error[yaml]: invalid YAML"), "{err}");
}

#[test]
fn schema_violations_are_all_reported_at_once_with_hints() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    repo.write(
        "rules.yaml",
        r#"apiVersion: speakap-sync/v1
kind: MappingRules
business_units:
  unknonw: reject
  map:
    N: Store North
groups:
  - group: Managers
    when: { field: job_title, contains: Manager }
roles:
  - role: superuser
    when: { field: job_title, equals: 12 }
"#,
    );
    repo.write(
        "more.yaml",
        "apiVersion: speakap-sync/v1\nkind: MappingRules\nbusiness_units:\n  map:\n    N: Store South\n---\napiVersion: speakap-sync/v1\nkind: Teams\n",
    );
    repo.commit("broken");
    let (out, _) = fails(&sim, &repo, &["validate", "--repo", &path_str(repo.path())]);
    insta::assert_snapshot!(out);
}

#[test]
fn a_matcher_with_two_shapes_is_refused_rather_than_half_read() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    repo.write(
        "rules.yaml",
        r#"apiVersion: speakap-sync/v1
kind: MappingRules
roles:
  - role: admin
    when:
      field: job_title
      equals: HR Manager
      not: { field: locations, equals: N }
groups:
  - group: Managers
    when: { field: job_title, equals: Store Manager, in: [Manager] }
  - group: Book club
    when: { all: [{ field: job_title, equals: Baker }], any: [{ field: locations, equals: N }] }
"#,
    );
    repo.commit("two shapes");
    let (out, _) = fails(&sim, &repo, &["validate", "--repo", &path_str(repo.path())]);
    for expected in [
        "a matcher has one shape; this one has a field test and `not`\n  --> rules.yaml:6:7",
        "one test per matcher, found equals and in\n  --> rules.yaml:11:11",
        "a matcher has one shape; this one has `all` and `any`\n  --> rules.yaml:13:11",
        "hint: to require several conditions, list them under `all: [..]`",
    ] {
        assert!(out.contains(expected), "{expected}\n{out}");
    }
}

#[test]
fn a_mistake_inside_the_source_section_is_named_as_itself() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let sync = sync_yaml(&sim.url);
    repo.write(
        "sync.yaml",
        &sync
            .replace("  path: hr.csv\n", "  path: hr.csv\n  delimiter: \":\"\n")
            .replace("    xid: Employee ID", "    xdi: Employee ID"),
    );
    repo.write(
        "overrides.yaml",
        "apiVersion: speakap-sync/v1\nkind: Overrides\noverrides:\n  - xid: 0017\n    reason: test\n  - xid: \"18\"\n    reason: test\n    until: 2027-02-30\n",
    );
    repo.commit("typos");
    let dir = path_str(repo.path());
    let (out, _) = fails(&sim, &repo, &["validate", "--repo", &dir]);
    for expected in [
        "source.delimiter: `:` is not an accepted value",
        "use one of \"auto\", \",\", \";\", \"\\t\", \"|\"",
        "unknown key `xdi` in source.columns",
        "write it in quotes, e.g. \"0017\"",
        "overrides.1.until: `2027-02-30` is not a valid date\n  --> overrides.yaml:8:12",
    ] {
        assert!(out.contains(expected), "{expected}\n{out}");
    }
    repo.write("sync.yaml", &sync.replace("type: csv", "type: CSV"));
    repo.remove("overrides.yaml");
    repo.commit("type");
    let (out, _) = fails(&sim, &repo, &["validate", "--repo", &dir]);
    assert!(
        out.contains("source.type `CSV` is not a type of HR source")
            && out.contains("use one of `csv`, `excel`, `sftp`, `afas` (lower case)"),
        "{out}"
    );
}

#[test]
fn semantic_errors_point_at_the_offending_value() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    repo.write(
        "rules.yaml",
        r#"apiVersion: speakap-sync/v1
kind: MappingRules
departments:
  unknown: default
  map:
    "": Bakery
groups:
  - group: Managers
    when: { field: job_title, matches: "Manager(" }
  - group: Managers
    when: { field: shoe_size, equals: "44" }
"#,
    );
    repo.write(
        "exclusions.yaml",
        "apiVersion: speakap-sync/v1\nkind: Exclusions\nexclude:\n  - xid: \"100\"\n    reason: a\n  - xid: \"100\"\n    reason: b\n",
    );
    repo.commit("broken");
    let output = run(
        &[
            "validate",
            "--repo",
            &path_str(repo.path()),
            "--format",
            "github",
        ],
        repo.path(),
    );
    assert_eq!(code(&output), 1);
    insta::assert_snapshot!(stdout(&output));
}

#[test]
fn missing_hr_columns_are_listed_with_the_columns_found() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    repo.write("hr.csv", "Employee ID,Mail,First name,Last name,Job title,Location,Department\n100,a@example.com,A,B,C,N,1\n");
    repo.commit("bad export");
    let (_, err) = fails(&sim, &repo, &["plan", "--repo", &path_str(repo.path())]);
    assert!(
        err.contains(
            "hr.csv:1: column(s) \"Email\" not found; the header has: \"Employee ID\", \"Mail\""
        ),
        "{err}"
    );
}

#[test]
fn an_empty_hr_file_never_offboards_anyone() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let dir = path_str(repo.path());
    repo.write("hr.csv", "");
    let (_, err) = fails(&sim, &repo, &["apply", "--adopt", "--repo", &dir]);
    assert!(err.contains("the HR file hr.csv is empty"), "{err}");
    repo.write("hr.csv", HR_HEADER);
    let (_, err) = fails(&sim, &repo, &["apply", "--adopt", "--repo", &dir]);
    assert!(err.contains("has a header but no rows"), "{err}");
}

#[test]
fn an_unreachable_api_is_named_with_its_address() {
    let sim = Sim::start(&seed());
    let repo = ConfigRepo::new();
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    repo.write("sync.yaml", &sync_yaml(&format!("http://127.0.0.1:{port}")));
    repo.write("rules.yaml", RULES_YAML);
    repo.write("hr.csv", &format!("{HR_HEADER}{HR}"));
    repo.commit("config");
    let (_, err) = fails(
        &sim,
        &repo,
        &["apply", "--adopt", "--repo", &path_str(repo.path())],
    );
    assert!(
        err.contains(&format!(
            "cannot reach the Speakap API at http://127.0.0.1:{port}"
        )),
        "{err}"
    );
}

#[test]
fn a_wrong_token_is_reported_without_echoing_it() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_speakap-sync"))
        .args(["apply", "--adopt", "--repo", &path_str(repo.path())])
        .env("NO_COLOR", "1")
        .env("SPEAKAP_TOKEN", "app0000000000001_wrongsecret")
        .output()
        .unwrap();
    assert_eq!(code(&output), 1);
    let err = stderr(&output);
    assert!(err.contains("invalid token (code -2, HTTP 401)"), "{err}");
    assert!(err.contains("speakap.token_env"), "{err}");
    assert!(!err.contains("wrongsecret") && !stdout(&output).contains("wrongsecret"));
    assert_eq!(repo.state_commit_count(), 0);

    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_speakap-sync"))
        .args(["plan", "--repo", &path_str(repo.path())])
        .env_remove("SPEAKAP_TOKEN")
        .output()
        .unwrap();
    assert_eq!(code(&missing), 1);
    assert!(stderr(&missing).contains("set the environment variable SPEAKAP_TOKEN"));
}

#[test]
fn a_config_that_is_not_in_git_or_not_committed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sync.yaml"),
        sync_yaml("http://127.0.0.1:9"),
    )
    .unwrap();
    let output = run(&["plan", "--repo", &path_str(dir.path())], dir.path());
    assert_eq!(code(&output), 1);
    assert!(
        stderr(&output).contains("is not inside a git repository"),
        "{}",
        stderr(&output)
    );

    let repo = ConfigRepo::new();
    repo.write("sync.yaml", &sync_yaml("http://127.0.0.1:9"));
    let output = run(
        &["apply", "--adopt", "--repo", &path_str(repo.path())],
        repo.path(),
    );
    assert_eq!(code(&output), 1);
    assert!(
        redact_dir(&stderr(&output), &repo).contains(
            "the repository has no commits yet: commit the config, or try it with --worktree"
        ),
        "{}",
        stderr(&output)
    );
}

#[test]
fn likely_slips_in_a_valid_config_are_warned_about() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    repo.write(
        "sync.yaml",
        &sync_yaml(&sim.url).replace(
            "    job_title: Job title\n",
            "    job_title: Job title\n    phone: Job title\n",
        ),
    );
    repo.write(
        "rules.yaml",
        &RULES_YAML.replace(
            "business_units:\n  map:",
            "business_units:\n  default: Store North\n  map:",
        ),
    );
    repo.commit("slips");
    let output = run(&["validate", "--repo", &path_str(repo.path())], repo.path());
    let out = stdout(&output);
    assert_eq!(code(&output), 0, "{out}");
    for expected in [
        "warning[columns]: column \"Job title\" feeds both `job_title` and `phone`",
        "warning[mapping]: business_units: `default` is used only with `unknown: default`",
    ] {
        assert!(out.contains(expected), "{expected}\n{out}");
    }
}

#[test]
fn problems_in_other_documents_are_reported_beside_a_schema_error() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    repo.write(
        "rules.yaml",
        &RULES_YAML.replace("business_units:\n", "business_units:\n  unknonw: reject\n"),
    );
    repo.write(
        "exclusions.yaml",
        "apiVersion: speakap-sync/v1\nkind: Exclusions\nexclude:\n  - when: { field: job_title, matches: \"^(Contractor\" }\n    reason: contractors\n",
    );
    repo.write(
        "overrides.yaml",
        "apiVersion: speakap-sync/v1\nkind: Overrides\noverrides:\n  - { xid: \"100\", reason: a }\n  - { xid: \"100\", reason: b }\n",
    );
    repo.commit("three problems");
    let (out, _) = fails(&sim, &repo, &["validate", "--repo", &path_str(repo.path())]);
    for expected in [
        "unknown key `unknonw` in business_units",
        "invalid regular expression",
        "XID `100` has two overrides",
    ] {
        assert!(out.contains(expected), "{expected}\n{out}");
    }
}
