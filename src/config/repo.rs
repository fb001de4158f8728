//! Reads the config directory's YAML files from a git commit (the default) or the working tree.
//!
//! Reading from a commit is what makes "nothing is applied that is not committed" hold: the plan
//! and the audit record name the commit the files came from.

use std::path::{Path, PathBuf};

use git2::{FileMode, ObjectType, Repository, StatusOptions, Tree, TreeWalkMode, TreeWalkResult};
use serde::Serialize;

use crate::error::Error;

pub use crate::diag::SourceFile;

/// Where the config was read from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Revision {
    /// A commit: applicable.
    Commit { id: String },
    /// Uncommitted files: for trying things out, never applied.
    Worktree { head: Option<String> },
}

impl Revision {
    pub fn commit_id(&self) -> Option<&str> {
        match self {
            Revision::Commit { id } => Some(id),
            Revision::Worktree { .. } => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Revision::Commit { id } => format!("commit {}", short(id)),
            Revision::Worktree { head: Some(head) } => {
                format!("working tree (uncommitted, on top of {})", short(head))
            }
            Revision::Worktree { head: None } => "working tree (uncommitted)".into(),
        }
    }
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// The files of a config directory plus where they came from.
#[derive(Debug)]
pub struct ConfigFiles {
    /// The git repository's working directory.
    pub repo_root: PathBuf,
    /// The config directory on disk (HR paths and simulator files are relative to it).
    pub config_dir: PathBuf,
    /// The config directory relative to the repository root (`""` at the root).
    pub prefix: String,
    pub revision: Revision,
    pub files: Vec<SourceFile>,
    /// Config files with uncommitted changes that a commit read did not see.
    pub uncommitted: Vec<String>,
}

impl ConfigFiles {
    /// One config file (`sync.yaml`, its documents separated by `---`) held in memory as if read
    /// from `commit` at the repository root: for tests and benchmarks that need no repository.
    pub fn in_memory(commit: &str, text: impl Into<String>) -> ConfigFiles {
        ConfigFiles {
            repo_root: ".".into(),
            config_dir: ".".into(),
            prefix: String::new(),
            revision: Revision::Commit { id: commit.into() },
            files: vec![SourceFile {
                path: "sync.yaml".into(),
                text: text.into(),
            }],
            uncommitted: Vec::new(),
        }
    }
}

/// Reads every `*.yaml`/`*.yml` under `dir` (skipping dot-directories such as `.github`).
pub fn read_config_files(dir: &Path, rev: &str, worktree: bool) -> Result<ConfigFiles, Error> {
    let config_dir = dir
        .canonicalize()
        .map_err(|e| Error::input(format!("config directory {}: {e}", dir.display())))?;
    let (repo, repo_root, prefix) = open_repository(dir, &config_dir)?;
    let head = repo
        .head()
        .ok()
        .and_then(|h| h.peel_to_commit().ok())
        .map(|c| c.id().to_string());
    let (revision, mut files, uncommitted) = if worktree {
        let mut files = Vec::new();
        collect_worktree(&config_dir, &prefix, &mut files)?;
        (Revision::Worktree { head }, files, Vec::new())
    } else {
        let (revision, files) = read_commit(&repo, rev, &prefix, head.is_none())?;
        (revision, files, uncommitted_yaml(&repo, &prefix))
    };
    files.sort_by(|a, b| a.path.cmp(&b.path));
    if files.is_empty() {
        return Err(Error::input(format!(
            "no *.yaml files in {} ({}); a config directory holds at least a SyncConfig document",
            dir.display(),
            revision.describe()
        )));
    }
    Ok(ConfigFiles {
        repo_root,
        config_dir,
        prefix,
        revision,
        files,
        uncommitted,
    })
}

/// The repository the config directory is in, its work tree, and the directory's path in it.
fn open_repository(dir: &Path, config_dir: &Path) -> Result<(Repository, PathBuf, String), Error> {
    let repo = Repository::discover(config_dir).map_err(|e| {
        Error::input(format!(
            "{} is not inside a git repository ({}); speakap-sync reads config from git commits: run `git init` and commit it",
            dir.display(),
            e.message()
        ))
    })?;
    let repo_root = repo
        .workdir()
        .ok_or_else(|| Error::input("the config repository is bare; point --repo at a checkout"))?
        .canonicalize()
        .map_err(|e| Error::input(format!("repository directory: {e}")))?;
    let prefix = config_dir
        .strip_prefix(&repo_root)
        .expect("a discovered repository contains the directory it was discovered from")
        .to_string_lossy()
        .replace('\\', "/");
    Ok((repo, repo_root, prefix))
}

/// The config files as committed at `rev`.
fn read_commit(
    repo: &Repository,
    rev: &str,
    prefix: &str,
    no_commits: bool,
) -> Result<(Revision, Vec<SourceFile>), Error> {
    let commit = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| {
            let hint = if no_commits {
                "the repository has no commits yet: commit the config, or try it with --worktree"
            } else {
                "name a commit, branch or tag"
            };
            Error::input(format!(
                "cannot read revision `{rev}`: {}; {hint}",
                e.message()
            ))
        })?;
    let tree = commit.tree().map_err(Error::git)?;
    let subtree = if prefix.is_empty() {
        tree
    } else {
        let entry = tree.get_path(Path::new(prefix)).map_err(|_| {
            Error::input(format!(
                "{prefix}/ does not exist in commit {}: commit the config directory first, or use --worktree",
                short(&commit.id().to_string())
            ))
        })?;
        entry
            .to_object(repo)
            .and_then(|o| o.peel_to_tree())
            .map_err(Error::git)?
    };
    let files = collect_tree(repo, &subtree, prefix)?;
    let revision = Revision::Commit {
        id: commit.id().to_string(),
    };
    Ok((revision, files))
}

