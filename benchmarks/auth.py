"""What authorization costs on the reference server: token validation per request, and the token endpoint.

1. Token-validation cost: the same public resource (a ValueSet, readable without a token) read
   anonymously and with a system access token, on one server, by the same client, in one run;
   the ratio and the difference in median latency are what checking a bearer token (signature,
   claims, revocation) adds to a request. Conformance resources are not patient data, so neither
   read writes an AuditEvent: the token is the only difference.
2. A Patient read with the same token, for scale: what the policy decision and the read's AuditEvent
   (committed with others' in a group before the answer leaves) add on top.
3. Token endpoint throughput: client-credentials grants with ``private_key_jwt`` (ES384), each
   with its own assertion (a fresh ``jti``) signed before the clock starts, so the figure is the
   server's: assertion verification, replay store, token signing (ES256) and its record.

    python benchmarks/auth.py [--seconds 5] [--connections 16] [--grants 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.loadgen import Request, cycling_gets, run
from benchmarks.servers import DEMO_SYSTEM_CLIENT, DEMO_SYSTEM_KEY, demo_system_headers, reference_server
from eqlab.oauth_client.client_key import ASSERTION_TYPE, client_assertion, load_signing_key

VALUE_SET = {
    "resourceType": "ValueSet",
    "url": "https://eqlab.example/ValueSet/benchmark",
    "status": "active",
    "compose": {"include": [{"system": "http://loinc.org", "concept": [{"code": "8867-4"}, {"code": "9279-1"}]}]},
}
DEMO_PATIENT = "pat-0001"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def grants(token_path: str, assertions: list[str]) -> Iterator[Request]:
    for signed in assertions:
        form = {
            "grant_type": "client_credentials",
            "scope": "system/*.rs",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signed,
        }
        yield ("POST", token_path, urlencode(form).encode(), FORM)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--grants", type=int, default=2000, help="client-credentials grants to time")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="eqlab-bench-auth-"))

    print(f"eqlab reference server, authorization ({args.connections} connections, {args.seconds:.0f} s per figure)")
    with reference_server(f"sqlite:///{work / 'auth.sqlite3'}") as base:
        auth = demo_system_headers(base)
        created = httpx.post(f"{base}/ValueSet", json=VALUE_SET, headers=auth, timeout=30)
        created.raise_for_status()
        public = [f"/fhir/ValueSet/{created.json()['id']}"]
        anonymous = await run(base, lambda: cycling_gets(public), args.connections, args.seconds)
        authenticated = await run(base, lambda: cycling_gets(public, auth), args.connections, args.seconds)
        patient = await run(
            base, lambda: cycling_gets([f"/fhir/Patient/{DEMO_PATIENT}"], auth), args.connections, args.seconds
        )

        token_url = str(httpx.get(f"{base}/.well-known/smart-configuration", timeout=30).json()["token_endpoint"])
        key = load_signing_key(DEMO_SYSTEM_KEY)
        started = time.perf_counter()
        assertions = [client_assertion(key, DEMO_SYSTEM_CLIENT, token_url) for _ in range(args.grants)]
        signing_ms = (time.perf_counter() - started) * 1000 / args.grants
        token_path = urlsplit(token_url).path
        issued = await run(base, lambda: grants(token_path, assertions), args.connections, None, args.grants)

    print("\ntoken validation (the same public ValueSet, SQLite)")
    print(anonymous.line("read without a token"))
    print(authenticated.line("read with a system access token (ES256 JWT)"))
    print(f"  authenticated / anonymous throughput = {authenticated.per_second / anonymous.per_second:.2f}")
    # The server is saturated (one process, closed loop): 1/throughput is its time per request.
    extra_us = (1 / authenticated.per_second - 1 / anonymous.per_second) * 1e6
    print(f"  token validation costs {extra_us:,.0f} µs of server time per request")
    print("\nfor scale: patient data (policy decision + AuditEvent committed before the answer)")
    print(patient.line(f"read Patient/{DEMO_PATIENT} with the same token"))
    print(f"\ntoken endpoint (client credentials, private_key_jwt ES384, {args.grants} grants)")
    print(issued.line("POST /auth/token"))
    print(f"  client side, not timed above: {signing_ms:.2f} ms to sign one assertion")


if __name__ == "__main__":
    asyncio.run(main())
