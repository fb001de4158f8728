//! `ci/install.sh`, the action's download of a released binary, against a fake release server on
//! 127.0.0.1: a good binary is installed, a checksum mismatch and a listed binary that is missing
//! fail with nothing installed, and no release at all asks for a source build (exit 2). The GitLab
//! template runs only the scripts whose sha256 it pins, and pins those in `ci/`.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::get;

/// The asset name install.sh picks on this machine.
fn asset() -> String {
    let arch = match std::env::consts::ARCH {
        "aarch64" => "aarch64",
        _ => "x86_64",
    };
    match std::env::consts::OS {
        "macos" => format!("speakap-sync-{arch}-apple-darwin"),
        _ => format!("speakap-sync-{arch}-unknown-linux-musl"),
    }
}

type Files = Arc<HashMap<String, Vec<u8>>>;

/// Serves `/v{version}/{file}` from `files` (keys `v0.9.0/SHA256SUMS`…), 404 otherwise.
struct Releases {
    url: String,
    _runtime: tokio::runtime::Runtime,
}

impl Releases {
    fn start(files: HashMap<String, Vec<u8>>) -> Releases {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let app = Router::new()
            .route(
                "/{tag}/{file}",
                get(
                    |State(files): State<Files>,
                     UrlPath((tag, file)): UrlPath<(String, String)>| async move {
                        files
                            .get(&format!("{tag}/{file}"))
                            .cloned()
                            .ok_or(StatusCode::NOT_FOUND)
                    },
                ),
            )
            .with_state(Arc::new(files));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Releases {
            url,
            _runtime: runtime,
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    speakap_sync::digest::sha256_hex(bytes)
}

fn install(releases: &Releases, version: &str, dir: &Path) -> Output {
    Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/install.sh"))
        .args([version, &dir.to_string_lossy()])
        .env("SPEAKAP_SYNC_TEST_RELEASE_BASE", &releases.url)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A release v0.9.0 whose binary is the real speakap-sync; `sums` gives SHA256SUMS from the
/// binary's true sum, and `binary` whether the binary itself is served.
fn release(sums: impl Fn(&str) -> String, binary: bool) -> Releases {
    let bytes = std::fs::read(env!("CARGO_BIN_EXE_speakap-sync")).unwrap();
    let mut files = HashMap::new();
    files.insert(
        "v0.9.0/SHA256SUMS".to_string(),
        sums(&sha256(&bytes)).into_bytes(),
    );
    if binary {
        files.insert(format!("v0.9.0/{}", asset()), bytes);
    }
    Releases::start(files)
}

#[test]
fn a_released_binary_is_installed_when_its_checksum_matches() {
    let releases = release(
        |sum| {
            format!(
                "{}  speakap-sync-other-target\n{sum}  {}\n",
                "0".repeat(64),
                asset()
            )
        },
        true,
    );
    let dir = tempfile::tempdir().unwrap();
    let output = install(&releases, "v0.9.0", dir.path());
    assert!(output.status.success(), "{}", stderr(&output));
    let installed = dir.path().join("speakap-sync");
    let version = Command::new(&installed).arg("--version").output().unwrap();
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("speakap-sync "),
        "the installed binary runs"
    );
}

#[test]
fn a_checksum_mismatch_fails_and_installs_nothing() {
    let releases = release(|_| format!("{}  {}\n", "ab".repeat(32), asset()), true);
    let dir = tempfile::tempdir().unwrap();
    let output = install(&releases, "0.9.0", dir.path());
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("checksum mismatch"),
        "{}",
        stderr(&output)
    );
    assert!(!dir.path().join("speakap-sync").exists());
}

#[test]
fn a_listed_binary_that_is_missing_fails_and_installs_nothing() {
    let releases = release(|sum| format!("{sum}  {}\n", asset()), false);
    let dir = tempfile::tempdir().unwrap();
    let output = install(&releases, "0.9.0", dir.path());
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("cannot be downloaded (HTTP 404)"),
        "{}",
        stderr(&output)
    );
    assert!(!dir.path().join("speakap-sync").exists());
}

