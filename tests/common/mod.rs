//! Test harness: real git repositories in temp dirs, the real `speakap-sim` binary on a loopback
//! port, and the real `speakap-sync` binary. The simulator's network is inspected over plain HTTP
//! (not through speakap-sync's client), so a client bug cannot hide itself.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

pub mod sshd;

pub const NETWORK: &str = "0123456789abcdef";
pub const TOKEN: &str = "app0000000000001_secret";

/// A config repository in a temp dir.
pub struct ConfigRepo {
    pub dir: tempfile::TempDir,
    repo: git2::Repository,
}

impl ConfigRepo {
    pub fn new() -> ConfigRepo {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let mut config = repo.config().unwrap();
        config.set_str("user.name", "Test Admin").unwrap();
        config.set_str("user.email", "admin@example.com").unwrap();
        ConfigRepo { dir, repo }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, relative: &str, text: &str) {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub fn remove(&self, relative: &str) {
        std::fs::remove_file(self.dir.path().join(relative)).unwrap();
    }

    /// Commits everything in the working tree; returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        let mut index = self.repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.update_all(["*"], None).unwrap();
        index.write().unwrap();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let signature = git2::Signature::now("Test Admin", "admin@example.com").unwrap();
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        self.repo
            .commit(
                Some("HEAD"),
                &signature,
                &signature,
                message,
                &tree,
                &parents,
            )
            .unwrap()
            .to_string()
    }

    /// A file from the tip of the audit ref, parsed as JSON.
    pub fn state_file(&self, path: &str) -> Option<Value> {
        let reference = self.repo.find_reference("refs/speakap-sync/state").ok()?;
        let tree = reference.peel_to_tree().unwrap();
        let entry = tree.get_path(Path::new(path)).ok()?;
        let blob = entry.to_object(&self.repo).unwrap().peel_to_blob().unwrap();
        Some(serde_json::from_slice(blob.content()).unwrap())
    }

    pub fn state_commit_count(&self) -> usize {
        let Ok(reference) = self.repo.find_reference("refs/speakap-sync/state") else {
            return 0;
        };
        let mut walk = self.repo.revwalk().unwrap();
        walk.push(reference.target().unwrap()).unwrap();
        walk.count()
    }

    pub fn state_message(&self) -> String {
        let reference = self.repo.find_reference("refs/speakap-sync/state").unwrap();
        reference
            .peel_to_commit()
            .unwrap()
            .message()
            .unwrap()
            .to_string()
    }
}

/// A `speakap-sim serve` process on 127.0.0.1; killed on drop.
pub struct Sim {
    child: Option<Child>,
    pub url: String,
    _state: Option<tempfile::TempDir>,
}

impl Sim {
    pub fn start(seed: &Value) -> Sim {
        Sim::start_with(seed, &[])
    }

