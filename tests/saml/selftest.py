#!/usr/bin/env python3
"""Self-test of tests/saml/sp.py, without rsp.

A pysaml2 IdP (saml2.server.Server, with its own key) stands in for rsp so
that every command can be shown to accept what it should and to refuse what
it should: metadata, AuthnRequests (Redirect and POST, signed and not),
Responses (good, tampered four ways, replayed, unsolicited, expired, for
another audience, garbage), SP- and IdP-initiated logout. Most commands run
in this process through sp.main (pysaml2 takes a second to import); a few run
as child processes, the way the Rust tests call sp.py.

Run it with tests/saml/selftest.sh [--verbose]. Prints one line per check
and "N passed, N failed" last; exits 1 when a check failed.
"""

import base64
import contextlib
import io
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import warnings
from pathlib import Path
from xml.etree import ElementTree

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ beside sp.py in the work tree
warnings.simplefilter("ignore")  # deprecations at pysaml2's import

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, saml, samlp
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.s_utils import success_status_factory
from saml2.saml import NameID
from saml2.samlp import STATUS_SUCCESS
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

import sp

SP_ID = "https://sp.selftest.example/metadata"
ACS = "https://sp.selftest.example/acs"
SLO = "https://sp.selftest.example/slo"
IDP_ID = "https://idp.selftest.example/t/acme"
NS_MD = "urn:oasis:names:tc:SAML:2.0:metadata"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"

passed, failed = 0, 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def refused(name, result):
    """A check that sp.py refused, naming why."""
    code, out = result
    ok = code == 1 and out.get("ok") is False and bool(out.get("error"))
    check(f"{name} ({out.get('error_type')})" if ok else name, ok, out)


