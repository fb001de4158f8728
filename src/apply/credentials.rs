//! The file that receives the activation codes of printable invitations: readable by its owner
//! only, opened before anything is applied, and written as each code arrives, so that no code
//! is lost to a failure later in the run.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Printable credentials for one new person.
pub struct Credential {
    pub xid: String,
    pub name: String,
    pub email: String,
    pub activation_code: String,
}

pub struct CredentialsFile {
    writer: csv::Writer<File>,
    path: PathBuf,
}

impl CredentialsFile {
    /// Opens `path` for appending (codes of earlier runs stay), creating it with mode 0600.
    /// Refuses a file that others may read: the codes let anyone log in as the new employee.
    pub fn open(path: &Path) -> Result<CredentialsFile, Error> {
        let failed = |e: &dyn std::fmt::Display| {
            Error::input(format!(
                "--credentials {}: {e}; nothing was applied",
                path.display()
            ))
        };
        #[cfg(unix)]
        if let Ok(metadata) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::PermissionsExt;
            if !metadata.is_file() {
                return Err(failed(&"not a regular file"));
            }
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(failed(&format!(
                    "the file exists with mode {mode:04o}, so others may read the activation codes; `chmod 600` it or give a new path"
                )));
            }
        }
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).map_err(|e| failed(&e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The mode given on creation is narrowed by the umask, never widened; set it exactly.
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| failed(&e))?;
        }
        let empty = file.metadata().map_err(|e| failed(&e))?.len() == 0;
        let mut writer = csv::Writer::from_writer(file);
        if empty {
            writer
                .write_record(["xid", "name", "email", "activation_code"])
                .and_then(|()| Ok(writer.flush()?))
                .map_err(|e| failed(&e))?;
        }
        Ok(CredentialsFile {
            writer,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One row, on disk before this returns.
    pub fn write(&mut self, c: &Credential) -> Result<(), Error> {
        let row = [&c.xid, &c.name, &c.email, &c.activation_code].map(|v| spreadsheet_safe(v));
        self.writer
            .write_record(&row)
            .and_then(|()| Ok(self.writer.flush()?))
            .and_then(|()| Ok(self.writer.get_ref().sync_data()?))
            .map_err(|e| {
                Error::input(format!(
                    "cannot write the activation code of {} to {}: {e}",
                    c.xid,
                    self.path.display()
                ))
            })
    }
}

/// A value a spreadsheet would run as a formula is prefixed with `'` (OWASP's CSV-injection rule).
fn spreadsheet_safe(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_plain_values_kept() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("+31 6"), "'+31 6");
        assert_eq!(spreadsheet_safe("-1"), "'-1");
        assert_eq!(spreadsheet_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(spreadsheet_safe("\tx"), "'\tx");
        assert_eq!(spreadsheet_safe("Anna de Vries"), "Anna de Vries");
    }
}
