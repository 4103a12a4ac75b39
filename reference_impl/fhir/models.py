"""The one module that imports version-specific FHIR models (``fhir.resources`` R4B).

The server speaks R4; it validates with the R4B models only for the resource types whose R4B
shape equals R4 (``structure.json`` "served"). The models check structure and primitive formats,
not terminology or invariants: ``validation.py`` adds required code bindings.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from reference_impl.fhir.errors import Issue


def structural_issues(resource: dict[str, Any]) -> list[Issue] | None:
    """Issues found by the R4B model, or None when the model could not judge (unknown nested type)."""
    type_name = resource["resourceType"]
    try:
        get_fhir_model_class(type_name).model_validate(resource)
    except ValidationError as exc:
        return [_issue(type_name, err) for err in exc.errors(include_url=False)]
    except (KeyError, LookupError):
        # fhir.resources raises KeyError for an unknown resourceType nested in a Bundle or
        # in contained; the caller reports those itself.
        return None
    except (TypeError, ValueError) as exc:
        return [Issue(f"{type_name} is not valid: {exc}", "structure", expression=(type_name,))]
    return []


def _issue(type_name: str, err: Any) -> Issue:
    path = type_name
    for part in err.get("loc", ()):
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    kind = err.get("type", "")
    code = "required" if "missing" in kind else "structure" if kind == "extra_forbidden" else "value"
    if kind == "extra_forbidden":
        message = "unknown element"
    return Issue(f"{path}: {message}", code, expression=(path,))
