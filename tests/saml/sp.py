#!/usr/bin/env python3
"""An independent SAML 2.0 service provider for rsp's tests, built on pysaml2.

rsp's own SAML code uses samael; this SP uses pysaml2 (with the xmlsec1
command for XML signatures) so that the IdP is checked against an
implementation that shares nothing with it. It is a command-line tool: one
subcommand per SP step, JSON on stdout, so a Rust test drives it with
std::process::Command and plays the browser itself. Run it with the venv made
by tests/saml/setup-venv: `target/saml-venv/bin/python tests/saml/sp.py ...`.

State lives in the directory given by --dir (one per SP in a test):
  sp.key, sp.crt   the SP's RSA key and self-signed certificate (made once)
  sp.json          entity id, ACS and SLO URLs, as given to `metadata`
  pending.json     ids (and RelayState) of AuthnRequests and LogoutRequests
                   sent and not yet answered
  session.json     NameID and SessionIndex of the last accepted assertion
`metadata` must run first for a directory; every other command reads sp.json.

Commands and what they print (`...` is a string; absent values are null):

  metadata --dir D --entity-id E --acs URL --slo URL [--want-signed-requests]
      The SP's metadata XML (not JSON): EntityDescriptor/SPSSODescriptor with
      AuthnRequestsSigned as asked, WantAssertionsSigned="true", a signing
      KeyDescriptor, an HTTP-POST AssertionConsumerService (index 1) and an
      HTTP-Redirect SingleLogoutService.

  authn-request --dir D --idp-metadata F --binding redirect|post [--sign]
      [--force-authn] [--passive] [--name-id-format persistent|email|
      transient|unspecified|URN] [--mfa] [--relay-state S] [--acs-index N]
      redirect: {"id": ..., "url": ...}   (the IdP's SSO URL with SAMLRequest,
                RelayState, and SigAlg and Signature (RSA-SHA256) when --sign)
      post:     {"id": ..., "action": ..., "fields": {"SAMLRequest": ...,
                "RelayState": ...}}   (enveloped signature, RSA-SHA256 with
                SHA-256 digests, when --sign; RelayState only when given)
      --mfa asks for AuthnContextClassRef https://refeds.org/profile/mfa
      (comparison exact). --acs-index sends AssertionConsumerServiceIndex
      instead of AssertionConsumerServiceURL and ProtocolBinding (the ACS in
      the metadata has index 1). --sign is never implied by
      --want-signed-requests, so a test can send an unsigned request from an
      SP that promised to sign.

  parse-response --dir D --idp-metadata F --response B64 [--request-id ID]
      [--relay-state S] [--allow-unsolicited] [--want-response-signed]
      [--time-shift SECONDS]
      Verifies a Response as pysaml2's SP does: assertion signature against
      the certificate in the IdP metadata (assertions must be signed), schema,
      Destination, Audience, SubjectConfirmation Recipient, time conditions,
      InResponseTo. The outstanding requests are --request-id when given,
      else every AuthnRequest sent from D and not yet answered; a Response to
      none of them is refused unless --allow-unsolicited. --relay-state is the
      RelayState that came with the Response; it must equal the one sent with
      the request. --time-shift runs the checks with the SP's clock that many
      seconds ahead (negative: behind). On success the request id is
      consumed (a replay is refused) and the NameID kept in session.json.
      {"ok": true, "name_id": ..., "name_id_format": ...,
       "attributes": {Name: [values]}, "ava": {pysaml2's mapped names: [...]},
       "session_index": ..., "authn_context": ..., "issuer": ...,
       "in_response_to": ..., "destination": ...}

  logout-request --dir D --idp-metadata F [--name-id N --name-id-format FMT]
      [--session-index S] [--binding redirect|post] [--relay-state S]
      [--no-sign]
      A LogoutRequest to the IdP's SingleLogoutService, signed unless
      --no-sign (Redirect: query signature; POST: enveloped). Without
      --name-id, the NameID (with its qualifiers) and SessionIndex of the last
      accepted assertion (session.json) are used, as an SP would.
      {"id": ..., "url": ...} or {"id": ..., "action": ..., "fields": {...}}

  parse-logout-response --dir D --idp-metadata F
      (--query RAW_QUERY | --response B64 --binding post) [--request-id ID]
      Verifies a LogoutResponse: signed (Redirect: SigAlg/Signature over the
      query; POST: enveloped XML signature) by the IdP's metadata certificate,
      Issuer is the IdP, Destination (when present) is this SP's SLO URL,
      InResponseTo is --request-id or a LogoutRequest sent from D, status
      Success. RAW_QUERY may be the whole Location URL.
      {"ok": true, "status": "urn:oasis:names:tc:SAML:2.0:status:Success",
       "in_response_to": ..., "issuer": ..., "sig_alg": ... (Redirect)}

  parse-logout-request --dir D --idp-metadata F --query RAW_QUERY
      An IdP-initiated LogoutRequest arriving at the SP (HTTP-Redirect):
      query signature by the IdP's certificate required, Issuer is the IdP,
      Destination (when present) is this SP's SLO URL. Also builds the SP's
      signed LogoutResponse (Success) back to the IdP.
      {"ok": true, "id": ..., "name_id": ..., "name_id_format": ...,
       "session_index": first or null, "session_indexes": [...],
       "issuer": ..., "sig_alg": ..., "known_session": bool,
       "response_url": the SP's LogoutResponse as a Redirect URL}

  tamper-response --response B64 --what WHAT [--value V]
      A modified Response (base64) for negative tests; {"response": B64}.
      assertion-attribute  change the first AttributeValue inside the signed
                           assertion (to V, default "tampered@example.com")
      signature            flip one bit of the first SignatureValue
      strip-signature      remove every ds:Signature
      wrap                 XSW: an unsigned copy of the assertion with NameID V
                           (default "attacker") and a fresh ID, placed before
                           the signed one
      wrap-extensions      XSW: the signed assertion moved into
                           samlp:Extensions, the unsigned copy in its place

Every parse-* command (and any command that fails) prints
{"ok": false, "error": "...", "error_type": "<exception class>"} and exits 1
when the message is refused; pysaml2's own log goes to stderr.
"""

