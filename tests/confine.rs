//! Inputs stay inside the config repository, and a pull request's plan connects only where
//! reviewed config says: paths in the config (as written and after symlinks), symlinked config
//! files, connection settings taken from `--base`, and config merged across files.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::json;

const HR: &str =
    "100,anna@example.com,Anna,Smit,Baker,N,1\n101,bert@example.com,Bert,Bos,Baker,S,1\n";

fn seed() -> serde_json::Value {
    json!({"groups": seed_groups(), "users": []})
}

/// `speakap-sync` as `run` does, with more environment variables.
fn run_with(args: &[&str], repo: &ConfigRepo, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_speakap-sync"));
    command
        .args(args)
        .current_dir(repo.path())
        .env("NO_COLOR", "1")
        .env("SPEAKAP_TOKEN", TOKEN)
        .env_remove("GITHUB_ACTOR")
        .env_remove("RUST_LOG");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn fails(output: &Output) -> String {
    assert_eq!(
        code(output),
        1,
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
    stderr(output)
}

#[cfg(unix)]
fn symlink(target: &std::path::Path, link: &std::path::Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

#[test]
fn a_path_in_the_config_that_leads_out_of_the_repository_is_refused_where_it_is_written() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let dir = path_str(repo.path());
    for path in [
        "../../../../etc/passwd",
        "/etc/passwd",
        "/proc/self/environ",
    ] {
        repo.write(
            "sync.yaml",
            &sync_yaml(&sim.url).replace("path: hr.csv", &format!("path: {path}")),
        );
        repo.commit("read a file elsewhere");
        let err = fails(&run(&["validate", "--repo", &dir], repo.path()));
        let out = stdout(&run(&["validate", "--repo", &dir], repo.path()));
        assert!(
            out.contains(&format!("`source.path` is {path:?}")) && out.contains("sync.yaml:9:"),
            "names the setting, its value and where it is set: {out}{err}"
        );
        assert!(
            out.contains("must be inside the config repository") && out.contains("--hr FILE"),
            "says what to do: {out}"
        );
        let plan = run(&["plan", "--repo", &dir], repo.path());
        fails(&plan);
        let everything = format!("{}{}", stdout(&plan), stderr(&plan));
        assert!(
            !everything.contains("root:") && !everything.contains("PATH="),
            "nothing of the file is read: {everything}"
        );
    }
}

#[cfg(unix)]
#[test]
fn a_symlink_out_of_the_repository_is_refused_where_the_file_is_opened_but_hr_may_go_anywhere() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let outside = tempfile::tempdir().unwrap();
    let export = outside.path().join("export.csv");
    std::fs::write(&export, format!("{HR_HEADER}{HR}")).unwrap();
    repo.remove("hr.csv");
    symlink(&export, &repo.path().join("hr.csv"));
    repo.commit("the export by a link");
    let dir = path_str(repo.path());

    let err = fails(&run(&["plan", "--repo", &dir], repo.path()));
    assert!(
        err.contains("`source.path` (at sync.yaml:9) is \"hr.csv\", which resolves to")
            && err.contains("outside the config repository"),
        "{err}"
    );
    assert!(!err.contains("anna"), "nothing of the file is read: {err}");

    // The operator's command line is not confined.
    let export = path_str(&export);
    let plan = run(&["plan", "--repo", &dir, "--hr", &export], repo.path());
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    assert!(stdout(&plan).contains("+ invite"), "{}", stdout(&plan));
}

#[test]
fn the_known_hosts_file_and_the_simulator_seed_are_confined_too() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let sftp = "source:\n  type: sftp\n  host: 127.0.0.1\n  user: hr\n  password_env: HR_PASSWORD\n  known_hosts: ../../etc/ssh/ssh_known_hosts\n  path: /upload/hr.csv\n  columns: { xid: Employee ID, email: Email }\npolicy:";
    let yaml = sync_yaml(&sim.url);
    let source = yaml.find("source:").unwrap();
    let policy = yaml.find("policy:").unwrap();
    repo.write(
        "sync.yaml",
        &format!("{}{sftp}{}", &yaml[..source], &yaml[policy + 7..]),
    );
    repo.commit("sftp");
    let dir = path_str(repo.path());
    let out = stdout(&run(&["validate", "--repo", &dir], repo.path()));
    assert!(
        out.contains("`source.known_hosts` is \"../../etc/ssh/ssh_known_hosts\": `..` climbs out of the repository")
            && out.contains("sync.yaml:12:"),
        "{out}"
    );

    let repo = embedded_repo(".speakap-sim/state.json");
    repo.write(
        "sync.yaml",
        &std::fs::read_to_string(repo.path().join("sync.yaml"))
            .unwrap()
            .replace("seed: seed.json", "seed: /etc/passwd"),
    );
    repo.commit("seed elsewhere");
    let dir = path_str(repo.path());
    let out = stdout(&run(&["validate", "--repo", &dir], repo.path()));
    assert!(
        out.contains("`speakap.embedded.seed` is \"/etc/passwd\": an absolute path")
            && out.contains("sync.yaml:7:"),
        "{out}"
    );
}

