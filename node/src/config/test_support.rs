//! Helpers for the settings tests: load from given flags and environment,
//! name the setting an error blames, and scratch files.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;

use super::{ConfigError, Settings, load_from};

pub(super) fn run(flags: &[&str], env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let args = ["rsp", "serve"]
        .iter()
        .chain(flags)
        .map(OsString::from)
        .collect();
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load_from(args, &|name| env.get(name).cloned())
}

#[track_caller]
pub(super) fn failing_setting(result: Result<Settings, ConfigError>) -> String {
    match result {
        Ok(s) => panic!("expected an error, got {s:?}"),
        Err(e) => {
            assert!(!e.to_string().contains('\n'), "not one line: {e}");
            e.setting
        }
    }
}

pub(super) struct Scratch(tempfile::TempDir);

impl Scratch {
    pub(super) fn new() -> Self {
        Scratch(tempfile::tempdir().expect("temp dir"))
    }
    pub(super) fn path(&self, name: &str) -> String {
        self.0.path().join(name).to_string_lossy().into_owned()
    }
    pub(super) fn write(&self, name: &str, contents: &str) -> String {
        let path = self.path(name);
        fs::write(&path, contents).expect("write scratch file");
        path
    }
}