#[test]
fn no_release_or_no_binary_for_this_machine_asks_for_a_source_build() {
    let releases = release(
        |sum| format!("{sum}  speakap-sync-sparc-sun-solaris\n"),
        true,
    );
    let dir = tempfile::tempdir().unwrap();
    let unlisted = install(&releases, "0.9.0", dir.path());
    assert_eq!(unlisted.status.code(), Some(2), "{}", stderr(&unlisted));
    assert!(stderr(&unlisted).contains("no binary for this machine"));
    let missing = install(&releases, "0.8.0", dir.path());
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("no release v0.8.0"));
    assert!(!dir.path().join("speakap-sync").exists());
}

/// The action's install step, run as the runner would (bash, `GITHUB_PATH`, `GITHUB_OUTPUT`)
/// with no speakap-sync on PATH: (succeeded, GITHUB_PATH, GITHUB_OUTPUT, log).
fn action_install_step(releases: &Releases, temp: &Path) -> (bool, String, String, String) {
    use saphyr::LoadableYamlNode;
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(manifest.join("action.yml")).unwrap();
    let docs = saphyr::Yaml::load_from_str(&text).unwrap();
    let step = docs[0]["runs"]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str() == Some("Install speakap-sync"))
        .unwrap();
    let script = step["run"].as_str().unwrap();
    let (path_file, output_file) = (temp.join("path"), temp.join("output"));
    let output = Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("VERSION", "")
        .env("ACTION_PATH", manifest)
        .env("RUNNER_TEMP", temp)
        .env("RUNNER_OS", "Linux")
        .env("RUNNER_ARCH", "X64")
        .env("GITHUB_PATH", &path_file)
        .env("GITHUB_OUTPUT", &output_file)
        .env("SPEAKAP_SYNC_TEST_RELEASE_BASE", &releases.url)
        .output()
        .unwrap();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    (
        output.status.success(),
        read(&path_file),
        read(&output_file),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            stderr(&output)
        ),
    )
}

#[test]
fn the_action_installs_the_release_of_its_own_version_or_asks_for_a_source_build() {
    assert!(
        !Path::new("/usr/local/bin/speakap-sync").exists()
            && !Path::new("/usr/bin/speakap-sync").exists(),
        "this test needs a PATH without speakap-sync"
    );
    let version = env!("CARGO_PKG_VERSION");
    let bytes = std::fs::read(env!("CARGO_BIN_EXE_speakap-sync")).unwrap();
    let serve = |sums: String| {
        let mut files = HashMap::new();
        files.insert(format!("v{version}/SHA256SUMS"), sums.into_bytes());
        files.insert(format!("v{version}/{}", asset()), bytes.clone());
        Releases::start(files)
    };

    let good = serve(format!("{}  {}\n", sha256(&bytes), asset()));
    let runner = tempfile::tempdir().unwrap();
    let (ok, path, output, log) = action_install_step(&good, runner.path());
    assert!(ok, "{log}");
    assert!(path.trim_end().ends_with("/speakap-sync/bin"), "{path}");
    assert!(Path::new(path.trim_end()).join("speakap-sync").exists());
    assert!(!output.contains("source=true"), "{output}");

    let tampered = serve(format!("{}  {}\n", "cd".repeat(32), asset()));
    let runner = tempfile::tempdir().unwrap();
    let (ok, path, output, log) = action_install_step(&tampered, runner.path());
    assert!(!ok, "a checksum mismatch fails the step: {log}");
    assert!(path.is_empty() && output.is_empty(), "{path}{output}");

    let none = Releases::start(HashMap::new());
    let runner = tempfile::tempdir().unwrap();
    let (ok, _, output, log) = action_install_step(&none, runner.path());
    assert!(ok, "{log}");
    assert!(output.contains("source=true\n"), "{output}");
    let lock =
        sha256(&std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock")).unwrap());
    assert!(
        output.contains(&format!("cache-key=speakap-sync-Linux-X64-{lock}")),
        "{output}"
    );
}

/// The sha256 the GitLab template pins for each script it downloads, by script name.
fn gitlab_template_pins() -> Vec<(String, String)> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let template =
        std::fs::read_to_string(manifest.join("ci/gitlab/speakap-sync.gitlab-ci.yml")).unwrap();
    template
        .lines()
        .filter_map(|line| {
            let pin = line.trim().trim_end_matches("; do").trim_end_matches(" \\");
            let (script, sha) = pin.strip_prefix('"')?.strip_suffix('"')?.split_once(' ')?;
            Some((script.to_string(), sha.to_string()))
        })
        .collect()
}

