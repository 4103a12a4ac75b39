"""A national-shaped store on PostgreSQL in seconds, for checking query plans at scale.

Rows are generated inside PostgreSQL (``generate_series``), resources, history and the index rows
the search parameters of the national flows need, because building 200,000 resources through
``resources.save`` (one fhirpath evaluation and a dozen statements each) takes minutes. The index
rows are those ``SearchParamRegistry.index_rows`` makes for the stored content: the test module
checks a sample of them against it, so a change of indexing is noticed here. Deterministic: every
value derives from the row number.

Per patient: 8 DocumentReferences (27 types, 1 in 10 superseded), 10 AuditEvents (the patient's
access log; only their patient, entity, agent and date index rows), 2 MedicationRequests, a CareTeam
(the care relationship) and, for 1 in 20, a record Consent.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from sqlalchemy import Connection, text

from reference_impl.fhir.indexing import normalize
from reference_impl.naming import NATIONAL_ID
from reference_impl.services.dsp.controls import CONSENT_SCOPE, DSP_SYSTEM, RECORD_CONSENT, TREATING
from reference_impl.store.schema import INDEX_TABLES, metadata, resources
from tests.support.postgres import PG_URL

DOCTYPES = "urn:oid:1.3.182.6.1"
PRESCRIPTION_ID = "urn:oid:1.3.182.4.7"  # prescription numbers
EPOCH_2020_US = 1_577_836_800_000_000
DAY_US = 86_400_000_000
ABSOLUTE_BASE = "https://platform.example/fhir/"  # half of the documents name their Binary by an absolute URL
# Family names in falling frequency (the most common, Schmit, about 1/9 of the population here, 1 % in
# Luxembourg: denser than life, which makes the planner's job harder, not easier).
FAMILIES = (  # noqa: SIM905 (names read better as prose)
    "Schmit Muller Weber Hoffmann Wagner Thill Schmitz Schroeder Reuter Klein Becker Kremer Faber Meyer Schiltz "
    "Welter Hansen Majerus Braun Simon Lentz Kieffer Ries Weis Theis Frisch Steffen Back Schneider Bausch "
    "Gomes Rodrigues Ferreira Goncalves Pereira Martins Lopes Santos Dos Silva Fernandes Costa Mendes Marques "
    "Pinto Carvalho Thilges Kayser Hilbert Wirtz Gales Bernard Jacoby Flammang Feller Goergen Ludwig Zeimet "
    "Diederich Bertemes Mergen Nilles Lorang Koch Pauly Kirsch Heinen Michels Hurt Peters Wolff Weiler "
    "Müller Schütz Gonçalves Brück Lévy Krämer"
).split()
GIVENS = (  # noqa: SIM905 (names read better as prose)
    "Anne Marie Jean Paul Luc Tom Lea Emma Noah Ben Mia Sarah Laura Claude Michel Nathalie Sandra Carine "
    "Joao Ana Maria Jose Pedro Rui Sofia Lucas Gabriel Louis Julie Marc Pierre Patrick Christiane Monique "
    "Romain Tessy Nico Jos Fernand Guy Roger Yves Lisa Chloe Elena Hugo Leon Max Lina Zoe "
    "Léa Chloé Zoé André Hélène"
).split()


@dataclass(frozen=True)
class Sizes:
    patients: int
    documents_per_patient: int = 8
    audits_per_patient: int = 10
    prescriptions_per_patient: int = 2

    @property
    def documents(self) -> int:
        return self.patients * self.documents_per_patient

    @property
    def audits(self) -> int:
        return self.patients * self.audits_per_patient

    @property
    def prescriptions(self) -> int:
        return self.patients * self.prescriptions_per_patient


def _names_sql(names: list[str]) -> str:
    """A VALUES list of (position, exact, normalised) names: normalisation is the indexer's own."""
    rows = ", ".join(f"({n}, '{name}', '{normalize(name)}')" for n, name in enumerate(names))
    return f"(VALUES {rows})"


