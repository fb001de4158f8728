//! GitLab merge-request notes, the Code Quality report, and the alerts of `apply --notify`, against
//! local fakes of the GitLab and GitHub REST APIs and of a chat webhook, all on 127.0.0.1.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use common::*;
use serde_json::{Value, json};

const HR: &str = "\
100,anna@example.com,Anna,Smit,Store Manager,N,1
101,bert@example.com,Bert,Bos,Baker,N,1
102,carla@example.com,Carla,Kok,HR Manager,S,2
103,dirk@example.com,Dirk,Mol,Baker,S,1
";

/// The token of the sync's bot user (GitLab user 7, GitHub `speakap-bot`).
const BOT_TOKEN: &str = "glpat-bot-token";
/// The token of another user (GitLab user 9, GitHub `someone-else`).
const OTHER_TOKEN: &str = "glpat-other-token";

/// A note, comment or issue the fake holds.
#[derive(Clone, Debug)]
struct Item {
    id: u64,
    /// `mr_note`, `issue` or `issue_note`.
    kind: &'static str,
    /// The merge request or issue it belongs to (0 for issues).
    parent: u64,
    author: u64,
    title: String,
    body: String,
    labels: Vec<String>,
    open: bool,
}

#[derive(Default)]
struct Store {
    items: Vec<Item>,
    webhook: Vec<Value>,
}

type Shared = Arc<Mutex<Store>>;

/// Fakes of the GitLab API (`/api/v4`), GitHub's issues API, and a webhook (`/hook`).
struct Fake {
    url: String,
    store: Shared,
    _runtime: tokio::runtime::Runtime,
}

