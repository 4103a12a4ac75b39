"""The filters of detailed.html, run by a real browser (headless chromium, offline, from file://).

A probe script sets each filter the way a user would and records which requirements stay visible.
The page's Content-Security-Policy admits only its own script, so the probe copy drops it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.eqlab.reports import builders
from tests.eqlab.reports.conftest import Render

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PROBE = """<script>
(function () {
  var form = document.getElementById("filters"), out = [];
  function set(name, value) {
    ["status", "service", "suite", "q"].forEach(function (n) { form.elements[n].value = ""; });
    if (name) { form.elements[name].value = value; }
    form.elements.status.dispatchEvent(new Event("change", {bubbles: true}));
    var shown = Array.prototype.filter.call(document.querySelectorAll("section.req"), function (s) {
      return !s.hidden;
    }).map(function (s) { return s.id || s.dataset.status; });
    var counter = document.getElementById("shown").textContent;
    out.push((name || "none") + "=" + value + ": " + shown.join(" ") + " | " + counter);
  }
  set("", "");
  set("status", "fail");
  set("service", "portal");
  set("suite", "ui");
  set("q", "keyerror");
  out.push("form hidden: " + form.hidden);
  var pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = out.join("\\n");
  document.body.appendChild(pre);
})();
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="headless chromium is not installed (make browser)")
def test_filters_narrow_the_requirements_shown(render: Render, tmp_path: Path) -> None:
    page = render(builders.refused_run()).text("detailed.html")
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page).replace("</body>", PROBE + "</body>")
    probe = tmp_path / "probe.html"
    probe.write_text(page, encoding="utf-8")
    done = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found is not None, done.stderr[-2000:]
    all_sections = "lab-error req-fhir@1 req-fhir@2 req-fhir@3 req-fhir@4 req-portal@1 req-portal@2 unlinked"
    assert found.group(1).splitlines() == [
        f"none=: {all_sections} | 6 of 6 requirements shown",
        "status=fail: req-fhir@2 | 1 of 6 requirements shown",
        "service=portal: req-portal@1 req-portal@2 | 2 of 6 requirements shown",
        "suite=ui: req-portal@1 | 1 of 6 requirements shown",
        "q=keyerror: req-fhir@3 | 1 of 6 requirements shown",
        "form hidden: false",
    ]
