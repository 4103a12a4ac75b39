"""The DSP's document types (SPEC section 5): the shipped CodeSystem ``urn:oid:1.3.182.6.1``, and the
write check that every DocumentReference is typed by it.

The CodeSystem JSON is the one source of the codes: the platform serves it (``Service.terminology``)
and this check reads the same file, so the codes served and the codes accepted cannot drift apart.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from reference_impl.faults import declare
from reference_impl.rest.handler import Context
from reference_impl.services.dsp.refusal import refused

CODE_SYSTEM_FILE = Path(__file__).with_name("document-types.json")
SYSTEM = "urn:oid:1.3.182.6.1"
TYPE_UNCHECKED = declare(
    "dsp-type-unchecked", "DocumentReferences are stored whatever their type: unknown DSP codes pass", ("dsp@2",)
)


@cache
def document_types() -> dict[str, str]:
    """code -> French display, as the shipped CodeSystem lists them."""
    code_system = json.loads(CODE_SYSTEM_FILE.read_text(encoding="utf-8"))
    return {concept["code"]: concept["display"] for concept in code_system["concept"]}


def check_type(ctx: Context, document: dict[str, Any]) -> None:
    """A DocumentReference is typed by a DSP document type: 422 on DocumentReference.type otherwise."""
    if ctx.faults.on(TYPE_UNCHECKED):
        return
    codings = (document.get("type") or {}).get("coding") or []
    ours = [c for c in codings if isinstance(c, dict) and c.get("system") == SYSTEM]
    if not ours:
        raise refused(
            f"a DSP document is typed by a code of {SYSTEM} in type.coding", "required", "DocumentReference.type"
        )
    unknown = [str(c.get("code")) for c in ours if c.get("code") not in document_types()]
    if unknown:
        raise refused(
            f"{', '.join(unknown)} is not a DSP document type of {SYSTEM} (known: {', '.join(document_types())})",
            "code-invalid",
            "DocumentReference.type",
        )
