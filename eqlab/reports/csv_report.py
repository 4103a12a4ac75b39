"""``results.csv``: one row per requirement, for spreadsheets and traceability matrices.

Values are those of ``RunResults`` (an empty cell for "none"); rows follow the order of
``RunResults.requirements``; line ends are CRLF as RFC 4180 says. A reason can quote the system
under test, so a cell that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab,
carriage return) is prefixed with an apostrophe (OWASP "CSV injection"), and control characters
are written out (``\x1b``).
"""

from __future__ import annotations

import csv
import io

from eqlab.evidence.redaction import printable
from eqlab.results import RunResults

COLUMNS = ("id", "level", "service", "status", "reason", "item_count", "items", "text")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: str) -> str:
    value = printable(value)
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def render(results: RunResults) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for requirement in results.requirements:
        writer.writerow(
            (
                requirement.id,
                requirement.level,
                requirement.service,
                requirement.status,
                cell(requirement.reason or ""),
                len(requirement.items),
                ";".join(requirement.items),
                cell(requirement.text),
            )
        )
    return buffer.getvalue().encode("utf-8")
