//! The HTTP side of `rsp admin`: one blocking reqwest client (rustls with
//! the process's aws-lc-rs provider; `--ca-file` for a private CA), the
//! bearer token, sending a [`Call`], following paged lists, and printing
//! the answer.

use std::error::Error as _;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{StatusCode, Url};
use serde_json::Value;
use zeroize::Zeroizing;

use super::call::{Body, Call, Paging, View};
use super::exit::{CliResult, Failure};
use super::output::{self, Output};

/// A client of one cluster's admin API.
pub struct Api {
    client: Client,
    base: Url,
    /// `Bearer <token>`, marked sensitive so it is never `Debug`-printed.
    authorization: HeaderValue,
    pub output: Output,
}

/// A successful answer: its status and body (empty for 204).
pub struct Answer {
    pub status: StatusCode,
    pub body: Option<Value>,
    pub text: String,
}

impl Api {
    pub fn new(
        url: &str,
        token: Zeroizing<String>,
        ca_file: Option<&Path>,
        timeout: Duration,
        output: Output,
    ) -> CliResult<Api> {
        let base = Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| Failure::usage(format!("--url `{url}` is not an http(s) URL")))?;
        let header = Zeroizing::new(format!("Bearer {}", token.as_str()));
        let mut authorization = HeaderValue::from_str(&header)
            .map_err(|_| Failure::usage("the admin token is not a valid header value"))?;
        authorization.set_sensitive(true);
        let mut builder = Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .user_agent(concat!("rsp-admin/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Failure::usage(format!("{} holds no PEM certificate: {e}", path.display()))
            })?;
            if certs.is_empty() {
                return Err(Failure::usage(format!(
                    "{} holds no PEM certificate",
                    path.display()
                )));
            }
            builder = builder.tls_certs_only(certs);
        }
        let client = builder
            .build()
            .map_err(|e| Failure::usage(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Api {
            client,
            base,
            authorization,
            output,
        })
    }

    fn url(&self, call: &Call, extra: &[(&str, &str)]) -> CliResult<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| Failure::usage("--url cannot have a path appended"))?
            .pop_if_empty()
            .extend(["admin", "v1"])
            .extend(&call.path);
        if !call.query.is_empty() || !extra.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &call.query {
                pairs.append_pair(k, v);
            }
            for (k, v) in extra {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    fn request(&self, call: &Call, extra: &[(&str, &str)]) -> CliResult<RequestBuilder> {
        let mut request = self
            .client
            .request(call.method.clone(), self.url(call, extra)?)
            .header(AUTHORIZATION, self.authorization.clone());
        match &call.body {
            None => {}
            Some(body) => {
                let bytes = match body {
                    Body::Json(v) => serde_json::to_vec(v).unwrap_or_default(),
                    Body::Secret(buf) => buf.to_vec(),
                };
                request = request.header(CONTENT_TYPE, "application/json").body(bytes);
            }
        }
        Ok(request)
    }

    fn execute(&self, call: &Call, extra: &[(&str, &str)]) -> CliResult<Response> {
        self.request(call, extra)?
            .send()
            .map_err(|e| unreachable(&self.base, &e))
    }

    /// Sends `call` once: a 2xx answer, or the failure its error answer means.
    pub fn send(&self, call: &Call, extra: &[(&str, &str)]) -> CliResult<Answer> {
        let response = self.execute(call, extra)?;
        let status = response.status();
        let text = response.text().map_err(|e| unreachable(&self.base, &e))?;
        if !status.is_success() {
            return Err(Failure::answered(
                status,
                &text,
                &call.describe(),
                call.source.as_deref(),
            ));
        }
        let body = match text.trim().is_empty() {
            true => None,
            false => serde_json::from_str(&text).ok(),
        };
        Ok(Answer { status, body, text })
    }

    /// Sends `call` (following pages as its view says) and prints the answer.
    pub fn show(&self, call: Call) -> CliResult<()> {
        if let View::Paged { columns, paging } = &call.view {
            return self.show_pages(&call, columns, paging);
        }
        let answer = self.send(&call, &[])?;
        let mut out = String::new();
        match (&answer.body, self.output) {
            (None, Output::Json) => out.push_str(&answer.text),
            (None, Output::Table) => match &call.view {
                View::Done(done) => out.push_str(&format!("{done}\n")),
                _ => out.push_str(&format!("{}\n", answer.status)),
            },
            (Some(body), Output::Json) => out.push_str(&format!("{}\n", output::json(body))),
            (Some(body), Output::Table) => match &call.view {
                View::List { field, columns } => {
                    let list = field.map_or(body, |f| &body[f]);
                    let rows = list.as_array().map(Vec::as_slice).unwrap_or_default();
                    if let (Some(f), Value::Object(map)) = (field, body) {
                        // Fields beside the list (a `current` version, ...).
                        let rest: serde_json::Map<String, Value> = map
                            .iter()
                            .filter(|(k, v)| k.as_str() != *f && !(*k == "next" && v.is_null()))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        if !rest.is_empty() {
                            out.push_str(&output::object(&Value::Object(rest)));
                        }
                    }
                    out.push_str(&output::table(rows, columns));
                }
                _ => out.push_str(&output::object(body)),
            },
        }
        print(&out);
        Ok(())
    }

    fn show_pages(&self, call: &Call, columns: &[&str], paging: &Paging) -> CliResult<()> {
        let limit = paging.limit.map(|n| n.to_string());
        let mut after = paging.after.clone();
        let mut items = Vec::new();
        loop {
            let mut extra: Vec<(&str, &str)> = Vec::new();
            if let Some(limit) = &limit {
                extra.push(("limit", limit));
            }
            if let Some(after) = &after {
                extra.push(("after", after));
            }
            let answer = self.send(call, &extra)?;
            let body = answer.body.unwrap_or(Value::Null);
            let page = match &body {
                Value::Array(a) => a.clone(),
                _ => body["items"].as_array().cloned().ok_or_else(|| {
                    Failure::unreachable(format!(
                        "{} answered without an `items` list",
                        call.describe()
                    ))
                })?,
            };
            let next = body["next"].as_str().map(str::to_owned);
            if !paging.all {
                match self.output {
                    Output::Json => print(&format!("{}\n", output::json(&body))),
                    Output::Table => {
                        print(&output::table(&page, columns));
                        if let Some(next) = &next {
                            eprintln!("more: --after {next}");
                        }
                    }
                }
                return Ok(());
            }
            items.extend(page);
            match next {
                Some(next) if after.as_deref() != Some(next.as_str()) => after = Some(next),
                Some(_) => {
                    return Err(Failure::unreachable(
                        "the server answered the same cursor twice; stopping",
                    ));
                }
                None => break,
            }
        }
        match self.output {
            Output::Json => {
                let all = serde_json::json!({"items": items, "next": null});
                print(&format!("{}\n", output::json(&all)));
            }
            Output::Table => print(&output::table(&items, columns)),
        }
        Ok(())
    }

    /// Sends `call` and copies its answer to stdout line by line as it
    /// comes (an NDJSON stream).
    pub fn stream(&self, call: &Call) -> CliResult<()> {
        let response = self.execute(call, &[])?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().unwrap_or_default();
            return Err(Failure::answered(status, &text, &call.describe(), None));
        }
        let mut stdout = std::io::stdout().lock();
        for line in BufReader::new(response).lines() {
            let line = line.map_err(|e| Failure::unreachable(format!("the stream broke: {e}")))?;
            if writeln!(stdout, "{line}")
                .and_then(|_| stdout.flush())
                .is_err()
            {
                break;
            }
        }
        Ok(())
    }
}

