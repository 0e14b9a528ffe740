//! The three sources of settings, each read into a [`Layer`] keyed by flag
//! name, and [`Layers`], which answers with the value of the highest one
//! that gives it (flag, then environment, then file) and says where it came
//! from, for error messages.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use clap::ArgMatches;

use super::ConfigError;
use super::spec::Kind::{Bool, Float, Int, List, Text};
use super::spec::{SPECS, Spec};

/// Values from one source, keyed by flag name.
#[derive(Default)]
pub(super) struct Layer {
    text: HashMap<&'static str, OsString>,
    bools: HashMap<&'static str, bool>,
    lists: HashMap<&'static str, Vec<String>>,
}

#[derive(Clone, Copy)]
enum Source {
    Flag,
    Env,
    File,
}

/// Where a value came from, for error messages.
#[derive(Clone, Copy)]
pub(super) struct Origin(Source, Spec);

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Source::Flag => write!(f, "from --{}", self.1.flag),
            Source::Env => write!(f, "from {}", self.1.env),
            Source::File => write!(f, "from `{}` in the config file", self.1.key),
        }
    }
}

pub(super) fn flag_layer(m: &ArgMatches) -> Result<Layer, ConfigError> {
    let mut layer = Layer::default();
    for s in SPECS {
        let internal = |e: clap::parser::MatchesError| ConfigError::new(s.flag, e.to_string());
        match s.kind {
            Text | Int | Float => {
                if let Some(v) = m.try_get_one::<OsString>(s.key).map_err(internal)? {
                    layer.text.insert(s.flag, v.clone());
                }
            }
            Bool => {
                if m.try_get_one::<bool>(s.key).map_err(internal)?.copied() == Some(true) {
                    layer.bools.insert(s.flag, true);
                }
            }
            List => {
                if let Some(vs) = m.try_get_many::<String>(s.key).map_err(internal)? {
                    layer.lists.insert(s.flag, vs.cloned().collect());
                }
            }
        }
    }
    Ok(layer)
}

/// `env` already answers `None` for empty variables (see `load`).
pub(super) fn env_layer(env: &dyn Fn(&str) -> Option<String>) -> Result<Layer, ConfigError> {
    let mut layer = Layer::default();
    for s in SPECS {
        let Some(v) = env(s.env) else { continue };
        match s.kind {
            Text | Int | Float => {
                layer.text.insert(s.flag, v.into());
            }
            Bool => {
                let b = match v.to_ascii_lowercase().as_str() {
                    "1" | "true" | "yes" | "on" => true,
                    "0" | "false" | "no" | "off" => false,
                    _ => {
                        let msg = format!("{v:?} is not true or false (from {})", s.env);
                        return Err(ConfigError::new(s.flag, msg));
                    }
                };
                layer.bools.insert(s.flag, b);
            }
            List => {
                let items = v.split(',').map(str::trim).filter(|i| !i.is_empty());
                layer
                    .lists
                    .insert(s.flag, items.map(String::from).collect());
            }
        }
    }
    Ok(layer)
}

pub(super) fn file_layer(path: &Path) -> Result<Layer, ConfigError> {
    let text = fs::read_to_string(path)
        .map_err(|e| ConfigError::new("config", format!("cannot read {path:?}: {e}")))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .and_then(|span| text.get(..span.start))
            .map(|before| format!(" (line {})", before.matches('\n').count() + 1))
            .unwrap_or_default();
        ConfigError::new(
            "config",
            format!("{path:?} is not valid TOML: {}{line}", e.message()),
        )
    })?;
    let mut layer = Layer::default();
    for (key, value) in table {
        let Some(s) = SPECS.iter().find(|s| s.key == key) else {
            return Err(ConfigError::new(
                key,
                format!("unknown key in config file {path:?}"),
            ));
        };
        let wrong_type = |found: &str| {
            let want = match s.kind {
                Text => "a string",
                Int => "an integer",
                Float => "a number",
                Bool => "a boolean",
                List => "an array of strings",
            };
            ConfigError::new(
                s.flag,
                format!("`{key}` in {path:?} must be {want}, not {found}"),
            )
        };
        match (s.kind, value) {
            (Text, toml::Value::String(v)) => {
                layer.text.insert(s.flag, v.into());
            }
            (Int | Float, toml::Value::Integer(i)) => {
                layer.text.insert(s.flag, i.to_string().into());
            }
            (Float, toml::Value::Float(f)) => {
                layer.text.insert(s.flag, f.to_string().into());
            }
            (Bool, toml::Value::Boolean(b)) => {
                layer.bools.insert(s.flag, b);
            }
            (List, toml::Value::Array(items)) => {
                let items = items.into_iter().map(|item| match item {
                    toml::Value::String(v) => Ok(v),
                    other => Err(wrong_type(&format!(
                        "an array holding {}",
                        other.type_str()
                    ))),
                });
                layer.lists.insert(s.flag, items.collect::<Result<_, _>>()?);
            }
            (_, other) => return Err(wrong_type(other.type_str())),
        }
    }
    Ok(layer)
}

