"""YAML with positions: merge keys (``<<: *anchor``) work as in YAML 1.1, and a bad one is a located problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from eqlab.yamlsource import SourceError, load

ANCHORED = """\
webapp: &webapp
  client_id: eqlab-demo-webapp
  scope: user/*.rs
users:
  doctor:
    <<: *webapp
    scope: user/*.cruds
  nurse:
    <<: [*webapp, {client_id: other, redirect_uri: http://127.0.0.1:9/cb}]
"""


def test_a_merge_key_brings_the_anchored_entries_and_the_mapping_own_keys_win(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(ANCHORED, encoding="utf-8")
    document = load(path)
    assert document.data["users"]["doctor"] == {"client_id": "eqlab-demo-webapp", "scope": "user/*.cruds"}
    assert document.data["users"]["nurse"] == {
        "client_id": "eqlab-demo-webapp",  # the first mapping of the list wins
        "scope": "user/*.rs",
        "redirect_uri": "http://127.0.0.1:9/cb",
    }
    assert document.position(("users", "doctor", "scope")) == (7, 5)


def test_a_merge_key_on_anything_but_mappings_is_a_located_problem(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text("name: x\nusers:\n  doctor:\n    <<: just text\n", encoding="utf-8")
    with pytest.raises(SourceError) as raised:
        load(path)
    (problem,) = raised.value.problems
    assert (problem.line, problem.column, problem.key) == (4, 9, "<<")
    assert "merge key takes a mapping" in str(problem)
