"""Replacing a document (SPEC section 5, IHE MHD ITI-65 "replace"): the follow-up of a provided
DocumentReference whose ``relatesTo.code`` is ``replaces``.

The replaced document becomes ``superseded`` in the same database transaction as the new one is
stored, so a finder sees either the old document current or the new one, never both and never
neither. Only a current document of the same patient can be replaced: replacing an unknown,
already superseded or someone else's document is refused (422) and the whole provide rolls back.
"""

from __future__ import annotations

import re
from typing import Any

from reference_impl.faults import declare
from reference_impl.rest.handler import Context
from reference_impl.services.dsp.refusal import refused
from reference_impl.store import resources as store
from reference_impl.store.resources import StoredResource

OLD_LEFT_CURRENT = declare(
    "replace-leaves-old-current",
    "a replacing document is stored but the document it replaces stays current",
    ("dsp@17",),
)
_DOCUMENT_REFERENCE = re.compile(r"^(?:.*/)?DocumentReference/([A-Za-z0-9\-.]{1,64})$")


def supersede_replaced(ctx: Context, stored: StoredResource) -> None:
    """Mark superseded each document that a newly provided document replaces."""
    if stored.deleted or not _is_first_version(ctx, stored):
        return
    document = stored.parsed()
    for i, relation in enumerate(document.get("relatesTo") or ()):
        if relation.get("code") != "replaces":
            continue
        where = (f"DocumentReference.relatesTo[{i}].target",)
        old = _replaced(ctx, relation.get("target"), where)
        _check_replaceable(old, document, where)
        if not ctx.faults.on(OLD_LEFT_CURRENT):
            # Only the status changes: the rules the old document met when it was stored still hold, so
            # the services' checks are not asked again; their follow-ups see the new version.
            superseded = {**old.parsed(), "status": "superseded"}
            ctx.writes.after_write(ctx, store.save(ctx.conn, ctx.registry, superseded, old.id, old, "PUT"))


def _is_first_version(ctx: Context, stored: StoredResource) -> bool:
    """A provide: the resource's first version, or the first since it was deleted."""
    if stored.version_id == 1:
        return True
    before = store.version(ctx.conn, stored.type_name, stored.id, stored.version_id - 1)
    return before is None or before.deleted


def _replaced(ctx: Context, target: Any, where: tuple[str, ...]) -> StoredResource:
    reference = target.get("reference") if isinstance(target, dict) else None
    match = _DOCUMENT_REFERENCE.match(reference) if isinstance(reference, str) else None
    old = store.current(ctx.conn, "DocumentReference", match.group(1), for_update=True) if match else None
    if old is None or old.deleted:
        raise refused(
            f"the replaced document {reference or '(no reference)'} is not in the record", "not-found", *where
        )
    return old


def _check_replaceable(old: StoredResource, new: dict[str, Any], where: tuple[str, ...]) -> None:
    previous = old.parsed()
    if previous.get("status") != "current":
        raise refused(
            f"DocumentReference/{old.id} is {previous.get('status')}, not current: only a "
            "current document can be replaced",
            "business-rule",
            *where,
        )
    old_subject = (previous.get("subject") or {}).get("reference")
    if old_subject != (new.get("subject") or {}).get("reference"):
        raise refused(
            f"DocumentReference/{old.id} is a document of another patient ({old_subject})", "business-rule", *where
        )