fn who(headers: &HeaderMap) -> Result<u64, StatusCode> {
    let token = headers
        .get("private-token")
        .or_else(|| headers.get("authorization"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim_start_matches("Bearer ");
    match token {
        BOT_TOKEN => Ok(7),
        OTHER_TOKEN => Ok(9),
        _ => Err(StatusCode::UNAUTHORIZED),
    }
}

fn login(user: u64) -> &'static str {
    if user == 7 {
        "speakap-bot"
    } else {
        "someone-else"
    }
}

fn gitlab_json(item: &Item) -> Value {
    json!({"id": item.id, "iid": item.id, "body": item.body, "description": item.body,
           "title": item.title, "author": {"id": item.author}, "labels": item.labels,
           "state": if item.open { "opened" } else { "closed" },
           "web_url": format!("https://gitlab.test/issues/{}", item.id)})
}

fn github_json(item: &Item) -> Value {
    json!({"id": item.id, "number": item.id, "body": item.body, "title": item.title,
           "user": {"login": login(item.author)}, "state": if item.open { "open" } else { "closed" },
           "html_url": format!("https://github.test/issues/{}", item.id)})
}

impl Store {
    fn add(&mut self, kind: &'static str, parent: u64, author: u64, body: &Value) -> Item {
        let text = |key: &str| body[key].as_str().unwrap_or_default().to_string();
        let labels = match &body["labels"] {
            Value::String(s) => s.split(',').map(str::to_string).collect(),
            Value::Array(a) => a.iter().map(|l| l.as_str().unwrap().to_string()).collect(),
            _ => Vec::new(),
        };
        let item = Item {
            id: self.items.len() as u64 + 1,
            kind,
            parent,
            author,
            title: text("title"),
            body: if kind == "issue" && body.get("description").is_some() {
                text("description")
            } else {
                text("body")
            },
            labels,
            open: true,
        };
        self.items.push(item.clone());
        item
    }

    fn list(&self, kind: &str, parent: u64, label: Option<&str>, open_only: bool) -> Vec<&Item> {
        self.items
            .iter()
            .filter(|i| i.kind == kind && i.parent == parent)
            .filter(|i| label.is_none_or(|l| i.labels.iter().any(|x| x == l)))
            .filter(|i| !open_only || i.open)
            .collect()
    }

    /// Edits one's own item: `body`/`description`, and closing.
    fn edit(&mut self, id: u64, author: u64, body: &Value) -> Result<Item, StatusCode> {
        let item = self
            .items
            .iter_mut()
            .find(|i| i.id == id)
            .ok_or(StatusCode::NOT_FOUND)?;
        if item.author != author {
            return Err(StatusCode::FORBIDDEN);
        }
        for key in ["body", "description"] {
            if let Some(text) = body[key].as_str() {
                item.body = text.to_string();
            }
        }
        if body["state_event"] == "close" || body["state"] == "closed" {
            item.open = false;
        }
        Ok(item.clone())
    }
}

type Query = axum::extract::Query<std::collections::HashMap<String, String>>;

impl Fake {
    fn start() -> Fake {
        // Serves on its own worker thread while the test waits on the command.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let store: Shared = Arc::default();
        let app = Router::new()
            .route("/api/v4/user", get(|h: HeaderMap| async move {
                who(&h).map(|id| Json(json!({"id": id, "username": login(id)})))
            }))
            .route(
                "/api/v4/projects/{project}/merge_requests/{iid}/notes",
                get(|State(s): State<Shared>, h: HeaderMap, UrlPath((_, iid)): UrlPath<(String, u64)>| async move {
                    who(&h)?;
                    let store = s.lock().unwrap();
                    Ok::<_, StatusCode>(Json(Value::Array(store.list("mr_note", iid, None, false).into_iter().map(gitlab_json).collect())))
                })
                .post(|State(s): State<Shared>, h: HeaderMap, UrlPath((_, iid)): UrlPath<(String, u64)>, Json(body): Json<Value>| async move {
                    let author = who(&h)?;
                    let text = body["body"].as_str().unwrap_or_default();
                    if text.chars().count() > 1_000_000 {
                        return Err(StatusCode::BAD_REQUEST);
                    }
                    Ok((StatusCode::CREATED, Json(gitlab_json(&s.lock().unwrap().add("mr_note", iid, author, &body)))))
                }),
            )
            .route(
                "/api/v4/projects/{project}/merge_requests/{iid}/notes/{id}",
                put(|State(s): State<Shared>, h: HeaderMap, UrlPath((_, _, id)): UrlPath<(String, u64, u64)>, Json(body): Json<Value>| async move {
                    let author = who(&h)?;
                    s.lock().unwrap().edit(id, author, &body).map(|i| Json(gitlab_json(&i)))
                }),
            )
            .route(
                "/api/v4/projects/{project}/issues",
                get(|State(s): State<Shared>, h: HeaderMap, q: Query| async move {
                    who(&h)?;
                    let store = s.lock().unwrap();
                    let open = q.get("state").is_some_and(|s| s == "opened");
                    Ok::<_, StatusCode>(Json(Value::Array(store.list("issue", 0, q.get("labels").map(String::as_str), open).into_iter().map(gitlab_json).collect())))
                })
                .post(|State(s): State<Shared>, h: HeaderMap, Json(body): Json<Value>| async move {
                    let author = who(&h)?;
                    Ok::<_, StatusCode>((StatusCode::CREATED, Json(gitlab_json(&s.lock().unwrap().add("issue", 0, author, &body)))))
                }),
            )
            .route(
                "/api/v4/projects/{project}/issues/{iid}",
                put(|State(s): State<Shared>, h: HeaderMap, UrlPath((_, iid)): UrlPath<(String, u64)>, Json(body): Json<Value>| async move {
                    let author = who(&h)?;
                    s.lock().unwrap().edit(iid, author, &body).map(|i| Json(gitlab_json(&i)))
                }),
            )
            .route(
                "/api/v4/projects/{project}/issues/{iid}/notes",
                post(|State(s): State<Shared>, h: HeaderMap, UrlPath((_, iid)): UrlPath<(String, u64)>, Json(body): Json<Value>| async move {
                    let author = who(&h)?;
                    Ok::<_, StatusCode>((StatusCode::CREATED, Json(gitlab_json(&s.lock().unwrap().add("issue_note", iid, author, &body)))))
                }),
            )
            .route("/user", get(|h: HeaderMap| async move {
                who(&h).map(|id| Json(json!({"login": login(id)})))
            }))
            .route(
                "/repos/{owner}/{repo}/issues",
                get(|State(s): State<Shared>, h: HeaderMap, q: Query| async move {
                    who(&h)?;
                    let store = s.lock().unwrap();
                    let open = q.get("state").is_some_and(|s| s == "open");
                    Ok::<_, StatusCode>(Json(Value::Array(store.list("issue", 0, q.get("labels").map(String::as_str), open).into_iter().map(github_json).collect())))
                })
                .post(|State(s): State<Shared>, h: HeaderMap, Json(body): Json<Value>| async move {
                    let author = who(&h)?;
                    Ok::<_, StatusCode>((StatusCode::CREATED, Json(github_json(&s.lock().unwrap().add("issue", 0, author, &body)))))
                }),
            )
            .route(
                "/repos/{owner}/{repo}/issues/{number}",
                axum::routing::patch(|State(s): State<Shared>, h: HeaderMap, UrlPath((_, _, n)): UrlPath<(String, String, u64)>, Json(body): Json<Value>| async move {
                    let author = who(&h)?;
                    s.lock().unwrap().edit(n, author, &body).map(|i| Json(github_json(&i)))
                }),
            )
            .route(
                "/repos/{owner}/{repo}/issues/{number}/comments",
                post(|State(s): State<Shared>, h: HeaderMap, UrlPath((_, _, n)): UrlPath<(String, String, u64)>, Json(body): Json<Value>| async move {
                    let author = who(&h)?;
                    Ok::<_, StatusCode>((StatusCode::CREATED, Json(github_json(&s.lock().unwrap().add("issue_note", n, author, &body)))))
                }),
            )
            .route("/hook", post(|State(s): State<Shared>, Json(body): Json<Value>| async move {
                s.lock().unwrap().webhook.push(body);
                StatusCode::OK
            }))
            .with_state(store.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Fake {
            url,
            store,
            _runtime: runtime,
        }
    }

    fn items(&self, kind: &str) -> Vec<Item> {
        let store = self.store.lock().unwrap();
        store
            .items
            .iter()
            .filter(|i| i.kind == kind)
            .cloned()
            .collect()
    }

    fn add(&self, kind: &'static str, parent: u64, author: u64, body: Value) {
        self.store.lock().unwrap().add(kind, parent, author, &body);
    }

    fn webhook(&self) -> Vec<Value> {
        self.store.lock().unwrap().webhook.clone()
    }
}

fn seed() -> Value {
    json!({"groups": seed_groups(), "users": []})
}

/// `speakap-sync` in a GitLab CI merge-request pipeline pointing at the fake.
fn in_gitlab(args: &[&str], repo: &ConfigRepo, fake: &Fake) -> std::process::Output {
    sync_command(args, repo.path())
        .env("GITLAB_CI", "true")
        .env("CI_API_V4_URL", format!("{}/api/v4", fake.url))
        .env("CI_PROJECT_ID", "42")
        .env("CI_MERGE_REQUEST_IID", "5")
        .env("CI_JOB_URL", "https://gitlab.test/acme/config/-/jobs/77")
        .env("GITLAB_TOKEN", BOT_TOKEN)
        .env("HOOK_URL", format!("{}/hook", fake.url))
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap()
}

/// `speakap-sync` in GitHub Actions pointing at the fake.
fn in_github(args: &[&str], repo: &ConfigRepo, fake: &Fake) -> std::process::Output {
    sync_command(args, repo.path())
        .env_remove("GITLAB_CI")
        .env("GITHUB_API_URL", &fake.url)
        .env("GITHUB_REPOSITORY", "acme/speakap-config")
        .env("GITHUB_TOKEN", BOT_TOKEN)
        .env("GITHUB_SERVER_URL", "https://github.test")
        .env("GITHUB_RUN_ID", "991")
        .env("HOOK_URL", format!("{}/hook", fake.url))
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap()
}

#[test]
fn a_merge_request_gets_one_note_that_is_updated_and_another_users_note_is_left_alone() {
    let sim = Sim::start(&seed());
    let fake = Fake::start();
    let repo = standard_repo(&sim, HR);
    let marker = "<!-- speakap-sync-plan:  -->";
    // Someone else copied the marker into their own note.
    fake.add(
        "mr_note",
        5,
        9,
        json!({"body": format!("{marker}\nnot the plan")}),
    );
    let dir = path_str(repo.path());

    let first = in_gitlab(&["plan", "--repo", &dir, "--comment"], &repo, &fake);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let notes = fake.items("mr_note");
    assert_eq!(notes.len(), 2, "{notes:?}");
    let ours = &notes[1];
    assert_eq!(ours.author, 7);
    assert!(ours.body.contains("| ➕ Invite | 4 |"), "{}", ours.body);
    assert!(
        !ours.body.contains("anna@example.com"),
        "addresses are masked"
    );

    repo.write(
        "hr.csv",
        &format!("{HR_HEADER}{}", &HR[..HR.rfind("103").unwrap()]),
    );
    repo.commit("one person fewer");
    let second = in_gitlab(&["plan", "--repo", &dir, "--comment"], &repo, &fake);
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    let notes = fake.items("mr_note");
    assert_eq!(notes.len(), 2, "updated, not added: {notes:?}");
    assert!(
        notes[1].body.contains("| ➕ Invite | 3 |"),
        "{}",
        notes[1].body
    );
    assert_eq!(notes[0].body, format!("{marker}\nnot the plan"));
}

#[test]
fn validate_writes_a_gitlab_code_quality_report() {
    let sim = Sim::start(&seed());
    let repo = standard_repo(&sim, HR);
    repo.write(
        "sync.yaml",
        &sync_yaml(&sim.url).replace("max_offboard_percent: 50", "max_offboard_percent: many"),
    );
    repo.commit("broken");
    let output = run(
        &[
            "validate",
            "--repo",
            &path_str(repo.path()),
            "--format",
            "gitlab",
        ],
        repo.path(),
    );
    assert_eq!(code(&output), 1);
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let finding = &report.as_array().unwrap()[0];
    assert_eq!(finding["location"]["path"], "sync.yaml");
    assert!(finding["location"]["lines"]["begin"].as_u64().unwrap() > 1);
    assert_eq!(finding["severity"], "major");
    assert_eq!(finding["fingerprint"].as_str().unwrap().len(), 64);
    assert!(
        finding["check_name"]
            .as_str()
            .unwrap()
            .starts_with("schema"),
        "{finding}"
    );
    assert!(
        finding["description"].as_str().unwrap().contains("many"),
        "{finding}"
    );
}

/// A repository applied once, whose export then lost three of four people: blocked.
fn blocked_repo(sim: &Sim) -> ConfigRepo {
    let repo = standard_repo(sim, HR);
    repo.write(
        "sync.yaml",
        &format!("{}notify:\n  webhook_env: HOOK_URL\n", sync_yaml(&sim.url)),
    );
    repo.commit("notify");
    let dir = path_str(repo.path());
    assert_eq!(
        code(&run(&["apply", "--adopt", "--repo", &dir], repo.path())),
        0
    );
    repo.write(
        "hr.csv",
        &format!("{HR_HEADER}{}", HR.lines().next().unwrap()),
    );
    repo.commit("an export that lost most of the company");
    repo
}

fn checksum_in(text: &str) -> String {
    let at = text.find("--force sha256:").expect("the forced command") + 8;
    text[at..at + 71].to_string()
}

#[test]
fn a_blocked_apply_opens_one_github_issue_and_the_next_good_apply_closes_it() {
    let sim = Sim::start(&seed());
    let fake = Fake::start();
    let repo = blocked_repo(&sim);
    let dir = path_str(repo.path());
    // Someone else's open issue with the label and the marker is never taken for ours.
    fake.add(
        "issue",
        0,
        9,
        json!({"title": "x", "body": "<!-- speakap-sync-alert:  -->", "labels": ["speakap-sync"]}),
    );

    let blocked = in_github(&["apply", "--repo", &dir, "--notify"], &repo, &fake);
    assert_eq!(code(&blocked), 3, "{}", stderr(&blocked));
    let issues = fake.items("issue");
    assert_eq!(issues.len(), 2, "{issues:?}");
    let issue = &issues[1];
    assert_eq!(issue.author, 7);
    assert_eq!(issue.labels, ["speakap-sync"]);
    assert!(
        issue.title.contains("blocked by a safety threshold"),
        "{}",
        issue.title
    );
    // Escaped for Markdown, as every value is.
    assert!(
        issue.body.contains(r"75\.0\% is over 50\% \(3\/4\)"),
        "{}",
        issue.body
    );
    assert!(issue.body.contains("3 to suspend"), "{}", issue.body);
    assert!(issue.body.contains("the input `force`"), "{}", issue.body);
    assert!(
        issue
            .body
            .contains("github.test/acme/speakap-config/actions/runs/991"),
        "{}",
        issue.body
    );
    let checksum = checksum_in(&issue.body);
    assert!(
        stderr(&blocked).contains(&checksum),
        "the issue names the plan that was refused"
    );
    let hook = fake.webhook();
    assert_eq!(hook.len(), 1);
    let message = hook[0]["text"].as_str().unwrap();
    assert!(
        message.contains("blocked") && message.contains(&checksum),
        "{message}"
    );
    assert!(!message.contains("example.com"), "{message}");

    // Blocked again the next day: the same issue, updated.
    let again = in_github(&["apply", "--repo", &dir, "--notify"], &repo, &fake);
    assert_eq!(code(&again), 3);
    assert_eq!(fake.items("issue").len(), 2);

    // Reviewed and forced: applied, and the issue is commented on and closed.
    let forced = in_github(
        &["apply", "--repo", &dir, "--notify", "--force", &checksum],
        &repo,
        &fake,
    );
    assert_eq!(code(&forced), 0, "{}{}", stdout(&forced), stderr(&forced));
    let issues = fake.items("issue");
    assert!(!issues[1].open, "closed");
    assert!(issues[0].open, "someone else's issue stays open");
    let comments = fake.items("issue_note");
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].parent, issues[1].id);
    assert!(
        comments[0].body.contains("succeeded"),
        "{}",
        comments[0].body
    );
}

