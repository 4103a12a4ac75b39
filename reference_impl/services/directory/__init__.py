"""Healthcare provider directory, SPEC section 4: mCSD (ITI-90) as a national service.

Read and search of Practitioner, PractitionerRole, Organization, Location, HealthcareService and
Endpoint, with ``_include``/``_revinclude`` between them, are the generic FHIR search (the practitioner
and organization codes are identifiers, the role's specialty a token). What the directory adds: only
active practitioners act. Its login rule refuses a user whose practitioner or role is inactive
(``activity.py``: at sign-in, code exchange and refresh); its write check refuses a resource naming
one as author, requester, performer, recorder or asserter (``acting.py``, for every type with such
elements).
"""

from __future__ import annotations

from reference_impl.faults import declare
from reference_impl.services.descriptor import Service
from reference_impl.services.directory import acting, activity
from reference_impl.services.directory.demo import demo_directory

SPECIALTY_SEARCH_IGNORED = declare(
    "specialty-search-ignored",
    "PractitionerRole?specialty= is ignored: every role matches",
    ("dir@3",),
    ignores=("PractitionerRole", "specialty"),
)

SERVICE = Service(
    "directory",
    "Healthcare provider directory (mCSD)",
    checks={type_name: (acting.check_actors,) for type_name in acting.acting_elements()},
    login_rules=(activity.may_sign_in,),
    demo_data=demo_directory,
)