import argparse
import base64
import datetime
import json
import logging
import os
import shutil
import sys
import time
import urllib.parse
import uuid
import warnings
from pathlib import Path

# pysaml2 and cryptography warn about deprecations at import; stdout is JSON
# and stderr is kept for pysaml2's log of why a message was refused.
warnings.simplefilter("ignore")

import defusedxml.minidom
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, saml, samlp
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.mdstore import locations
from saml2.metadata import create_metadata_string
from saml2.s_utils import success_status_factory
from saml2.saml import AuthnContextClassRef, NameID
from saml2.samlp import RequestedAuthnContext
from saml2.sigver import (
    REQ_ORDER,
    RESP_ORDER,
    extract_rsa_key_from_x509_cert,
    pem_format,
    verify_redirect_signature,
)
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

NS_SAML = saml.NAMESPACE
NS_SAMLP = samlp.NAMESPACE
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
MFA = "https://refeds.org/profile/mfa"
NAME_ID_FORMATS = {
    "persistent": saml.NAMEID_FORMAT_PERSISTENT,
    "email": saml.NAMEID_FORMAT_EMAILADDRESS,
    "transient": saml.NAMEID_FORMAT_TRANSIENT,
    "unspecified": saml.NAMEID_FORMAT_UNSPECIFIED,
}
BINDINGS = {"redirect": BINDING_HTTP_REDIRECT, "post": BINDING_HTTP_POST}


class Refused(Exception):
    """A message this SP does not accept, for a reason pysaml2 leaves to it."""


# --- the state directory -----------------------------------------------------


def read_json(path, default):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


def write_json(path, value):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=1))
    tmp.replace(path)


