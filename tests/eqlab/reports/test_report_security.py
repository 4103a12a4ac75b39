"""Strings from the system under test never become markup or script in an HTML report.

The pages are parsed the way a browser tokenises them: the only elements are the templates' own,
no attribute is an event handler, and the only scripts are the page's own (allowed by hash in its
Content-Security-Policy) and the JSON data block, which decodes to exactly the data put in it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from html.parser import HTMLParser

import pytest

from eqlab.reports.templating import script_json
from eqlab.results import RunResults
from tests.eqlab.reports import builders
from tests.eqlab.reports.conftest import Render

RAW = [builders.SCRIPT, "<img src=x onerror", "</script><script>alert(2)", "<!--"]
TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "main", "footer", "section", "article", "details",
    "summary", "h1", "h2", "h3", "p", "span", "strong", "code", "pre", "a", "ul", "ol", "li", "dl", "dt", "dd",
    "div", "table", "caption", "thead", "tbody", "tr", "th", "td", "br", "form", "label", "select", "option",
    "input", "button", "output", "script", "svg", "desc", "defs", "pattern", "rect", "line", "g", "text",
}  # fmt: skip


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None
        self.policy = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)
        if tag == "script":
            self._script = dict(attrs)
            self.scripts.append((self._script, ""))
        if tag == "meta" and ("http-equiv", "Content-Security-Policy") in attrs:
            self.policy = dict(attrs)["content"] or ""

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None


def hostile_run() -> RunResults:
    """The refused run, with hostile text also where the filters' data comes from."""
    results = builders.refused_run()
    evil = builders.requirement("fhir@9", "SHALL", "fail", [], reason=builders.HOSTILE)
    evil = evil.model_copy(update={"service": builders.BREAKOUT, "text": builders.ATTRIBUTE})
    items = [*results.items]
    items[1] = items[1].model_copy(update={"suite": builders.BREAKOUT, "name": builders.SCRIPT})
    return results.model_copy(
        update={
            "requirements": [*results.requirements, evil],
            "items": items,
            "target": {**results.target, "base_url": f"https://sut.example/{builders.ATTRIBUTE}"},
            "run_id": f"run-{builders.ATTRIBUTE}",
        }
    )


def csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.mark.parametrize("name", ["summary.html", "detailed.html"])
def test_hostile_text_is_never_markup(render: Render, name: str) -> None:
    source = render(hostile_run()).text(name)
    for raw in RAW:
        assert raw not in source, raw
    page = Page()
    page.feed(source)
    assert page.tags <= TAGS, page.tags - TAGS
    assert not {a for a in page.attributes if a.startswith("on")}
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in source
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in source


def test_detailed_scripts_are_only_its_own_and_the_data_block(render: Render) -> None:
    results = hostile_run()
    page = Page()
    page.feed(render(results).text("detailed.html"))
    assert len(page.scripts) == 2
    (data_attrs, data), (code_attrs, code) = page.scripts
    assert data_attrs == {"type": "application/json", "id": "facets"}
    facets = json.loads(data)
    assert builders.BREAKOUT in facets["services"] and builders.BREAKOUT in facets["suites"]
    assert "<" not in data and "\u2028" not in data
    assert code_attrs == {}
    assert "script-src " + csp_hash(code) in page.policy
    assert "default-src 'none'" in page.policy


def test_summary_policy_forbids_every_script(render: Render) -> None:
    page = Page()
    page.feed(render(hostile_run()).text("summary.html"))
    assert page.scripts == []
    assert "script-src 'none'" in page.policy


@pytest.mark.parametrize(
    "value",
    [
        "</script><script>alert(1)</script>",
        "<!-- <script>",
        "</SCRIPT >",
        "line\u2028separator\u2029paragraph",
        {"nested": ["</script>", "&amp;", "'quotes\""]},
    ],
)
def test_script_json_cannot_end_its_script_element(value: object) -> None:
    text = str(script_json(value))
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == value


def test_body_files_outside_the_run_folder_are_not_linked() -> None:
    from eqlab.reports.html import run_file

    assert run_file("evidence/" + "ab" * 32 + ".bin")
    for path in ("javascript:alert(1)", "../secrets", "evidence/../../x", "/etc/passwd", "https://x.example/a", ""):
        assert not run_file(path), path
