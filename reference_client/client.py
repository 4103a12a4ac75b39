"""The reference client as its scenarios use it: its configuration, its deliberate faults, the wire it
records on, its SMART session and its FHIR calls."""

from __future__ import annotations

from dataclasses import dataclass

from reference_client.config import Config
from reference_client.fhir import Fhir
from reference_client.smart import Smart
from reference_client.wire import Wire


@dataclass
class Client:
    config: Config
    faults: frozenset[str]
    wire: Wire

    def __post_init__(self) -> None:
        self.smart = Smart(self.config, self.faults, self.wire)
        self.fhir = Fhir(self.config.fhir_base, self.wire, self.faults, self.smart.access_token)

    @property
    def patient(self) -> str:
        return self.config.input("patient", "pat-0001")