def ensure_key(d):
    """The SP's RSA key and self-signed certificate, made once per directory."""
    key_path, cert_path = d / "sp.key", d / "sp.crt"
    if key_path.exists() and cert_path.exists():
        return
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsp test SP")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def load_sp(d):
    settings = read_json(d / "sp.json", None)
    if settings is None:
        raise Refused(f"{d}/sp.json is missing: run `metadata` for this --dir first")
    return settings


def pending(d):
    """Requests sent from D: {"authn": {id: {...}}, "logout": {id: {...}},
    "answered": [ids whose answer was accepted]}."""
    p = read_json(d / "pending.json", {})
    for kind in ("authn", "logout"):
        p.setdefault(kind, {})
    p.setdefault("answered", [])
    return p


def remember(d, kind, req_id, relay_state):
    p = pending(d)
    p[kind][req_id] = {"relay_state": relay_state, "sent": int(time.time())}
    write_json(d / "pending.json", p)


def forget(d, kind, req_id):
    p = pending(d)
    p[kind].pop(req_id, None)
    p["answered"].append(req_id)
    write_json(d / "pending.json", p)


def outstanding_ids(d, kind, request_id):
    """The request ids an answer may be in response to: --request-id, or all
    requests of this kind sent from D and not yet answered. An id whose answer
    was accepted before is refused, so a replay fails either way."""
    p = pending(d)
    if request_id is None:
        return list(p[kind])
    if request_id in p["answered"]:
        raise Refused(f"request {request_id} was answered already (a replay)")
    return [request_id]


# --- pysaml2 configuration -----------------------------------------------------


def sp_config(d, settings, idp_metadata=None, allow_unsolicited=False, want_response_signed=False, for_metadata=False):
    xmlsec = shutil.which("xmlsec1") or "/usr/bin/xmlsec1"
    conf = {
        "entityid": settings["entity_id"],
        "name": "rsp test SP",
        "key_file": str(d / "sp.key"),
        "cert_file": str(d / "sp.crt"),
        # The same key decrypts EncryptedAssertions (published in the
        # metadata as the encryption key).
        "encryption_keypairs": [{"key_file": str(d / "sp.key"), "cert_file": str(d / "sp.crt")}],
        "xmlsec_binary": xmlsec,
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        # Trust only the certificate in the IdP's metadata, never a KeyInfo
        # that comes with a message.
        "only_use_keys_in_metadata": True,
        # Keep attributes whose names pysaml2's maps do not know (rsp's
        # `email`, `username`).
        "allow_unknown_attributes": True,
        "service": {
            "sp": {
                "endpoints": {
                    "assertion_consumer_service": [(settings["acs"], BINDING_HTTP_POST)],
                    # The metadata offers SLO by Redirect; a LogoutResponse
                    # sent by POST to the same URL is read as well.
                    "single_logout_service": [(settings["slo"], BINDING_HTTP_REDIRECT)]
                    + ([] if for_metadata else [(settings["slo"], BINDING_HTTP_POST)]),
                },
                "authn_requests_signed": settings["want_signed_requests"],
                "want_assertions_signed": True,
                "want_response_signed": want_response_signed,
                "allow_unsolicited": allow_unsolicited,
                "logout_requests_signed": True,
                "logout_responses_signed": True,
                "name_id_format_allow_create": True,
            }
        },
    }
    if idp_metadata is not None:
        conf["metadata"] = {"local": [str(idp_metadata)]}
    config = SPConfig()
    config.load(conf)
    return config


def client_for(args, **kwargs):
    d = Path(args.dir)
    settings = load_sp(d)
    return d, settings, Saml2Client(config=sp_config(d, settings, args.idp_metadata, **kwargs))


def the_idp(client):
    idps = list(client.metadata.with_descriptor("idpsso").keys())
    if len(idps) != 1:
        raise Refused(f"the IdP metadata must describe exactly one IdP, found {idps}")
    return idps[0]


