"""YAML documents that remember where each value came from, for errors that name file, line and key.

Plans and catalogues are validated by pydantic models; a validation error's location (a tuple of
keys and indexes) is mapped back to the line and column of the offending key here, and an unknown
key gets the closest valid key as a suggestion.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

Location = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file, located as precisely as possible."""

    file: str
    line: int | None
    column: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class SourceError(Exception):
    """A file could not be loaded; ``problems`` says exactly where and why."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class YamlDocument:
    path: Path
    data: Any
    positions: dict[Location, tuple[int, int]]  # location -> (line, column), 1-based

    def position(self, location: Location) -> tuple[int | None, int | None]:
        """The position of ``location``, or of its nearest enclosing key that has one."""
        for end in range(len(location), -1, -1):
            found = self.positions.get(location[:end])
            if found:
                return found
        return None, None

    def problem(self, location: Location, message: str) -> Problem:
        line, column = self.position(location)
        return Problem(str(self.path), line, column, dotted(location), message)


def dotted(location: Location) -> str:
    out = ""
    for part in location:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


MERGE_TAG = "tag:yaml.org,2002:merge"


def load(path: Path) -> YamlDocument:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError([Problem(str(path), None, None, "", f"cannot read the file: {exc}")]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise SourceError([Problem(str(path), line, column, "", f"YAML syntax error: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise SourceError([Problem(str(path), None, None, "", f"YAML syntax error: {exc}")]) from None
    positions: dict[Location, tuple[int, int]] = {}
    data = _convert(node, (), positions, str(path)) if node is not None else None
    return YamlDocument(path, data, positions)


def _merged(
    node: yaml.Node, location: Location, positions: dict[Location, tuple[int, int]], file: str
) -> dict[str, Any]:
    """The entries a YAML merge key brings in: one mapping, or a list of them (earlier ones win)."""
    sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
    entries: dict[str, Any] = {}
    for source in reversed(sources):
        value = _convert(source, location, positions, file)
        if not isinstance(value, dict):
            mark = source.start_mark
            raise SourceError([Problem(file, mark.line + 1, mark.column + 1, "<<", "a merge key takes a mapping")])
        entries.update(value)
    return entries


def _convert(node: yaml.Node, location: Location, positions: dict[Location, tuple[int, int]], file: str) -> Any:
    positions.setdefault(location, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}  # the keys of "<<: *anchor" mappings: the mapping's own keys win
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                merged.update(_merged(value_node, location, positions, file))
                continue
            key = yaml.safe_load(yaml.serialize(key_node))
            if not isinstance(key, str):
                raise SourceError(
                    [
                        Problem(
                            file,
                            key_node.start_mark.line + 1,
                            key_node.start_mark.column + 1,
                            str(key),
                            "keys must be text",
                        )
                    ]
                )
            if key in out:
                raise SourceError(
                    [
                        Problem(
                            file,
                            key_node.start_mark.line + 1,
                            key_node.start_mark.column + 1,
                            key,
                            "this key appears twice",
                        )
                    ]
                )
            positions[(*location, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _convert(value_node, (*location, key), positions, file)
        return {**merged, **out}
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*location, i), positions, file) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def validate(document: YamlDocument, model: type[BaseModel], context: dict[str, Any] | None = None) -> Any:
    """``model`` built from the document, or a SourceError naming every problem's line and key."""
    try:
        return model.model_validate(document.data, context=context)
    except ValidationError as exc:
        problems = [_problem(document, model, err) for err in exc.errors(include_url=False)]
        raise SourceError(problems) from None


def _problem(document: YamlDocument, model: type[BaseModel], err: Any) -> Problem:
    location: Location = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        valid = _fields_at(model, location[:-1])
        suggestion = difflib.get_close_matches(str(location[-1]), valid, n=1, cutoff=0.5)
        message = "unknown key " + (
            f"(did you mean '{suggestion[0]}'?)" if suggestion else f"(valid keys: {', '.join(sorted(valid))})"
        )
    elif err["type"] == "missing":
        message = "this key is required"
    return document.problem(location, message)


def _fields_at(model: type[BaseModel], location: Location) -> Iterable[str]:
    """The field names valid at ``location`` inside ``model`` (following nested models)."""
    current: Any = model
    keyed = False  # the previous field was a mapping: this part is one of its keys (a user's role...)
    for part in location:
        if isinstance(part, int) or keyed:
            keyed = False
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        keyed = getattr(field.annotation, "__origin__", None) is dict
        current = _model_in(field.annotation)
        if current is None:
            return []
    return [f.alias or name for name, f in getattr(current, "model_fields", {}).items()]


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None
