"""The label certificate: one page, shipped fonts, nothing fetched, and a QR code bound to results.json."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import subprocess
import sys
import zlib

import pytest

from eqlab.reports import certificate
from eqlab.reports.local_only import LocalOnly
from eqlab.reports.templating import TEMPLATES_DIR
from eqlab.results import RunResults
from tests.eqlab.reports import builders
from tests.eqlab.reports.conftest import Render

SHA = "f" * 64


def pdf_objects(pdf: bytes) -> bytes:
    """The PDF's streams, inflated (WeasyPrint compresses objects into object streams)."""
    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            out.append(zlib.decompress(stream))
        except zlib.error:
            continue
    return b"\n".join(out)


def test_certificate_states_label_verdict_reservations_and_hashes() -> None:
    results = builders.granted_run()
    html = certificate.certificate_html(results, SHA)
    assert "<h1>fhir-core</h1>" in html
    assert "✔ Granted with reservations" in html
    assert "<h2>Reservations (1)</h2>" in html and "<strong>fhir@5</strong> (SHOULD, fail)" in html
    for value in (results.run_id, "https://sut.example/fhir", "2027-11-23", "eqlab 0.1.0", "1" * 64, "2" * 64, SHA):
        assert value in html
    assert "2026-11-23 10:05:30 UTC" in html


def test_a_plain_grant_lists_no_reservations() -> None:
    html = certificate.certificate_html(builders.plain_granted_run(), SHA)
    assert "Reservations" not in html
    assert "✔ Granted</p>" in html


@pytest.mark.parametrize("build", [builders.refused_run, builders.inconclusive_run])
def test_no_certificate_for_a_verdict_that_grants_nothing(build: object) -> None:
    with pytest.raises(ValueError, match="no certificate"):
        certificate.render(build(), SHA)  # type: ignore[operator]


def test_the_certificate_is_one_page_even_with_many_reservations_and_long_names() -> None:
    base = builders.granted_run()
    many = [
        builders.requirement(f"fhir@{n}", "SHOULD", "fail", [], reason="x" * 300).model_copy(
            update={"text": "y " * 400}
        )
        for n in range(10, 40)
    ]
    decision = base.decision.model_copy(
        update={"reasons": [builders.step("reservations", "triggered", [r.id for r in many])]}
    )
    results = base.model_copy(
        update={
            "requirements": many,
            "decision": decision,
            "run_id": "r" * 200,
            "target": {"base_url": "https://" + "very-long-host." * 20 + "example/fhir"},
        }
    )
    html = certificate.certificate_html(results, SHA)
    assert f"and {30 - certificate.MAX_RESERVATIONS} more" in html
    assert len(certificate.document(results, SHA).pages) == 1


def test_the_pdf_embeds_the_shipped_fonts(render: Render) -> None:
    pdf = render(builders.plain_granted_run()).bytes("certificate.pdf")
    assert pdf.startswith(b"%PDF-")
    fonts = set(re.findall(rb"/FontName\s*/[A-Z]{6}\+([A-Za-z-]+)", pdf_objects(pdf)))
    assert fonts == {b"eqlab-sans", b"eqlab-sans-Bold", b"eqlab-mono"}
    assert (TEMPLATES_DIR / "fonts" / "LICENSE").read_text().count("Bitstream") > 3
    assert b"D:20261123100530+00'00" in pdf_objects(pdf)  # the run's end, not the time of rendering


def test_the_certificate_fetches_nothing_but_its_fonts() -> None:
    fetcher = LocalOnly()
    for url in ("https://example.org/x.png", "http://127.0.0.1/", "file:///etc/passwd", "ftp://x/y"):
        with pytest.raises(ValueError):
            fetcher.fetch(url)
    font = (TEMPLATES_DIR / "fonts" / "DejaVuSans.ttf").as_uri()
    assert fetcher.fetch(font).read(4) == b"\x00\x01\x00\x00"


def test_eqlab_commands_load_weasyprint_only_to_render_a_certificate() -> None:
    """WeasyPrint's import costs 1.1 s (its Pango bindings): every command, ``eqlab serve`` among them, paid it."""
    code = "import sys, eqlab.cli; print(sorted(m for m in sys.modules if m.split('.')[0] == 'weasyprint'))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_the_qr_code_decodes_to_the_run_and_results_hash(render: Render) -> None:
    zxingcpp = pytest.importorskip("zxingcpp", reason="QR decoding needs the zxing-cpp package (pip install zxing-cpp)")
    from PIL import Image

    results: RunResults = builders.granted_run()
    out = render(results)
    digest = hashlib.sha256(out.bytes("results.json")).hexdigest()
    html = certificate.certificate_html(results, digest)
    uri = re.search(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert uri is not None
    image = Image.open(io.BytesIO(base64.b64decode(uri.group(1)))).convert("L")
    decoded = zxingcpp.read_barcodes(image)
    assert [code.text for code in decoded] == [f"eqlab:run:{results.run_id}:results-sha256:{digest}"]
    assert out.bytes("certificate.pdf") == certificate.render(results, digest)
