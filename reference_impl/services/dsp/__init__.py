"""Shared care record (DSP), SPEC section 5: the MHD document exchange as a national service.

Provide (ITI-65) is a transaction Bundle of a SubmissionSet ``List``, ``DocumentReference``s and
``Binary``s: atomic as every transaction, with the descriptor's rules on each DocumentReference
(``doctypes.py``: typed by the shipped CodeSystem ``urn:oid:1.3.182.6.1``; ``provide.py``: an active
Patient as subject, identifiers resolved, usable attachments, ``current`` on provide) and replacement
as their follow-up (``replace.py``). Find (ITI-67) is the generic DocumentReference search, retrieve
(ITI-68) the generic Binary read (raw content in its own media type). ``demo.py``: documents of every
type for the demo patients.
"""

from __future__ import annotations

from reference_impl.faults import declare
from reference_impl.services.descriptor import Service
from reference_impl.services.dsp import access, controls, doctypes, provide, replace

FIND_IGNORES_STATUS = declare(
    "find-ignores-status",
    "DocumentReference?status= is ignored: superseded documents are found as if current (MHD ITI-67)",
    ("dsp@9",),
    ignores=("DocumentReference", "status"),
)

SERVICE = Service(
    "dsp",
    "Shared care record (DSP, MHD)",
    checks={
        "DocumentReference": (doctypes.check_type, provide.check_descriptor, controls.check_document_write),
        "Consent": (controls.check_record_consent,),
        "CareTeam": (controls.check_care_team,),
    },
    followers={
        "DocumentReference": (replace.supersede_replaced,),
        "Consent": (access.forget_record_decisions,),
        "CareTeam": (access.forget_record_decisions,),
    },
    access_rules=(access.dsp_access,),
    owners={"Binary": access.binary_owners},
    judged_types=("DocumentReference", "Binary", "List"),
    terminology=(doctypes.CODE_SYSTEM_FILE,),
    demo_data=controls.demo_record,
)