def idp_slo(client, idp, binding):
    srvs = client.metadata.single_logout_service(idp, binding, "idpsso")
    location = next(locations(srvs), None)
    if not location:
        raise Refused(f"the IdP metadata has no SingleLogoutService for {binding}")
    return location


def name_id_format(value):
    return NAME_ID_FORMATS.get(value, value)


def checked_b64(value, what):
    """The value when it is base64 (whitespace allowed), else a refusal."""
    try:
        base64.b64decode("".join(value.split()), validate=True)
    except ValueError:
        raise Refused(f"{what} is not base64") from None
    return value


def b64(text):
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def send(client, binding, message, destination, relay_state, sign, req_id):
    """The message as the browser would carry it to the IdP."""
    if binding == BINDING_HTTP_REDIRECT:
        info = client.apply_binding(binding, message, destination, relay_state or "", sign=sign, sigalg=SIG_RSA_SHA256)
        return {"id": req_id, "url": dict(info["headers"])["Location"]}
    fields = {"SAMLRequest": b64(message)}
    if relay_state:
        fields["RelayState"] = relay_state
    return {"id": req_id, "action": destination, "fields": fields}


# --- commands ----------------------------------------------------------------


def cmd_metadata(args):
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    ensure_key(d)
    settings = {
        "entity_id": args.entity_id,
        "acs": args.acs,
        "slo": args.slo,
        "want_signed_requests": args.want_signed_requests,
    }
    write_json(d / "sp.json", settings)
    xml = create_metadata_string(None, config=sp_config(d, settings, for_metadata=True))
    sys.stdout.write(xml.decode("utf-8") if isinstance(xml, bytes) else xml)
    sys.stdout.write("\n")


def cmd_authn_request(args):
    d, _, client = client_for(args)
    binding = BINDINGS[args.binding]
    destination = client.sso_location(the_idp(client), binding)
    extra = {}
    if args.force_authn:
        extra["force_authn"] = "true"
    if args.passive:
        extra["is_passive"] = "true"
    if args.mfa:
        extra["requested_authn_context"] = RequestedAuthnContext(
            authn_context_class_ref=[AuthnContextClassRef(MFA)], comparison="exact"
        )
    response_binding = BINDING_HTTP_POST
    if args.acs_index is not None:
        # AssertionConsumerServiceIndex excludes the URL and ProtocolBinding.
        extra["assertion_consumer_service_index"] = str(args.acs_index)
        response_binding = None
    req_id, request = client.create_authn_request(
        destination,
        binding=response_binding,
        nameid_format=name_id_format(args.name_id_format) if args.name_id_format else None,
        sign=args.sign and binding == BINDING_HTTP_POST,
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
        **extra,
    )
    remember(d, "authn", req_id, args.relay_state)
    return send(client, binding, str(request), destination, args.relay_state, args.sign, req_id)


def cmd_parse_response(args):
    d, settings, client = client_for(
        args,
        allow_unsolicited=args.allow_unsolicited,
        want_response_signed=args.want_response_signed,
    )
    sent = pending(d)["authn"]
    outstanding = {i: "/" for i in outstanding_ids(d, "authn", args.request_id)}
    with shifted_clock(args.time_shift):
        resp = client.parse_authn_request_response(
            checked_b64(args.response, "--response"), BINDING_HTTP_POST, outstanding=outstanding
        )
    if resp is None:
        raise Refused("pysaml2 could not unpack the Response")
    if resp.assertion is None:
        # pysaml2 stops before the assertion, without an exception, when the
        # Response fails its Destination or IssueInstant check.
        dest = resp.response.destination
        if dest and dest != settings["acs"]:
            raise Refused(f"Destination {dest} is not this SP's ACS {settings['acs']}")
        raise Refused("the Response failed pysaml2's checks (IssueInstant out of range?)")
    irt = resp.in_response_to
    if args.relay_state is not None and irt in sent:
        expected = sent[irt]["relay_state"]
        if expected is not None and expected != args.relay_state:
            raise Refused(f"RelayState {args.relay_state!r} is not the {expected!r} sent with {irt}")
    info = resp.session_info()
    attributes = {}
    for statement in resp.assertion.attribute_statement:
        for attribute in statement.attribute:
            values = attributes.setdefault(attribute.name, [])
            values.extend(v.text for v in attribute.attribute_value)
    authn = resp.authn_info()
    name_id = resp.name_id
    if irt:
        forget(d, "authn", irt)
    write_json(
        d / "session.json",
        {"name_id": str(name_id), "session_index": info["session_index"]},
    )
    issuer = resp.issuer() or (resp.assertion.issuer.text.strip() if resp.assertion.issuer else None)
    return {
        "ok": True,
        "name_id": name_id.text.strip() if name_id.text else name_id.text,
        "name_id_format": name_id.format,
        "attributes": attributes,
        "ava": resp.ava,
        "session_index": info["session_index"],
        "authn_context": authn[0][0] if authn else None,
        "issuer": issuer,
        "in_response_to": irt,
        "destination": resp.response.destination,
        "encrypted": b"EncryptedAssertion>" in base64.b64decode("".join(args.response.split())),
    }


