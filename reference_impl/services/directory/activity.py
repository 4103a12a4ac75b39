"""Who may act, as the directory knows it (SPEC section 4): only active practitioners.

A practitioner is inactive when its Practitioner says ``active: false``; a role is inactive when its
PractitionerRole says so or when the practitioner it is of is inactive. Resources the directory does
not hold (another server's, or none) are not this rule's to judge: their references are checked
elsewhere or not at all. The platform reads the directory in full here, whatever the caller may read.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection

from reference_impl.auth.registry import User
from reference_impl.faults import FaultSwitches, declare
from reference_impl.store import resources as store

INACTIVE_CAN_SIGN_IN = declare(
    "inactive-practitioner-can-sign-in",
    "a user whose Practitioner or PractitionerRole is inactive signs in and is issued tokens",
    ("dir@8", "dir@9"),
)
PRACTITIONER_TYPES = ("Practitioner", "PractitionerRole")
# "Practitioner/<id>" or "PractitionerRole/<id>", perhaps with "/_history/<version>" (FHIR's id syntax).
_LOCAL = re.compile(r"^(Practitioner|PractitionerRole)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?\Z")
ACT_ONLY_ACTIVE = "only active practitioners may act on the platform"


def local_practitioner(reference: str) -> tuple[str, str] | None:
    """(type, id) of a relative reference to a Practitioner or PractitionerRole, else None."""
    found = _LOCAL.match(reference)
    return (found.group(1), found.group(2)) if found else None


def inactivity(conn: Connection, type_name: str, res_id: str) -> str | None:
    """Why the Practitioner or PractitionerRole ``type_name/res_id`` may not act, or None."""
    resource = _current(conn, type_name, res_id)
    if resource is None:
        return None
    if resource.get("active") is False:
        return f"{type_name}/{res_id} is inactive in the provider directory"
    practitioner = (resource.get("practitioner") or {}).get("reference") if type_name == "PractitionerRole" else None
    found = local_practitioner(practitioner) if isinstance(practitioner, str) else None
    if found is not None and found[0] == "Practitioner":
        of = _current(conn, *found)
        if of is not None and of.get("active") is False:
            practitioner_ref = f"Practitioner/{found[1]}"
            return f"{type_name}/{res_id} is a role of {practitioner_ref}, which is inactive in the provider directory"
    return None


def _current(conn: Connection, type_name: str, res_id: str) -> dict[str, Any] | None:
    stored = store.current(conn, type_name, res_id)
    return stored.parsed() if stored is not None and stored.content is not None else None


def may_sign_in(conn: Connection, user: User, faults: FaultSwitches) -> str | None:
    """The login rule: a user whose fhirUser is an inactive practitioner or role may not act."""
    found = local_practitioner(user.fhir_user) if user.fhir_user else None
    if found is None or faults.on(INACTIVE_CAN_SIGN_IN):
        return None
    why = inactivity(conn, *found)
    return f"You cannot sign in: {why} ({ACT_ONLY_ACTIVE})." if why is not None else None
