"""Geometry of the inline SVG bar chart of the summary (requirements per service, by status).

Only numbers and names are computed here; ``_chart.svg.j2`` draws them, so every label passes
through the autoescaping template. Coordinates are formatted strings: identical results give
identical bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from eqlab.reports.views import STATUSES, Tally, status_label

WIDTH = 720
LABEL_WIDTH = 150
BAR_WIDTH = 420
ROW_HEIGHT = 30
BAR_HEIGHT = 20
TOP = 10
LEGEND_HEIGHT = 34

# Colour plus a pattern for the two problem statuses, and the legend and table say it in words.
# (fill, pattern id or "", outline)
PAINT: dict[str, tuple[str, str, str]] = {
    "fail": ("#b3261e", "hatch-fail", "#7f1b15"),
    "error": ("#c77700", "hatch-error", "#8a5300"),
    "not-tested": ("#ffffff", "", "#5f6b76"),
    "skip": ("#9aa4ad", "", "#5f6b76"),
    "pass": ("#1b7f4c", "", "#125636"),
    "attested": ("#3c78b4", "", "#2a557f"),
}


def _f(value: float) -> str:
    return f"{value:.1f}"


@dataclass(frozen=True)
class Segment:
    x: str
    width: str
    fill: str
    pattern: str
    stroke: str
    title: str


@dataclass(frozen=True)
class Row:
    label: str
    label_y: str
    bar_y: str
    segments: list[Segment]
    total_x: str
    total: str


@dataclass(frozen=True)
class LegendEntry:
    x: str
    text_x: str
    fill: str
    pattern: str
    stroke: str
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    rows: list[Row]
    legend: list[LegendEntry]
    legend_y: str
    legend_text_y: str
    label_x: str
    bar_height: int
    description: str


def status_chart(tallies: list[Tally]) -> Chart:
    scale = BAR_WIDTH / max([t.total for t in tallies] + [1])
    rows = []
    for index, tally in enumerate(tallies):
        top = TOP + index * ROW_HEIGHT
        x = float(LABEL_WIDTH)
        segments = []
        for status in STATUSES:
            count = tally.get(status)
            if not count:
                continue
            fill, pattern, stroke = PAINT[status]
            width = count * scale
            title = f"{tally.name}: {count} {status_label(status).lower()}"
            segments.append(Segment(_f(x), _f(width), fill, pattern, stroke, title))
            x += width
        total = f"{tally.total} requirement{'s' if tally.total != 1 else ''}"
        rows.append(Row(tally.name, _f(top + BAR_HEIGHT * 0.7), _f(top), segments, _f(x + 6), total))
    present = [s for s in STATUSES if any(t.get(s) for t in tallies)]
    legend = []
    for index, status in enumerate(present):
        fill, pattern, stroke = PAINT[status]
        x = LABEL_WIDTH + index * 95
        legend.append(LegendEntry(_f(x), _f(x + 19), fill, pattern, stroke, status_label(status)))
    legend_y = TOP + len(tallies) * ROW_HEIGHT + 8
    parts = [
        f"{t.name}: " + ", ".join(f"{t.get(s)} {status_label(s).lower()}" for s in STATUSES if t.get(s))
        for t in tallies
    ]
    return Chart(
        width=WIDTH,
        height=legend_y + LEGEND_HEIGHT,
        rows=rows,
        legend=legend,
        legend_y=_f(legend_y),
        legend_text_y=_f(legend_y + 11.5),
        label_x=_f(LABEL_WIDTH - 8),
        bar_height=BAR_HEIGHT,
        description="Requirements per service by status. " + "; ".join(parts) + ".",
    )
