//! Requests through an app in process (no socket), for the benchmarks
//! that drive `rsp_api::app` directly.

use anyhow::Result;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

/// A request through `app`: the status, the cookies it set (`name=value`,
/// empty ones left out) and the body.
pub async fn oneshot_with_headers(
    app: &axum::Router,
    req: Request<Body>,
) -> Result<(StatusCode, Vec<String>, String)> {
    let resp = app.clone().oneshot(req).await?;
    let status = resp.status();
    let cookies = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter(|pair| pair.split_once('=').is_some_and(|(_, v)| !v.is_empty()))
        .map(str::to_string)
        .collect();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22).await?;
    Ok((
        status,
        cookies,
        String::from_utf8_lossy(&bytes).into_owned(),
    ))
}

/// The value of the input named `name` in an HTML page, unescaped.
pub fn field(page: &str, name: &str) -> Option<String> {
    let at = page.find(&format!("name=\"{name}\""))?;
    let tag = &page[page[..at].rfind('<')?..at + page[at..].find('>')?];
    let v = tag.find("value=\"")? + "value=\"".len();
    let value = &tag[v..v + tag[v..].find('"')?];
    Some(if value.contains('&') {
        value
            .replace("&#x2f;", "/")
            .replace("&#47;", "/")
            .replace("&#x2b;", "+")
            .replace("&#43;", "+")
            .replace("&#x3d;", "=")
            .replace("&#61;", "=")
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
    } else {
        value.to_string()
    })
}