def cmd_logout_request(args):
    d, _, client = client_for(args)
    binding = BINDINGS[args.binding]
    idp = the_idp(client)
    destination = idp_slo(client, idp, binding)
    session = read_json(d / "session.json", {})
    if args.name_id is not None:
        name_id = NameID(text=args.name_id, format=name_id_format(args.name_id_format) if args.name_id_format else None)
    elif session:
        name_id = saml.name_id_from_string(session["name_id"])
    else:
        raise Refused("no --name-id given and no session accepted in this --dir")
    session_index = args.session_index if args.session_index is not None else session.get("session_index")
    sign = not args.no_sign
    req_id, request = client.create_logout_request(
        destination,
        idp,
        name_id=name_id,
        session_indexes=[session_index] if session_index else None,
        sign=sign and binding == BINDING_HTTP_POST,
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    remember(d, "logout", req_id, args.relay_state)
    return send(client, binding, str(request), destination, args.relay_state, sign, req_id)


def cmd_parse_logout_response(args):
    d, settings, client = client_for(args)
    idp = the_idp(client)
    sig_alg = None
    relay_state = None
    if args.query is not None:
        decoded, raw = split_query(args.query)
        if "SAMLResponse" not in decoded:
            raise Refused("the query carries no SAMLResponse")
        resp = client.parse_logout_request_response(decoded["SAMLResponse"], BINDING_HTTP_REDIRECT)
        if resp is None:
            raise Refused("pysaml2 could not unpack the LogoutResponse")
        if resp.issuer() != idp:
            raise Refused(f"Issuer {resp.issuer()!r} is not the IdP {idp!r}")
        check_query_signature(client, idp, decoded, raw, RESP_ORDER)
        sig_alg = decoded["SigAlg"]
        relay_state = decoded.get("RelayState")
    else:
        if args.response is None or args.binding != "post":
            raise Refused("give --query, or --response with --binding post")
        resp = client.parse_logout_request_response(checked_b64(args.response, "--response"), BINDING_HTTP_POST)
        if resp is None:
            raise Refused("pysaml2 could not unpack the LogoutResponse")
        # pysaml2 verifies a signature that is there; an SP wants one there.
        if resp.response.signature is None:
            raise Refused("the LogoutResponse is not signed")
    message = resp.response
    if resp.issuer() != idp:
        raise Refused(f"Issuer {resp.issuer()!r} is not the IdP {idp!r}")
    if message.destination and message.destination != settings["slo"]:
        raise Refused(f"Destination {message.destination} is not this SP's SLO URL {settings['slo']}")
    sent = pending(d)["logout"]
    irt = message.in_response_to
    expected_ids = outstanding_ids(d, "logout", args.request_id)
    if irt not in expected_ids:
        raise Refused(f"InResponseTo {irt!r} answers no LogoutRequest sent ({expected_ids})")
    if relay_state is not None and irt in sent:
        expected = sent[irt]["relay_state"]
        if expected is not None and expected != relay_state:
            raise Refused(f"RelayState {relay_state!r} is not the {expected!r} sent with {irt}")
    status = message.status.status_code.value
    if status != samlp.STATUS_SUCCESS:
        raise Refused(f"status {status}")
    forget(d, "logout", irt)
    return {"ok": True, "status": status, "in_response_to": irt, "issuer": idp, "sig_alg": sig_alg}


def cmd_parse_logout_request(args):
    d, _, client = client_for(args)
    idp = the_idp(client)
    decoded, raw = split_query(args.query)
    if "SAMLRequest" not in decoded:
        raise Refused("the query carries no SAMLRequest")
    # pysaml2 checks Destination against the SP's Redirect SLO endpoint here
    # (OtherError "Not destined for me!"); the query signature is left to the
    # caller for an SP, so it is checked below.
    req = client.parse_logout_request(
        decoded["SAMLRequest"],
        BINDING_HTTP_REDIRECT,
        relay_state=decoded.get("RelayState"),
        sigalg=decoded.get("SigAlg"),
        signature=decoded.get("Signature"),
    )
    if req is None:
        raise Refused("pysaml2 could not unpack the LogoutRequest")
    message = req.message
    issuer = message.issuer.text.strip() if message.issuer is not None else None
    if issuer != idp:
        raise Refused(f"Issuer {issuer!r} is not the IdP {idp!r}")
    check_query_signature(client, issuer, decoded, raw, REQ_ORDER)
    if not req.issue_instant_ok():
        raise Refused(f"IssueInstant {message.issue_instant} out of range")
    session = read_json(d / "session.json", {})
    known = bool(session) and saml.name_id_from_string(session["name_id"]).text == message.name_id.text
    response = client.create_logout_response(
        message, [BINDING_HTTP_REDIRECT], status=success_status_factory(), sign=False
    )
    rinfo = client.response_args(message, [BINDING_HTTP_REDIRECT])
    http = client.apply_binding(
        BINDING_HTTP_REDIRECT,
        str(response),
        rinfo["destination"],
        decoded.get("RelayState") or "",
        response=True,
        sign=True,
        sigalg=SIG_RSA_SHA256,
    )
    indexes = [si.text for si in message.session_index]
    name_id = message.name_id
    return {
        "ok": True,
        "id": message.id,
        "name_id": name_id.text.strip() if name_id is not None and name_id.text else None,
        "name_id_format": name_id.format if name_id is not None else None,
        "session_index": indexes[0] if indexes else None,
        "session_indexes": indexes,
        "issuer": issuer,
        "sig_alg": decoded["SigAlg"],
        "known_session": known,
        "response_url": dict(http["headers"])["Location"],
    }


# --- HTTP-Redirect query signatures ----------------------------------------------


def split_query(query):
    """(decoded values, raw values) of a query string or whole URL."""
    if "?" in query:
        query = query.split("?", 1)[1]
    decoded, raw = {}, {}
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        key = urllib.parse.unquote_plus(key)
        if key in raw:
            raise Refused(f"query parameter {key} appears twice")
        raw[key] = value
        decoded[key] = urllib.parse.unquote_plus(value)
    return decoded, raw


def check_query_signature(client, issuer, decoded, raw, order):
    """The SAML Redirect binding's signature, checked the way pysaml2 checks
    one (sigver.verify_redirect_signature, which signs over its own
    urlencode of the decoded values)."""
    if "Signature" not in decoded or "SigAlg" not in decoded:
        raise Refused("the query carries no Signature and SigAlg")
    certs = client.metadata.certs(issuer, "idpsso", "signing")
    if not certs:
        raise Refused(f"no signing certificate for {issuer!r} in the IdP metadata")
    backend = client.sec.sec_backend
    if any(verify_redirect_signature(decoded, backend, cert) for _, cert in certs):
        return
    # Say whether the signature is good over the bytes as they arrived: then
    # the IdP's percent-encoding differs from Python's urlencode.
    signer = backend.get_signer(decoded["SigAlg"])
    signed = "&".join(f"{k}={raw[k]}" for k in order if k in raw).encode("ascii")
    signature = base64.b64decode(decoded["Signature"])
    for _, cert in certs:
        key = extract_rsa_key_from_x509_cert(pem_format(cert))
        if signer.verify(signed, signature, key):
            raise Refused(
                "the query signature verifies over the raw query but not over "
                "pysaml2's re-encoding (urllib.parse.urlencode of the decoded values)"
            )
    raise Refused("the query signature does not verify with the IdP's certificate")


# --- the SP's clock ------------------------------------------------------------


class shifted_clock:
    """Moves the clock pysaml2 reads (time.gmtime() and
    saml2.time_util.datetime.now) by `seconds` while in the block."""

    def __init__(self, seconds):
        self.seconds = seconds or 0

    def __enter__(self):
        if not self.seconds:
            return self
        import saml2.time_util

        shift = self.seconds
        real_gmtime = time.gmtime
        real_datetime = saml2.time_util.datetime

        def gmtime(secs=None):
            return real_gmtime(time.time() + shift if secs is None else secs)

        class ShiftedDatetime(real_datetime):
            @classmethod
            def now(cls, tz=None):
                return real_datetime.now(tz) + datetime.timedelta(seconds=shift)

        self.restore = (real_gmtime, real_datetime)
        time.gmtime = gmtime
        saml2.time_util.datetime = ShiftedDatetime
        return self

    def __exit__(self, *exc):
        if self.seconds:
            import saml2.time_util

            time.gmtime, saml2.time_util.datetime = self.restore
        return False


# --- tampering, for negative tests -----------------------------------------------


def cmd_tamper_response(args):
    doc = defusedxml.minidom.parseString(base64.b64decode(checked_b64(args.response, "--response")))
    root = doc.documentElement
    assertions = [n for n in root.childNodes if is_element(n, NS_SAML, "Assertion")]
    if not assertions:
        raise Refused("the Response has no Assertion child")
    signed = assertions[0]
    what = args.what
    if what == "assertion-attribute":
        values = signed.getElementsByTagNameNS(NS_SAML, "AttributeValue")
        if not values:
            raise Refused("the assertion has no AttributeValue")
        set_text(values[0], args.value or "tampered@example.com")
    elif what == "signature":
        # The assertion's own signature when it has one, else the first.
        values = signed.getElementsByTagNameNS(NS_DS, "SignatureValue") or root.getElementsByTagNameNS(
            NS_DS, "SignatureValue"
        )
        if not values:
            raise Refused("the Response has no SignatureValue")
        raw = bytearray(base64.b64decode("".join(text_of(values[0]).split())))
        raw[len(raw) // 2] ^= 0x01
        set_text(values[0], base64.b64encode(bytes(raw)).decode("ascii"))
    elif what == "strip-signature":
        for sig in list(root.getElementsByTagNameNS(NS_DS, "Signature")):
            sig.parentNode.removeChild(sig)
    elif what in ("wrap", "wrap-extensions"):
        evil = evil_copy(signed, args.value or "attacker")
        if what == "wrap":
            root.insertBefore(evil, signed)
        else:
            root.replaceChild(evil, signed)
            prefix = root.prefix
            ext = doc.createElementNS(NS_SAMLP, f"{prefix}:Extensions" if prefix else "Extensions")
            ext.appendChild(signed)
            status = [n for n in root.childNodes if is_element(n, NS_SAMLP, "Status")]
            root.insertBefore(ext, status[0] if status else evil)
    else:
        raise Refused(f"unknown --what {what}")
    return {"response": base64.b64encode(doc.toxml(encoding="utf-8")).decode("ascii")}


def evil_copy(assertion, name_id):
    evil = assertion.cloneNode(True)
    for sig in [n for n in evil.childNodes if is_element(n, NS_DS, "Signature")]:
        evil.removeChild(sig)
    evil.setAttribute("ID", "_" + uuid.uuid4().hex)
    for node in evil.getElementsByTagNameNS(NS_SAML, "NameID"):
        set_text(node, name_id)
    return evil


def is_element(node, ns, local):
    return node.nodeType == node.ELEMENT_NODE and node.namespaceURI == ns and node.localName == local


def text_of(node):
    return "".join(c.data for c in node.childNodes if c.nodeType == c.TEXT_NODE)


def set_text(node, text):
    for child in list(node.childNodes):
        node.removeChild(child)
    node.appendChild(node.ownerDocument.createTextNode(text))


# --- the command line --------------------------------------------------------------


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--verbose", action="store_true", help="pysaml2's debug log on stderr")
    sub = p.add_subparsers(dest="command", required=True)

    def command(name, func, idp=True):
        c = sub.add_parser(name)
        c.set_defaults(func=func)
        if func is not cmd_tamper_response:
            c.add_argument("--dir", required=True)
        if idp:
            c.add_argument("--idp-metadata", required=True)
        return c

    c = command("metadata", cmd_metadata, idp=False)
    c.add_argument("--entity-id", required=True)
    c.add_argument("--acs", required=True)
    c.add_argument("--slo", required=True)
    c.add_argument("--want-signed-requests", action="store_true")

    c = command("authn-request", cmd_authn_request)
    c.add_argument("--binding", choices=BINDINGS, required=True)
    c.add_argument("--sign", action="store_true")
    c.add_argument("--force-authn", action="store_true")
    c.add_argument("--passive", action="store_true")
    c.add_argument("--name-id-format")
    c.add_argument("--mfa", action="store_true")
    c.add_argument("--relay-state")
    c.add_argument("--acs-index", type=int)

    c = command("parse-response", cmd_parse_response)
    c.add_argument("--response", required=True)
    c.add_argument("--request-id")
    c.add_argument("--relay-state")
    c.add_argument("--allow-unsolicited", action="store_true")
    c.add_argument("--want-response-signed", action="store_true")
    c.add_argument("--time-shift", type=int, default=0)

    c = command("logout-request", cmd_logout_request)
    c.add_argument("--name-id")
    c.add_argument("--name-id-format")
    c.add_argument("--session-index")
    c.add_argument("--binding", choices=BINDINGS, default="redirect")
    c.add_argument("--relay-state")
    c.add_argument("--no-sign", action="store_true")

    c = command("parse-logout-response", cmd_parse_logout_response)
    c.add_argument("--query")
    c.add_argument("--response")
    c.add_argument("--binding", choices=BINDINGS, default="redirect")
    c.add_argument("--request-id")

    c = command("parse-logout-request", cmd_parse_logout_request)
    c.add_argument("--query", required=True)

    c = command("tamper-response", cmd_tamper_response, idp=False)
    c.add_argument("--response", required=True)
    c.add_argument(
        "--what",
        required=True,
        choices=["assertion-attribute", "signature", "strip-signature", "wrap", "wrap-extensions"],
    )
    c.add_argument("--value")
    return p


def describe(exc):
    detail = exc.args[0] if len(exc.args) == 1 else exc.args
    if isinstance(detail, dict):
        # pysaml2 puts the whole document in some errors; the caller has it.
        detail = {k: v for k, v in detail.items() if "document" not in k}
        return json.dumps(detail, default=str)
    return str(detail) if detail != () else type(exc).__name__


def main(argv=None):
    args = parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.ERROR,
        format="sp.py %(levelname)s %(name)s: %(message)s",
    )
    try:
        out = args.func(args)
    except Exception as exc:  # every refusal becomes JSON, whatever raised it
        print(json.dumps({"ok": False, "error": describe(exc), "error_type": type(exc).__name__}))
        return 1
    if out is not None:
        print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
