//! The exit codes of `rsp admin`, stable for scripts (docs/cli.md), and the
//! failure that carries one with the lines to print on stderr.

use reqwest::StatusCode;
use serde_json::Value;

/// What a script can tell apart from the exit code alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The call succeeded.
    Ok = 0,
    /// The server answered with an error not covered below (400, 401, 403,
    /// 429, 5xx, ...).
    Server = 1,
    /// The command line or a local input (a file, stdin, the token) is
    /// unusable; nothing was sent.
    Usage = 2,
    /// No answer: cannot connect, TLS failure, timeout, cut answer.
    Unreachable = 3,
    /// 404: the tenant, user, key... does not exist.
    NotFound = 4,
    /// 409 or 412: it exists already, or it changed under the call.
    Conflict = 5,
    /// This server does not offer the call (no such route, 405, 501).
    NotOffered = 6,
}

impl Exit {
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The exit code of an error answer. `no_route`: the server said it has
    /// no such endpoint (rather than no such object).
    pub fn of_status(status: StatusCode, no_route: bool) -> Exit {
        match status.as_u16() {
            404 if no_route => Exit::NotOffered,
            404 => Exit::NotFound,
            405 | 501 => Exit::NotOffered,
            409 | 412 => Exit::Conflict,
            _ => Exit::Server,
        }
    }
}

/// Why a command did not succeed: an exit code and what to print.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub lines: Vec<String>,
}

pub type CliResult<T> = Result<T, Failure>;

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Usage,
            lines: vec![format!("error: {}", message.into())],
        }
    }

    pub fn unreachable(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Unreachable,
            lines: vec![format!("error: {}", message.into())],
        }
    }

    /// An error answer. `request` is `METHOD /path` for the message; `source`
    /// is the text the call sent (a policy set), to place Cedar's
    /// diagnostics in it by line and column.
    pub fn answered(
        status: StatusCode,
        body: &str,
        request: &str,
        source: Option<&str>,
    ) -> Failure {
        let json: Option<Value> = serde_json::from_str(body).ok();
        let code = json.as_ref().and_then(|j| j["error"].as_str());
        let message = json.as_ref().and_then(|j| j["message"].as_str());
        let no_route = status == StatusCode::NOT_FOUND
            && (code.is_none() || message == Some("no such endpoint"));
        let mut lines = Vec::new();
        match (code, message) {
            (Some(code), Some(message)) => lines.push(format!("error: {code}: {message}")),
            (Some(code), None) => lines.push(format!("error: {code}")),
            _ => {
                let text = one_line(body, 300);
                let reason = status.canonical_reason().unwrap_or("error");
                lines.push(match text.is_empty() {
                    true => format!("error: HTTP {} {reason}", status.as_u16()),
                    false => format!("error: HTTP {} {reason}: {text}", status.as_u16()),
                });
            }
        }
        if let Some(diagnostics) = json.as_ref().and_then(|j| j["diagnostics"].as_array()) {
            lines.extend(diagnostics.iter().map(|d| diagnostic(d, source)));
        }
        let exit = Exit::of_status(status, no_route);
        if exit == Exit::NotOffered {
            lines.push(format!(
                "hint: this server does not offer {request} (HTTP {}); it may run an older rsp",
                status.as_u16()
            ));
        }
        Failure { exit, lines }
    }
}

/// One Cedar diagnostic: `  - [policy] message (help) at line L, column C`.
fn diagnostic(d: &Value, source: Option<&str>) -> String {
    let mut line = String::from("  -");
    if let Some(policy) = d["policy_id"].as_str() {
        line.push_str(&format!(" [{policy}]"));
    }
    match d["message"].as_str() {
        Some(message) => line.push_str(&format!(" {message}")),
        None => line.push_str(&format!(" {d}")),
    }
    if let Some(help) = d["help"].as_str() {
        line.push_str(&format!(" (help: {help})"));
    }
    let start = d["source_ranges"][0]["start"].as_u64();
    if let (Some(text), Some(start)) = (source, start) {
        let (l, c) = line_and_column(text, start as usize);
        line.push_str(&format!(" at line {l}, column {c}"));
    }
    line
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
pub fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &flat[..i]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_documented_exit_codes() {
        let of = |s: u16, no_route| Exit::of_status(StatusCode::from_u16(s).unwrap(), no_route);
        assert_eq!(of(400, false), Exit::Server);
        assert_eq!(of(401, false), Exit::Server);
        assert_eq!(of(404, false), Exit::NotFound);
        assert_eq!(of(404, true), Exit::NotOffered);
        assert_eq!(of(405, false), Exit::NotOffered);
        assert_eq!(of(409, false), Exit::Conflict);
        assert_eq!(of(412, false), Exit::Conflict);
        assert_eq!(of(503, false), Exit::Server);
        assert_eq!(
            [Exit::Ok, Exit::Server, Exit::Usage, Exit::Unreachable]
                .map(Exit::code)
                .to_vec(),
            vec![0, 1, 2, 3]
        );
        assert_eq!(
            [Exit::NotFound, Exit::Conflict, Exit::NotOffered].map(Exit::code),
            [4, 5, 6]
        );
    }

    #[test]
    fn an_error_body_is_printed_as_code_and_message() {
        let f = Failure::answered(
            StatusCode::NOT_FOUND,
            r#"{"error":"tenant_not_found","message":"no tenant `x`"}"#,
            "GET /admin/v1/tenants/x",
            None,
        );
        assert_eq!(f.exit, Exit::NotFound);
        assert_eq!(f.lines, vec!["error: tenant_not_found: no tenant `x`"]);
    }

    #[test]
    fn a_missing_route_is_told_apart_from_a_missing_object() {
        let f = Failure::answered(
            StatusCode::NOT_FOUND,
            r#"{"error":"not_found","message":"no such endpoint"}"#,
            "GET /admin/v1/tenants/t/audit",
            None,
        );
        assert_eq!(f.exit, Exit::NotOffered);
        assert!(f.lines[1].contains("does not offer GET /admin/v1/tenants/t/audit"));
        let f = Failure::answered(StatusCode::METHOD_NOT_ALLOWED, "", "GET /x", None);
        assert_eq!(f.lines[0], "error: HTTP 405 Method Not Allowed");
    }

    #[test]
    fn cedar_diagnostics_are_placed_in_the_source() {
        let body = r#"{"error":"invalid_policy","message":"bad","diagnostics":[
            {"message":"unexpected token","policy_id":"p0","source_ranges":[{"start":10,"end":19}]}]}"#;
        let f = Failure::answered(
            StatusCode::BAD_REQUEST,
            body,
            "PUT /p",
            Some("permit(\n  principal,,"),
        );
        assert_eq!(f.exit, Exit::Server);
        assert_eq!(f.lines[1], "  - [p0] unexpected token at line 2, column 3");
    }
}
