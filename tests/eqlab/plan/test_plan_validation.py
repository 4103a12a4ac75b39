"""`eqlab plan validate` names every problem of a plan at once: typos, selectors, catalogue, suites, secrets."""

from __future__ import annotations

from pathlib import Path

from tests.support.runs import eqlab_cli

# Four key typos, two malformed selectors and one matching nothing, an unknown requirement ID,
# a missing suite, an inline secret and a missing key file: each problem hides none of the others.
MANY_PROBLEMS = """\
name: Many problems
lable: many-problems
version: "1"
enviroment: integration
target:
  base_url: http://127.0.0.1:9/fhir
  auth:
    client_id: lab
    key_file: no-such-key.json
    client_secret: s3cr3t-inline-value
requirements:
  include: [fhir@1, "fhir-2", fhr@*, "fhir@x"]
  exclud: [fhir@3]
suites:
  - kind: contract
    path: contract/nowhere
    timout: 5
not_tested:
  - requirement: fhir@490
    reason: later
"""


def test_every_problem_of_a_plan_is_named_in_one_run(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(MANY_PROBLEMS, encoding="utf-8")
    done = eqlab_cli("plan", "validate", str(plan))
    assert done.exit_code == 1
    lines = done.printed.strip().splitlines()
    expected = [  # in file order; each line starts so
        f"error: {plan}:1:1: label: this key is required",
        f"error: {plan}:1:1: environment: this key is required",
        f"error: {plan}:2:1: lable: unknown key (did you mean 'label'?)",
        f"error: {plan}:4:1: enviroment: unknown key (did you mean 'environment'?)",
        f"error: {plan}:9:5: target.auth.key_file: key file no-such-key.json not found",
        f"error: {plan}:10:5: target.auth.client_secret: 'client_secret' holds a secret inline",
        f"error: {plan}:12:21: requirements.include[1]: 'fhir-2' is not a requirement ID or selector",
        f"error: {plan}:12:31: requirements.include[2]: 'fhr@*' matches no requirement (did you mean fhir@*?)",
        f"error: {plan}:12:38: requirements.include[3]: 'fhir@x' is not a requirement ID or selector",
        f"error: {plan}:13:3: requirements.exclud: unknown key (did you mean 'exclude'?)",
        f"error: {plan}:16:5: suites[0].path: no suite at",
        f"error: {plan}:17:5: suites[0].timout: unknown key (did you mean 'timeout'?)",
        f"error: {plan}:19:5: not_tested[0].requirement: unknown requirement ID fhir@490 (did you mean fhir@49?)",
    ]
    assert len(lines) == len(expected), done.printed
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(start), done.printed
    assert "s3cr3t-inline-value" not in done.printed
