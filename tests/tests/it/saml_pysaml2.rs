//! rsp's SAML IdP against an SP that shares nothing with it: pysaml2
//! (tests/saml/sp.py, which verifies through Debian's xmlsec1), on a
//! 3-node cluster of `rsp` processes behind one public URL. The test plays
//! the browser and carries URLs and forms between the SP and the nodes:
//! sign-on by Redirect (login on node 1, the answer from node 2) and by
//! POST (on node 3, no login form: single sign-on), attributes as mapped,
//! tampered and wrapped responses refused by the SP, IdP-initiated
//! sign-on, and single logout both ways (the SP that asks, and the other
//! SP of the session told by the IdP), then an assertion encrypted to a
//! third SP's key.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use rsp_tests::rsp_chaos::{AdminClient, Cluster};
use rsp_tests::spec;
use serde_json::{Value, json};
use support::{PASSWORD, WebBrowser, tenant_with_client};

const PUBLIC: &str = "http://rsp.saml.test";
const TENANT: &str = "saml";

fn issuer() -> String {
    format!("{PUBLIC}/t/{TENANT}")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One pysaml2 SP: its directory and entity id.
struct Sp {
    dir: PathBuf,
    entity_id: String,
    idp_metadata: PathBuf,
}

impl Sp {
    /// Run `sp.py <args>` for this SP; its JSON answer, or the error it
    /// printed.
    fn run(&self, command: &str, args: &[&str]) -> Result<Value> {
        let mut cmd = Command::new(root().join("target/saml-venv/bin/python"));
        cmd.arg(root().join("tests/saml/sp.py")).arg(command);
        if command != "tamper-response" {
            cmd.arg("--dir").arg(&self.dir);
        }
        if !matches!(command, "metadata" | "tamper-response") {
            cmd.arg("--idp-metadata").arg(&self.idp_metadata);
        }
        let out = cmd.args(args).output().context("running sp.py")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if command == "metadata" {
            ensure!(
                out.status.success(),
                "sp.py metadata: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return Ok(Value::String(text));
        }
        serde_json::from_str(&text).with_context(|| {
            format!(
                "sp.py {command}: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// `run`, which must answer `ok: true`.
    fn ok(&self, command: &str, args: &[&str]) -> Result<Value> {
        let answer = self.run(command, args)?;
        if answer.get("ok") == Some(&json!(false)) {
            bail!("sp.py {command} refused: {answer}");
        }
        Ok(answer)
    }
}

fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#43;", "+")
        .replace("&#61;", "=")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Register a pysaml2 SP called `name` from its metadata, with the
/// registration fields in `extra`.
async fn sp(
    admin: &AdminClient,
    work: &Path,
    name: &str,
    idp_metadata: &Path,
    extra: Value,
) -> Result<Sp> {
    let sp = Sp {
        dir: work.join(name),
        entity_id: format!("https://{name}.sp.test/metadata"),
        idp_metadata: idp_metadata.to_path_buf(),
    };
    let metadata = sp.run(
        "metadata",
        &[
            "--entity-id",
            &sp.entity_id,
            "--acs",
            &format!("https://{name}.sp.test/acs"),
            "--slo",
            &format!("https://{name}.sp.test/slo"),
            "--want-signed-requests",
        ],
    )?;
    let mut registration = json!({"metadata_xml": metadata.as_str().unwrap_or_default()});
    if let (Some(fields), Some(extra)) = (registration.as_object_mut(), extra.as_object()) {
        fields.extend(extra.clone());
    }
    let made = admin
        .post(
            &format!("/admin/v1/tenants/{TENANT}/saml/service-providers"),
            &registration,
        )
        .await?
        .success()?;
    ensure!(
        made.body["service_provider"]["require_signed_requests"] == json!(true),
        "{}",
        made.body
    );
    Ok(sp)
}

/// The SAMLResponse and RelayState of a POST-binding page.
fn posted(page: &support::Reply) -> Result<(String, Option<String>)> {
    ensure!(
        page.status == 200,
        "expected the POST-binding page, got {}: {}",
        page.status,
        page.html
    );
    let response = page
        .field("SAMLResponse")
        .context("no SAMLResponse field")?;
    Ok((
        unescape(&response),
        page.field("RelayState").map(|r| unescape(&r)),
    ))
}

/// Sign in on the login page `page` (posting to the node at `base`).
async fn sign_in(
    browser: &mut WebBrowser,
    page: &support::Reply,
    base: &str,
) -> Result<support::Reply> {
    ensure!(
        page.status == 200 && page.field("flow").is_some(),
        "a login page: {} {}",
        page.status,
        page.html
    );
    browser
        .post(
            &format!("{}/login", issuer()),
            base,
            &[
                ("csrf_token", &page.field("csrf_token").context("csrf")?),
                ("flow", &unescape(&page.field("flow").context("flow")?)),
                ("username", "erin"),
                ("password", PASSWORD),
            ],
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pysaml2_signs_in_and_out_through_rsp() -> Result<()> {
    let venv = Command::new(root().join("tests/saml/setup-venv")).status()?;
    ensure!(venv.success(), "tests/saml/setup-venv failed");
    let cluster = Cluster::start(spec(3).args(["--public-url", PUBLIC])).await?;
    let admin = cluster.client(1)?;
    tenant_with_client(&admin, TENANT, "unused", json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic"})).await?;
    let bases: Vec<String> = (1..=3).map(|id| cluster.http(id)).collect::<Result<_>>()?;
    let work = tempfile::tempdir()?;
    let idp_metadata = work.path().join("idp.xml");
    let xml = reqwest::get(format!("{}/t/{TENANT}/saml/metadata", bases[0]))
        .await?
        .text()
        .await?;
    std::fs::write(&idp_metadata, &xml)?;
    let one = sp(&admin, work.path(), "one", &idp_metadata, json!({})).await?;
    let two = sp(&admin, work.path(), "two", &idp_metadata, json!({})).await?;
    let three = sp(
        &admin,
        work.path(),
        "three",
        &idp_metadata,
        json!({"encrypt_assertions": true}),
    )
    .await?;
    let mut browser = WebBrowser::new(PUBLIC)?;

    // Redirect binding, signed: the login page on node 1, the answer from
    // node 2, verified by pysaml2.
    let request = one.ok(
        "authn-request",
        &["--binding", "redirect", "--sign", "--relay-state", "r1"],
    )?;
    let url = request["url"].as_str().context("url")?;
    let login = browser.get(url, &bases[0]).await?;
    let answered = sign_in(&mut browser, &login, &bases[1]).await?;
    let (response, relay) = posted(&answered)?;
    ensure!(relay.as_deref() == Some("r1"));
    let id = request["id"].as_str().context("id")?;
    let parsed = one.ok(
        "parse-response",
        &[
            "--response",
            &response,
            "--request-id",
            id,
            "--relay-state",
            "r1",
        ],
    )?;
    ensure!(
        parsed["name_id_format"] == json!("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"),
        "{parsed}"
    );
    ensure!(
        parsed["name_id"] != json!("erin"),
        "persistent NameIDs are not usernames: {parsed}"
    );
    ensure!(
        parsed["attributes"]["email"] == json!(["erin@example.com"]),
        "{parsed}"
    );
    ensure!(
        parsed["attributes"]["username"] == json!(["erin"]),
        "{parsed}"
    );
    ensure!(
        parsed["authn_context"]
            == json!("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"),
        "{parsed}"
    );
    // A replayed Response is refused by the SP.
    let replay = one.run(
        "parse-response",
        &["--response", &response, "--request-id", id],
    )?;
    ensure!(replay["ok"] == json!(false), "{replay}");

    // Tampered and wrapped responses are refused by the SP.
    for what in [
        "assertion-attribute",
        "signature",
        "strip-signature",
        "wrap",
        "wrap-extensions",
    ] {
        let request = one.ok("authn-request", &["--binding", "redirect", "--sign"])?;
        let page = browser
            .get(request["url"].as_str().context("url")?, &bases[2])
            .await?;
        let (response, _) = posted(&page)?;
        let tampered = one.ok(
            "tamper-response",
            &["--response", &response, "--what", what],
        )?;
        let verdict = one.run(
            "parse-response",
            &[
                "--response",
                tampered["response"].as_str().context("response")?,
                "--request-id",
                request["id"].as_str().context("id")?,
            ],
        )?;
        ensure!(verdict["ok"] == json!(false), "{what} accepted: {verdict}");
    }

    // POST binding on node 3 for the second SP: no login form (single
    // sign-on), the email NameID it asks for.
    let request = two.ok(
        "authn-request",
        &["--binding", "post", "--sign", "--name-id-format", "email"],
    )?;
    let fields = &request["fields"];
    let mut form = vec![(
        "SAMLRequest",
        fields["SAMLRequest"].as_str().context("SAMLRequest")?,
    )];
    if let Some(relay) = fields["RelayState"].as_str() {
        form.push(("RelayState", relay));
    }
    let posted_sso = browser
        .post(
            request["action"].as_str().context("action")?,
            &bases[2],
            &form,
        )
        .await?;
    ensure!(
        posted_sso.status == 303,
        "{} {}",
        posted_sso.status,
        posted_sso.html
    );
    let page = browser
        .get(
            posted_sso.location.as_deref().context("location")?,
            &bases[2],
        )
        .await?;
    let (response, _) = posted(&page)?;
    let parsed = two.ok(
        "parse-response",
        &[
            "--response",
            &response,
            "--request-id",
            request["id"].as_str().context("id")?,
        ],
    )?;
    ensure!(parsed["name_id"] == json!("erin@example.com"), "{parsed}");

    // An unsigned request from an SP that promised signatures: an error
    // page, no assertion.
    let unsigned = one.ok("authn-request", &["--binding", "redirect"])?;
    let refused = browser
        .get(unsigned["url"].as_str().context("url")?, &bases[0])
        .await?;
    ensure!(
        refused.status == 400 && refused.field("SAMLResponse").is_none(),
        "{} {}",
        refused.status,
        refused.html
    );

    // IdP-initiated sign-on to the first SP.
    let init = format!(
        "{}/saml/init?sp={}",
        issuer(),
        url::form_urlencoded::byte_serialize(one.entity_id.as_bytes()).collect::<String>()
    );
    let page = browser.get(&init, &bases[1]).await?;
    let (response, _) = posted(&page)?;
    one.ok(
        "parse-response",
        &["--response", &response, "--allow-unsolicited"],
    )?;

    // Single logout from the first SP: the IdP tells the second SP, whose
    // answer leads back, and the first SP gets the IdP's LogoutResponse.
    let logout = one.ok("logout-request", &["--binding", "redirect"])?;
    let to_two = browser
        .get(logout["url"].as_str().context("url")?, &bases[0])
        .await?;
    ensure!(to_two.status == 302, "{} {}", to_two.status, to_two.html);
    let location = to_two.location.clone().context("location")?;
    ensure!(
        location.starts_with("https://two.sp.test/slo"),
        "{location}"
    );
    let told = two.ok("parse-logout-request", &["--query", &location])?;
    ensure!(
        told["known_session"] == json!(true),
        "the session two knows: {told}"
    );
    let back = browser
        .get(
            told["response_url"].as_str().context("response_url")?,
            &bases[2],
        )
        .await?;
    ensure!(back.status == 302, "{} {}", back.status, back.html);
    let location = back.location.clone().context("location")?;
    ensure!(
        location.starts_with("https://one.sp.test/slo"),
        "{location}"
    );
    let done = one.ok(
        "parse-logout-response",
        &[
            "--query",
            &location,
            "--request-id",
            logout["id"].as_str().context("id")?,
        ],
    )?;
    ensure!(
        done["status"] == json!("urn:oasis:names:tc:SAML:2.0:status:Success"),
        "{done}"
    );

    // Signed out: the next sign-on asks for the password again. The third
    // SP gets its assertion encrypted to the key of its metadata, which
    // pysaml2 decrypts (with xmlsec1) before checking the signature.
    let request = three.ok("authn-request", &["--binding", "redirect", "--sign"])?;
    let login = browser
        .get(request["url"].as_str().context("url")?, &bases[1])
        .await?;
    let answered = sign_in(&mut browser, &login, &bases[2]).await?;
    let (response, _) = posted(&answered)?;
    let parsed = three.ok(
        "parse-response",
        &[
            "--response",
            &response,
            "--request-id",
            request["id"].as_str().context("id")?,
        ],
    )?;
    ensure!(parsed["encrypted"] == json!(true), "{parsed}");
    ensure!(
        parsed["attributes"]["email"] == json!(["erin@example.com"]),
        "{parsed}"
    );
    Ok(())
}