def _statements(sizes: Sizes) -> list[str]:
    n = sizes.patients
    families, givens = len(FAMILIES), len(GIVENS)
    fam = _names_sql(FAMILIES)
    giv = _names_sql(GIVENS)
    # Patient i: family by a skewed pick (the square of a uniform number favours the first names),
    # given uniform, birth day spread over 90 years, matricule = birth date + i.
    patients = f"""
    CREATE TEMP TABLE gen_patient ON COMMIT DROP AS
    SELECT i, 'pat-' || i AS id, f.column2 AS family, f.column3 AS family_norm, g.column2 AS given,
           g.column3 AS given_norm, (-14600 + (i::bigint * 7919) % 32850)::int AS birth_day,
           CASE WHEN i % 2 = 0 THEN 'female' ELSE 'male' END AS gender
    FROM generate_series(1, {n}) AS i
    JOIN {fam} AS f ON f.column1 = floor(power(((i * 2654435761::bigint) % 1000003) / 1000003.0, 2) * {families})
    JOIN {giv} AS g ON g.column1 = (i::bigint * 40503) % {givens};
    ALTER TABLE gen_patient ADD COLUMN birth text, ADD COLUMN matricule text;
    UPDATE gen_patient SET birth = to_char(date '1970-01-01' + birth_day, 'YYYY-MM-DD'),
        matricule = to_char(date '1970-01-01' + birth_day, 'YYYYMMDD') || lpad((i % 100000)::text, 5, '0');
    INSERT INTO resources (res_type, res_id, version_id, last_updated, deleted, content)
    SELECT 'Patient', id, 1, {EPOCH_2020_US} + i, false, json_build_object(
        'resourceType', 'Patient', 'id', id, 'meta', json_build_object('versionId', '1'),
        'identifier', json_build_array(json_build_object('system', '{NATIONAL_ID}', 'value', matricule)),
        'active', true, 'name', json_build_array(json_build_object('family', family, 'given', json_build_array(given))),
        'gender', gender, 'birthDate', birth)::text
    FROM gen_patient;
    INSERT INTO idx_token (res_type, res_id, param, system, code, text_norm)
    SELECT 'Patient', id, 'identifier', '{NATIONAL_ID}', matricule, NULL FROM gen_patient
    UNION ALL SELECT 'Patient', id, 'active', NULL, 'true', NULL FROM gen_patient
    UNION ALL SELECT 'Patient', id, 'gender', NULL, gender, NULL FROM gen_patient;
    INSERT INTO idx_date (res_type, res_id, param, low, high)
    SELECT 'Patient', id, 'birthdate', birth_day::bigint * {DAY_US}, (birth_day + 1)::bigint * {DAY_US}
    FROM gen_patient;
    INSERT INTO idx_string (res_type, res_id, param, value_norm, value_exact)
    SELECT 'Patient', id, p.param, v.norm, v.exact
    FROM gen_patient,
         LATERAL (VALUES (family_norm, family, 1), (given_norm, given, 2)) AS v(norm, exact, part),
         LATERAL (VALUES ('name', 0), ('phonetic', 0), ('family', 1), ('given', 2)) AS p(param, part_of)
    WHERE p.part_of IN (0, v.part);
    """
    # Document j belongs to patient 1 + j % n; 1 in 10 superseded; types skewed towards the first codes; its
    # Binary bin-j named by a relative URL, or for even j by an absolute one.
    documents = f"""
    CREATE TEMP TABLE gen_doc ON COMMIT DROP AS
    SELECT j, 'doc-' || j AS id, 'pat-' || (1 + j % {n}) AS patient,
           CASE WHEN j % 10 = 0 THEN 'superseded' ELSE 'current' END AS status,
           (1 + floor(power(((j * 2654435761::bigint) % 1000003) / 1000003.0, 2) * 27))::int::text AS doctype,
           to_char(timestamp '2020-01-01' + (j * 7) * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS written,
           {EPOCH_2020_US} + (j::bigint * 7 * 60) * 1000000 AS written_us,
           CASE WHEN j % 2 = 0 THEN '{ABSOLUTE_BASE}' ELSE '' END || 'Binary/bin-' || j AS url
    FROM generate_series(1, {sizes.documents}) AS j;
    INSERT INTO resources (res_type, res_id, version_id, last_updated, deleted, content)
    SELECT 'DocumentReference', id, 1, {EPOCH_2020_US} + {n} + j, false, json_build_object(
        'resourceType', 'DocumentReference', 'id', id, 'meta', json_build_object('versionId', '1'),
        'status', status, 'type', json_build_object('coding', json_build_array(
            json_build_object('system', '{DOCTYPES}', 'code', doctype))),
        'subject', json_build_object('reference', 'Patient/' || patient), 'date', written,
        'content', json_build_array(json_build_object('attachment', json_build_object(
            'contentType', 'application/pdf', 'url', url))))::text
    FROM gen_doc;
    INSERT INTO idx_token (res_type, res_id, param, system, code, text_norm)
    SELECT 'DocumentReference', id, 'status', NULL, status, NULL FROM gen_doc
    UNION ALL SELECT 'DocumentReference', id, 'type', '{DOCTYPES}', doctype, NULL FROM gen_doc
    UNION ALL SELECT 'DocumentReference', id, 'contenttype', NULL, 'application/pdf', NULL FROM gen_doc;
    INSERT INTO idx_reference (res_type, res_id, param, target_type, target_id, url, ident_system, ident_value,
        last_updated)
    SELECT 'DocumentReference', id, p.param, 'Patient', patient, 'Patient/' || patient, NULL, NULL,
        {EPOCH_2020_US} + {n} + j
    FROM gen_doc, (VALUES ('patient'), ('subject')) AS p(param);
    INSERT INTO idx_date (res_type, res_id, param, low, high)
    SELECT 'DocumentReference', id, 'date', written_us, written_us + 1000000 FROM gen_doc;
    INSERT INTO idx_uri (res_type, res_id, param, value)
    SELECT 'DocumentReference', id, 'location', url FROM gen_doc;
    """
    # AuditEvent k: an access to patient 1 + k % n by practitioner 1 + k % 500, one an hour.
    audits = f"""
    CREATE TEMP TABLE gen_audit ON COMMIT DROP AS
    SELECT k, 'ae-' || k AS id, 'pat-' || (1 + k % {n}) AS patient, 'prac-' || (1 + k % 500) AS practitioner,
           to_char(timestamp '2020-01-01' + k * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS recorded,
           {EPOCH_2020_US} + k::bigint * 60000000 AS recorded_us
    FROM generate_series(1, {sizes.audits}) AS k;
    INSERT INTO resources (res_type, res_id, version_id, last_updated, deleted, content)
    SELECT 'AuditEvent', id, 1, {EPOCH_2020_US} + {n + sizes.documents} + k, false, json_build_object(
        'resourceType', 'AuditEvent', 'id', id, 'meta', json_build_object('versionId', '1'),
        'recorded', recorded, 'agent', json_build_array(json_build_object(
            'who', json_build_object('reference', 'Practitioner/' || practitioner), 'requestor', true)),
        'entity', json_build_array(json_build_object(
            'what', json_build_object('reference', 'Patient/' || patient))))::text
    FROM gen_audit;
    INSERT INTO idx_reference (res_type, res_id, param, target_type, target_id, url, ident_system, ident_value,
        last_updated)
    SELECT 'AuditEvent', id, p.param, p.target_type, p.target_id, p.target_type || '/' || p.target_id, NULL, NULL,
        {EPOCH_2020_US} + {n + sizes.documents} + k
    FROM gen_audit, LATERAL (VALUES ('patient', 'Patient', patient), ('entity', 'Patient', patient),
        ('agent', 'Practitioner', practitioner)) AS p(param, target_type, target_id);
    INSERT INTO idx_date (res_type, res_id, param, low, high)
    SELECT 'AuditEvent', id, 'date', recorded_us, recorded_us + 1000000 FROM gen_audit;
    """
    prescriptions = f"""
    CREATE TEMP TABLE gen_rx ON COMMIT DROP AS
    SELECT m, 'rx-' || m AS id, 'pat-' || (1 + m % {n}) AS patient, 'RX' || lpad(m::text, 10, '0') AS number,
           CASE WHEN m % 3 = 0 THEN 'active' ELSE 'completed' END AS status
    FROM generate_series(1, {sizes.prescriptions}) AS m;
    INSERT INTO resources (res_type, res_id, version_id, last_updated, deleted, content)
    SELECT 'MedicationRequest', id, 1, {EPOCH_2020_US} + {n + sizes.documents + sizes.audits} + m, false,
        json_build_object('resourceType', 'MedicationRequest', 'id', id, 'meta', json_build_object('versionId', '1'),
        'identifier', json_build_array(json_build_object('system', '{PRESCRIPTION_ID}', 'value', number)),
        'status', status, 'intent', 'order', 'subject', json_build_object('reference', 'Patient/' || patient))::text
    FROM gen_rx;
    INSERT INTO idx_token (res_type, res_id, param, system, code, text_norm)
    SELECT 'MedicationRequest', id, 'identifier', '{PRESCRIPTION_ID}', number, NULL FROM gen_rx
    UNION ALL SELECT 'MedicationRequest', id, 'status', NULL, status, NULL FROM gen_rx
    UNION ALL SELECT 'MedicationRequest', id, 'intent', NULL, 'order', NULL FROM gen_rx;
    INSERT INTO idx_reference (res_type, res_id, param, target_type, target_id, url, ident_system, ident_value,
        last_updated)
    SELECT 'MedicationRequest', id, p.param, 'Patient', patient, 'Patient/' || patient, NULL, NULL,
        {EPOCH_2020_US} + {n + sizes.documents + sizes.audits} + m
    FROM gen_rx, (VALUES ('patient'), ('subject')) AS p(param);
    """
    # Each patient's care relationship (a CareTeam: the treating practitioner 1 + i % 500) and, for 1 in 20,
    # a record consent blocking practitioner 1 + (i + 1) % 500: what every professional's access looks up.
    before_care = n + sizes.documents + sizes.audits + sizes.prescriptions  # the resources' last_updated so far
    care = f"""
    CREATE TEMP TABLE gen_care ON COMMIT DROP AS
    SELECT i, 'ct-' || i AS id, 'pat-' || i AS patient, 'prac-' || (1 + i % 500) AS practitioner
    FROM generate_series(1, {n}) AS i;
    INSERT INTO resources (res_type, res_id, version_id, last_updated, deleted, content)
    SELECT 'CareTeam', id, 1, {EPOCH_2020_US} + {before_care} + i, false, json_build_object(
        'resourceType', 'CareTeam', 'id', id, 'meta', json_build_object('versionId', '1'),
        'status', 'active', 'category', json_build_array(json_build_object('coding', json_build_array(
            json_build_object('system', '{DSP_SYSTEM}', 'code', '{TREATING}')))),
        'subject', json_build_object('reference', 'Patient/' || patient), 'participant', json_build_array(
            json_build_object('member', json_build_object('reference', 'Practitioner/' || practitioner))))::text
    FROM gen_care;
    INSERT INTO idx_reference (res_type, res_id, param, target_type, target_id, url, ident_system, ident_value,
        last_updated)
    SELECT 'CareTeam', id, p.param, p.target_type, p.target_id, p.target_type || '/' || p.target_id, NULL, NULL,
        {EPOCH_2020_US} + {before_care} + i
    FROM gen_care, LATERAL (VALUES ('patient', 'Patient', patient), ('subject', 'Patient', patient),
        ('participant', 'Practitioner', practitioner)) AS p(param, target_type, target_id);
    INSERT INTO idx_token (res_type, res_id, param, system, code, text_norm)
    SELECT 'CareTeam', id, 'category', '{DSP_SYSTEM}', '{TREATING}', NULL FROM gen_care
    UNION ALL SELECT 'CareTeam', id, 'status', NULL, 'active', NULL FROM gen_care;
    CREATE TEMP TABLE gen_consent ON COMMIT DROP AS
    SELECT i, 'co-' || i AS id, 'pat-' || i AS patient, 'prac-' || (1 + (i + 1) % 500) AS blocked
    FROM generate_series(20, {n}, 20) AS i;
    INSERT INTO resources (res_type, res_id, version_id, last_updated, deleted, content)
    SELECT 'Consent', id, 1, {EPOCH_2020_US} + {before_care + n} + i, false, json_build_object(
        'resourceType', 'Consent', 'id', id, 'meta', json_build_object('versionId', '1'),
        'status', 'active', 'scope', json_build_object('coding', json_build_array(
            json_build_object('system', '{CONSENT_SCOPE}', 'code', 'patient-privacy'))),
        'category', json_build_array(json_build_object('coding', json_build_array(
            json_build_object('system', '{DSP_SYSTEM}', 'code', '{RECORD_CONSENT}')))),
        'patient', json_build_object('reference', 'Patient/' || patient), 'provision', json_build_object('type', 'deny',
            'actor', json_build_array(json_build_object('reference', json_build_object(
                'reference', 'Practitioner/' || blocked)))))::text
    FROM gen_consent;
    INSERT INTO idx_reference (res_type, res_id, param, target_type, target_id, url, ident_system, ident_value,
        last_updated)
    SELECT 'Consent', id, p.param, p.target_type, p.target_id, p.target_type || '/' || p.target_id, NULL, NULL,
        {EPOCH_2020_US} + {before_care + n} + i
    FROM gen_consent, LATERAL (VALUES ('patient', 'Patient', patient), ('actor', 'Practitioner', blocked))
        AS p(param, target_type, target_id);
    INSERT INTO idx_token (res_type, res_id, param, system, code, text_norm)
    SELECT 'Consent', id, 'category', '{DSP_SYSTEM}', '{RECORD_CONSENT}', NULL FROM gen_consent
    UNION ALL SELECT 'Consent', id, 'scope', '{CONSENT_SCOPE}', 'patient-privacy', NULL FROM gen_consent
    UNION ALL SELECT 'Consent', id, 'status', NULL, 'active', NULL FROM gen_consent;
    """
    history = """
    INSERT INTO resource_history (res_type, res_id, version_id, last_updated, method)
    SELECT res_type, res_id, version_id, last_updated, 'POST' FROM resources;
    """
    return [patients, documents, audits, prescriptions, care, history]


def load(conn: Connection, sizes: Sizes) -> None:
    """Fill an empty, migrated store (in ``conn``'s transaction): indexes dropped during the load and
    built again afterwards from ``schema.py`` (faster than maintaining them row by row). Then ``settle``."""
    indexes = [index for table in metadata.sorted_tables for index in table.indexes]
    for index in indexes:
        conn.execute(text(f'DROP INDEX IF EXISTS "{index.name}"'))
    cursor = conn.connection.cursor()  # the driver's own: several statements at once, no placeholders
    for statement in _statements(sizes):
        cursor.execute(statement)
    for index in indexes:
        index.create(conn)


def settle(schema: str) -> None:
    """VACUUM ANALYZE what ``load`` filled, as after any bulk load: ANALYZE gives the planner its
    statistics (extended ones included), VACUUM the visibility map without which an index-only scan
    still visits the table. Outside any transaction, as VACUUM must be."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'SET search_path = "{schema}"')
        for table in [resources.name, "resource_history", *(t.name for t in INDEX_TABLES.values())]:
            conn.execute(f"VACUUM (ANALYZE) {table}")
