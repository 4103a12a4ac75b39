"""What a search's criteria say about its matches whatever the store holds: whether they are few (one
patient's record, an exact identifier, ids, a birth date), so that they are gathered then sorted rather
than walked in time order (``few_matches``), and whether one plan then serves the search for any values,
so that PostgreSQL may plan it once (``planned_once``). ``search_sql`` builds the SQL accordingly and
``search_run`` runs it.
"""

from __future__ import annotations

from reference_impl.fhir.query import Criterion, HasCriterion, SearchRequest
from reference_impl.fhir.searchparams import registry
from reference_impl.store.schema import INDEX_TABLES

# The parameter types whose criteria a search planned once tests on each of its few matches: those whose
# table's only indexes lead with the type and the parameter, or the owner (the references' also lead with
# the target, which a generic plan could walk for each match over every row pointing at it).
TESTED_FOR_EACH_MATCH = frozenset(t for t in INDEX_TABLES if t != "reference")
ONE_DAY_US = 86_400_000_000


def within_one_record(request: SearchRequest) -> bool:
    """Whether a search of one type looks only into one patient's record: the caller's reach is a patient's
    compartment, or a criterion names one Patient by reference (``patient=<id>``, ``subject=Patient/<id>``)."""
    if request.type_name is None:
        return False
    if request.visibility.of(request.type_name, request.kind).patient is not None:
        return True
    return any(names_one_patient(c) for c in request.criteria)


def few_matches(request: SearchRequest) -> bool:
    """Whether a search's matches are few whatever the store holds, so that they are gathered, then sorted:
    it looks into one patient's record, or one of its criteria picks few (``picks_few``)."""
    if request.type_name is None:
        return False
    type_name = request.type_name
    return within_one_record(request) or any(
        isinstance(c, Criterion) and picks_few(type_name, c) for c in request.criteria
    )


def planned_once(request: SearchRequest) -> bool:
    """Whether one plan serves the search whatever its values, so that PostgreSQL may plan it once (a
    prepared statement's generic plan, ``driver.run_prepared``) rather than for each search: a criterion
    picks a few resources whatever the store holds (one patient's record by reference, an exact business
    identifier, ids, a birth date to the day), or the caller sees only one patient's record; each other
    criterion is a test of the search index's rows of the resource itself, made on each of those few
    (``SearchSql.where``).

    A generic plan knows no value: it must not be able to lead with a criterion that matches most of a type
    for one value and almost nothing for another (a status, a name, a date), as such a plan once walked
    every document for one patient's (``database.NEVER_BY_COUNT``). The criteria that pick few are each
    a lookup bounded by their values, whichever leads; the others, tested on each of their matches
    (``sql_shapes.exists_for_each_row``), cannot lead. Planning costs PostgreSQL more than running these:
    at 20,000 patients, an identifier's page 415-520 -> 125-135 µs of its CPU, ITI-67's (patient and
    status) 783-825 -> 375-408. Chains, ``_has``, the last-updated time and other references are planned
    for their values at every run.
    """
    if request.type_name is None:
        return False
    type_name = request.type_name
    reach = request.visibility.of(type_name, request.kind)
    if not reach.allowed:
        return False
    anchored = reach.patient is not None
    for c in request.criteria:
        if isinstance(c, Criterion) and picks_few(type_name, c):
            anchored = True
        elif not (isinstance(c, Criterion) and _tested_for_each_match(c)):
            return False
    return anchored


def _tested_for_each_match(criterion: Criterion) -> bool:
    """A criterion a search planned once can test on each of its few matches: the search index's rows of the
    resource itself, of a type whose lookups an unindexed parameter keeps out (``TESTED_FOR_EACH_MATCH``)."""
    param = criterion.param
    return param.type in TESTED_FOR_EACH_MATCH and not param.is_column and not criterion.chains


def names_one_patient(criterion: Criterion | HasCriterion) -> bool:
    """A reference criterion naming one Patient (``patient=<id>``, ``subject=Patient/<id>``)."""
    if not (
        isinstance(criterion, Criterion)
        and criterion.param.type == "reference"
        and criterion.modifier in (None, "Patient")
        and not criterion.chains
        and criterion.missing is None
        and len(criterion.values) == 1
    ):
        return False
    value = criterion.values[0]
    # A parameter named patient names Patients only (its FHIRPath: ``subject.where(resolve() is
    # Patient)``), whatever other targets its definition lists.
    names_patients = criterion.param.code == "patient" or criterion.param.targets == ("Patient",)
    return (value.ref_type == "Patient" or (value.ref_type is None and names_patients)) and value.system is None


def picks_few(type_name: str, criterion: Criterion) -> bool:
    """A criterion whose matches are few for any of its values: one patient's record, resources by id, by
    an exact business identifier (an Identifier's value, with or without its system), or people born on
    one day."""
    if names_one_patient(criterion):
        return True
    if criterion.modifier is not None or criterion.chains or criterion.missing is not None:
        return False
    if criterion.param.code == "_id" or _one_birth_day(criterion):
        return True
    return (
        criterion.param.type == "token"
        and all(v.code for v in criterion.values)
        and registry().selects_only(type_name, criterion.param, "Identifier")
    )


def _one_birth_day(criterion: Criterion) -> bool:
    """Birth dates to the day (or finer): the people born on any one day are few whatever the store holds,
    as a country's births of a day are (about 30 of the national dataset's million people), so a plan led
    by them suits every such value (PDQm: at 20,000 patients, its page was planned in 1.0 ms of
    PostgreSQL's CPU and run in 0.17). A year or a range of dates may match a large share of the people."""
    return (
        criterion.param.code == "birthdate"
        and criterion.param.type == "date"
        and all(value.prefix == "eq" and value.high - value.low <= ONE_DAY_US for value in criterion.values)
    )
