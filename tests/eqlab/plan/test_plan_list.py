"""`eqlab plan list` takes folders or files; the plan and key groups list whole command descriptions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.runs import eqlab_cli


def test_plan_list_takes_a_folder_argument() -> None:
    done = eqlab_cli("plan", "list", "testplans")
    assert done.exit_code == 0, done.printed
    assert "reference.yaml" in done.printed and "reference-platform" in done.printed


def test_plan_list_takes_files_and_several_folders(tmp_path: Path) -> None:
    shutil.copy("testplans/reference.yaml", tmp_path / "copy.yaml")
    (tmp_path / "broken.yaml").write_text("name: [\n")
    done = eqlab_cli("plan", "list", str(tmp_path), "testplans/reference.yaml")
    assert done.exit_code == 0, done.printed
    listed = [line.split()[0] for line in done.printed.splitlines()]
    assert listed == ["broken.yaml", "copy.yaml", "reference.yaml"]
    assert "INVALID" in done.printed.splitlines()[0]


def test_plan_list_of_an_empty_folder_says_so(tmp_path: Path) -> None:
    done = eqlab_cli("plan", "list", str(tmp_path))
    assert done.exit_code == 0 and done.printed.strip() == f"no plans in {tmp_path}"


@pytest.mark.parametrize(
    ("group", "description"),
    [
        (
            "plan",
            "List plans (folders of *.yaml, or files; default: testplans/) with their label, environment and suites.",
        ),
        (
            "key",
            "Print the lab's public key (PEM) that `eqlab verify` trusts, or with --fingerprint its fingerprint.",
        ),
    ],
)
def test_group_help_shows_whole_descriptions(group: str, description: str) -> None:
    done = eqlab_cli(group, "--help")
    assert done.exit_code == 0
    assert description in " ".join(done.printed.split())  # wrapped, not cut
