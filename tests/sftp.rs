//! The SFTP source end to end: a real OpenSSH server (Debian's openssh-server, `.ci/run`
//! installs it) started on a free 127.0.0.1 port with its own host key and authorized_keys in
//! a temp dir, and the real binary fetching the HR export from it.

mod common;

use std::process::Command;
use std::time::{Duration, SystemTime};

use common::sshd::{Sshd, current_user, keygen};
use common::*;
use serde_json::json;

fn seed() -> serde_json::Value {
    json!({"groups": seed_groups(), "users": []})
}

fn config(sim: &Sim, sshd: &Sshd, auth: &str) -> String {
    let standard = sync_yaml(&sim.url);
    let start = standard.find("source:\n").unwrap();
    let end = standard.find("policy:\n").unwrap();
    let source = format!(
        "source:
  type: sftp
  host: 127.0.0.1
  port: {port}
  user: {user}
  {auth}
  known_hosts: known_hosts
  path: {drop}/employees-*.csv
  columns:
    xid: Employee ID
    email: Email
    first_name: First name
    last_name: Last name
    job_title: Job title
    locations: Location
    departments: Department
",
        port = sshd.port,
        user = current_user(),
        drop = sshd.path("drop").display(),
    );
    format!("{}{source}{}", &standard[..start], &standard[end..])
}