#[test]
fn a_blocked_apply_opens_one_gitlab_issue_and_the_next_good_apply_closes_it() {
    let sim = Sim::start(&seed());
    let fake = Fake::start();
    let repo = blocked_repo(&sim);
    let dir = path_str(repo.path());

    let blocked = in_gitlab(&["apply", "--repo", &dir, "--notify"], &repo, &fake);
    assert_eq!(code(&blocked), 3, "{}", stderr(&blocked));
    let issues = fake.items("issue");
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].labels, ["speakap-sync"]);
    assert!(
        issues[0].body.contains("`SPEAKAP_SYNC_FORCE`"),
        "{}",
        issues[0].body
    );
    assert!(
        issues[0].body.contains("gitlab.test/acme/config/-/jobs/77"),
        "{}",
        issues[0].body
    );
    let checksum = checksum_in(&issues[0].body);

    let forced = in_gitlab(
        &["apply", "--repo", &dir, "--notify", "--force", &checksum],
        &repo,
        &fake,
    );
    assert_eq!(code(&forced), 0, "{}", stderr(&forced));
    assert!(!fake.items("issue")[0].open);
    assert_eq!(fake.items("issue_note").len(), 1);
    let messages = fake.webhook();
    assert_eq!(messages.len(), 2, "blocked, then resolved: {messages:?}");
    assert!(
        messages[1]["text"]
            .as_str()
            .unwrap()
            .contains("succeeded again")
    );
    // A good run with nothing open opens nothing and says nothing.
    let quiet = in_gitlab(&["apply", "--repo", &dir, "--notify"], &repo, &fake);
    assert_eq!(code(&quiet), 0, "{}", stderr(&quiet));
    assert_eq!(fake.items("issue").len(), 1);
    assert_eq!(fake.webhook().len(), 2);
}

