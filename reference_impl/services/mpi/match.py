"""Patient matching, IHE ITI-119: ``POST Patient/$match`` (FHIR's Patient $match operation).

The caller sends a Patient (``resource``), optionally ``onlyCertainMatches`` and ``count``, and gets a
searchset of stored Patients, best first, each graded by ``matching.py`` (``search.score`` and the
match-grade extension). Candidates are found in SQL through the search index, never by reading every
patient: the records sharing one of the probe's identifiers, those born on a day the model could match
(``matching.date_variants``), and those whose family and given names start like the probe's (either
way round). Only those are scored. Retired (merged-away) records are never answered.

Matching searches the whole index, so a patient token may not use it: a patient could fish for other
people's records with made-up demographics (403 before the body is even read).
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, and_, or_, select

from reference_impl.auth.policy import Access, forbidden
from reference_impl.faults import declare
from reference_impl.fhir.dates import InvalidDate, parse_range
from reference_impl.fhir.errors import invalid
from reference_impl.fhir.indexing import normalize
from reference_impl.fhir.validation import check_resource, parse_json
from reference_impl.naming import LOCAL_ID_PREFIX, NATIONAL_ID, PLATFORM_ID
from reference_impl.rest import negotiation
from reference_impl.rest.handler import Context, FhirResponse, Operation
from reference_impl.rest.searching import make_bundle
from reference_impl.services.mpi.matching import MATCH_GRADE, Demographics, Grade, Match, score
from reference_impl.services.mpi.similarity import DateLevel, Level, date_variants
from reference_impl.store import resources as store
from reference_impl.store.resources import StoredResource
from reference_impl.store.schema import idx_date, idx_string, idx_token

TWINS_CERTAIN = declare(
    "match-twins-certain",
    "$match grades a record certain when family, birth date and address agree: twins become one person",
    ("mpi@43",),
)
CERTAIN_WITHOUT_IDENTIFIER = declare(
    "match-certain-without-identifier",
    "$match grades a record certain on equal names and birth date alone, without an agreeing matricule or platform id",
    ("mpi@42",),
)
NO_GRADE = declare("match-no-grade", "$match answers its candidates without the match-grade extension", ("mpi@40",))
DEFINITION = "http://hl7.org/fhir/OperationDefinition/Patient-match"
DEFAULT_COUNT, MAX_COUNT = 10, 100
PER_BLOCK = 200  # candidates one SQL block may bring: a family prefix is shared by hundreds at most
FAMILY_PREFIX, GIVEN_PREFIX = 3, 1  # characters of the folded names a candidate must share with the probe


def match(ctx: Context) -> FhirResponse:
    access = ctx.policy.decide(ctx.access.principal, "search-type", "Patient")
    if access.compartment_patient is not None:  # before the body: a patient learns nothing of other records
        raise forbidden("patient matching searches every record: it is not open to patient tokens", "access_denied")
    negotiation.require_body_type(ctx.request, negotiation.FHIR_JSON_TYPES, "FHIR JSON (application/fhir+json)")
    parameters = parse_json(ctx.request.body, ctx.settings.max_json_depth)
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise invalid("$match takes a Parameters resource", ["Parameters"], code="structure")
    probe = _probe(parameters)
    only_certain = _only_certain(parameters)
    count = _count(parameters)
    matches = ranked(ctx, access, probe)
    if only_certain:
        matches = _one_per_person([(r, m) for r, m in matches if m.grade is Grade.CERTAIN])
    matches = matches[:count]
    entries = [_entry(ctx, stored, found) for stored, found in matches]
    links = [{"relation": "self", "url": ctx.url("Patient", "$match")}]
    touched = tuple(stored for stored, _ in matches)
    return FhirResponse(200, make_bundle("searchset", entries, links, len(entries)), touched=touched)


def ranked(ctx: Context, access: Access, probe: dict[str, Any]) -> list[tuple[StoredResource, Match]]:
    """The active records the caller may read that match ``probe`` at least as possible, best first."""
    wanted = Demographics.of(probe)
    found: list[tuple[StoredResource, Match]] = []
    for stored in candidates(ctx.conn, probe, wanted):
        patient = stored.parsed()
        if patient.get("active") is False or not ctx.policy.permits(access, "search-type", patient):
            continue
        graded = score(wanted, Demographics.of(patient))
        if graded is not None:
            found.append((stored, _with_faults(ctx, graded)))
    found.sort(key=lambda pair: (-pair[1].grade, -pair[1].score, pair[0].id))
    return found


def certain_matches(ctx: Context, patient: dict[str, Any]) -> list[StoredResource]:
    """The active stored records that are certain matches of ``patient`` (the feed links them), best first."""
    access = ctx.policy.decide(ctx.access.principal, "search-type", "Patient")
    return [stored for stored, found in ranked(ctx, access, patient) if found.grade is Grade.CERTAIN]


def _with_faults(ctx: Context, found: Match) -> Match:
    evidence = found.evidence
    names_and_birth = evidence.family is Level.EXACT and evidence.birth is DateLevel.EXACT
    if ctx.faults.on(TWINS_CERTAIN) and names_and_birth and evidence.address:
        return Match(Grade.CERTAIN, max(found.score, 0.95), evidence)
    if ctx.faults.on(CERTAIN_WITHOUT_IDENTIFIER) and names_and_birth and evidence.given is Level.EXACT:
        return Match(Grade.CERTAIN, max(found.score, 0.95), evidence)
    return found


def _probe(parameters: dict[str, Any]) -> dict[str, Any]:
    given = _parameters(parameters, "resource")
    if len(given) != 1 or not isinstance(given[0].get("resource"), dict):
        raise invalid("$match needs exactly one 'resource' parameter holding a Patient", ["resource"], code="required")
    resource: dict[str, Any] = given[0]["resource"]
    if resource.get("resourceType") != "Patient":
        raise invalid(f"$match matches Patients, not {resource.get('resourceType')!r}", ["resource"])
    return check_resource(resource)


def _only_certain(parameters: dict[str, Any]) -> bool:
    given = _parameters(parameters, "onlyCertainMatches")
    if not given:
        return False
    value = given[0].get("valueBoolean")
    if len(given) != 1 or not isinstance(value, bool):
        raise invalid("'onlyCertainMatches' is one valueBoolean", ["onlyCertainMatches"])
    return value


def _count(parameters: dict[str, Any]) -> int:
    given = _parameters(parameters, "count")
    if not given:
        return DEFAULT_COUNT
    value = given[0].get("valueInteger")
    if len(given) != 1 or isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid("'count' is one valueInteger of at least 1", ["count"])
    return min(value, MAX_COUNT)


def _parameters(parameters: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [p for p in parameters.get("parameter") or () if isinstance(p, dict) and p.get("name") == name]


def _one_per_person(matches: list[tuple[StoredResource, Match]]) -> list[tuple[StoredResource, Match]]:
    """The best record of each person: records sharing a platform id or a matricule are one person's."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for stored, found in matches:
        demographics = Demographics.of(stored.parsed())
        person = {(s, v) for s in (PLATFORM_ID, NATIONAL_ID) for v in demographics.values_of(s)}
        if not person & seen:
            kept.append((stored, found))
        seen |= person or {("Patient", stored.id)}
    return kept