fn sync(repo: &ConfigRepo, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_speakap-sync"));
    command
        .args(args)
        .arg("--repo")
        .arg(repo.path())
        .current_dir(repo.path())
        .env("NO_COLOR", "1")
        .env("SPEAKAP_TOKEN", TOKEN)
        .env_remove("RUST_LOG");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

#[test]
fn the_newest_matching_file_is_fetched_with_a_key_and_the_host_key_is_enforced() {
    let sshd = Sshd::start();
    let sim = Sim::start(&seed());
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    // The newest file by modification time, not by name, is the one used.
    sshd.upload(
        "employees-b.csv",
        &format!("{HR_HEADER}100,anna@example.com,Anna,Smit,Baker,N,1\n"),
        now - 2 * hour,
    );
    sshd.upload(
        "employees-a.csv",
        &format!(
            "{HR_HEADER}100,anna@example.com,Anna,Smit,Baker,N,1\n101,bert@example.com,Bert,Bos,Store Manager,S,2\n"
        ),
        now - hour,
    );
    sshd.upload("other.csv", "not;an;export\n", now);

    let repo = ConfigRepo::new();
    repo.write("sync.yaml", &config(&sim, &sshd, "key_env: SFTP_KEY"));
    repo.write("rules.yaml", RULES_YAML);
    repo.write("known_hosts", &sshd.host_key_line("host_key"));
    repo.commit("sftp source");
    let key = std::fs::read_to_string(sshd.path("client_key")).unwrap();
    let with_key = [("SFTP_KEY", key.as_str())];

    let plan = sync(&repo, &["plan"], &with_key);
    let (out, err) = (stdout(&plan), stderr(&plan));
    assert_eq!(code(&plan), 0, "{out}\n{err}");
    let remote = format!(
        "sftp://{}@127.0.0.1:{}{}/employees-a.csv",
        current_user(),
        sshd.port,
        sshd.path("drop").display()
    );
    let expected_mtime = jiff::Timestamp::try_from(now - hour)
        .unwrap()
        .round(jiff::Unit::Second)
        .unwrap();
    // Truncated, not rounded, by the SFTP protocol: allow either second.
    let shown = [
        expected_mtime,
        expected_mtime - jiff::SignedDuration::from_secs(1),
    ]
    .iter()
    .any(|t| out.contains(&format!("HR:     {remote}, modified {t} (2 records")));
    assert!(shown, "{out}");
    assert!(
        err.contains("employees-a.csv"),
        "the file is reported: {err}"
    );
    assert!(out.contains("+ invite 101 Bert Bos  (HR line 3)"), "{out}");
    assert!(!out.contains(&key) && !err.contains(&key));

    let apply = sync(&repo, &["apply", "--adopt"], &with_key);
    assert_eq!(code(&apply), 0, "{}", stderr(&apply));
    assert!(sim.user_by_xid("101").is_some());
    let hr = &repo.state_file("apply.json").unwrap()["hr"];
    assert_eq!(hr["source"], remote.as_str());
    assert!(hr["modified"].is_string(), "{hr}");

    // A changed host key: hard error with host and fingerprint, nothing read.
    keygen(&sshd.path("other_host_key"));
    repo.write("known_hosts", &sshd.host_key_line("other_host_key"));
    repo.commit("someone else's key");
    let output = sync(&repo, &["plan"], &with_key);
    let err = stderr(&output);
    assert_eq!(code(&output), 1, "{err}");
    assert!(
        err.contains(&format!(
            "SFTP server 127.0.0.1:{}: HOST KEY CHANGED",
            sshd.port
        )),
        "{err}"
    );
    assert!(err.contains(&sshd.fingerprint("host_key")), "{err}");

    // An unknown host: the known_hosts file has no entry for it.
    repo.write("known_hosts", "[example.org]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n");
    repo.commit("unknown");
    let output = sync(&repo, &["plan"], &with_key);
    let err = stderr(&output);
    assert_eq!(code(&output), 1, "{err}");
    assert!(
        err.contains(&format!(
            "SFTP server 127.0.0.1:{}: unknown host key",
            sshd.port
        )),
        "{err}"
    );
    assert!(err.contains(&sshd.fingerprint("host_key")), "{err}");
    assert_eq!(
        repo.state_commit_count(),
        1,
        "only the first apply was recorded"
    );
}

#[test]
fn a_wrong_password_or_key_fails_clearly_without_echoing_it() {
    let sshd = Sshd::start();
    let sim = Sim::start(&seed());
    sshd.upload(
        "employees-1.csv",
        &format!("{HR_HEADER}100,anna@example.com,Anna,Smit,Baker,N,1\n"),
        SystemTime::now(),
    );
    let repo = ConfigRepo::new();
    repo.write(
        "sync.yaml",
        &config(&sim, &sshd, "password_env: SFTP_PASSWORD"),
    );
    repo.write("rules.yaml", RULES_YAML);
    repo.write("known_hosts", &sshd.host_key_line("host_key"));
    repo.commit("password");
    let before = sim.users();

    let password = "not-the-password-9f8e7d";
    let output = sync(&repo, &["apply", "--adopt"], &[("SFTP_PASSWORD", password)]);
    let err = stderr(&output);
    assert_eq!(code(&output), 1, "{err}");
    assert!(
        err.contains("the password in $SFTP_PASSWORD was refused"),
        "{err}"
    );
    assert!(!err.contains(password) && !stdout(&output).contains(password));

    keygen(&sshd.path("stranger_key"));
    repo.write("sync.yaml", &config(&sim, &sshd, "key_env: SFTP_KEY"));
    repo.commit("key");
    let stranger = std::fs::read_to_string(sshd.path("stranger_key")).unwrap();
    let output = sync(&repo, &["apply", "--adopt"], &[("SFTP_KEY", &stranger)]);
    let err = stderr(&output);
    assert_eq!(code(&output), 1, "{err}");
    assert!(err.contains("the key in $SFTP_KEY was refused"), "{err}");

    let output = sync(&repo, &["apply", "--adopt"], &[("SFTP_KEY", "garbage")]);
    let err = stderr(&output);
    assert_eq!(code(&output), 1, "{err}");
    assert!(
        err.contains("the SFTP private key in $SFTP_KEY cannot be read"),
        "{err}"
    );

    assert_eq!(sim.users(), before, "nothing applied");
    assert_eq!(repo.state_commit_count(), 0);
}