#[test]
fn a_failed_apply_opens_an_issue_and_the_webhook_url_is_never_printed() {
    let sim = Sim::start(&seed());
    let fake = Fake::start();
    let repo = blocked_repo(&sim);
    let dir = path_str(repo.path());
    // The API refuses the token: the apply fails before anything is done.
    let failed = sync_command(&["apply", "--repo", &dir, "--notify"], repo.path())
        .env("SPEAKAP_TOKEN", "app0000000000001_wrong")
        .env("GITLAB_CI", "true")
        .env("CI_API_V4_URL", format!("{}/api/v4", fake.url))
        .env("CI_PROJECT_ID", "42")
        .env("GITLAB_TOKEN", BOT_TOKEN)
        .env("HOOK_URL", format!("{}/hook", fake.url))
        .output()
        .unwrap();
    assert_eq!(code(&failed), 1, "{}", stderr(&failed));
    let issues = fake.items("issue");
    assert_eq!(issues.len(), 1, "{}", stderr(&failed));
    assert!(issues[0].title.ends_with("failed"), "{}", issues[0].title);
    assert!(
        !issues[0].body.contains("wrong"),
        "no credentials: {}",
        issues[0].body
    );
    assert!(!stderr(&failed).contains("/hook"), "{}", stderr(&failed));
    assert_eq!(fake.webhook().len(), 1);
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}: {}", stderr(&output));
    stdout(&output).trim().to_string()
}

