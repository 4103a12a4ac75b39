"""Patient identity (MPI), SPEC section 3: the patient index as a national service.

On every Patient write: valid matricules, registered local id systems, the person's platform id
(``identity.py``; the feed ITI-104 is the generic conditional update plus these rules). Operations:
PIXm ``$ihe-pix`` (``pix.py``) and ``$merge`` (``merge.py``). PDQm is the generic Patient search.
"""

from __future__ import annotations

from reference_impl.services.descriptor import Service
from reference_impl.services.mpi import identity, match, merge, pix
from reference_impl.services.mpi.demo import demo_patients

SERVICE = Service(
    "mpi",
    "Patient identity (MPI)",
    operations=(
        pix.OPERATION,
        merge.OPERATION,
        match.OPERATION,
    ),
    checks={"Patient": (identity.check_identifiers, identity.link_person)},
    demo_data=demo_patients,
)