    /// With extra `speakap-sim serve` flags (faults, `--as-real-network`).
    pub fn start_with(seed: &Value, flags: &[&str]) -> Sim {
        let state = tempfile::tempdir().unwrap();
        let seed_path = state.path().join("seed.json");
        std::fs::write(&seed_path, serde_json::to_string(seed).unwrap()).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_speakap-sim"))
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--network",
                NETWORK,
                "--token",
                TOKEN,
                "--seed",
            ])
            .arg(&seed_path)
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first_line)
            .unwrap();
        let url = first_line
            .trim()
            .strip_prefix("listening on ")
            .expect("the simulator announces its address")
            .to_string();
        Sim {
            child: Some(child),
            url,
            _state: Some(state),
        }
    }

    /// A view of a simulator started elsewhere.
    pub fn attach(url: &str) -> Sim {
        Sim {
            child: None,
            url: url.to_string(),
            _state: None,
        }
    }

    fn get(&self, path: &str) -> Value {
        let request = self.api(reqwest::Method::GET, path);
        runtime().block_on(async { request.send().await.unwrap().json::<Value>().await.unwrap() })
    }

    /// A request to the simulated API as an authorised client, for `path` under the network.
    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, format!("{}/networks/{NETWORK}/{path}", self.url))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .header("Accept", "application/vnd.speakap.api-v1.8.2+json+hal")
    }

    /// Sets the simulator's faults (`PUT /_sim/faults`); `{}` clears them.
    pub fn set_faults(&self, faults: &Value) {
        let request = reqwest::Client::new()
            .put(format!("{}/_sim/faults", self.url))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .json(faults);
        let status = runtime().block_on(async { request.send().await.unwrap().status() });
        assert!(status.is_success(), "PUT /_sim/faults: {status}");
    }

    /// All active users with their memberships, straight from the API.
    pub fn users(&self) -> Vec<Value> {
        let mut users = Vec::new();
        loop {
            let page = self.get(&format!(
                "users/?embed=memberships&limit=100&offset={}",
                users.len()
            ));
            let items = page["_embedded"]["users"].as_array().unwrap().clone();
            let total = page["total"].as_u64().unwrap() as usize;
            let empty = items.is_empty();
            users.extend(items);
            if empty || users.len() >= total {
                return users;
            }
        }
    }

    pub fn groups(&self) -> Vec<Value> {
        self.get("groups/?limit=100")["_embedded"]["groups"]
            .as_array()
            .unwrap()
            .clone()
    }

    pub fn user_by_xid(&self, xid: &str) -> Option<Value> {
        self.users().into_iter().find(|u| u["XID"] == xid)
    }

    /// Names of the groups a user belongs to, with `(admin)` after local-admin ones.
    pub fn group_names(&self, user: &Value) -> Vec<String> {
        let groups = self.groups();
        let mut names: Vec<String> = user["_embedded"]["memberships"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| {
                let group = m["group"].as_str()?;
                let name = groups.iter().find(|g| g["EID"] == group).unwrap()["name"]
                    .as_str()
                    .unwrap()
                    .to_string();
                Some(if m["role"] == "admin" {
                    format!("{name} (admin)")
                } else {
                    name
                })
            })
            .collect();
        names.sort();
        names
    }

    pub fn network_role(user: &Value) -> String {
        user["_embedded"]["memberships"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m.get("group").is_none())
            .map(|m| m["role"].as_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `speakap-sync` with no color and the test token in the environment.
pub fn run(args: &[&str], cwd: &Path) -> Output {
    sync_command(args, cwd).output().unwrap()
}

/// The `speakap-sync` command `run` runs, to start in the background.
pub fn sync_command(args: &[&str], cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_speakap-sync"));
    command
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env("SPEAKAP_TOKEN", TOKEN)
        .env_remove("GITHUB_ACTOR")
        .env_remove("RUST_LOG");
    command
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

/// The standard groups of the test company.
pub fn seed_groups() -> Value {
    serde_json::json!([
        {"name": "Store North", "type": "business_unit"},
        {"name": "Store South", "type": "business_unit"},
        {"name": "Bakery", "type": "department"},
        {"name": "Office", "type": "department"},
        {"name": "Managers", "type": "restricted"},
        {"name": "Book club", "type": "public"}
    ])
}

pub fn sync_yaml(url: &str) -> String {
    format!(
        r#"apiVersion: speakap-sync/v1
kind: SyncConfig
network: "{NETWORK}"
speakap:
  url: {url}
  requests_per_second: 1000
source:
  type: csv
  path: hr.csv
  columns:
    xid: Employee ID
    email: Email
    first_name: First name
    last_name: Last name
    job_title: Job title
    locations: Location
    departments: Department
policy:
  safety:
    max_offboard_percent: 50
    max_change_percent: 100
    min_records: 1
"#
    )
}

pub const RULES_YAML: &str = r#"apiVersion: speakap-sync/v1
kind: MappingRules
business_units:
  map:
    N: Store North
    S: Store South
departments:
  map:
    "1": Bakery
    "2": Office
groups:
  - group: Managers
    when: { field: job_title, matches: "Manager$" }
roles:
  - role: admin
    when: { field: job_title, equals: HR Manager }
local_admins:
  - of: business_unit
    when: { field: job_title, equals: Store Manager }
"#;

pub const HR_HEADER: &str =
    "Employee ID,Email,First name,Last name,Job title,Location,Department\n";

/// A repository with the standard config and the given HR rows, committed.
pub fn standard_repo(sim: &Sim, hr_rows: &str) -> ConfigRepo {
    let repo = ConfigRepo::new();
    repo.write("sync.yaml", &sync_yaml(&sim.url));
    repo.write("rules.yaml", RULES_YAML);
    repo.write("hr.csv", &format!("{HR_HEADER}{hr_rows}"));
    repo.commit("config");
    repo
}

pub fn path_str(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

pub fn example_repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("example-repo")
}

/// Copies a directory tree, leaving out a simulator's kept state (`.speakap-sim`).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".speakap-sim" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `n` people in the standard layout: XIDs from 1000, a store manager and an HR manager in
/// every five, bakers otherwise, over both stores.
pub fn numbered_rows(n: usize) -> String {
    (0..n)
        .map(|i| {
            let (job, loc) = match i % 5 {
                0 => ("Store Manager", "N"),
                1 => ("HR Manager", "S"),
                _ => ("Baker", if i % 2 == 0 { "N" } else { "S" }),
            };
            format!(
                "{},p{i}@example.com,Person,Number {i},{job},{loc},1\n",
                1000 + i
            )
        })
        .collect()
}
