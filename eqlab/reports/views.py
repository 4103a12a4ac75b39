"""How the reports present a run: words and symbols for verdicts and statuses, and groupings.

Everything here arranges what ``RunResults`` already says (STYLE #6); nothing decides anything.
The verdict, each requirement's status and each SLO's result are read, never recomputed.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field

from eqlab.results import Decision, ItemResult, RequirementResult, RuleStep, RunResults, Verdict

GRANTING: tuple[Verdict, ...] = ("granted", "granted-with-reservations")


@dataclass(frozen=True)
class VerdictView:
    text: str
    symbol: str  # a shape as well as a colour, so the verdict never relies on colour alone
    sentence: str


VERDICTS: dict[str, VerdictView] = {
    "granted": VerdictView("Granted", "✔", "The label is granted."),
    "granted-with-reservations": VerdictView(
        "Granted with reservations", "✔", "The label is granted; recommended (SHOULD/MAY) requirements failed."
    ),
    "refused": VerdictView("Refused", "✖", "The label is refused."),
    "inconclusive": VerdictView(
        "Inconclusive", "?", "No decision: the run could not establish whether the requirements are met."
    ),
}

# Display order: worst first, as a vendor reads them.
STATUSES: tuple[str, ...] = ("fail", "error", "not-tested", "skip", "pass", "attested")
_LABELS = {
    "pass": "Pass",
    "fail": "Fail",
    "error": "Error",
    "skip": "Skipped",
    "not-tested": "Not tested",
    "attested": "Attested",
}
_SYMBOLS = {"pass": "✔", "fail": "✖", "error": "⚠", "skip": "–", "not-tested": "○", "attested": "✎"}


def status_label(status: str) -> str:
    return _LABELS.get(status, status)


def status_symbol(status: str) -> str:
    return _SYMBOLS.get(status, "•")


def tool_text(tool: dict[str, str]) -> str:
    """``eqlab 0.1.0`` and any further facts the run recorded about the tool, in a fixed order."""
    head = " ".join(v for v in (tool.get("name", "eqlab"), tool.get("version")) if v)
    rest = [f"{key} {value}" for key, value in sorted(tool.items()) if key not in ("name", "version")]
    return "; ".join([head, *rest])


def grants_certificate(results: RunResults) -> bool:
    return results.decision.verdict in GRANTING


def ordered_reasons(decision: Decision) -> list[RuleStep]:
    """The rule trace with the triggered steps (the top reasons) first, otherwise as recorded."""
    return sorted(decision.reasons, key=lambda step: step.outcome != "triggered")


EXAMPLES_SHOWN = 3  # requirement IDs named with each reason; the rest are counted


@dataclass(frozen=True)
class Why:
    """One reason a rule triggered, in a sentence: the requirements that share it, a few named."""

    count: int
    reason: str
    examples: list[str]

    @property
    def sentence(self) -> str:
        more = f" and {self.count - len(self.examples)} more" if self.count > len(self.examples) else ""
        what = "requirement" if self.count == 1 else "requirements"
        return f"{self.count} {what} ({', '.join(self.examples)}{more}): {self.reason}"


def why(results: RunResults, step: RuleStep) -> list[Why]:
    """The requirements of a triggered rule grouped by why they are there (their result's reason),
    largest group first: "46 requirements (auth@1, auth@2, auth@3 and 43 more): variable … is not set"."""
    by_id = {r.id: r for r in results.requirements}
    groups: dict[str, list[str]] = {}
    for rid in step.requirements:
        recorded = by_id[rid].reason if rid in by_id else None
        groups.setdefault(_first_line(recorded or "no reason recorded"), []).append(rid)
    ranked = sorted(groups.items(), key=lambda group: -len(group[1]))
    return [Why(len(ids), reason, ids[:EXAMPLES_SHOWN]) for reason, ids in ranked]


def _first_line(text: str, limit: int = 240) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= limit else line[: limit - 1] + "…"


def reservations(results: RunResults) -> list[RequirementResult]:
    """The requirements a granted-with-reservations verdict was given despite.

    They are the requirements of the decision's triggered steps: with that verdict no refusing or
    inconclusive rule triggered, so whatever did trigger is a reservation.
    """
    if results.decision.verdict != "granted-with-reservations":
        return []
    by_id = {r.id: r for r in results.requirements}
    seen: dict[str, RequirementResult] = {}
    for step in results.decision.reasons:
        if step.outcome == "triggered":
            for rid in step.requirements:
                if rid in by_id:
                    seen.setdefault(rid, by_id[rid])
    return list(seen.values())


@dataclass(frozen=True)
class Tally:
    """Counts per status for one group (a service, a suite)."""

    name: str
    counts: dict[str, int]
    total: int

    def get(self, status: str) -> int:
        return self.counts.get(status, 0)


def _tallies(groups: dict[str, Counter[str]]) -> list[Tally]:
    return [
        Tally(name, {s: groups[name][s] for s in STATUSES if groups[name][s]}, sum(groups[name].values()))
        for name in sorted(groups)
    ]


def requirements_by_service(results: RunResults) -> list[Tally]:
    groups: dict[str, Counter[str]] = {}
    for requirement in results.requirements:
        groups.setdefault(requirement.service, Counter())[requirement.status] += 1
    return _tallies(groups)


def items_by_suite(results: RunResults) -> list[Tally]:
    """Checks per suite and outcome; the load suite's checks are its SLOs (pass, fail, or not tested
    when they could not be measured)."""
    groups: dict[str, Counter[str]] = {suite: Counter() for suite in results.suites}
    for item in results.items:
        groups.setdefault(item.suite, Counter())[item.outcome] += 1
    for slo in results.slos:
        groups.setdefault("load", Counter())[{True: "pass", False: "fail", None: "not-tested"}[slo.passed]] += 1
    return _tallies(groups)


def carried_forward(results: RunResults) -> dict[str, int]:
    """How many results each earlier run lent this one (not re-measured here), by run ID."""
    return dict(sorted(Counter(i.carried_forward_from for i in results.items if i.carried_forward_from).items()))


def suite_order(results: RunResults) -> list[str]:
    """The plan's suites in its order, then any other suite an item names."""
    extra = sorted({item.suite for item in results.items} - set(results.suites))
    return [*dict.fromkeys(results.suites), *extra]


