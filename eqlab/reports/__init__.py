"""The writers of a run's artefacts, all rendered from one ``RunResults`` (STYLE #6).

``results.json`` is the canonical record; ``junit.xml``, ``results.csv``, ``summary.html``,
``detailed.html`` and, for granted verdicts, ``certificate.pdf`` are views of it. Every writer is
a pure function of the results (and of the hash of ``results.json`` for the certificate): the
same results give byte-identical files, which the signed manifest and golden tests rely on.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from eqlab.reports import certificate, csv_report, html, junit, views
from eqlab.results import RunResults

RESULTS_JSON = "results.json"
JUNIT_XML = "junit.xml"
RESULTS_CSV = "results.csv"
SUMMARY_HTML = html.SUMMARY
DETAILED_HTML = html.DETAILED
CERTIFICATE_PDF = certificate.CERTIFICATE

__all__ = [
    "CERTIFICATE_PDF",
    "DETAILED_HTML",
    "JUNIT_XML",
    "RESULTS_CSV",
    "RESULTS_JSON",
    "SUMMARY_HTML",
    "render_reports_from",
    "results_json",
    "write_reports",
]


def results_json(results: RunResults) -> bytes:
    """The exact bytes of ``results.json``."""
    return results.model_dump_json(indent=2).encode("utf-8")


def write_reports(results: RunResults, run_dir: Path) -> list[Path]:
    """Write ``results.json`` and every report rendered from it into ``run_dir``; the paths written."""
    run_dir.mkdir(parents=True, exist_ok=True)
    data = results_json(results)
    return [_write(run_dir / RESULTS_JSON, data), *_render(results, data, run_dir)]


def render_reports_from(run_dir: Path) -> list[Path]:
    """Re-render every report of ``run_dir`` from its ``results.json`` (left untouched)."""
    data = (run_dir / RESULTS_JSON).read_bytes()
    return _render(RunResults.model_validate_json(data), data, run_dir)


def _render(results: RunResults, data: bytes, run_dir: Path) -> list[Path]:
    digest = hashlib.sha256(data).hexdigest()
    writers: list[tuple[str, Callable[[], bytes]]] = [
        (JUNIT_XML, lambda: junit.render(results)),
        (RESULTS_CSV, lambda: csv_report.render(results)),
        (SUMMARY_HTML, lambda: html.render_summary(results)),
        (DETAILED_HTML, lambda: html.render_detailed(results)),
    ]
    if views.grants_certificate(results):
        writers.append((CERTIFICATE_PDF, lambda: certificate.render(results, digest)))
    else:
        # A certificate left from an earlier rendering must not sit beside results that refuse it.
        (run_dir / CERTIFICATE_PDF).unlink(missing_ok=True)
    return [_write(run_dir / name, render()) for name, render in writers]


def _write(path: Path, data: bytes) -> Path:
    """Replace ``path`` whole, so a reader (or the signer) never sees a half-written artefact."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)
    return path