#[test]
fn the_gitlab_template_pins_the_scripts_in_ci() {
    let pins = gitlab_template_pins();
    let names: Vec<&str> = pins.iter().map(|(script, _)| script.as_str()).collect();
    assert_eq!(names, ["install.sh", "state-ref.sh"]);
    for (script, pinned) in &pins {
        let bytes = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("ci")
                .join(script),
        )
        .unwrap();
        assert_eq!(
            &sha256(&bytes),
            pinned,
            "ci/{script} changed: put its sha256 into ci/gitlab/speakap-sync.gitlab-ci.yml"
        );
    }
}

/// The GitLab template's `before_script`, run as a shell runner would, with the scripts
/// downloaded from `releases` (no SPEAKAP_SYNC_SCRIPTS) and speakap-sync on PATH, in a git
/// repository whose origin has no state ref yet: (succeeded, log).
fn gitlab_before_script(releases: &Releases, temp: &Path) -> (bool, String) {
    use saphyr::LoadableYamlNode;
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text =
        std::fs::read_to_string(manifest.join("ci/gitlab/speakap-sync.gitlab-ci.yml")).unwrap();
    let docs = saphyr::Yaml::load_from_str(&text).unwrap();
    let script = docs[0][".speakap-sync"]["before_script"][0]
        .as_str()
        .unwrap();
    let (work, origin) = (temp.join("work"), temp.join("origin.git"));
    for (dir, args) in [
        (temp, vec!["init", "-q", "--bare", "origin.git"]),
        (temp, vec!["init", "-q", "work"]),
        (
            &work,
            vec!["remote", "add", "origin", &origin.to_string_lossy()],
        ),
    ] {
        let status = Command::new("git")
            .args(args)
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_speakap-sync"))
        .parent()
        .unwrap();
    let output = Command::new("sh")
        .args(["-c", script])
        .current_dir(&work)
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
        )
        .env("CI_PROJECT_DIR", &work)
        .env("SPEAKAP_SYNC_VERSION", "0.9.0")
        .env("SPEAKAP_SYNC_SCRIPTS", "")
        .env("SPEAKAP_SYNC_CONFIG_DIR", ".")
        .env("SPEAKAP_SYNC_REMOTE", "origin")
        .env("SPEAKAP_SYNC_TEST_RELEASE_BASE", &releases.url)
        .output()
        .unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            stderr(&output)
        ),
    )
}

#[test]
fn the_gitlab_template_runs_only_the_scripts_it_was_released_with() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let serve = |state_ref: Vec<u8>| {
        let mut files = HashMap::new();
        let install = std::fs::read(manifest.join("ci/install.sh")).unwrap();
        files.insert("v0.9.0/install.sh".to_string(), install);
        files.insert("v0.9.0/state-ref.sh".to_string(), state_ref);
        Releases::start(files)
    };

    let released = std::fs::read(manifest.join("ci/state-ref.sh")).unwrap();
    let temp = tempfile::tempdir().unwrap();
    let (ok, log) = gitlab_before_script(&serve(released), temp.path());
    assert!(ok, "{log}");

    let temp = tempfile::tempdir().unwrap();
    let marker = temp.path().join("ran");
    let tampered = format!("touch '{}'\n", marker.display()).into_bytes();
    let (ok, log) = gitlab_before_script(&serve(tampered), temp.path());
    assert!(!ok, "a script that differs fails the job: {log}");
    assert!(
        log.contains("state-ref.sh of v0.9.0 has sha256") && log.contains("not run"),
        "{log}"
    );
    assert!(!marker.exists(), "the tampered script never ran");
}
