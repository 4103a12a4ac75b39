"""The Jinja2 environment every HTML report and the certificate are rendered with.

Autoescaping is on for every template whatever its name: each string of a run may come from the
system under test (bodies, headers, messages), so nothing reaches markup unescaped unless a
writer marks it safe here (static files of ``reports/templates`` and JSON for data blocks).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from eqlab.reports import views

# The templates are data of the project tree, beside the suites (see eqlab/paths.py): the lab is
# used from a checkout, like its plans and catalogue.
TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "reports" / "templates"

# Inside <script>, only "<" can start an end tag or comment ("</script>", "<!--"); U+2028/2029 end
# lines in old JavaScript parsers. "&" and ">" are escaped too so the text is inert in any context.
_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_SCRIPT_UNSAFE = re.compile("[<>&\u2028\u2029]")


def script_json(value: Any) -> Markup:
    """``value`` as JSON that can sit inside a ``<script>`` element without ending it."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return Markup(_SCRIPT_UNSAFE.sub(lambda m: _SCRIPT_ESCAPES[m.group()], text))


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def visible(value: Any) -> Any:
    """Control characters of plain text as ``\\xNN``: visible to the reader, harmless to the parser.

    Applied to every ``{{ value }}`` before escaping; markup the writers vouch for is left alone.
    """
    if isinstance(value, str) and not isinstance(value, Markup):
        return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
    return value


def static(name: str) -> Markup:
    """A file of the templates folder (CSS, JavaScript), trusted, to inline in a report."""
    return Markup((TEMPLATES_DIR / name).read_text(encoding="utf-8"))


def csp_source(text: str) -> str:
    """The Content-Security-Policy hash source allowing exactly this inline script or style."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def when(value: str | None) -> str:
    """A run timestamp as people read it (``2026-11-23 12:00:03 UTC``); unparsable text as is."""
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    offset = moment.utcoffset()
    if offset is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if offset == timedelta(0) else "%Y-%m-%d %H:%M:%S %z")


def milliseconds(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} ms"


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 60 else f"{int(value // 60)} min {value % 60:04.1f} s"


def number(value: float | None) -> str:
    """An SLO figure: no float noise, no scientific notation for everyday magnitudes."""
    if value is None:
        return "—"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3f}".rstrip("0").rstrip(".")


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=visible,
    )
    env.filters.update(
        script_json=script_json,
        when=when,
        ms=milliseconds,
        seconds=seconds,
        number=number,
        status_label=views.status_label,
        status_symbol=views.status_symbol,
        tool=views.tool_text,
        body_view=lambda message: views.body_view(message.body_excerpt, message.truncated),
    )
    env.globals.update(verdicts=views.VERDICTS)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)
