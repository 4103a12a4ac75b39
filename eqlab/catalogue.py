"""The requirement catalogue: every rule a label can check, with a stable ID (``<service>@<n>``).

One YAML file per service under ``suites/requirements/``. IDs are unique across the catalogue;
tests refer to them with ``@pytest.mark.requirement("fhir@3")`` and the plugin rejects unknown IDs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from eqlab import yamlsource

# The grammar of requirement IDs (fhir@3) and of selectors (fhir@*, fhir@1-20, *@*).
REQUIREMENT_ID = r"^[a-z][a-z0-9]*@\d+$"
SELECTOR = re.compile(r"^(?P<service>[a-z][a-z0-9]*|\*)@(?P<range>\*|\d+(-\d+)?)\Z")

Level = Literal["SHALL", "SHOULD", "MAY"]
Verification = Literal["test", "attestation"]


class Requirement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(..., pattern=REQUIREMENT_ID)
    level: Level
    text: str = Field(..., min_length=10)
    source: str = Field(..., min_length=3, description="the section of shared/SPEC.md or the standard it comes from")
    actor: str = Field(..., min_length=2, description="who must do it: server, client, portal...")
    verification: Verification = Field(
        "test",
        description=(
            "test: the lab checks it over the wire; attestation: no black-box check can (say why in "
            "`why_attested`), so a plan covers it with an attestation"
        ),
    )
    why_attested: str | None = Field(None, min_length=10, description="why no black-box check can verify it")

    @model_validator(mode="after")
    def _attestation_says_why(self) -> Requirement:
        if (self.verification == "attestation") != (self.why_attested is not None):
            raise ValueError("why_attested is required with verification: attestation, and only then")
        return self

    @property
    def service(self) -> str:
        return self.id.split("@")[0]

    @property
    def number(self) -> int:
        return int(self.id.split("@")[1])


class CatalogueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(..., pattern=r"^[a-z][a-z0-9]*$")
    title: str
    requirements: list[Requirement] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _ids_belong_to_service(self) -> CatalogueFile:
        for requirement in self.requirements:
            if requirement.service != self.service:
                raise ValueError(f"{requirement.id} does not belong to service '{self.service}' of this file")
        return self


@dataclass(frozen=True)
class Catalogue:
    requirements: dict[str, Requirement]
    titles: dict[str, str]  # service -> title
    sha256: str

    @classmethod
    def load(cls, directory: Path) -> Catalogue:
        files = sorted(directory.glob("*.yaml"))
        if not files:
            raise yamlsource.SourceError(
                [yamlsource.Problem(str(directory), None, None, "", "no catalogue files (*.yaml)")]
            )
        requirements: dict[str, Requirement] = {}
        where: dict[str, yamlsource.Problem] = {}
        titles: dict[str, str] = {}
        problems: list[yamlsource.Problem] = []
        digest = hashlib.sha256()
        for path in files:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
            document = yamlsource.load(path)
            content: CatalogueFile = yamlsource.validate(document, CatalogueFile)
            titles[content.service] = content.title
            for i, requirement in enumerate(content.requirements):
                here = document.problem(("requirements", i, "id"), f"duplicate requirement ID {requirement.id}")
                if requirement.id in requirements:
                    first = where[requirement.id]
                    problems.append(
                        yamlsource.Problem(
                            here.file,
                            here.line,
                            here.column,
                            here.key,
                            f"{here.message}, first defined at {first.file}:{first.line}",
                        )
                    )
                    continue
                requirements[requirement.id] = requirement
                where[requirement.id] = here
        if problems:
            raise yamlsource.SourceError(problems)
        ordered = dict(sorted(requirements.items(), key=lambda kv: (kv[1].service, kv[1].number)))
        return cls(ordered, titles, digest.hexdigest())

    def __contains__(self, requirement_id: object) -> bool:
        return requirement_id in self.requirements

    def get(self, requirement_id: str) -> Requirement:
        return self.requirements[requirement_id]

    def unknown(self, ids: Iterable[str]) -> list[str]:
        return sorted({i for i in ids if i not in self.requirements})

    def select(self, include: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
        """IDs matched by any ``include`` selector and by no ``exclude`` selector, in catalogue order."""
        include, exclude = list(include), list(exclude)
        return [
            rid
            for rid in self.requirements
            if any(selector_matches(s, rid) for s in include) and not any(selector_matches(s, rid) for s in exclude)
        ]


def selector_matches(selector: str, requirement_id: str) -> bool:
    match = SELECTOR.match(selector)
    if match is None:
        return False
    service, number = requirement_id.split("@")
    if match["service"] not in ("*", service):
        return False
    wanted = match["range"]
    if wanted == "*":
        return True
    low, _, high = wanted.partition("-")
    return int(low) <= int(number) <= int(high or low)
