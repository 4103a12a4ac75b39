"""The JSON Schema of ``results.json``, committed as ``reports/results.schema.json``.

Regenerate it after changing ``eqlab/results.py``::

    python -m eqlab.reports.schema          # rewrite the file
    python -m eqlab.reports.schema --check  # exit 1 when the file is out of date
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from eqlab.results import RunResults

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "reports" / "results.schema.json"


def schema_text() -> str:
    return json.dumps(RunResults.model_json_schema(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    expected = schema_text()
    if args == ["--check"]:
        current = SCHEMA_PATH.read_text(encoding="utf-8") if SCHEMA_PATH.exists() else ""
        if current != expected:
            print(f"{SCHEMA_PATH} is out of date: run `python -m eqlab.reports.schema`", file=sys.stderr)
            return 1
        return 0
    if args:
        print("usage: python -m eqlab.reports.schema [--check]", file=sys.stderr)
        return 2
    SCHEMA_PATH.write_text(expected, encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