/// The GitLab template run by gitlab-ci-local (an independent implementation of GitLab CI's
/// semantics, from npm; `.ci/run` installs it and sets GITLAB_CI_LOCAL) with the shell executor,
/// against a local bare origin and the fake GitLab API: the merge-request pipeline notes the plan,
/// the default-branch pipeline applies and pushes the state ref.
#[test]
fn the_gitlab_template_plans_merge_requests_and_applies_the_default_branch() {
    let Some(runner) = std::env::var_os("GITLAB_CI_LOCAL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide gitlab-ci-local (GITLAB_CI_LOCAL)"
        );
        eprintln!("skipped: set GITLAB_CI_LOCAL to the gitlab-ci-local executable");
        return;
    };
    let sim = Sim::start(&seed());
    let fake = Fake::start();
    let origin = tempfile::tempdir().unwrap();
    git(origin.path(), &["init", "-q", "--bare", "-b", "main"]);
    let repo = ConfigRepo::new();
    let config = standard_repo(&sim, HR);
    for file in ["sync.yaml", "rules.yaml", "hr.csv"] {
        repo.write(
            &format!("config/{file}"),
            &std::fs::read_to_string(config.path().join(file)).unwrap(),
        );
    }
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    repo.write(
        "ci/speakap-sync.gitlab-ci.yml",
        &std::fs::read_to_string(manifest.join("ci/gitlab/speakap-sync.gitlab-ci.yml")).unwrap(),
    );
    repo.write(
        ".gitlab-ci.yml",
        "include:\n  - local: ci/speakap-sync.gitlab-ci.yml\n",
    );
    repo.write(".gitignore", ".gitlab-ci-local/\n");
    let base = repo.commit("config");
    let work = repo.path();
    git(work, &["branch", "-M", "main"]);
    git(work, &["remote", "add", "origin", &path_str(origin.path())]);
    git(work, &["push", "-q", "origin", "main"]);
    git(work, &["fetch", "-q", "origin"]);
    git(work, &["remote", "set-head", "origin", "main"]);

    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_speakap-sync"))
        .parent()
        .unwrap();
    let run_job = |job: &str, variables: &[(&str, &str)]| {
        let mut command = std::process::Command::new(&runner);
        command
            .arg(job)
            .current_dir(work)
            .env(
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            )
            .env("GCL_IGNORE_PREDEFINED_VARS", "CI_PIPELINE_SOURCE,GITLAB_CI,CI_API_V4_URL,CI_PROJECT_ID,CI_MERGE_REQUEST_IID,CI_MERGE_REQUEST_DIFF_BASE_SHA,CI_DEFAULT_BRANCH");
        let api = format!("{}/api/v4", fake.url);
        let origin = path_str(origin.path());
        let common = [
            ("SPEAKAP_SYNC_SCRIPTS", path_str(&manifest.join("ci"))),
            ("SPEAKAP_SYNC_REMOTE", origin),
            ("SPEAKAP_SYNC_CONFIG_DIR", "config".into()),
            ("SPEAKAP_TOKEN", TOKEN.into()),
            ("GITLAB_CI", "true".into()),
            ("CI_API_V4_URL", api),
            ("CI_PROJECT_ID", "42".into()),
            ("GITLAB_TOKEN", BOT_TOKEN.into()),
        ];
        for (name, value) in common
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .chain(variables.iter().copied())
        {
            command.arg("--variable").arg(format!("{name}={value}"));
        }
        command.output().unwrap()
    };

    // A merge request: the plan is noted on it.
    git(work, &["checkout", "-q", "-b", "feature"]);
    let output = run_job(
        "speakap-sync-plan",
        &[
            ("CI_PIPELINE_SOURCE", "merge_request_event"),
            ("CI_MERGE_REQUEST_IID", "5"),
            ("CI_MERGE_REQUEST_DIFF_BASE_SHA", &base),
        ],
    );
    let log = format!("{}{}", stdout(&output), stderr(&output));
    assert!(output.status.success(), "{log}");
    let notes = fake.items("mr_note");
    assert_eq!(notes.len(), 1, "{log}");
    assert!(
        notes[0].body.contains("| ➕ Invite | 4 |"),
        "{}",
        notes[0].body
    );

    // The default branch: applied, and the record pushed to origin.
    git(work, &["checkout", "-q", "main"]);
    let output = run_job(
        "speakap-sync-apply",
        &[
            ("CI_PIPELINE_SOURCE", "push"),
            ("SPEAKAP_SYNC_ADOPT", "true"),
        ],
    );
    let log = format!("{}{}", stdout(&output), stderr(&output));
    assert!(output.status.success(), "{log}");
    assert!(log.contains("Applied:"), "{log}");
    assert!(sim.user_by_xid("100").is_some(), "{log}");
    let pushed = git(origin.path(), &["for-each-ref", "refs/speakap-sync/state"]);
    assert!(!pushed.is_empty(), "the state ref is on origin: {log}");
    assert!(
        fake.items("issue").is_empty(),
        "a good apply opens no issue"
    );
}