/// The YAML files of a committed tree; a symlink or a file that is not UTF-8 is an error.
fn collect_tree(repo: &Repository, tree: &Tree, prefix: &str) -> Result<Vec<SourceFile>, Error> {
    let mut files = Vec::new();
    let mut failure = None;
    let walked = tree.walk(TreeWalkMode::PreOrder, |parent, entry| {
        let name = entry.name().unwrap_or_default();
        if entry.kind() == Some(ObjectType::Tree) && name.starts_with('.') {
            return TreeWalkResult::Skip;
        }
        if entry.kind() == Some(ObjectType::Blob) && is_yaml(name) {
            let path = join(prefix, &format!("{parent}{name}"));
            match entry.to_object(repo).and_then(|o| o.peel_to_blob()) {
                // A link's blob holds its target, which is no config.
                Ok(blob) if entry.filemode() == i32::from(FileMode::Link) => {
                    let target = String::from_utf8_lossy(blob.content());
                    failure = Some(symlinked_config(&path, &target));
                    return TreeWalkResult::Abort;
                }
                Ok(blob) => match String::from_utf8(blob.content().to_vec()) {
                    Ok(text) => files.push(SourceFile { path, text }),
                    Err(_) => {
                        failure = Some(Error::input(format!("{path} is not UTF-8 text")));
                        return TreeWalkResult::Abort;
                    }
                },
                Err(e) => {
                    failure = Some(Error::git(e));
                    return TreeWalkResult::Abort;
                }
            }
        }
        TreeWalkResult::Ok
    });
    // An aborted walk is an error of its own; the reason is the one noted.
    if let Some(failure) = failure {
        return Err(failure);
    }
    walked.map_err(Error::git)?;
    Ok(files)
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

fn join(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_string()
    } else {
        format!("{prefix}/{rest}")
    }
}

fn collect_worktree(dir: &Path, rel: &str, files: &mut Vec<SourceFile>) -> Result<(), Error> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::input(format!("{}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::input(format!("{}: {e}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(|e| Error::input(format!("{}: {e}", path.display())))?;
        if file_type.is_symlink() && is_yaml(&name) {
            let target = std::fs::read_link(&path).unwrap_or_default();
            return Err(symlinked_config(
                &join(rel, &name),
                &target.to_string_lossy(),
            ));
        }
        if file_type.is_dir() && !name.starts_with('.') {
            collect_worktree(&path, &join(rel, &name), files)?;
        } else if file_type.is_file() && is_yaml(&name) {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::input(format!("{}: {e}", path.display())))?;
            files.push(SourceFile {
                path: join(rel, &name),
                text,
            });
        }
    }
    Ok(())
}

/// A config file that is a symbolic link: refused alike in commit and worktree mode, since a
/// commit holds only the link and a checkout would follow it wherever it points.
fn symlinked_config(path: &str, target: &str) -> Error {
    Error::input(format!(
        "{path} is a symbolic link (to {target:?}); config files are read from the repository itself, never through links: replace the link with the file it points to, or remove it"
    ))
}

fn uncommitted_yaml(repo: &Repository, prefix: &str) -> Vec<String> {
    let mut options = StatusOptions::new();
    options.include_untracked(true).recurse_untracked_dirs(true);
    if !prefix.is_empty() {
        options.pathspec(prefix);
    }
    let Ok(statuses) = repo.statuses(Some(&mut options)) else {
        return Vec::new();
    };
    let mut paths: Vec<String> = statuses
        .iter()
        .filter(|s| !s.status().is_ignored())
        .filter_map(|s| s.path().ok().map(str::to_string))
        .filter(|p| {
            is_yaml(p)
                && !p[prefix.len()..]
                    .split('/')
                    .any(|part| part.starts_with('.'))
        })
        .collect();
    paths.sort();
    paths
}

/// Refuses a commit that is not on `branch` (locally or as `origin/branch`): a pull request's
/// commit must never be applied.
pub fn require_on_branch(repo_root: &Path, commit: &str, branch: &str) -> Result<(), Error> {
    let repo = Repository::open(repo_root).map_err(Error::git)?;
    let commit_id = git2::Oid::from_str(commit).map_err(Error::git)?;
    let tips: Vec<git2::Oid> = [
        format!("refs/heads/{branch}"),
        format!("refs/remotes/origin/{branch}"),
    ]
    .iter()
    .filter_map(|name| repo.refname_to_id(name).ok())
    .collect();
    if tips.is_empty() {
        return Err(Error::input(format!(
            "--require-branch {branch}: no branch {branch} (nor origin/{branch}) in the repository"
        )));
    }
    let on_branch = tips
        .iter()
        .any(|tip| *tip == commit_id || repo.graph_descendant_of(*tip, commit_id).unwrap_or(false));
    if on_branch {
        Ok(())
    } else {
        Err(Error::input(format!(
            "commit {} is not on branch {branch}: apply only applies config merged into {branch}",
            short(commit)
        )))
    }
}