pub(super) struct Layers {
    pub(super) flags: Layer,
    pub(super) env: Layer,
    pub(super) file: Layer,
}

impl Layers {
    /// Highest precedence first.
    fn ordered(&self) -> [(Source, &Layer); 3] {
        [
            (Source::Flag, &self.flags),
            (Source::Env, &self.env),
            (Source::File, &self.file),
        ]
    }

    pub(super) fn text(&self, s: Spec) -> Option<(&OsString, Origin)> {
        self.ordered()
            .into_iter()
            .find_map(|(src, layer)| layer.text.get(s.flag).map(|v| (v, Origin(src, s))))
    }

    pub(super) fn flag(&self, s: Spec) -> bool {
        self.ordered()
            .into_iter()
            .find_map(|(_, layer)| layer.bools.get(s.flag).copied())
            .unwrap_or(false)
    }

    pub(super) fn list(&self, s: Spec) -> Option<(&[String], Origin)> {
        self.ordered().into_iter().find_map(|(src, layer)| {
            layer
                .lists
                .get(s.flag)
                .map(|v| (v.as_slice(), Origin(src, s)))
        })
    }

    pub(super) fn path(&self, s: Spec) -> Result<Option<PathBuf>, ConfigError> {
        match self.text(s) {
            Some((v, origin)) if v.is_empty() => Err(ConfigError::new(
                s.flag,
                format!("must not be empty ({origin})"),
            )),
            other => Ok(other.map(|(v, _)| PathBuf::from(v))),
        }
    }

    /// The winning value of `s`, parsed by `parse`, whose error names the value.
    pub(super) fn parse<T>(
        &self,
        s: Spec,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some((raw, origin)) = self.text(s) else {
            return Ok(None);
        };
        let Some(v) = raw.to_str() else {
            return Err(ConfigError::new(
                s.flag,
                format!("{raw:?} is not UTF-8 ({origin})"),
            ));
        };
        parse(v)
            .map(Some)
            .map_err(|msg| ConfigError::new(s.flag, format!("{msg} ({origin})")))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Settings;
    use super::super::test_support::{Scratch, failing_setting, run};

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let scratch = Scratch::new();
        let file = scratch.write(
            "rsp.toml",
            "http_addr = \"127.0.0.1:1001\"\nheartbeat_ms = 11\nelection_timeout_ms = 1000\n\
             learner = true\npeer_routes = [\"2=file:1\"]\nzone = \"file\"\n",
        );
        let env = [
            ("RSP_HTTP_ADDR", "127.0.0.1:1002"),
            ("RSP_HEARTBEAT_MS", "12"),
            ("RSP_LEARNER", "false"),
            ("RSP_PEER_ROUTES", "2=env:1, 3=env:2"),
        ];
        let flags = [
            "--config",
            &file,
            "--http-addr",
            "127.0.0.1:1003",
            "--heartbeat-ms",
            "13",
        ];
        let flags_more = [&flags[..], &["--learner", "--peer-route", "2=flag:1"]].concat();

        let default = run(&[], &[]).expect("defaults");
        let from_file = run(&flags[..2], &[]).expect("file only");
        let from_env = run(&flags[..2], &env).expect("file and env");
        let from_flags = run(&flags_more, &env).expect("all three");

        let http = |s: &Settings| s.http_addr.port();
        assert_eq!(
            [&default, &from_file, &from_env, &from_flags].map(http),
            [8080, 1001, 1002, 1003]
        );
        let beat = |s: &Settings| s.heartbeat_ms;
        assert_eq!(
            [&default, &from_file, &from_env, &from_flags].map(beat),
            [100, 11, 12, 13]
        );
        let learner = |s: &Settings| s.learner;
        assert_eq!(
            [&default, &from_file, &from_env, &from_flags].map(learner),
            [false, true, false, true]
        );
        assert_eq!(from_file.peer_routes, vec![(2, "file:1".to_owned())]);
        assert_eq!(
            from_env.peer_routes,
            vec![(2, "env:1".to_owned()), (3, "env:2".to_owned())]
        );
        assert_eq!(from_flags.peer_routes, vec![(2, "flag:1".to_owned())]);
        // A setting only the file gives survives the layers above it.
        assert_eq!(from_flags.zone, "file");
        assert_eq!(from_flags.election_timeout_ms, 1000);
    }