def _entry(ctx: Context, stored: StoredResource, found: Match) -> dict[str, Any]:
    search: dict[str, Any] = {"mode": "match", "score": found.score}
    if not ctx.faults.on(NO_GRADE):
        search["extension"] = [{"url": MATCH_GRADE, "valueCode": found.grade.code}]
    return {
        "fullUrl": ctx.url("Patient", stored.id),
        "resource": orjson.Fragment(stored.content or "{}"),
        "search": search,
    }


# --- candidate selection (blocking) in SQL over the search index -------------------------------


def candidates(conn: Connection, probe: dict[str, Any], wanted: Demographics) -> list[StoredResource]:
    """Current Patients sharing an identifier, a birth day variant or name prefixes with the probe."""
    ids: dict[str, None] = {}
    for query in _blocks(probe, wanted):
        ids.update((row[0], None) for row in conn.execute(query.limit(PER_BLOCK)))
    return store.many(conn, [("Patient", res_id) for res_id in ids])


def _blocks(probe: dict[str, Any], wanted: Demographics) -> list[Any]:
    blocks = []
    person_ids = [
        (s, v) for s, v in wanted.identifiers if s in (NATIONAL_ID, PLATFORM_ID) or s.startswith(LOCAL_ID_PREFIX)
    ]
    if person_ids:
        t = idx_token.c
        blocks.append(
            select(t.res_id).where(
                t.res_type == "Patient",
                t.param == "identifier",
                or_(*(and_(t.code == v, t.system == s) for s, v in person_ids)),
            )
        )
    days = _day_starts(date_variants(wanted.birth)) if wanted.birth else []
    if days:
        d = idx_date.c
        blocks.append(select(d.res_id).where(d.res_type == "Patient", d.param == "birthdate", d.low.in_(days)))
    for family, given in _name_pairs(probe):
        blocks.append(_by_names(family, given))
        blocks.append(_by_names(given, family))  # the probe's names swapped
    return blocks


def _day_starts(days: list[str]) -> list[int]:
    starts = []
    for day in days:
        try:
            starts.append(parse_range(day)[0])
        except InvalidDate:
            continue
    return starts


def _name_pairs(probe: dict[str, Any]) -> set[tuple[str, str]]:
    """(family prefix, given prefix) of each of the probe's names, folded as the index folds them."""
    pairs: set[tuple[str, str]] = set()
    for name in probe.get("name") or ():
        if not isinstance(name, dict) or not isinstance(name.get("family"), str):
            continue
        family = normalize(name["family"])[:FAMILY_PREFIX]
        givens = [normalize(g)[:GIVEN_PREFIX] for g in name.get("given") or () if isinstance(g, str)]
        pairs.update((family, g) for g in givens if family and g)
    return pairs


def _by_names(family: str, given: str) -> Any:
    """Patients whose family name starts with ``family`` and a given name with ``given``."""
    f, g = idx_string.alias("family"), idx_string.alias("given")
    return (
        select(f.c.res_id)
        .join(g, and_(g.c.res_type == "Patient", g.c.res_id == f.c.res_id, g.c.param == "given"))
        .where(
            f.c.res_type == "Patient",
            f.c.param == "family",
            _starts_with(f.c.value_norm, family),
            _starts_with(g.c.value_norm, given),
        )
        .distinct()
    )


def _starts_with(column: Any, prefix: str) -> Any:
    """``column`` starts with ``prefix``, as a range the btree index answers (both backends compare by code point)."""
    return and_(column >= prefix, column < prefix[:-1] + chr(ord(prefix[-1]) + 1))


OPERATION = Operation("match", match, "Patient", definition=DEFINITION)
