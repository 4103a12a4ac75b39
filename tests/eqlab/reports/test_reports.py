"""The writers of a run's artefacts: what each file says, and that it says it from RunResults alone."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from eqlab.reports import render_reports_from, results_json, views, write_reports
from eqlab.reports.certificate import certificate_html
from eqlab.reports.html import render_summary
from eqlab.reports.junit import split_id
from eqlab.results import Decision, RunResults, SloResult
from tests.eqlab.reports import builders
from tests.eqlab.reports.conftest import Render
from tests.support.paths import REPO

ALWAYS = ["results.json", "junit.xml", "results.csv", "summary.html", "detailed.html"]


@pytest.mark.parametrize(
    ("build", "certificate"),
    [
        (builders.plain_granted_run, True),
        (builders.granted_run, True),  # granted with reservations
        (builders.refused_run, False),
        (builders.inconclusive_run, False),
    ],
)
def test_every_artefact_is_written_and_the_certificate_only_when_granted(
    render: Render, build: object, certificate: bool
) -> None:
    results = build()  # type: ignore[operator]
    out = render(results)
    assert out.names() == ALWAYS + (["certificate.pdf"] if certificate else [])
    assert sorted(p.name for p in out.run_dir.iterdir()) == sorted(out.names())  # no partial files left
    assert out.bytes("results.json") == results.model_dump_json(indent=2).encode()
    assert RunResults.model_validate_json(out.bytes("results.json")) == results
    if certificate:
        assert out.bytes("certificate.pdf").startswith(b"%PDF-")


# --- junit.xml ------------------------------------------------------------------------------------


def _suites(xml: bytes) -> dict[str, ET.Element]:
    root = ET.fromstring(xml)
    assert root.tag == "testsuites"
    return {suite.get("name", ""): suite for suite in root.findall("testsuite")}


def test_junit_has_one_suite_per_kind_with_counts(render: Render) -> None:
    results = builders.refused_run()
    root = ET.fromstring(render(results).bytes("junit.xml"))
    suites = _suites(ET.tostring(root))
    assert list(suites) == ["contract", "fuzz", "load", "ui"]
    counts = {name: {k: s.get(k) for k in ("tests", "failures", "errors", "skipped")} for name, s in suites.items()}
    assert counts == {
        "contract": {"tests": "5", "failures": "1", "errors": "1", "skipped": "1"},
        "fuzz": {"tests": "0", "failures": "0", "errors": "0", "skipped": "0"},
        "load": {"tests": "0", "failures": "0", "errors": "0", "skipped": "0"},
        "ui": {"tests": "1", "failures": "0", "errors": "0", "skipped": "1"},  # not-tested counts as skipped
    }
    assert {k: root.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "6",
        "failures": "1",
        "errors": "1",
        "skipped": "2",
    }
    assert len(suites["contract"].findall("testcase")) == 5


def test_junit_testcases_carry_requirements_outcome_and_messages(render: Render) -> None:
    results = builders.refused_run()
    suites = _suites(render(results).bytes("junit.xml"))
    cases = {c.get("name"): c for s in suites.values() for c in s.findall("testcase")}
    assert set(cases) == {split_id(i.id)[1] for i in results.items}
    by_name = {split_id(i.id)[1]: i for i in results.items}
    for name, case in cases.items():
        item = by_name[name]
        assert case.get("classname") == f"suites.{item.suite}.test_fhir"
        properties = [(p.get("name"), p.get("value")) for p in case.findall("properties/property")]
        assert [v for n, v in properties if n == "requirement"] == item.requirements
        assert ("outcome", item.outcome) in properties
    failed = cases["test_create_rejects_bad_json"]
    failure = failed.find("failure")
    assert failure is not None
    assert failure.get("message") == by_name["test_create_rejects_bad_json"].message
    assert failure.text == by_name["test_create_rejects_bad_json"].detail
    error = cases["test_history"].find("error")
    assert error is not None and error.get("message") == "the check itself broke: KeyError 'entry'"
    assert error.text == "Traceback ..."
    skipped = cases["test_vread"].find("skipped")
    assert skipped is not None and skipped.get("message") == "server does not support versioning"
    untested = cases["test_ui_login"].find("skipped")
    assert untested is not None and untested.get("type") == "not-tested"
    assert cases["test_read"].find("failure") is None and cases["test_read"].find("skipped") is None
    carried = [(p.get("name"), p.get("value")) for p in cases["test_read"].findall("properties/property")]
    assert ("carried_forward_from", "run-earlier-0042") in carried
    out = failed.find("system-out")
    assert out is not None and "GET https://sut.example/fhir/Patient/2 -> 500" in (out.text or "")
    assert "note: note from the check" in (out.text or "")


def test_junit_stays_well_formed_with_characters_xml_cannot_hold(render: Render) -> None:
    results = builders.refused_run()
    items = [results.items[0].model_copy(update={"outcome": "fail", "message": "nul\x00 esc\x1b", "detail": "\ufffe"})]
    suites = _suites(render(results.model_copy(update={"items": items})).bytes("junit.xml"))
    failure = suites["contract"].find("testcase/failure")
    assert failure is not None
    assert failure.get("message") == "nul\\x00 esc\\x1b"
    assert failure.text == "\\xfffe"


@pytest.mark.parametrize(
    ("node_id", "expected"),
    [
        ("suites/contract/test_fhir.py::test_read", ("suites.contract.test_fhir", "test_read")),
        (
            "suites/contract/test_fhir.py::TestSearch::test_one[a::b]",
            ("suites.contract.test_fhir.TestSearch", "test_one[a::b]"),
        ),
        ("suites/ui/test_portal.py", ("", "suites/ui/test_portal.py")),
    ],
)
def test_junit_names_follow_pytest(node_id: str, expected: tuple[str, str]) -> None:
    assert split_id(node_id) == expected


# --- results.csv ----------------------------------------------------------------------------------


def test_csv_has_one_row_per_requirement_with_its_values(render: Render) -> None:
    results = builders.refused_run()
    data = render(results).bytes("results.csv")
    assert data.count(b"\r\n") == len(results.requirements) + 1
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    assert rows == [
        {
            "id": r.id,
            "level": r.level,
            "service": r.service,
            "status": r.status,
            "reason": r.reason or "",
            "item_count": str(len(r.items)),
            "items": ";".join(r.items),
            "text": r.text,
        }
        for r in results.requirements
    ]


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_defused(render: Render) -> None:
    results = builders.refused_run()
    hostile = results.requirements[0].model_copy(update={"reason": '=HYPERLINK("http://evil","click")'})
    results = results.model_copy(update={"requirements": [hostile, *results.requirements[1:]]})
    rows = list(csv.DictReader(io.StringIO(render(results).bytes("results.csv").decode("utf-8"), newline="")))
    assert rows[0]["reason"] == '\'=HYPERLINK("http://evil","click")'


# --- summary.html ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "text"),
    [
        (builders.plain_granted_run, "Granted"),
        (builders.granted_run, "Granted with reservations"),
        (builders.refused_run, "Refused"),
        (builders.inconclusive_run, "Inconclusive"),
    ],
)
def test_summary_states_the_verdict_in_words_and_colour(render: Render, build: object, text: str) -> None:
    results: RunResults = build()  # type: ignore[operator]
    page = render(results).text("summary.html")
    verdict = results.decision.verdict
    assert f'<section class="verdict verdict-{verdict}" aria-labelledby="verdict-heading">' in page
    assert f'<h2 id="verdict-heading" class="verdict-text">Verdict: {text}</h2>' in page
    assert f"<title>eqlab fhir-core: {text} (run {results.run_id})</title>" in page
    for fact in (results.run_id, "fhir-core", "1.2", "qualification", "https://sut.example/fhir", "eqlab 0.1.0"):
        assert fact in page
    assert "2026-11-23 10:00:00 UTC" in page and "2026-11-23 10:05:30 UTC" in page


def test_summary_lists_the_triggered_rules_first_as_top_reasons(render: Render) -> None:
    page = render(builders.refused_run()).text("summary.html")
    top = re.search(r'<ol class="reasons">(.*?)</ol>', page, re.S)
    assert top is not None
    assert re.findall(r"<strong>([a-z-]+)</strong>", top.group(1)) == ["shall-failed", "slo-breached", "lab-error"]
    assert 'href="detailed.html#req-fhir%402"' in top.group(1) or 'href="detailed.html#req-fhir@2"' in top.group(1)
    assert "read p95 450 ms (limit 300)" in top.group(1)
    trace = page[page.index("Every rule of the decision") :]
    order = [
        trace.index(f"<code>{rule}</code>") for rule in ("shall-failed", "lab-error", "security-failed", "reservations")
    ]
    assert order == sorted(order)


def test_summary_shows_the_chart_slos_lab_errors_and_links(render: Render) -> None:
    page = render(builders.refused_run()).text("summary.html")
    chart = re.search(r"<svg .*?</svg>", page, re.S)
    assert chart is not None
    description = "Requirements per service by status. fhir: 1 fail, 1 error, 1 skipped, 1 pass; portal: 2 not tested."
    assert f'<desc id="chart-desc">{description}</desc>' in chart.group(0)
    assert chart.group(0).count("<rect x=") == 5 + 5  # segments (4 fhir + 1 portal) + legend swatches
    slos = page[page.index("Service levels (SLOs)") :]
    assert "read p95" in slos and "450 ms" in slos and "Not measured" in slos
    assert "Lab errors" in page and "the fuzz suite crashed" in page
    assert "1 check result was not re-measured in this run" in page
    assert "run <code>run-earlier-0042</code> (1)" in page
    for link in ("detailed.html", "junit.xml", "results.csv", "results.json"):
        assert f'<a href="{link}">' in page
    assert "certificate.pdf" not in page
    assert "<script" not in page  # the summary needs no script at all
    assert '<a href="certificate.pdf">' in render(builders.granted_run()).text("summary.html")


# --- detailed.html --------------------------------------------------------------------------------


def test_detailed_contains_every_requirement_item_and_exchange(render: Render) -> None:
    results = builders.refused_run()
    page = render(results).text("detailed.html")
    for requirement in results.requirements:
        assert f'<section class="req" id="req-{requirement.id}" data-status="{requirement.status}"' in page
        assert requirement.text in page
    for index, item in enumerate(results.items):
        assert f'id="item-{index}"' in page
        for exchange in item.exchanges:
            assert f"<code>{exchange.id}</code>" in page
    assert "Checks not linked to a listed requirement" in page  # test_orphan
    assert "No check of this run covers this requirement." in page  # portal@2
    assert '<a href="evidence/' + "cd" * 32 + '.bin">' in page
    assert "x-request-id" in page and "req-2" in page
    assert "\\x00\\x1b" in page  # control characters made visible, not passed to the parser


def test_detailed_marks_carried_forward_items(render: Render) -> None:
    page = render(builders.refused_run()).text("detailed.html")
    article = re.search(r'<article class="item o-pass carried-forward" id="item-0".*?</article>', page, re.S)
    assert article is not None
    assert "Carried forward from run <code>run-earlier-0042</code>" in article.group(0)
    assert page.count("Carried forward from run") == 1


def test_detailed_shows_a_check_of_several_requirements_once_with_links(render: Render) -> None:
    results = builders.granted_run()
    page = render(results).text("detailed.html")
    shared = results.items[1]
    assert page.count('id="item-1"') == 1
    assert 'The same check verifies <code>fhir@2</code>: <a href="#item-1">' in page
    assert page.count(f"<code>{shared.exchanges[0].id}</code>") == 1


def test_detailed_has_filters_that_stay_out_of_the_way_without_javascript(render: Render) -> None:
    page = render(builders.refused_run()).text("detailed.html")
    assert '<form id="filters" class="filters" hidden aria-label="Filter requirements">' in page
    for name in ("status", "service", "suite"):
        assert f'<select name="{name}">' in page
    assert '<input type="search" name="q"' in page
    assert 'data-suites="contract"' in page and 'data-suite="ui"' in page


def test_large_runs_stay_small_and_list_every_exchange(render: Render) -> None:
    from eqlab.reports.html import FULL_EXCHANGES_PASSED

    results = builders.large_run(3000)
    page = render(results).text("detailed.html")
    exchanges = [x for item in results.items for x in item.exchanges]
    assert len(exchanges) == 3000
    assert all(f"<code>{x.id}</code>" in page for x in exchanges)
    passed = [item for item in results.items if item.outcome == "pass"]
    assert passed, "the large run has passed checks: their first exchanges only are shown in full"
    failed_in_full = sum(min(len(i.exchanges), 50) for i in results.items if i.outcome in ("fail", "error"))
    assert page.count('<details class="exchange">') == FULL_EXCHANGES_PASSED * len(passed) + failed_in_full
    assert len(page) < 1_500_000


# --- determinism and re-rendering -----------------------------------------------------------------


@pytest.mark.parametrize("build", [builders.granted_run, builders.refused_run, builders.inconclusive_run])
def test_same_results_give_byte_identical_files(render: Render, build: object) -> None:
    first = render(build())  # type: ignore[operator]
    second = render(build())  # type: ignore[operator]
    for name in first.names():
        assert first.bytes(name) == second.bytes(name), name


def test_report_text_does_not_depend_on_dict_order(render: Render) -> None:
    results = builders.refused_run()
    shuffled = results.model_copy(
        update={"tool": dict(reversed(results.tool.items())), "target": dict(reversed(results.target.items()))}
    )
    first, second = render(results), render(shuffled)
    for name in ("summary.html", "detailed.html", "junit.xml", "results.csv"):
        assert first.bytes(name) == second.bytes(name), name


def test_render_reports_from_reproduces_every_file(render: Render, tmp_path: Path) -> None:
    original = render(builders.granted_run())
    again = tmp_path / "again"
    again.mkdir()
    shutil.copy(original.run_dir / "results.json", again / "results.json")
    paths = render_reports_from(again)
    assert [p.name for p in paths] == original.names()[1:]
    for name in original.names():
        assert (again / name).read_bytes() == original.bytes(name), name


def test_render_reports_from_drops_a_certificate_the_results_no_longer_grant(tmp_path: Path) -> None:
    write_reports(builders.granted_run(), tmp_path)
    assert (tmp_path / "certificate.pdf").exists()
    (tmp_path / "results.json").write_bytes(results_json(builders.refused_run()))
    names = [p.name for p in render_reports_from(tmp_path)]
    assert "certificate.pdf" not in names
    assert not (tmp_path / "certificate.pdf").exists()


def test_the_certificate_is_bound_to_the_results_json_written(render: Render) -> None:
    from eqlab.reports import certificate

    results = builders.granted_run()
    out = render(results)
    digest = hashlib.sha256(out.bytes("results.json")).hexdigest()
    assert out.bytes("certificate.pdf") == certificate.render(results, digest)


def test_files_do_not_depend_on_the_process_hash_seed(tmp_path: Path) -> None:
    """Set and dict orders vary with PYTHONHASHSEED between processes; the files must not."""
    import os
    import subprocess
    import sys

    script = "\n".join(
        [
            "import sys",
            "from pathlib import Path",
            "from eqlab.reports import write_reports",
            "from tests.eqlab.reports import builders",
            "write_reports(builders.refused_run(), Path(sys.argv[1]))",
            "write_reports(builders.granted_run(), Path(sys.argv[2]))",
        ]
    )
    folders = []
    for seed in ("1", "2"):
        run_dirs = [tmp_path / seed / "refused", tmp_path / seed / "granted"]
        env = {**os.environ, "PYTHONHASHSEED": seed}
        project = REPO
        subprocess.run(
            [sys.executable, "-c", script, *map(str, run_dirs)], check=True, env=env, cwd=project, timeout=120
        )
        folders.append(run_dirs)
    for first, second in zip(*folders, strict=True):
        names = sorted(p.name for p in first.iterdir())
        assert names == sorted(p.name for p in second.iterdir())
        for name in names:
            assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_top_reasons_say_why_in_one_sentence_per_reason_not_a_list_of_ids() -> None:
    """46 errors for one missing secret and 2 for a timeout: two sentences, a few IDs named in each."""
    missing = "could not authenticate: environment variable EQLAB_DEMO_PASSWORD_AUDITOR is not set"
    errored = [builders.requirement(f"auth@{n}", "SHALL", "error", [], reason=missing) for n in range(1, 47)]
    slow = [
        builders.requirement(f"fhir@{n}", "SHALL", "error", [], reason="the system did not answer within 60 s")
        for n in (1, 2)
    ]
    step = builders.step("sut-error", "triggered", [r.id for r in [*errored, *slow]])
    decision = Decision(label="fhir-core", verdict="inconclusive", reasons=[step])
    results = builders.run("run-why-0001", [], [*errored, *slow], decision)

    groups = views.why(results, step)
    assert [g.sentence for g in groups] == [
        f"46 requirements (auth@1, auth@2, auth@3 and 43 more): {missing}",
        "2 requirements (fhir@1, fhir@2): the system did not answer within 60 s",
    ]
    page = render_summary(results).decode()
    top = page.split("<h3>Every rule of the decision</h3>")[0]
    assert top.count("<li>46 requirements") == 1 and "and 43 more" in top and missing in top
    assert "auth@40" not in top, "the top reasons name a few requirements, not all 46"


def test_a_demo_run_says_it_is_no_label_and_every_run_names_its_signing_key() -> None:
    demo = builders.granted_run().model_copy(
        update={
            "demo": True,
            "signing_key": "SHA256:abcDEF123",
            "decision": builders.granted_run().decision.model_copy(update={"valid_until": None}),
        }
    )
    page = render_summary(demo).decode()
    assert "DEMO — not a label." in page and "valid until" not in page.split("</section>")[0]
    assert "<code>SHA256:abcDEF123</code>" in page
    certificate = certificate_html(demo, "0" * 64)
    assert "DEMO — not a label" in certificate and "no validity: a demo run" in certificate
    assert "SHA256:abcDEF123" in certificate
    plain = render_summary(builders.granted_run()).decode()
    assert "DEMO" not in plain


def test_an_interrupted_run_says_so_and_how_to_complete_it() -> None:
    results = builders.inconclusive_run().model_copy(update={"interrupted": "interrupted by SIGINT after 12 s"})
    page = render_summary(results).decode()
    assert "This run was interrupted by SIGINT after 12 s." in page
    assert "--resume &lt;this run folder&gt;" in page
    assert "was interrupted" not in render_summary(builders.inconclusive_run()).decode()


def test_the_artefact_list_names_every_file_an_auditor_needs() -> None:
    page = render_summary(builders.granted_run()).decode()
    for name in (
        "detailed.html",
        "results.json",
        "events.jsonl",
        "manifest.json",
        "manifest.sig",
        "lab-public-key.pem",
    ):
        assert f'href="{name}"' in page, name
    assert "client-requests.jsonl" not in page
    client_run = builders.granted_run().model_copy(update={"suites": ["client"]})
    assert 'href="client-requests.jsonl"' in render_summary(client_run).decode()


def test_the_load_suite_counts_its_slos_as_its_checks() -> None:
    slos = [
        SloResult(name="p95", threshold=300, measured=120, passed=True, unit="ms"),
        SloResult(name="p99", threshold=800, measured=900, passed=False, unit="ms"),
        SloResult(name="error_rate", threshold=0.01, measured=None, passed=None, unit="ratio"),
    ]
    results = builders.granted_run().model_copy(update={"suites": ["contract", "load"], "slos": slos})
    load = next(t for t in views.items_by_suite(results) if t.name == "load")
    assert (load.get("pass"), load.get("fail"), load.get("not-tested"), load.total) == (1, 1, 1, 3)


def test_json_bodies_are_pretty_printed_folded_when_long_and_cut_short() -> None:
    short = views.body_view('{"resourceType":"Patient","id":"1"}', truncated=False)
    assert short.is_json and short.text == '{\n  "resourceType": "Patient",\n  "id": "1"\n}' and not short.folded
    bundle = json.dumps({"resourceType": "Bundle", "entry": [{"fullUrl": f"urn:uuid:{n}"} for n in range(200)]})
    long = views.body_view(bundle, truncated=False)
    assert long.is_json and long.folded and long.cut and long.text.endswith("\n…")
    assert len(long.text) <= views.BODY_SHOWN_CHARS + 2
    cut_json = views.body_view('{"resourceType": "Bundle", "entry": [', truncated=True)
    assert not cut_json.is_json and cut_json.cut, "an excerpt cut short is shown as it came"
    surrogate = views.body_view('{"name": "\\ud800"}', truncated=False)
    assert surrogate.is_json and "\\ud800" in surrogate.text
    surrogate.text.encode("utf-8")  # a report page must stay valid UTF-8