/// A repository planned with the embedded simulator, its state kept at `state`.
fn embedded_repo(state: &str) -> ConfigRepo {
    let repo = ConfigRepo::new();
    repo.write(
        "sync.yaml",
        &sync_yaml("embedded").replace(
            "  url: embedded\n",
            &format!("  url: embedded\n  embedded:\n    seed: seed.json\n    state: {state}\n"),
        ),
    );
    repo.write("rules.yaml", RULES_YAML);
    repo.write("hr.csv", &format!("{HR_HEADER}{HR}"));
    repo.write("seed.json", &seed().to_string());
    repo.commit("config");
    repo
}

#[cfg(unix)]
#[test]
fn the_embedded_simulator_never_writes_outside_the_repository() {
    let outside = tempfile::tempdir().unwrap();
    let state = outside.path().join("x.json");
    let repo = embedded_repo(&path_str(&state));
    let dir = path_str(repo.path());
    fails(&run(&["validate", "--repo", &dir], repo.path()));
    let out = stdout(&run(&["validate", "--repo", &dir], repo.path()));
    assert!(
        out.contains(&format!(
            "`speakap.embedded.state` is {:?}: an absolute path",
            path_str(&state)
        )) && out.contains("sync.yaml:8:"),
        "{out}"
    );
    let err = fails(&run(&["apply", "--repo", &dir], repo.path()));
    assert!(err.contains("speakap.embedded.state"), "{err}");
    assert!(!state.exists(), "nothing is written outside");

    // Through a link to a directory elsewhere.
    let repo = embedded_repo(".speakap-sim/state.json");
    symlink(outside.path(), &repo.path().join(".speakap-sim"));
    let dir = path_str(repo.path());
    let err = fails(&run(&["apply", "--repo", &dir], repo.path()));
    assert!(
        err.contains("`speakap.embedded.state` (at sync.yaml:8) is \".speakap-sim/state.json\", which resolves to")
            && err.contains("outside the config repository"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing is written outside"
    );
    // Inside, it works, even with a link left where the state is first written.
    std::fs::remove_file(repo.path().join(".speakap-sim")).unwrap();
    std::fs::create_dir(repo.path().join(".speakap-sim")).unwrap();
    let elsewhere = outside.path().join("y.json");
    symlink(&elsewhere, &repo.path().join(".speakap-sim/state.json.tmp"));
    let apply = run(&["apply", "--repo", &dir], repo.path());
    assert_eq!(code(&apply), 0, "{}", stderr(&apply));
    assert!(repo.path().join(".speakap-sim/state.json").exists());
    assert!(!elsewhere.exists(), "nothing is written through the link");
}

#[cfg(unix)]
#[test]
fn a_symlinked_config_file_is_refused_alike_in_commit_and_worktree_mode() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("exclusions.yaml");
    std::fs::write(
        &target,
        "apiVersion: speakap-sync/v1\nkind: Exclusions\nexclude: []\n",
    )
    .unwrap();
    std::fs::create_dir(repo.path().join("more")).unwrap();
    symlink(&target, &repo.path().join("more/exclusions.yaml"));
    repo.commit("exclusions kept elsewhere");
    let dir = path_str(repo.path());
    let expected = format!(
        "more/exclusions.yaml is a symbolic link (to {:?}); config files are read from the repository itself, never through links",
        path_str(&target)
    );
    for args in [
        vec!["validate", "--repo", &dir],
        vec!["validate", "--repo", &dir, "--worktree"],
        vec!["plan", "--repo", &dir, "--worktree"],
    ] {
        let err = fails(&run(&args, repo.path()));
        assert!(err.contains(&expected), "{args:?}: {err}");
    }
}

