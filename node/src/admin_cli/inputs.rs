//! What `rsp admin` reads besides its flags: the admin token, secrets from
//! stdin, files (`-` for stdin), and `key=value` pairs.
//!
//! Secrets never come from argv (any user can read another's argv in
//! `ps`); they are held in [`Zeroizing`] buffers and never printed.

use std::io::{BufRead, IsTerminal, Read};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::exit::{CliResult, Failure};

/// Where a token is looked for when neither `--admin-token-file` nor
/// `RSP_ADMIN_TOKEN` gives one: `rsp serve`'s default data dir.
const DEFAULT_TOKEN_FILE: &str = "./rsp-data/admin-token";

/// The admin token: the `--admin-token-file` file, else `RSP_ADMIN_TOKEN`,
/// else the file `RSP_ADMIN_TOKEN_FILE` names, else `./rsp-data/admin-token`
/// when it exists. `env` looks up environment variables.
pub fn admin_token(
    flag: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> CliResult<Zeroizing<String>> {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    let file = match (flag, env("RSP_ADMIN_TOKEN")) {
        (Some(path), _) => path.to_owned(),
        (None, Some(token)) => return non_empty(Zeroizing::new(token), "RSP_ADMIN_TOKEN"),
        (None, None) => match env("RSP_ADMIN_TOKEN_FILE") {
            Some(path) => PathBuf::from(path),
            None if Path::new(DEFAULT_TOKEN_FILE).exists() => PathBuf::from(DEFAULT_TOKEN_FILE),
            None => {
                return Err(Failure::usage(
                    "no admin token: set RSP_ADMIN_TOKEN or pass --admin-token-file FILE",
                ));
            }
        },
    };
    let mut token = Zeroizing::new(String::new());
    std::fs::File::open(&file)
        .and_then(|mut f| f.read_to_string(&mut token))
        .map_err(|e| {
            Failure::usage(format!(
                "cannot read the admin token file {}: {e}",
                file.display()
            ))
        })?;
    let trimmed = Zeroizing::new(token.trim().to_owned());
    non_empty(trimmed, &file.display().to_string())
}

fn non_empty(token: Zeroizing<String>, from: &str) -> CliResult<Zeroizing<String>> {
    if token.trim().is_empty() {
        return Err(Failure::usage(format!(
            "the admin token from {from} is empty"
        )));
    }
    if token.chars().any(|c| c.is_control() || c == ' ') {
        return Err(Failure::usage(format!(
            "the admin token from {from} holds spaces or control characters"
        )));
    }
    Ok(token)
}

/// A secret (`what`: "password") read from stdin to its end (one line typed
/// without echo when stdin is a terminal), without one trailing newline.
/// An empty secret is refused.
pub fn secret_from_stdin(what: &str) -> CliResult<Zeroizing<String>> {
    let stdin = std::io::stdin();
    let mut secret = Zeroizing::new(String::new());
    let read = match stdin.is_terminal() {
        true => read_hidden_line(what, &mut secret),
        false => stdin.lock().read_to_string(&mut secret),
    };
    read.map_err(|e| Failure::usage(format!("cannot read the {what} from stdin: {e}")))?;
    let end = secret
        .strip_suffix("\r\n")
        .or_else(|| secret.strip_suffix('\n'))
        .map_or(secret.len(), str::len);
    secret.truncate(end);
    if secret.is_empty() {
        return Err(Failure::usage(format!("no {what} on stdin")));
    }
    Ok(secret)
}

/// One line typed on the terminal with echo turned off.
fn read_hidden_line(what: &str, line: &mut String) -> std::io::Result<usize> {
    eprint!("{what}: ");
    let fd = libc::STDIN_FILENO;
    // SAFETY: a zeroed termios is a valid value for tcgetattr to fill in.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `saved` is a valid, writable termios.
    let have_saved = unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
    if have_saved {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: `quiet` is a termios read from this terminal, echo off.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let read = std::io::stdin().lock().read_line(line);
    if have_saved {
        // SAFETY: puts back the settings read above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    eprintln!();
    read
}

/// A text file, or stdin for `-`.
pub fn read_text(path: &Path) -> CliResult<String> {
    let mut text = String::new();
    let read = if path == Path::new("-") {
        std::io::stdin().lock().read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    Ok(text)
}

/// A JSON file, or JSON on stdin for `-`.
pub fn read_json(path: &Path) -> CliResult<Value> {
    serde_json::from_str(&read_text(path)?)
        .map_err(|e| Failure::usage(format!("{} is not JSON: {e}", path.display())))
}

/// A JSON object file (`-`: stdin), e.g. the fields of a client.
pub fn read_object(path: &Path) -> CliResult<Map<String, Value>> {
    match read_json(path)? {
        Value::Object(map) => Ok(map),
        _ => Err(Failure::usage(format!(
            "{} must hold a JSON object",
            path.display()
        ))),
    }
}

/// clap parser of `KEY=VALUE`: the value is JSON when it parses as JSON
/// (`true`, `3`, `["a"]`, `"quoted"`), else the text as a string.
pub fn key_value(arg: &str) -> Result<(String, Value), String> {
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got `{arg}`"))?;
    if key.is_empty() {
        return Err(format!("empty key in `{arg}`"));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((key.to_owned(), value))
}

/// clap parser of `KEY=VALUE` kept as text.
pub fn key_text(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got `{arg}`")),
    }
}

/// Pairs into a JSON object (a later key wins).
pub fn object(pairs: Vec<(String, Value)>) -> Map<String, Value> {
    pairs.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_are_json_when_they_parse_and_text_otherwise() {
        assert_eq!(
            key_value("rsp_admin=true"),
            Ok(("rsp_admin".into(), Value::Bool(true)))
        );
        assert_eq!(key_value("n=3"), Ok(("n".into(), Value::from(3))));
        assert_eq!(
            key_value("team=a=b"),
            Ok(("team".into(), Value::from("a=b")))
        );
        assert_eq!(
            key_value("s=\"true\""),
            Ok(("s".into(), Value::from("true")))
        );
        assert!(key_value("novalue").is_err());
        assert!(key_value("=x").is_err());
    }

    #[test]
    fn the_token_flag_beats_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file-0123456789\n").unwrap();
        let env = |name: &str| (name == "RSP_ADMIN_TOKEN").then(|| "from-env".to_owned());
        assert_eq!(
            admin_token(Some(&file), &env).unwrap().as_str(),
            "from-file-0123456789"
        );
        assert_eq!(admin_token(None, &env).unwrap().as_str(), "from-env");
        let by_file_var =
            |name: &str| (name == "RSP_ADMIN_TOKEN_FILE").then(|| file.display().to_string());
        assert_eq!(
            admin_token(None, &by_file_var).unwrap().as_str(),
            "from-file-0123456789"
        );
        std::fs::write(&file, "  \n").unwrap();
        assert!(admin_token(Some(&file), &env).is_err());
    }
}
