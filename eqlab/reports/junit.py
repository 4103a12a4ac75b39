"""``junit.xml``: the run's checks for CI tools, one ``<testsuite>`` per suite kind.

Each ``<testcase>`` carries its requirement IDs and eqlab outcome as properties. ``not-tested``
checks are reported as skipped (JUnit has no such state); the ``outcome`` property keeps the
difference. Text from the system under test may hold characters XML 1.0 cannot carry: they are
written as ``\\xNN`` escapes rather than making the file unreadable.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter

from eqlab.reports.views import suite_order
from eqlab.results import ItemResult, RunResults

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


def split_id(item_id: str) -> tuple[str, str]:
    """(classname, name) from a pytest node ID, as pytest's own JUnit report names them.

    ``suites/contract/test_fhir.py::TestRead::test_one[a::b]`` ->
    ``("suites.contract.test_fhir.TestRead", "test_one[a::b]")``.
    """
    head, bracket, params = item_id.partition("[")
    parts = head.split("::")
    if len(parts) == 1:
        return "", item_id
    module = parts[0].removesuffix(".py").replace("/", ".").replace("\\", ".")
    return ".".join([module, *parts[1:-1]]), parts[-1] + bracket + params


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attributes.items()})
    if text is not None:
        element.text = xml_text(text)
    return element


def _testcase(parent: ET.Element, item: ItemResult) -> None:
    classname, name = split_id(item.id)
    case = _sub(parent, "testcase", classname=classname, name=name, time=f"{item.duration_s:.3f}")
    properties = _sub(case, "properties")
    for requirement in item.requirements:
        _sub(properties, "property", name="requirement", value=requirement)
    _sub(properties, "property", name="outcome", value=item.outcome)
    if item.carried_forward_from:
        _sub(properties, "property", name="carried_forward_from", value=item.carried_forward_from)
    message = item.message or ""
    if item.outcome == "fail":
        _sub(case, "failure", item.detail, message=message, type="fail")
    elif item.outcome == "error":
        _sub(case, "error", item.detail, message=message, type="error")
    elif item.outcome in ("skip", "not-tested"):
        _sub(case, "skipped", item.detail, message=message, type=item.outcome)
    output = [f"note: {note}" for note in item.notes]
    if item.carried_forward_from:
        output.insert(0, f"result carried forward from run {item.carried_forward_from}")
    for exchange in item.exchanges:
        answer = str(exchange.status) if exchange.status is not None else (exchange.error or "no response")
        elapsed = f" ({exchange.elapsed_ms:.1f} ms)" if exchange.elapsed_ms is not None else ""
        output.append(f"{exchange.method} {exchange.url} -> {answer}{elapsed}")
    if output:
        _sub(case, "system-out", "\n".join(output) + "\n")


def _counts(items: list[ItemResult]) -> dict[str, str]:
    outcomes = Counter(item.outcome for item in items)
    return {
        "tests": str(len(items)),
        "failures": str(outcomes["fail"]),
        "errors": str(outcomes["error"]),
        "skipped": str(outcomes["skip"] + outcomes["not-tested"]),
        "time": f"{sum(item.duration_s for item in items):.3f}",
    }


def render(results: RunResults) -> bytes:
    root = ET.Element("testsuites", {"name": xml_text(f"eqlab {results.plan.label} {results.run_id}")})
    root.attrib.update(_counts(results.items))
    for suite in suite_order(results):
        items = [item for item in results.items if item.suite == suite]
        element = _sub(root, "testsuite", name=suite)
        element.attrib.update(_counts(items))
        element.set("timestamp", xml_text(results.started))
        properties = _sub(element, "properties")
        for name, value in (
            ("run_id", results.run_id),
            ("label", results.plan.label),
            ("plan", f"{results.plan.name} {results.plan.version}"),
            ("verdict", results.decision.verdict),
        ):
            _sub(properties, "property", name=name, value=value)
        for item in items:
            _testcase(element, item)
    ET.indent(root)
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml + b"\n"