def call(*argv):
    """sp.py in this process: (exit code, stdout)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = sp.main([str(a) for a in argv])
    return code, out.getvalue()


def call_json(*argv):
    code, out = call(*argv)
    return code, json.loads(out)


def child(*argv):
    """sp.py as a child process, as the Rust tests run it."""
    done = subprocess.run(
        [sys.executable, str(HERE / "sp.py"), *map(str, argv)], capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout


def idp_server(work, sp_metadata):
    d = work / "idp"
    d.mkdir()
    sp.ensure_key(d)
    (work / "sp-metadata.xml").write_text(sp_metadata)
    conf = IdPConfig()
    conf.load(
        {
            "entityid": IDP_ID,
            "key_file": str(d / "sp.key"),
            "cert_file": str(d / "sp.crt"),
            "xmlsec_binary": shutil.which("xmlsec1") or "/usr/bin/xmlsec1",
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
            "only_use_keys_in_metadata": True,
            "metadata": {"local": [str(work / "sp-metadata.xml")]},
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [
                            (IDP_ID + "/saml/sso", BINDING_HTTP_REDIRECT),
                            (IDP_ID + "/saml/sso", BINDING_HTTP_POST),
                        ],
                        "single_logout_service": [
                            (IDP_ID + "/saml/slo", BINDING_HTTP_REDIRECT),
                            (IDP_ID + "/saml/slo", BINDING_HTTP_POST),
                        ],
                    },
                    "policy": {"default": {"lifetime": {"minutes": 5}}},
                    "name_id_format": [saml.NAMEID_FORMAT_PERSISTENT],
                }
            },
        }
    )
    server = Server(config=conf)
    idp_md = work / "idp-metadata.xml"
    md = create_metadata_string(None, config=conf)
    idp_md.write_bytes(md if isinstance(md, bytes) else md.encode())
    return server, idp_md


def response_for(server, req_id, name_id="pairwise-123", audience=SP_ID, destination=ACS):
    """A Response as rsp sends one: assertion signed, Response not."""
    resp = server.create_authn_response(
        identity={"email": ["alice@example.com"], "username": ["alice"]},
        in_response_to=req_id,
        destination=destination,
        sp_entity_id=audience,
        name_id=NameID(format=saml.NAMEID_FORMAT_PERSISTENT, text=name_id),
        authn={"class_ref": sp.MFA, "authn_auth": IDP_ID},
        sign_assertion=True,
        sign_response=False,
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    return base64.b64encode(str(resp).encode()).decode()


def query_of(url):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def main():
    # pysaml2 logs why it refused each bad message; shown with --verbose.
    verbose = "--verbose" in sys.argv[1:]
    logging.basicConfig(stream=sys.stderr, level=logging.ERROR if verbose else logging.CRITICAL)
    work = Path(tempfile.mkdtemp(prefix="sp-selftest-"))
    d = work / "sp"

    # metadata
    code, md = child("metadata", "--dir", d, "--entity-id", SP_ID, "--acs", ACS, "--slo", SLO, "--want-signed-requests")
    check("metadata runs as a child process", code == 0, md)
    root = ElementTree.fromstring(md)
    spsso = root.find(f"{{{NS_MD}}}SPSSODescriptor")
    check("metadata names the entity id", root.get("entityID") == SP_ID)
    check("metadata says AuthnRequestsSigned", spsso is not None and spsso.get("AuthnRequestsSigned") == "true")
    check("metadata says WantAssertionsSigned", spsso.get("WantAssertionsSigned") == "true")
    acs = spsso.find(f"{{{NS_MD}}}AssertionConsumerService")
    check(
        "metadata has an HTTP-POST ACS",
        acs is not None and acs.get("Binding") == BINDING_HTTP_POST and acs.get("Location") == ACS,
    )
    slo = spsso.find(f"{{{NS_MD}}}SingleLogoutService")
    check(
        "metadata has an HTTP-Redirect SLO",
        slo is not None and slo.get("Binding") == BINDING_HTTP_REDIRECT and slo.get("Location") == SLO,
    )
    cert = spsso.find(f"{{{NS_MD}}}KeyDescriptor[@use='signing']//{{{NS_DS}}}X509Certificate")
    check("metadata has a signing certificate", cert is not None and len(cert.text.strip()) > 100)
    _, md2 = call("metadata", "--dir", d, "--entity-id", SP_ID, "--acs", ACS, "--slo", SLO, "--want-signed-requests")
    check("the key is made once per dir", md2.strip() == md.strip())

    server, idp_md = idp_server(work, md)
    common = ["--dir", d, "--idp-metadata", idp_md]

    # AuthnRequest, Redirect, signed
    code, out = call_json(
        "authn-request",
        *common,
        "--binding",
        "redirect",
        "--sign",
        "--mfa",
        "--force-authn",
        "--name-id-format",
        "persistent",
        "--relay-state",
        "rs-1",
    )
    url = out.get("url", "")
    q = query_of(url)
    check("redirect request goes to the IdP's SSO URL", code == 0 and url.startswith(IDP_ID + "/saml/sso?"), out)
    check("redirect request is signed RSA-SHA256", q.get("SigAlg") == SIG_RSA_SHA256 and "Signature" in q)
    check("redirect request carries the RelayState", q.get("RelayState") == "rs-1")
    raw_query = urllib.parse.urlsplit(url).query
    req = server.parse_authn_request(q["SAMLRequest"], BINDING_HTTP_REDIRECT)
    msg = req.message
    check("the IdP reads the request id", msg.id == out["id"])
    check("request asks for ForceAuthn", msg.force_authn == "true")
    check(
        "request asks for the MFA context",
        msg.requested_authn_context.authn_context_class_ref[0].text == sp.MFA,
    )
    check("request asks for persistent NameIDs", msg.name_id_policy.format == saml.NAMEID_FORMAT_PERSISTENT)
    check("request names the ACS", msg.assertion_consumer_service_url == ACS)
    decoded, _ = sp.split_query(raw_query)
    certs = server.metadata.certs(SP_ID, "spsso", "signing")
    ok = any(sp.verify_redirect_signature(decoded, server.sec.sec_backend, c) for _, c in certs)
    check("the IdP verifies the request's query signature", ok)
    first_request = out["id"]

    # AuthnRequest, POST, signed
    code, out = call_json("authn-request", *common, "--binding", "post", "--sign", "--passive")
    check("post request goes to the SSO URL", code == 0 and out.get("action") == IDP_ID + "/saml/sso", out)
    xml = base64.b64decode(out["fields"]["SAMLRequest"]).decode()
    check("post request has an enveloped RSA-SHA256 signature", SIG_RSA_SHA256 in xml and DIGEST_SHA256 in xml)
    server.config.setattr("idp", "want_authn_requests_signed", True)
    req = server.parse_authn_request(out["fields"]["SAMLRequest"], BINDING_HTTP_POST)
    server.config.setattr("idp", "want_authn_requests_signed", False)
    check("the IdP verifies the post request's signature", req is not None and req.message.is_passive == "true")
    check("post request without RelayState has no RelayState field", "RelayState" not in out["fields"])

    # AuthnRequest, unsigned, by index
    code, out = call_json("authn-request", *common, "--binding", "redirect", "--acs-index", "1")
    q = query_of(out["url"])
    check("unsigned request has no Signature", "Signature" not in q and "SigAlg" not in q)
    msg = server.parse_authn_request(q["SAMLRequest"], BINDING_HTTP_REDIRECT).message
    check(
        "--acs-index sends the index alone",
        msg.assertion_consumer_service_index == "1"
        and msg.assertion_consumer_service_url is None
        and msg.protocol_binding is None,
    )

    # Responses
    good = response_for(server, first_request)
    parse = ["parse-response", *common, "--response"]
    for what in ["assertion-attribute", "signature", "strip-signature", "wrap", "wrap-extensions"]:
        _, t = call_json("tamper-response", "--response", good, "--what", what)
        refused(
            f"a response tampered by {what} is refused",
            call_json(*parse, t["response"], "--request-id", first_request),
        )
    refused("a response to another request is refused", call_json(*parse, good, "--request-id", "_other"))
    refused("a response with another RelayState is refused", call_json(*parse, good, "--relay-state", "rs-x"))
    refused("an expired response is refused", call_json(*parse, good, "--time-shift", "3600"))
    refused("a response from the future is refused", call_json(*parse, good, "--time-shift", "-3600"))
    refused("--want-response-signed refuses an unsigned Response", call_json(*parse, good, "--want-response-signed"))
    code, out = call_json(*parse, good, "--relay-state", "rs-1")
    check("a good response is accepted", code == 0 and out.get("ok") is True, out)
    check("it reads the NameID", out.get("name_id") == "pairwise-123", out)
    check("it reads the NameID format", out.get("name_id_format") == saml.NAMEID_FORMAT_PERSISTENT)
    attrs = out.get("attributes", {})
    check(
        "it reads the attributes",
        sorted(attrs.values()) == [["alice"], ["alice@example.com"]] and attrs.get("username") == ["alice"],
        attrs,
    )
    check("it reads the authn context", out.get("authn_context") == sp.MFA, out)
    check("it reads the session index", bool(out.get("session_index")), out)
    check("it reads the issuer", out.get("issuer") == IDP_ID, out)
    check("it reads InResponseTo", out.get("in_response_to") == first_request, out)
    refused("a replayed response is refused", call_json(*parse, good))
    refused("a replay naming its request is refused", call_json(*parse, good, "--request-id", first_request))
    code, out = child(*parse, "bm90IFhNTA==")
    refused("garbage is refused, as JSON from a child process", (code, json.loads(out)))
    refused("non-base64 is refused", call_json(*parse, "%%%"))
    other = response_for(server, None, audience="https://someone-else.example/")
    refused("a response for another audience is refused", call_json(*parse, other, "--allow-unsolicited"))
    elsewhere = response_for(server, None, destination="https://elsewhere.example/acs")
    refused("a response for another Destination is refused", call_json(*parse, elsewhere, "--allow-unsolicited"))
    _, out = call_json("authn-request", *common, "--binding", "redirect", "--passive")
    no_passive = server.create_error_response(out["id"], ACS, (samlp.STATUS_NO_PASSIVE, "not signed in"))
    code, out = call_json(*parse, base64.b64encode(str(no_passive).encode()).decode())
    refused("a NoPassive answer is refused", (code, out))
    check("the refusal names the status", out.get("error_type") == "StatusNoPassive", out)
    unsolicited = response_for(server, None)
    refused("an unsolicited response is refused by default", call_json(*parse, unsolicited))
    code, out = call_json(*parse, unsolicited, "--allow-unsolicited")
    check("an unsolicited response is accepted when allowed", code == 0 and out["ok"], out)
    session_index = out.get("session_index")

    # SP-initiated logout, Redirect: request from the session, response signed
    code, out = call_json("logout-request", *common, "--relay-state", "lo-1")
    url = out.get("url", "")
    q = query_of(url)
    check("logout request goes to the IdP's SLO", code == 0 and url.startswith(IDP_ID + "/saml/slo?"), out)
    check("logout request is signed", q.get("SigAlg") == SIG_RSA_SHA256 and "Signature" in q)
    lreq = server.parse_logout_request(q["SAMLRequest"], BINDING_HTTP_REDIRECT).message
    check("logout request names the session's NameID", lreq.name_id.text == "pairwise-123")
    check(
        "logout request carries the session's SessionIndex",
        [s.text for s in lreq.session_index] == [session_index],
        ([s.text for s in lreq.session_index], session_index),
    )
    lresp = server.create_logout_response(lreq, [BINDING_HTTP_REDIRECT], status=success_status_factory())
    rinfo = server.response_args(lreq, [BINDING_HTTP_REDIRECT])

    def redirect(message, relay_state, sign):
        http = server.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(message),
            rinfo["destination"],
            relay_state,
            response=True,
            sign=sign,
            sigalg=SIG_RSA_SHA256,
        )
        return dict(http["headers"])["Location"]

    location = redirect(lresp, "lo-1", True)
    check("the IdP answers at the SP's SLO URL", location.startswith(SLO + "?"), location)
    parse_lo = ["parse-logout-response", *common]
    refused(
        "an unsigned Redirect logout response is refused",
        call_json(*parse_lo, "--query", redirect(lresp, "lo-1", False)),
    )
    bad = location.replace("RelayState=lo-1", "RelayState=lo-2")
    refused("a logout response whose query was changed is refused", call_json(*parse_lo, "--query", bad))
    refused(
        "a logout response with another RelayState is refused",
        call_json(*parse_lo, "--query", redirect(lresp, "lo-2", True)),
    )
    code, out = call_json(*parse_lo, "--query", location)
    check("a signed Redirect logout response is accepted", code == 0 and out.get("ok") is True, out)
    check("it reads the status", out.get("status") == STATUS_SUCCESS, out)
    check("it reads InResponseTo", out.get("in_response_to") == lreq.id, out)
    refused("a replayed logout response is refused", call_json(*parse_lo, "--query", location))

    # SP-initiated logout, POST, explicit NameID
    code, out = call_json(
        "logout-request",
        *common,
        "--binding",
        "post",
        "--name-id",
        "n-2",
        "--name-id-format",
        "persistent",
        "--session-index",
        "s-2",
    )
    check("post logout request goes to the IdP's SLO", code == 0 and out.get("action") == IDP_ID + "/saml/slo")
    server.config.setattr("idp", "want_authn_requests_signed", True)
    lreq = server.parse_logout_request(out["fields"]["SAMLRequest"], BINDING_HTTP_POST).message
    server.config.setattr("idp", "want_authn_requests_signed", False)
    check("post logout request is signed and names n-2", lreq.signature is not None and lreq.name_id.text == "n-2")

    # The SP's metadata lists its SLO for Redirect only; the message is the
    # same whichever binding carries it.
    def post_answer(sign):
        lresp = server.create_logout_response(
            lreq,
            [BINDING_HTTP_REDIRECT],
            status=success_status_factory(),
            sign=sign,
            sign_alg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
        )
        return base64.b64encode(str(lresp).encode()).decode()

    refused(
        "an unsigned POST logout response is refused",
        call_json(*parse_lo, "--response", post_answer(False), "--binding", "post"),
    )
    code, out = call_json(*parse_lo, "--response", post_answer(True), "--binding", "post")
    check("a signed POST logout response is accepted", code == 0 and out.get("ok") is True, out)

    # IdP-initiated logout (Redirect)
    def idp_logout(destination, sign):
        rid, lreq = server.create_logout_request(
            destination,
            SP_ID,
            name_id=NameID(format=saml.NAMEID_FORMAT_PERSISTENT, text="pairwise-123"),
            session_indexes=["s-9"],
            sign=False,
        )
        http = server.apply_binding(BINDING_HTTP_REDIRECT, str(lreq), SLO, "ri", sign=sign, sigalg=SIG_RSA_SHA256)
        return rid, dict(http["headers"])["Location"]

    rid, location = idp_logout(SLO, True)
    code, out = call_json("parse-logout-request", *common, "--query", location)
    check("a signed IdP logout request is accepted", code == 0 and out.get("ok") is True, out)
    check(
        "it reads NameID and SessionIndex", out.get("name_id") == "pairwise-123" and out.get("session_index") == "s-9"
    )
    rq = query_of(out.get("response_url", ""))
    check("it answers with a signed LogoutResponse", "Signature" in rq and "SAMLResponse" in rq, out)
    ans = server.parse_logout_request_response(rq["SAMLResponse"], BINDING_HTTP_REDIRECT)
    check("the answer is Success to that request", ans.response.in_response_to == rid)
    refused(
        "an unsigned IdP logout request is refused",
        call_json("parse-logout-request", *common, "--query", idp_logout(SLO, False)[1]),
    )
    refused(
        "an IdP logout request for another SLO URL is refused",
        call_json("parse-logout-request", *common, "--query", idp_logout("https://elsewhere.example/slo", True)[1]),
    )

    if failed:
        print(f"the SP's and the IdP's files are in {work}")
    else:
        shutil.rmtree(work)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
