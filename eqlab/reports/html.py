"""``summary.html`` (for auditors and managers) and ``detailed.html`` (for the vendor's developers).

Both are single files that work offline from ``file://``. Their Content-Security-Policy allows
only the page's own style and script (by hash), so even markup that escaped escaping could not
run or load anything.
"""

from __future__ import annotations

import re

from markupsafe import Markup

from eqlab.clients.judging import JOURNAL_FILE
from eqlab.reports import charts, templating, views
from eqlab.results import RunResults
from eqlab.signing import MANIFEST, PUBLIC_KEY_COPY, SIGNATURE

SUMMARY = "summary.html"
DETAILED = "detailed.html"
# Beyond this many exchanges in one check (a load scenario), the rest are listed one line each:
# headers and bodies of thousands of requests make a page no one can open, and are in results.json.
FULL_EXCHANGES = 50
FULL_EXCHANGES_PASSED = 5  # a passed check's evidence matters less: its first exchanges in full, the rest one line each
# A body file is a path the lab wrote inside the run folder; anything else is shown as text, never linked.
_RUN_FILE = re.compile(r"^(?!.*(?:^|/)\.\.(?:/|$))[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*\Z")


def run_file(path: str | None) -> bool:
    return bool(path) and _RUN_FILE.match(path or "") is not None


def _policy(css: str, script: str | None) -> str:
    scripts = templating.csp_source(script) if script is not None else "'none'"
    return (
        f"default-src 'none'; style-src {templating.csp_source(css)}; script-src {scripts}; "
        "base-uri 'none'; form-action 'none'"
    )


def artefacts(results: RunResults) -> list[tuple[str, str]]:
    """The run folder's files a summary links to, with what each is for."""
    listed = [
        (DETAILED, "detailed report: every requirement, check and HTTP exchange"),
        ("junit.xml", "JUnit XML for CI tools"),
        ("results.csv", "requirement statuses as CSV"),
        ("results.json", "all results (the canonical record)"),
    ]
    if views.grants_certificate(results):
        listed.append(("certificate.pdf", "label certificate"))
    if "client" in results.suites:
        listed.append((JOURNAL_FILE, "every request the client under test sent (credentials sealed)"))
    listed += [
        ("events.jsonl", "the checks' event stream, as the run followed it"),
        (MANIFEST, "the SHA-256 of every artefact, signed"),
        (SIGNATURE, "the lab's Ed25519 signature of the manifest (check it with eqlab verify)"),
        (PUBLIC_KEY_COPY, "a copy of the signing key's public half (trust the lab's published key, not this copy)"),
    ]
    if any(
        message is not None and message.body_file
        for item in results.items
        for exchange in item.exchanges
        for message in (exchange.request, exchange.response)
    ):
        listed.append(("evidence/", "large HTTP bodies, as files named by their SHA-256"))
    if any(r.attestation for r in results.requirements):
        listed.append(("attestations/", "copies of the attested evidence files"))
    return listed


def render_summary(results: RunResults) -> bytes:
    css = templating.static("report.css")
    services = views.requirements_by_service(results)
    page = templating.render(
        "summary.html.j2",
        results=results,
        verdict=views.VERDICTS[results.decision.verdict],
        reasons=views.ordered_reasons(results.decision),
        why=lambda step: views.why(results, step),
        services=services,
        suites=views.items_by_suite(results),
        carried=views.carried_forward(results),
        statuses=views.STATUSES,
        chart=charts.status_chart(services),
        artefacts=artefacts(results),
        detailed=DETAILED,
        css=css,
        policy=_policy(css, None),
    )
    return page.encode("utf-8")


def render_detailed(results: RunResults) -> bytes:
    css = templating.static("report.css")
    script = templating.static("detailed.js")
    view = views.detailed_view(results)
    facets = {
        "statuses": [[status, views.status_label(status)] for status in view.statuses],
        "services": view.services,
        "suites": view.suites,
    }
    page = templating.render(
        "detailed.html.j2",
        results=results,
        verdict=views.VERDICTS[results.decision.verdict],
        view=view,
        facets=facets,
        full_exchanges=lambda item: FULL_EXCHANGES if item.outcome in ("fail", "error") else FULL_EXCHANGES_PASSED,
        run_file=run_file,
        summary=SUMMARY,
        css=css,
        script=Markup(script),
        policy=_policy(css, script),
    )
    return page.encode("utf-8")