impl Api {
    /// Sends `call` and copies its answer's body into `out` as it comes,
    /// calling `progress` with the bytes copied so far; the answer's
    /// headers are returned.
    pub fn download(
        &self,
        call: &Call,
        out: &mut impl Write,
        mut progress: impl FnMut(u64),
    ) -> CliResult<reqwest::header::HeaderMap> {
        let mut response = self.execute(call, &[])?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().unwrap_or_default();
            return Err(Failure::answered(status, &text, &call.describe(), None));
        }
        let headers = response.headers().clone();
        let mut buf = vec![0u8; 256 << 10];
        let mut copied = 0u64;
        loop {
            let n = std::io::Read::read(&mut response, &mut buf)
                .map_err(|e| Failure::unreachable(format!("the answer broke off: {e}")))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])
                .map_err(|e| Failure::usage(format!("cannot write the output: {e}")))?;
            copied += n as u64;
            progress(copied);
        }
        Ok(headers)
    }
}

/// Prints to stdout; a closed stdout (`| head`) is not an error.
pub fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush());
}

/// No usable answer from `base`: the error and its causes on one line.
fn unreachable(base: &Url, e: &reqwest::Error) -> Failure {
    let mut message = if e.is_timeout() {
        format!("no answer from {base} in time")
    } else if e.is_connect() {
        format!("cannot connect to {base}")
    } else {
        format!("no usable answer from {base}")
    };
    // reqwest's own text repeats the URL; its causes say what went wrong.
    let mut source: Option<&dyn std::error::Error> = match e.source() {
        Some(cause) => Some(cause),
        None => Some(e),
    };
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    Failure::unreachable(message)
}
