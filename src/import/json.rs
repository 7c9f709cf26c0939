//! `manage.py dumpdata` JSON: one list of `{"model": "auth.user", "pk": 7, "fields": {…}}`.
//! Read record by record, so a large dump is never held as a JSON tree; other models are skipped.

use std::{fmt, fs::File, io::BufReader, path::Path, sync::Arc};

use serde::{
    Deserialize,
    de::{self, DeserializeSeed, SeqAccess, Visitor},
};
use serde_json::{Map, Value};

use super::{
    Dump, ImportError, Location, PROGRESS_EVERY, Row, Table,
    django::{self, Raw},
};

#[derive(Deserialize)]
struct Record {
    model: String,
    #[serde(default)]
    pk: Value,
    #[serde(default)]
    fields: Map<String, Value>,
}

pub(super) fn read(
    path: &Path,
    user_model: &str,
    dump: &mut Dump,
    progress: &mut dyn FnMut(&str),
) -> Result<(), ImportError> {
    let file = File::open(path).map_err(|e| ImportError::io(path, e))?;
    let mut reader = Records {
        file: path.display().to_string().into(),
        user_model,
        dump,
        progress,
        failed: None,
    };
    let mut de = serde_json::Deserializer::from_reader(BufReader::new(file));
    let result = (&mut reader).deserialize(&mut de).and_then(|()| de.end());
    match (reader.failed, result) {
        (Some(error), _) => Err(error),
        (None, Err(e)) => Err(ImportError::Malformed {
            file: path.display().to_string(),
            problem: format!("not a dumpdata JSON list: {e}"),
        }),
        (None, Ok(())) => Ok(()),
    }
}

/// Visits the top-level list; a bad record stops the walk and is kept in `failed`.
struct Records<'r> {
    file: Arc<str>,
    user_model: &'r str,
    dump: &'r mut Dump,
    progress: &'r mut dyn FnMut(&str),
    failed: Option<ImportError>,
}

impl Records<'_> {
    fn take(&mut self, index: usize, record: Record) -> Result<(), ImportError> {
        let table = if record.model.eq_ignore_ascii_case(self.user_model) {
            Table::Users
        } else if record.model == Table::SocialAccounts.model_label() {
            Table::SocialAccounts
        } else if record.model == Table::EmailAddresses.model_label() {
            Table::EmailAddresses
        } else {
            match self.dump.skipped.iter_mut().find(|(label, _)| *label == record.model) {
                Some((_, n)) => *n += 1,
                None => self.dump.skipped.push((record.model, 1)),
            }
            return Ok(());
        };
        let at = Location::Record {
            file: self.file.clone(),
            index,
        };
        // dumpdata puts the key in `pk` and a foreign key under the field's name (`user`).
        let get = |name: &'static str| match name {
            "id" => Raw::from(Some(&record.pk)),
            "user_id" => Raw::from(record.fields.get("user")),
            name => Raw::from(record.fields.get(name)),
        };
        let wrap = |error| ImportError::Field { at: at.clone(), error };
        match table {
            Table::Users => self.dump.users.push(Row {
                model: django::user(get).map_err(wrap)?,
                at,
            }),
            Table::SocialAccounts => self.dump.social_accounts.push(Row {
                model: django::social_account(get).map_err(wrap)?,
                at,
            }),
            Table::EmailAddresses => self.dump.email_addresses.push(Row {
                model: django::email_address(get).map_err(wrap)?,
                at,
            }),
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for &mut Records<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for &mut Records<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of {\"model\", \"pk\", \"fields\"} records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(record) = seq.next_element::<Record>()? {
            index += 1;
            if let Err(e) = self.take(index, record) {
                self.failed = Some(e);
                return Err(de::Error::custom("stopped at a bad record"));
            }
            if index % PROGRESS_EVERY == 0 {
                (self.progress)(&format!("{}: {index} records read", self.file));
            }
        }
        Ok(())
    }
}
