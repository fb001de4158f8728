//! The SFTP source end to end: a real OpenSSH server (Debian's openssh-server, `.ci/run`
//! installs it) started on a free 127.0.0.1 port with its own host key and authorized_keys in
//! a temp dir, and the real binary fetching the HR export from it.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use common::*;
use serde_json::json;

const SSHD: &str = "/usr/sbin/sshd";

struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client) is installed");
    assert!(status.success());
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

impl Sshd {
    fn start() -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install Debian's openssh-server (`apt-get install -y openssh-server`; .ci/run does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        std::fs::create_dir_all(d.join("drop")).unwrap();
        // sshd refuses to start without its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host_key
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin yes
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
Subsystem sftp internal-sftp
LogLevel ERROR
",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "sshd did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Sshd { child, port, dir }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn host_key_line(&self, key: &str) -> String {
        let public = std::fs::read_to_string(self.path(&format!("{key}.pub"))).unwrap();
        let mut parts = public.split_whitespace();
        format!(
            "[127.0.0.1]:{} {} {}\n",
            self.port,
            parts.next().unwrap(),
            parts.next().unwrap()
        )
    }

    fn fingerprint(&self, key: &str) -> String {
        let out = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(self.path(&format!("{key}.pub")))
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    }

    /// Puts a file in the drop directory with the given modification time.
    fn upload(&self, name: &str, text: &str, modified: SystemTime) {
        let path = self.path(&format!("drop/{name}"));
        std::fs::write(&path, text).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(modified)
            .unwrap();
    }
}

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
