//! The config file (`config.toml`): top-level keys are defaults for every account;
//! `[account.NAME]` tables name accounts. Its keys are the option table's (`Opt::key`); any other
//! key is refused with its line, never with the line's text (it could hold a secret).

use std::collections::BTreeMap;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::options::{OPTIONS, Options, Raw, Scope};
use crate::error::{Error, Result};

/// The config file: top-level options are defaults for every account.
#[derive(Debug, Default, Clone)]
pub struct ConfigFile {
    pub defaults: Options,
    pub accounts: BTreeMap<String, Options>,
}

impl ConfigFile {
    /// Reads `path`; a missing file is an empty config unless `required`. Relative paths in it
    /// are made relative to the file's folder (never to git's working directory, the
    /// repository); `~` is expanded when the settings are resolved.
    pub fn load(path: &Path, required: bool) -> Result<ConfigFile> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(ConfigFile::default());
            }
            Err(e) => return Err(Error::io("cannot read config file", path, e)),
        };
        let bad = |at: Option<std::ops::Range<usize>>, message: String| Error::Config {
            path: path.to_path_buf(),
            message: match at {
                Some(span) => format!(
                    "line {}: {message}",
                    text[..span.start.min(text.len())].matches('\n').count() + 1
                ),
                None => message,
            },
        };
        // The message and line only: toml's excerpt of the line could show a secret.
        let doc = DeTable::parse(&text).map_err(|e| bad(e.span(), e.message().to_string()))?;
        let mut file = ConfigFile::default();
        for (key, value) in doc.get_ref() {
            if key.get_ref() == "account" {
                let DeValue::Table(accounts) = value.get_ref() else {
                    return Err(bad(
                        Some(key.span()),
                        "`account` must be a table of [account.NAME] tables".into(),
                    ));
                };
                for (name, table) in accounts {
                    let DeValue::Table(table) = table.get_ref() else {
                        return Err(bad(
                            Some(name.span()),
                            format!("account.{} must be a table", name.get_ref()),
                        ));
                    };
                    let o = options(table, &bad)?;
                    file.accounts.insert(name.get_ref().to_string(), o);
                }
            }
        }
        let top: DeTable = doc
            .get_ref()
            .iter()
            .filter(|(k, _)| k.get_ref() != "account")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        file.defaults = options(&top, &bad)?;
        if !file.defaults.urls.is_empty() {
            return Err(Error::Config {
                path: path.to_path_buf(),
                message: "`urls` is not a top-level key: top-level keys are defaults for \
                          accounts; move it into the [account.NAME] table it belongs to"
                    .into(),
            });
        }
        let base = path.parent().unwrap_or(Path::new("."));
        for o in std::iter::once(&mut file.defaults).chain(file.accounts.values_mut()) {
            for p in o.paths_mut() {
                if p.is_relative() && !p.starts_with("~") {
                    *p = base.join(&*p);
                }
            }
        }
        Ok(file)
    }
}

/// One table's options, each key looked up in the option table.
fn options(
    table: &DeTable,
    bad: &dyn Fn(Option<std::ops::Range<usize>>, String) -> Error,
) -> Result<Options> {
    let mut o = Options::default();
    for (key, value) in table {
        let k = key.get_ref();
        let Some(opt) = OPTIONS
            .iter()
            .find(|o| o.scope == Scope::Account && o.key == Some(k.as_ref()))
        else {
            return Err(bad(
                Some(key.span()),
                format!("unknown key {}", crate::trust::quote(k)),
            ));
        };
        let raw = match value.get_ref() {
            DeValue::String(s) => Raw::Text(s.to_string()),
            DeValue::Boolean(b) => Raw::Bool(*b),
            DeValue::Integer(i) => {
                match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
                    Ok(n) => Raw::Int(n),
                    Err(_) => return Err(bad(Some(value.span()), format!("{k}: not a number"))),
                }
            }
            DeValue::Array(items) => {
                let mut list = Vec::new();
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => list.push(s.to_string()),
                        _ => {
                            return Err(bad(
                                Some(item.span()),
                                format!("{k} takes a list of strings"),
                            ));
                        }
                    }
                }
                Raw::List(list)
            }
            other => {
                return Err(bad(
                    Some(value.span()),
                    format!("{k}: a {} is not a value it takes", other.type_str()),
                ));
            }
        };
        o.put_raw(opt, raw)
            .map_err(|e| bad(Some(value.span()), format!("{k}: {}", usage_text(e))))?;
    }
    Ok(o)
}

/// A usage error's message without the `--help` hint (it is the file that needs fixing).
fn usage_text(e: Error) -> String {
    match e {
        Error::Usage(m) => m,
        other => other.to_string(),
    }
}
