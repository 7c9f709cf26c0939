//! CSV dumps with a header row, as `psql \copy (select * from auth_user) to 'f.csv' csv header`
//! or a MySQL export writes them. Columns are found by name; extra columns are ignored.

use std::{path::Path, sync::Arc};

use super::{
    Dump, ImportError, Location, PROGRESS_EVERY, Row, Table,
    django::{self, FieldError, Raw},
};

/// Columns without which no row of the table makes sense; the others have Django's defaults.
fn required_columns(table: Table) -> &'static [&'static str] {
    match table {
        Table::Users => &["id", "username", "password", "date_joined"],
        Table::SocialAccounts => &["id", "user_id", "provider", "uid", "date_joined"],
        Table::EmailAddresses => &["id", "user_id", "email"],
    }
}

pub(super) fn read(
    path: &Path,
    table: Table,
    dump: &mut Dump,
    progress: &mut dyn FnMut(&str),
) -> Result<(), ImportError> {
    let file: Arc<str> = path.display().to_string().into();
    let malformed = |problem: String| ImportError::Malformed {
        file: file.to_string(),
        problem,
    };
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|e| csv_error(path, e))?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| csv_error(path, e))?
        .iter()
        // A BOM (Excel, some MySQL tools) would hide the first column's name.
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase())
        .collect();
    let missing: Vec<&str> = required_columns(table)
        .iter()
        .copied()
        .filter(|c| !headers.iter().any(|h| h == c))
        .collect();
    if !missing.is_empty() {
        return Err(malformed(format!(
            "line 1 has no column {} (found: {})",
            missing.join(", "),
            headers.join(", ")
        )));
    }
    let column = |name: &str| headers.iter().position(|h| h == name);
    let mut count = 0;
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, e))?;
        let at = Location::Line {
            file: file.clone(),
            line: record.position().map_or(0, |p| p.line()),
        };
        let get = |name: &'static str| match column(name).and_then(|i| record.get(i)) {
            Some(value) => Raw::Text(value),
            None => Raw::Missing,
        };
        let wrap = |error: FieldError| ImportError::Field { at: at.clone(), error };
        match table {
            Table::Users => dump.users.push(Row {
                model: django::user(get).map_err(wrap)?,
                at,
            }),
            Table::SocialAccounts => dump.social_accounts.push(Row {
                model: django::social_account(get).map_err(wrap)?,
                at,
            }),
            Table::EmailAddresses => dump.email_addresses.push(Row {
                model: django::email_address(get).map_err(wrap)?,
                at,
            }),
        }
        count += 1;
        if count % PROGRESS_EVERY == 0 {
            progress(&format!("{file}: {count} rows read"));
        }
    }
    Ok(())
}

fn csv_error(path: &Path, e: ::csv::Error) -> ImportError {
    let file = path.display().to_string();
    match e.into_kind() {
        ::csv::ErrorKind::Io(source) => ImportError::Io { file, source },
        ::csv::ErrorKind::Utf8 { pos, err } => ImportError::Malformed {
            file,
            problem: format!(
                "line {}: field {} is not UTF-8 text",
                pos.map_or(0, |p| p.line()),
                err.field() + 1
            ),
        },
        ::csv::ErrorKind::UnequalLengths { pos, expected_len, len } => ImportError::Malformed {
            file,
            problem: format!(
                "line {}: {len} fields where the header has {expected_len}",
                pos.map_or(0, |p| p.line())
            ),
        },
        other => ImportError::Malformed {
            file,
            problem: format!("{other:?}"),
        },
    }
}
