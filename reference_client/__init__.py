"""The reference client: a small, well-behaved SMART and FHIR client of the platform, with faults;
also an identity source and consumer of its patient index (``mpi``).

An independent program (``python -m reference_client <scenario>``) that talks to a platform only
over HTTP: it proves the lab's client plans grant a correct client, and each switchable fault
(``reference_client.faults``) proves a client check refuses one wrong behaviour.
"""
