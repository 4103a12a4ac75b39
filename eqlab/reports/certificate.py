"""``certificate.pdf``: the one-page label certificate, for granted verdicts only.

It carries a QR code of ``eqlab:run:<run id>:results-sha256:<hash of results.json>``, so a printed
certificate leads back to the exact, signed results it was rendered from. The PDF is rendered by
WeasyPrint with the fonts shipped in ``reports/templates/fonts``; its URL fetcher (``local_only.py``)
refuses everything but those files and inline data, so rendering never touches the network.
"""

from __future__ import annotations

import importlib
from typing import Any

import segno

from eqlab.reports import templating, views
from eqlab.results import RunResults

CERTIFICATE = "certificate.pdf"
# More reservations than this are summarised in one line. Should the page still overflow (very long
# names), the layout tightens and lists fewer: a certificate is one page.
MAX_RESERVATIONS = 8
_LAYOUTS: tuple[tuple[int, bool], ...] = ((MAX_RESERVATIONS, False), (4, True), (0, True))


def qr_payload(run_id: str, results_sha256: str) -> str:
    return f"eqlab:run:{run_id}:results-sha256:{results_sha256}"


def qr_data_uri(payload: str) -> str:
    """The QR code as a PNG data URI (medium error correction, four-module quiet zone)."""
    code = segno.make(payload, error="m", micro=False)
    uri: str = code.png_data_uri(scale=6, border=4)
    return uri


def certificate_html(
    results: RunResults, results_sha256: str, max_reservations: int = MAX_RESERVATIONS, compact: bool = False
) -> str:
    if not views.grants_certificate(results):
        raise ValueError(f"no certificate for a run whose verdict is {results.decision.verdict!r}")
    payload = qr_payload(results.run_id, results_sha256)
    return templating.render(
        "certificate.html.j2",
        results=results,
        verdict=views.VERDICTS[results.decision.verdict],
        base_url=results.target.get("base_url", "—"),
        reservations=views.reservations(results),
        max_reservations=max_reservations,
        compact=compact,
        results_sha256=results_sha256,
        qr_payload=payload,
        qr_data_uri=qr_data_uri(payload),
        css=templating.static("certificate.css"),
    )


def load_renderer() -> None:
    """Import WeasyPrint now, in a process about to fork runs that each may render a certificate (the
    detection matrix): they inherit it loaded, as they did when every eqlab command imported it."""
    importlib.import_module("weasyprint")


def document(results: RunResults, results_sha256: str) -> Any:
    """The laid-out WeasyPrint document, in the first layout that fits one page."""
    # Lazily: WeasyPrint's import costs 1.1 s, which every eqlab command paid, though few render a certificate.
    from weasyprint import HTML  # type: ignore[import-untyped]  # noqa: PLC0415

    from eqlab.reports.local_only import LocalOnly  # noqa: PLC0415

    laid_out = None
    for max_reservations, compact in _LAYOUTS:
        source = HTML(
            string=certificate_html(results, results_sha256, max_reservations, compact),
            base_url=templating.TEMPLATES_DIR.as_uri() + "/",
            url_fetcher=LocalOnly(),
        )
        laid_out = source.render()
        if len(laid_out.pages) == 1:
            break
    return laid_out


def render(results: RunResults, results_sha256: str) -> bytes:
    pdf: bytes = document(results, results_sha256).write_pdf()
    return pdf
