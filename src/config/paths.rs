//! Every file the config names is inside the config repository (the git work tree): a change to
//! the config must not make a plan read `/etc/passwd` or the process environment, nor write
//! outside the checkout. Checked twice: at load, where the value is written (an absolute path, or
//! `..` climbing out: reported with file:line), and where the file is opened, after symlinks
//! (`Config::path_inside`). Paths given on the command line (`--hr`, `--credentials`) are the
//! operator's and are not confined.

use std::path::{Component, Path, PathBuf};

use super::{Config, EmbeddedSimulator, Source, SyncConfig};
use crate::error::Error;

/// A setting whose value is a path relative to the config directory.
pub struct PathSetting<'a> {
    /// Its keys in the SyncConfig document, e.g. `["source", "path"]`.
    pub keys: &'static [&'static str],
    pub value: &'a str,
    /// What to do instead of pointing outside.
    pub hint: &'static str,
}

impl PathSetting<'_> {
    pub fn name(&self) -> String {
        self.keys.join(".")
    }
}

const HR_FILE_HINT: &str = "commit the export inside the repository and name it relative to the config directory (e.g. hr/employees.csv); an export kept elsewhere is given on the command line with --hr FILE";

/// The source's own local file: the CSV file or workbook, or the SFTP server's known_hosts (the
/// SFTP `path` is on the server).
pub fn source_file(source: &Source) -> Option<PathSetting<'_>> {
    match source {
        Source::Csv(csv) => Some(PathSetting {
            keys: &["source", "path"],
            value: &csv.path,
            hint: HR_FILE_HINT,
        }),
        Source::Excel(excel) => Some(PathSetting {
            keys: &["source", "path"],
            value: &excel.path,
            hint: HR_FILE_HINT,
        }),
        Source::Sftp(sftp) => Some(PathSetting {
            keys: &["source", "known_hosts"],
            value: &sftp.known_hosts,
            hint: "commit the known_hosts file inside the repository and name it relative to the config directory (e.g. sftp_known_hosts)",
        }),
        Source::Afas(_) => None,
    }
}

/// The embedded simulator's seed and state files.
pub fn simulator_files(embedded: &EmbeddedSimulator) -> [PathSetting<'_>; 2] {
    [
        PathSetting {
            keys: &["speakap", "embedded", "seed"],
            value: &embedded.seed,
            hint: "keep the seed inside the repository, relative to the config directory (e.g. simulator/seed.json)",
        },
        PathSetting {
            keys: &["speakap", "embedded", "state"],
            value: &embedded.state,
            hint: "keep the state inside the repository, relative to the config directory (e.g. .speakap-sim/state.json, git-ignored)",
        },
    ]
}

/// Every path setting of a SyncConfig.
pub fn path_settings(sync: &SyncConfig) -> Vec<PathSetting<'_>> {
    let simulator = sync.speakap.embedded.as_ref().map(simulator_files);
    source_file(&sync.source)
        .into_iter()
        .chain(simulator.into_iter().flatten())
        .collect()
}

/// Why `value`, relative to the config directory at `prefix` in the repository, is outside the
/// repository as written: an absolute path, or `..` climbing above its root.
pub fn written_outside(prefix: &str, value: &str) -> Option<&'static str> {
    let mut depth = prefix.split('/').filter(|part| !part.is_empty()).count();
    for component in Path::new(value).components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir if depth == 0 => {
                return Some("`..` climbs out of the repository");
            }
            Component::ParentDir => depth -= 1,
            Component::RootDir | Component::Prefix(_) => return Some("an absolute path"),
        }
    }
    None
}

impl Config {
    /// The file a path setting names, resolved after symlinks, if it is inside the repository
    /// (for a file that does not exist yet, its nearest existing parent must be).
    pub fn path_inside(&self, setting: &PathSetting) -> Result<PathBuf, Error> {
        let name = setting.name();
        let at = self
            .setting_origin(setting.keys)
            .map_or_else(|| "in the SyncConfig".to_string(), |o| format!("at {o}"));
        let resolved = resolve(&self.files.config_dir.join(setting.value)).map_err(|problem| {
            Error::input(format!(
                "`{name}` ({at}) is {:?}, which {problem}; {}",
                setting.value, setting.hint
            ))
        })?;
        if resolved.starts_with(&self.files.repo_root) {
            return Ok(resolved);
        }
        Err(Error::input(format!(
            "`{name}` ({at}) is {:?}, which resolves to {} outside the config repository {}: files named in the config are read and written only inside it; {}",
            setting.value,
            resolved.display(),
            self.files.repo_root.display(),
            setting.hint
        )))
    }
}

/// `path` with every symlink resolved; for a path that does not exist yet, its nearest existing
/// ancestor resolved and the rest appended.
fn resolve(path: &Path) -> Result<PathBuf, String> {
    let mut existing = path;
    let mut missing = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(mut resolved) => {
                for component in missing.iter().rev() {
                    match component {
                        Component::ParentDir => {
                            resolved.pop();
                        }
                        Component::CurDir => {}
                        other => resolved.push(other),
                    }
                }
                return Ok(resolved);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A link to nothing would be followed when the file is created.
                if existing.symlink_metadata().is_ok() {
                    return Err(format!(
                        "goes through {}, a symbolic link to a file that does not exist",
                        existing.display()
                    ));
                }
                match (existing.parent(), existing.components().next_back()) {
                    (Some(parent), Some(last)) => {
                        missing.push(last);
                        existing = parent;
                    }
                    _ => return Err(format!("cannot be resolved: {e}")),
                }
            }
            Err(e) => return Err(format!("cannot be resolved: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_paths_outside_the_repository_are_named() {
        assert_eq!(written_outside("", "hr/employees.csv"), None);
        assert_eq!(written_outside("config", "../hr.csv"), None);
        assert_eq!(written_outside("", "./a/../hr.csv"), None);
        assert!(written_outside("", "../hr.csv").is_some());
        assert!(written_outside("config", "../../hr.csv").is_some());
        assert!(written_outside("", "a/../../etc/passwd").is_some());
        assert_eq!(written_outside("", "/etc/passwd"), Some("an absolute path"));
    }
}
