#!/usr/bin/env bash
# Self-test of the pysaml2 service provider (tests/saml/sp.py) without rsp:
# sets up its venv, then runs selftest.py, where a pysaml2 IdP stands in for
# rsp. Prints one line per check and "N passed, N failed" last.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
"$here/setup-venv"
exec "${SAML_VENV:-$root/target/saml-venv}/bin/python" "$here/selftest.py" "$@"