    #[test]
    fn a_ratio_is_a_toml_float_or_integer() {
        let scratch = Scratch::new();
        for (contents, ratio) in [
            ("otlp_sampling_ratio = 0.25", 0.25),
            ("otlp_sampling_ratio = 0", 0.0),
        ] {
            let file = scratch.write("rsp.toml", contents);
            let s = run(&["--config", &file], &[]).expect(contents);
            assert_eq!(s.otlp_sampling_ratio.get(), ratio, "{contents}");
        }
        let file = scratch.write("rsp.toml", "otlp_sampling_ratio = 0.25");
        let s = run(&["--config", &file], &[("RSP_OTLP_SAMPLING_RATIO", "0.5")])
            .expect("env beats file");
        assert_eq!(s.otlp_sampling_ratio.get(), 0.5);
    }

    #[test]
    fn config_file_can_come_from_the_environment() {
        let scratch = Scratch::new();
        let file = scratch.write("rsp.toml", "region = \"eu\"\n");
        let s = run(&[], &[("RSP_CONFIG", &file)]).expect("valid file");
        assert_eq!(s.region, "eu");
    }

    #[test]
    fn unknown_toml_key_is_named() {
        let scratch = Scratch::new();
        let typo = scratch.write("typo.toml", "http_adr = \"127.0.0.1:1\"\n");
        assert_eq!(failing_setting(run(&["--config", &typo], &[])), "http_adr");
        let table = scratch.write("table.toml", "[server]\nhttp_addr = \"127.0.0.1:1\"\n");
        assert_eq!(failing_setting(run(&["--config", &table], &[])), "server");
        // `config` is a flag, not a key of the file.
        let nested = scratch.write("nested.toml", "config = \"other.toml\"\n");
        assert_eq!(failing_setting(run(&["--config", &nested], &[])), "config");
    }

    #[test]
    fn wrong_toml_type_names_the_setting() {
        let scratch = Scratch::new();
        for (contents, setting) in [
            ("heartbeat_ms = \"100\"", "heartbeat-ms"),
            ("http_addr = 8080", "http-addr"),
            ("learner = 1", "learner"),
            ("peer_routes = [2]", "peer-route"),
            ("peer_routes = \"2=h:1\"", "peer-route"),
            ("node_id = -1", "node-id"),
            ("otlp_sampling_ratio = \"0.5\"", "otlp-sampling-ratio"),
            ("otlp_sampling_ratio = 2", "otlp-sampling-ratio"),
        ] {
            let file = scratch.write("rsp.toml", contents);
            assert_eq!(
                failing_setting(run(&["--config", &file], &[])),
                setting,
                "{contents}"
            );
        }
    }

    #[test]
    fn unreadable_or_malformed_config_names_config() {
        let scratch = Scratch::new();
        let missing = scratch.path("missing.toml");
        assert_eq!(failing_setting(run(&["--config", &missing], &[])), "config");
        let broken = scratch.write("broken.toml", "zone = \"a\"\nhttp_addr = \n");
        let err = run(&["--config", &broken], &[]).expect_err("not TOML");
        assert_eq!(err.setting, "config");
        assert!(err.message.contains("line 2"), "{err}");
    }
}
