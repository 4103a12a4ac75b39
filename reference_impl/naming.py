"""The national identifier systems (SPEC sections 3 and 4): the OIDs every layer names things by."""

NATIONAL_ID = "urn:oid:1.3.182.4.4"  # the matricule: the national identification number of a person
PLATFORM_ID = "urn:oid:1.3.182.2.4.2"  # the id the patient index (MPI) assigns to a person
LOCAL_ID_PREFIX = PLATFORM_ID + "."  # + <n>: the local patient ids of the institution with directory code <n>
PRACTITIONER_ID = "urn:oid:1.3.182.3.1"  # a health professional's code in the provider directory
ORGANIZATION_ID = "urn:oid:1.3.182.3.2"  # an institution's code in the provider directory