@dataclass(frozen=True)
class Entry:
    """One check under one requirement of the detailed report.

    A check verifying several requirements is shown in full (with its evidence) once, under the
    first of them, and as a short entry linking there under the others: evidence is what makes
    large reports heavy.
    """

    item: ItemResult | None
    item_id: str
    anchor: str
    full: bool
    home: str | None = None  # the requirement the full entry is under, for short entries


@dataclass(frozen=True)
class RequirementView:
    requirement: RequirementResult
    anchor: str
    entries: list[Entry]
    suites: list[str]


@dataclass(frozen=True)
class DetailedView:
    requirements: list[RequirementView]
    unlinked: list[Entry]  # checks no listed requirement names
    statuses: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    suites: list[str] = field(default_factory=list)


def requirement_anchor(requirement_id: str) -> str:
    return f"req-{requirement_id}"


def detailed_view(results: RunResults) -> DetailedView:
    # Item IDs are pytest node IDs and should be unique; should one repeat, every copy is shown.
    items: dict[str, list[tuple[int, ItemResult]]] = {}
    for index, item in enumerate(results.items):
        items.setdefault(item.id, []).append((index, item))
    homes: dict[str, str] = {}
    views: list[RequirementView] = []
    for requirement in results.requirements:
        entries = []
        for item_id in dict.fromkeys(requirement.items):
            if item_id not in items:
                entries.append(Entry(None, item_id, "", full=False))
                continue
            home = homes.setdefault(item_id, requirement.id)
            for index, item in items[item_id]:
                full = home == requirement.id
                entries.append(Entry(item, item_id, f"item-{index}", full=full, home=None if full else home))
        suites = sorted({e.item.suite for e in entries if e.item is not None})
        views.append(RequirementView(requirement, requirement_anchor(requirement.id), entries, suites))
    unlinked = [
        Entry(item, item_id, f"item-{index}", full=True)
        for item_id, copies in items.items()
        if item_id not in homes
        for index, item in copies
    ]
    present = {r.status for r in results.requirements}
    return DetailedView(
        requirements=views,
        unlinked=unlinked,
        statuses=[s for s in STATUSES if s in present],
        services=sorted({r.service for r in results.requirements}),
        suites=suite_order(results),
    )


BODY_SHOWN_CHARS = 1024  # of a body in detailed.html; results.json keeps the whole excerpt, evidence/ the body
JSON_OPEN_LINES = 12  # a pretty-printed JSON body longer than this starts folded


@dataclass(frozen=True)
class BodyView:
    """A body as detailed.html shows it: JSON pretty-printed, long ones folded, everything cut short."""

    text: str
    is_json: bool
    cut: bool  # only the start is shown
    lines: int

    @property
    def folded(self) -> bool:
        return self.lines > JSON_OPEN_LINES


def _pretty_json(document: object) -> str:
    text = json.dumps(document, indent=2, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (\ud800) a fuzzed system sent: keep it escaped
        return json.dumps(document, indent=2)
    return text


def body_view(excerpt: str, truncated: bool) -> BodyView:
    text, is_json = excerpt, False
    if not truncated:
        with contextlib.suppress(ValueError):  # not JSON: shown as it came
            text, is_json = _pretty_json(json.loads(excerpt)), True
    cut = len(text) > BODY_SHOWN_CHARS
    shown = text[:BODY_SHOWN_CHARS] + ("\n…" if cut else "")
    return BodyView(shown, is_json, cut or truncated, shown.count("\n") + 1)
