//! `authbridge import-django`: reads dumps of Django's `auth_user`, allauth's social accounts
//! and email addresses (CSV or dumpdata JSON), checks them, and writes them with their primary
//! keys in one transaction. Reading never touches the database; `write` does, through `store`.

mod check;
mod csv;
mod django;
mod json;
mod write;

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use entity::{email_address, social_account, user};

pub use django::FieldError;
pub use write::{Summary, import};

/// Progress goes out every this many rows, read or written.
pub const PROGRESS_EVERY: usize = 10_000;

/// The dump files given on the command line. A dumpdata JSON file may hold all three models.
#[derive(Debug, Clone)]
pub struct DumpFiles {
    pub users: PathBuf,
    pub social_accounts: Option<PathBuf>,
    pub email_addresses: Option<PathBuf>,
    /// The user model's label in dumpdata files (`auth.user`, or the project's `AUTH_USER_MODEL`).
    pub user_model: String,
}

/// The three Django tables this command reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Users,
    SocialAccounts,
    EmailAddresses,
}

impl Table {
    /// The dumpdata label of the allauth models (the user model's label is configurable).
    fn model_label(self) -> &'static str {
        match self {
            Table::Users => "auth.user",
            Table::SocialAccounts => "socialaccount.socialaccount",
            Table::EmailAddresses => "account.emailaddress",
        }
    }
}

/// Where a row came from, for error messages: `users.csv line 4`, `dump.json record 12`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Line { file: Arc<str>, line: u64 },
    Record { file: Arc<str>, index: usize },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line { file, line } => write!(f, "{file} line {line}"),
            Location::Record { file, index } => write!(f, "{file} record {index}"),
        }
    }
}

/// A parsed row and where it came from.
#[derive(Debug, Clone)]
pub struct Row<T> {
    pub at: Location,
    pub model: T,
}

/// Everything read from the dump files, not yet checked against the database.
#[derive(Debug, Default)]
pub struct Dump {
    pub users: Vec<Row<user::Model>>,
    pub social_accounts: Vec<Row<social_account::Model>>,
    pub email_addresses: Vec<Row<email_address::Model>>,
    /// dumpdata records of other models (skipped), by label.
    pub skipped: Vec<(String, usize)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("{file}: unknown format: name the file *.csv (psql \\copy … csv header) or *.json (manage.py dumpdata)")]
    UnknownFormat { file: String },
    /// The file as a whole cannot be read (bad CSV quoting, not a dumpdata list, missing column).
    #[error("{file}: {problem}")]
    Malformed { file: String, problem: String },
    #[error("{at}: {}: {}", .error.field, .error.problem)]
    Field { at: Location, error: FieldError },
    /// The dump contradicts itself (duplicate keys, rows of users that exist nowhere).
    #[error("the dump is inconsistent; nothing was written:\n{}", list(.0))]
    Inconsistent(Vec<String>),
    /// Rows that exist in authbridge already (nothing is overwritten), or that name a user
    /// found nowhere.
    #[error("{} rows clash with authbridge's database; nothing was written:\n{}", .0.len(), list(.0))]
    Conflicts(Vec<String>),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// At most 50 lines; a dump with a million conflicts should not flood the terminal.
fn list(problems: &[String]) -> String {
    const SHOWN: usize = 50;
    let mut text: Vec<String> = problems.iter().take(SHOWN).map(|p| format!("  {p}")).collect();
    if problems.len() > SHOWN {
        text.push(format!("  … and {} more", problems.len() - SHOWN));
    }
    text.join("\n")
}

impl ImportError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        ImportError::Io {
            file: path.display().to_string(),
            source,
        }
    }
}

/// Reads every file (each once, even when named by two flags), then checks the dump against
/// itself. Blocking: call it off the async runtime. `progress` gets a line every
/// [`PROGRESS_EVERY`] rows.
pub fn read(files: &DumpFiles, progress: &mut dyn FnMut(&str)) -> Result<Dump, ImportError> {
    let mut dump = Dump::default();
    let mut seen: Vec<&Path> = Vec::new();
    let named = [
        (Some(&files.users), Table::Users),
        (files.social_accounts.as_ref(), Table::SocialAccounts),
        (files.email_addresses.as_ref(), Table::EmailAddresses),
    ];
    for (path, table) in named {
        let Some(path) = path.map(PathBuf::as_path) else {
            continue;
        };
        if seen.contains(&path) {
            continue;
        }
        seen.push(path);
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("csv") => csv::read(path, table, &mut dump, progress)?,
            Some("json") => json::read(path, &files.user_model, &mut dump, progress)?,
            _ => {
                return Err(ImportError::UnknownFormat {
                    file: path.display().to_string(),
                });
            }
        }
    }
    check::within(&dump)?;
    Ok(dump)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(users: PathBuf) -> DumpFiles {
        DumpFiles {
            users,
            social_accounts: None,
            email_addresses: None,
            user_model: "auth.user".into(),
        }
    }

    #[test]
    fn a_large_dumpdata_file_reports_progress_every_ten_thousand_records() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<serde_json::Value> = (1..=PROGRESS_EVERY + 1)
            .map(|pk| {
                serde_json::json!({"model": "auth.user", "pk": pk, "fields": {
                    "username": format!("u{pk}"), "password": "!", "date_joined": "2024-01-01T00:00:00Z"}})
            })
            .collect();
        let path = dir.path().join("dump.json");
        std::fs::write(&path, serde_json::to_string(&records).unwrap()).unwrap();
        let mut lines = Vec::new();

        let dump = read(&files(path), &mut |line| lines.push(line.to_owned())).unwrap();

        assert_eq!(dump.users.len(), PROGRESS_EVERY + 1);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].ends_with("dump.json: 10000 records read"), "{lines:?}");
    }

    #[test]
    fn a_missing_column_or_an_unknown_extension_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("users.csv");
        std::fs::write(&csv, "id,password,date_joined\n1,!,2024-01-01 00:00:00+00\n").unwrap();
        let error = read(&files(csv), &mut |_| {}).unwrap_err().to_string();
        assert!(error.contains("users.csv: line 1 has no column username"), "{error}");

        let error = read(&files(dir.path().join("users.txt")), &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(error.contains("users.txt: unknown format"), "{error}");
    }
}