/// A listener on 127.0.0.1 that answers every request 401 and keeps what it was sent. Stops
/// when dropped.
struct Rogue {
    url: String,
    received: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Rogue {
    fn start() -> Rogue {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::<Mutex<Vec<String>>>::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (received, stop) = (received.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            stream.set_nonblocking(false).unwrap();
                            stream
                                .set_read_timeout(Some(Duration::from_secs(2)))
                                .unwrap();
                            let mut request = vec![0; 16 * 1024];
                            let read = stream.read(&mut request).unwrap_or(0);
                            received
                                .lock()
                                .unwrap()
                                .push(String::from_utf8_lossy(&request[..read]).into_owned());
                            let _ = stream.write_all(
                                b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                            );
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Err(_) => return,
                    }
                }
            })
        };
        Rogue {
            url,
            received,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Rogue {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn a_pull_request_plan_connects_by_the_base_commits_settings() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    let base = repo.commit("base");
    let rogue = Rogue::start();
    repo.write(
        "sync.yaml",
        &sync_yaml(&rogue.url).replace(
            "  requests_per_second: 1000\n",
            "  requests_per_second: 1000\n  token_env: OTHER_SECRET\n",
        ),
    );
    repo.commit("send the token elsewhere");
    let dir = path_str(repo.path());
    let env = [("OTHER_SECRET", "the-other-secret")];

    let plan = run_with(&["plan", "--repo", &dir, "--base", &base], &repo, &env);
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    assert_eq!(
        rogue.requests(),
        Vec::<String>::new(),
        "nothing goes where the change says"
    );
    let text = stdout(&plan);
    assert!(
        text.contains("⚠ This change edits connection settings: they take effect once merged; this plan used the base commit's:")
            && text.contains(&format!("speakap.url: {:?} → {:?} (this change)", sim.url, rogue.url))
            && text.contains("speakap.token_env: \"SPEAKAP_TOKEN\" → \"OTHER_SECRET\" (this change)"),
        "{text}"
    );
    assert!(
        text.contains("+ invite"),
        "planned against the base's network: {text}"
    );
    assert!(
        stderr(&plan)
            .contains("this change edits connection settings (speakap.url, speakap.token_env)"),
        "{}",
        stderr(&plan)
    );

    let markdown = run_with(
        &[
            "plan", "--repo", &dir, "--base", &base, "--format", "markdown",
        ],
        &repo,
        &env,
    );
    assert_eq!(code(&markdown), 0, "{}", stderr(&markdown));
    let comment = stdout(&markdown);
    assert!(
        comment.contains("> ⚠️ **This change edits connection settings**")
            && comment.contains(&format!(
                "> - `speakap.url`: `{}` → `{}`",
                sim.url, rogue.url
            ))
            && comment.contains("> - `speakap.token_env`: `SPEAKAP_TOKEN` → `OTHER_SECRET`"),
        "{comment}"
    );
    assert_eq!(rogue.requests(), Vec::<String>::new());

    // Without --base (a run on main, where the change is merged) the config is the config.
    let merged = run_with(&["plan", "--repo", &dir], &repo, &env);
    fails(&merged);
    assert!(
        rogue
            .requests()
            .iter()
            .any(|r| r.contains("Bearer the-other-secret")),
        "the merged config connects where it says"
    );
}

#[test]
fn a_pull_request_that_adds_the_config_cannot_choose_where_the_token_goes() {
    let rogue = Rogue::start();
    let repo = ConfigRepo::new();
    repo.write("README.md", "Speakap config, to come\n");
    let base = repo.commit("empty");
    repo.write("sync.yaml", &sync_yaml(&rogue.url));
    repo.write("rules.yaml", RULES_YAML);
    repo.write("hr.csv", &format!("{HR_HEADER}{HR}"));
    repo.commit("add the config");
    let dir = path_str(repo.path());

    let err = fails(&run(
        &["plan", "--repo", &dir, "--base", &base],
        repo.path(),
    ));
    assert!(
        err.contains(&format!(
            "--base {base} has no valid SyncConfig to take the connection settings from, and this change's own would choose where the credentials go: `speakap.url` {:?} (at sync.yaml:5), `speakap.token_env` \"SPEAKAP_TOKEN\" (by default)",
            rogue.url
        )),
        "{err}"
    );
    assert!(err.contains("Merge the SyncConfig first"), "{err}");
    assert_eq!(
        rogue.requests(),
        Vec::<String>::new(),
        "the token went nowhere"
    );

    // The simulator needs no secret: such a pull request gets its plan.
    let repo = embedded_repo(".speakap-sim/state.json");
    let base = repo.commit("base");
    repo.remove("sync.yaml");
    let added = repo.commit("no config yet");
    assert_ne!(added, base);
    repo.write(
        "sync.yaml",
        &sync_yaml("embedded").replace(
            "  url: embedded\n",
            "  url: embedded\n  embedded:\n    seed: seed.json\n    state: .speakap-sim/state.json\n",
        ),
    );
    repo.commit("the config again");
    let dir = path_str(repo.path());
    let plan = run(&["plan", "--repo", &dir, "--base", &added], repo.path());
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    assert!(stdout(&plan).contains("+ invite"), "{}", stdout(&plan));
}

/// A MappingRules file whose business units are `codes`, each on its own line from line 5.
fn business_units(codes: impl Iterator<Item = usize>) -> String {
    let mut text =
        "apiVersion: speakap-sync/v1\nkind: MappingRules\nbusiness_units:\n  map:\n".to_string();
    for code in codes {
        text.push_str(&format!("    C{code}: Store North\n"));
    }
    text
}

#[test]
fn keys_set_in_two_files_are_reported_with_both_places() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    repo.write("units-a.yaml", &business_units(0..3000));
    // Codes 1000 and 2999 are in both files.
    repo.write(
        "units-b.yaml",
        &business_units([1000].into_iter().chain(2999..6000)),
    );
    repo.commit("two tables");
    let dir = path_str(repo.path());
    let output = run(
        &["validate", "--repo", &dir, "--format", "json"],
        repo.path(),
    );
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    let diagnostics: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let duplicates: Vec<String> = diagnostics
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["rule"] == "duplicate-key")
        .map(|d| {
            format!(
                "{} at {}:{} first at {}:{}",
                d["message"].as_str().unwrap(),
                d["location"]["file"].as_str().unwrap(),
                d["location"]["line"],
                d["related"][0][0]["file"].as_str().unwrap(),
                d["related"][0][0]["line"]
            )
        })
        .collect();
    assert_eq!(
        duplicates,
        [
            "MappingRules `business_units.map.C1000` is defined twice at units-b.yaml:5 first at units-a.yaml:1005",
            "MappingRules `business_units.map.C2999` is defined twice at units-b.yaml:6 first at units-a.yaml:3004",
        ],
        "{diagnostics:#}"
    );
}
