"""An oversized body gets its 413 OperationOutcome even with clients that send the whole body before reading."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from reference_impl.app import create_app
from reference_impl.settings import Settings
from tests.support.servers import sqlite_url, threaded_server

ELEVEN_MIB = 11 * 1024 * 1024


def test_urllib_sees_the_413_outcome_of_an_11_mib_post(tmp_path: Path) -> None:
    app = create_app(Settings(db_url=sqlite_url(tmp_path)))
    with threaded_server(app) as base:
        request = urllib.request.Request(
            f"{base}/Patient",
            data=b" " * ELEVEN_MIB,
            headers={"Content-Type": "application/fhir+json"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        assert refused.value.code == 413
        outcome = json.loads(refused.value.read())
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["code"] == "too-costly"
