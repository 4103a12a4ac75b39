"""Deliberate defects (``eqlab serve --faults a,b``) that prove the lab's checks catch what they target.

Each fault is a realistic way a vendor's server gets SPEC section 1 or 2 wrong, and names the
SHALL requirements it breaks (``breaks``). ``make detection`` runs the reference plan against the server
with each fault switched on: every fault must be caught (verdict refused), and the clean server
must be granted; ``tests/suites/test_contract_suite.py`` proves the same for the contract suite.
A fault is asked for at one hook point (``faults.on(name)``); with no fault switched on the server
behaves exactly as without the hooks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    breaks: tuple[str, ...]  # requirement IDs (suites/requirements) the defect violates


FAULTS: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        Fault("no-etag", "responses carry no ETag header", ("fhir@15",)),
        Fault("no-meta-version", "read and vread return resources without meta.versionId", ("fhir@14",)),
        Fault("no-location", "create and update answer without a Location header", ("fhir@16",)),
        Fault(
            "version-not-incremented",
            "update overwrites the current version in place: meta.versionId stays the same",
            ("fhir@6",),
        ),
        Fault("vread-returns-current", "vread ignores the version and returns the current one", ("fhir@4",)),
        Fault("history-oldest-first", "history Bundles list versions oldest first", ("fhir@9",)),
        Fault("if-match-ignored", "If-Match is ignored: stale updates and deletes overwrite", ("fhir@17",)),
        Fault(
            "conditional-create-ignored",
            "If-None-Exist is ignored: conditional create always creates a duplicate",
            ("fhir@18",),
        ),
        Fault(
            "conditional-update-ignored",
            "conditional update ignores its matches and always creates a new resource",
            ("fhir@19",),
        ),
        Fault("gone-as-404", "reading a deleted resource answers 404 instead of 410", ("fhir@20",)),
        Fault(
            "update-id-mismatch-accepted",
            "update stores the body under the URL id even when the body names another id or none",
            ("fhir@22",),
        ),
        Fault(
            "lenient-validation",
            "resources are stored after only a resourceType check (unknown elements, bad types and codes pass)",
            ("fhir@23",),
        ),
        Fault(
            "plain-text-errors",
            "errors are answered as text/plain diagnostics, not OperationOutcomes",
            ("fhir@24",),
        ),
        Fault(
            "wrong-content-type", "answers are labelled application/json instead of application/fhir+json", ("fhir@26",)
        ),
        Fault("accept-ignored", "the Accept header and _format are ignored: never 406", ("fhir@27",)),
        Fault(
            "media-type-unchecked", "resource bodies are parsed whatever their Content-Type: never 415", ("fhir@28",)
        ),
        Fault(
            "capability-overclaims",
            "the CapabilityStatement lists a resource type the server does not serve",
            ("fhir@2",),
        ),
        Fault("post-search-ignores-body", "POST _search ignores the form parameters in its body", ("fhir@10",)),
        Fault(
            "transaction-not-atomic",
            "a transaction runs entry by entry: a failing entry leaves the earlier ones stored",
            ("fhir@12",),
        ),
        Fault(
            "references-not-rewritten",
            "urn:uuid references in a transaction are stored as sent, not rewritten to the new ids",
            ("fhir@13",),
        ),
        Fault("batch-stops-at-failure", "a batch stops at its first failing entry and drops the rest", ("fhir@11",)),
        Fault("count-ignored", "_count is ignored: every page holds the default 50 entries", ("fhir@30",)),
        Fault("sort-ignored", "_sort is ignored: results come in storage order", ("fhir@31",)),
        Fault("include-ignored", "_include and _revinclude are ignored", ("fhir@32",)),
        Fault("summary-count-ignored", "_summary=count returns the matching entries too", ("fhir@33",)),
        Fault("no-total", "searchset Bundles carry no total", ("fhir@35",)),
        Fault("no-next-link", "searchset Bundles carry no next link", ("fhir@36",)),
        Fault("relative-paging-links", "paging links are relative, not absolute URLs", ("fhir@36",)),
        Fault("strict-handling-ignored", "Prefer: handling=strict is ignored: unknown parameters pass", ("fhir@37",)),
        Fault(
            "unknown-param-500",
            "an unknown search parameter crashes the search (500) instead of being ignored",
            ("fhir@37", "fhir@49"),
        ),
        Fault("date-prefixes-ignored", "date search prefixes (gt, lt, ...) are ignored and read as eq", ("fhir@39",)),
        Fault(
            "string-search-exact",
            "string search matches exactly (case- and accent-sensitive, no prefix match)",
            ("fhir@40",),
        ),
        Fault("body-limit-ignored", "bodies over 10 MiB are accepted (no 413)", ("fhir@45",)),
        Fault(
            "empty-json-arrays",
            "JSON answers keep empty arrays and objects (a batch response's link: [], searchInclude: [])",
            ("fhir@50",),
        ),
        Fault("depth-limit-ignored", "resources nested deeper than 64 levels are accepted", ("fhir@46",)),
        # --- SPEC section 2: identity, authorization, audit ---
        Fault(
            "alg-none-accepted",
            "access tokens with alg none are accepted without a signature (the JWT library's classic misuse)",
            ("auth@26", "auth@33", "auth@35"),
        ),
        Fault(
            "revocation-ignored",
            "revoked access tokens are still accepted: validation checks only that the server issued the jti",
            ("auth@29", "auth@34", "auth@13", "auth@33"),
        ),
        Fault(
            "pkce-plain-accepted",
            "the authorization server also accepts code_challenge_method=plain (verifier = challenge)",
            ("auth@5",),
        ),
        Fault("code-reusable", "an authorization code can be redeemed again and again", ("auth@8",)),
        Fault(
            "redirect-prefix-match",
            "a redirect URI is accepted when it starts with a registered one (an open redirector for codes)",
            ("auth@10",),
        ),
        Fault(
            "refresh-not-rotated",
            "a used refresh token stays valid: each refresh issues a new one but never burns the old",
            ("auth@12", "auth@13"),
        ),
        Fault(
            "refresh-scope-escalation",
            "a refresh may ask for more scope than the original grant",
            ("auth@14",),
        ),
        Fault(
            "assertion-replay-accepted", "client assertion jti values are not remembered: replays pass", ("auth@16",)
        ),
        Fault(
            "assertion-lifetime-unchecked",
            "client assertions valid for longer than five minutes are accepted",
            ("auth@17",),
        ),
        Fault(
            "iua-claims-missing",
            "access tokens of users carry neither person_id nor purpose_of_use",
            ("auth@21",),
        ),
        Fault(
            "scope-not-enforced",
            "the FHIR API checks the token but ignores its SMART scopes: any valid token may do anything",
            ("auth@22", "auth@23", "auth@30"),
        ),
        Fault(
            "patient-compartment-leak",
            "a patient token is not limited to the patient's compartment: it reads other patients' data",
            ("auth@31", "audit@9"),
        ),
        Fault(
            "patient-probe-404",
            "for a patient token, a record that does not exist answers 404 while another patient's answers 403",
            ("auth@32",),
        ),
        Fault(
            "revinclude-unfiltered",
            "_include and _revinclude return every referenced or referencing resource, whatever the token may read",
            ("auth@36",),
        ),
        Fault(
            "chain-ignores-compartment",
            "chained parameters and _has look into every patient's data, not only what the token may read",
            ("auth@37",),
        ),
        Fault(
            "conditional-existence-oracle",
            "conditional interactions match other patients' data: 403 when it exists, 404/201 when it does not",
            ("auth@38",),
        ),
        Fault(
            "challenge-echoes-token",
            "the WWW-Authenticate challenge of a refused token quotes the token's alg unescaped",
            ("auth@39",),
        ),
        Fault("reads-not-audited", "reads of patient data (read, vread) write no AuditEvent", ("audit@1",)),
        Fault("denials-not-audited", "refused attempts (401, 403) write no AuditEvent", ("audit@4",)),
        Fault(
            "audit-per-search",
            "a search writes one AuditEvent naming every patient it touched, so each sees the others in the log",
            ("audit@12",),
        ),
        Fault(
            "audit-events-writable",
            "clients may create AuditEvents, e.g. a patient's fake entry in another patient's access log",
            ("audit@13",),
        ),
        Fault(
            "audit-events-deletable",
            "AuditEvents can be updated, patched and deleted like any resource (no 405)",
            ("audit@7",),
        ),
    )
}


class FaultSwitches:
    """The faults switched on for one server; ``on(name)`` is asked at each defect's hook point."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.active = frozenset(n.strip() for n in names if n.strip())
        unknown = sorted(self.active - FAULTS.keys())
        if unknown:
            raise ValueError(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(sorted(FAULTS))}")

    def on(self, name: str) -> bool:
        assert name in FAULTS, f"undeclared fault {name}"
        return name in self.active
