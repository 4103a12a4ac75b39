"""The client faults: each switches ONE behaviour of the reference client to a wrong one."""

from __future__ import annotations

from dataclasses import dataclass

# The client labels' catalogues and the SPEC section whose client side each covers.
SPEC_SECTIONS = {"smartclient": "SPEC §2", "fhirclient": "SPEC §1", "mpi": "SPEC §3", "dsp": "SPEC §5"}


@dataclass(frozen=True)
class Fault:
    description: str
    breaks: str  # the catalogue requirement (suites/requirements/*client*.yaml) it violates

    @property
    def rule(self) -> str:
        return f"{self.breaks}, {SPEC_SECTIONS[self.breaks.split('@')[0]]}"


FAULTS: dict[str, Fault] = {
    "pkce-plain": Fault("authorization request with code_challenge_method=plain", "smartclient@2"),
    "verifier-reused": Fault("one constant PKCE verifier for every flow", "smartclient@3"),
    "state-missing": Fault("authorization request without a state parameter", "smartclient@4"),
    "redirect-uri-extra-query": Fault("redirect_uri is the registered one plus an extra query", "smartclient@5"),
    "jti-reused": Fault("every client assertion carries the same jti", "smartclient@7"),
    "assertion-exp-1h": Fault("client assertions expire an hour after they are made", "smartclient@7"),
    "refresh-reused": Fault("the second refresh sends the first, already rotated, refresh token", "smartclient@8"),
    "token-in-query": Fault("access token sent as ?access_token= instead of the Authorization header", "smartclient@9"),
    "retry-storm-after-401": Fault("after 401 invalid_token, retries with the same token in a loop", "smartclient@10"),
    "json-content-type": Fault("request bodies sent as Content-Type: application/json", "fhirclient@1"),
    "no-if-match": Fault("updates sent without If-Match", "fhirclient@2"),
    "page-urls-built": Fault("pages fetched with hand-built _getpagesoffset URLs, not the next links", "fhirclient@4"),
    "retry-after-ignored": Fault("after 503/429, retries at once whatever Retry-After says", "fhirclient@5"),
    "source-wrong-local-system": Fault(
        "feeds every record under the first site's local system (1001), whatever its institution", "mpi@60"
    ),
    "source-invalid-matricule": Fault("feeds matricules with a wrong Verhoeff check digit", "mpi@61"),
    "source-no-birthdate": Fault("feeds Patients without their birthDate", "mpi@62"),
    "source-posts-duplicates": Fault("sends an update of a person already fed as a new POST Patient", "mpi@63"),
    "source-invents-platform-id": Fault("feeds Patients with a platform id of its own making", "mpi@64"),
    "consumer-pix-without-system": Fault("PIXm sourceIdentifier without its system (the value alone)", "mpi@70"),
    "consumer-element-as-parameter": Fault("PDQm searches birthDate= (the element) instead of birthdate=", "mpi@71"),
    "consumer-fishing-search": Fault("fetches every patient (Patient?_count=1000) and filters them itself", "mpi@72"),
    "consumer-ignores-merge": Fault("keeps using a patient merged away instead of the one replacing it", "mpi@73"),
    "source-wrong-media-type": Fault("labels the PDF documents it publishes text/plain", "dsp@64"),
    "source-duplicates-corrections": Fault(
        "publishes a corrected document as a new one, without relatesTo replaces", "dsp@65"
    ),
    "consumer-no-care-relationship": Fault(
        "reads a patient's documents without declaring a care relationship", "dsp@71"
    ),
    "consumer-retries-403": Fault("sends a request refused with 403 again, up to 3 times, as if transient", "dsp@73"),
}


class UnknownFault(ValueError):
    pass


def parse_faults(text: str) -> frozenset[str]:
    """The faults named in a comma-separated list; an unknown name raises ``UnknownFault``."""
    names = {name.strip() for name in text.split(",") if name.strip()}
    unknown = sorted(names - FAULTS.keys())
    if unknown:
        raise UnknownFault(f"unknown fault: {', '.join(unknown)}")
    return frozenset(names)


def fault_list() -> str:
    width = max(map(len, FAULTS))
    return "\n".join(f"{name:<{width}}  {f.description} (breaks {f.rule})" for name, f in FAULTS.items())
