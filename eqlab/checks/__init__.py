"""What checks in ``suites/`` may use of the lab: the only part of ``eqlab`` they import (enforced by
tests/test_layers.py), so the engine can change behind it without breaking a suite.

- ``EvidenceClient``: the HTTP client of the fixtures (``fhir_client``, ``auth_client``…): every exchange
  is evidence.
- ``LabTokens``, ``TokenSet``: the ``tokens`` fixture and what it hands out; ``login_form``,
  ``consent_form``, ``forms_of``: the platform's sign-in pages, for checks of the flows themselves.
- ``Target``: the system under test (the ``target`` fixture); ``SESSION_KEY``: where the lab's session
  lives in a pytest config stash (for suite-level conftest hooks).
- ``ClientRun``, ``ClientRequest``, ``seal_facts``: a client run's journal (the ``client_run``
  fixture) and the facts a sealed credential keeps.

Load scenarios import ``eqlab.checks.load`` instead (locust is heavy: contract checks never load it).
"""

from eqlab.clients.captured import ClientRequest
from eqlab.clients.judging import ClientRun
from eqlab.clients.sealing import seal_facts
from eqlab.evidence.recorder import EvidenceClient
from eqlab.oauth_client.forms import consent_form, forms_of, login_form
from eqlab.oauth_client.lab import LabTokens
from eqlab.oauth_client.model import TokenSet
from eqlab.pytest_plugin.session import SESSION_KEY, Target

__all__ = [
    "SESSION_KEY",
    "ClientRequest",
    "ClientRun",
    "EvidenceClient",
    "LabTokens",
    "Target",
    "TokenSet",
    "consent_form",
    "forms_of",
    "login_form",
    "seal_facts",
]
