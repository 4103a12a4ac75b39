"""``python -m reference_client [--faults F,..] [--trace FILE] [SCENARIO]``: exit 0 when the scenario
did its work, 1 with a one-line reason when it could not, 2 on a usage or configuration error."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import httpx

from reference_client.client import Client
from reference_client.config import Config, ConfigError
from reference_client.faults import UnknownFault, fault_list, parse_faults
from reference_client.scenarios import SCENARIOS
from reference_client.smart import ScenarioFailed
from reference_client.wire import Wire

USAGE_ERROR = 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reference_client", description=__doc__)
    p.add_argument("scenario", nargs="?", help=f"one of: {', '.join(SCENARIOS)} (default: $EQLAB_SCENARIO)")
    p.add_argument("--faults", default=None, help="comma-separated client faults (default: $EQLAB_CLIENT_FAULTS)")
    p.add_argument("--list-faults", action="store_true", help="list the faults and the requirement each breaks")
    p.add_argument("--trace", type=Path, help="append one JSON line per request sent (credentials redacted)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.list_faults:
        print(fault_list())
        return 0
    try:
        faults = parse_faults(args.faults if args.faults is not None else os.environ.get("EQLAB_CLIENT_FAULTS", ""))
    except UnknownFault as exc:
        print(f"{exc}; the faults are:\n{fault_list()}", file=sys.stderr)
        return USAGE_ERROR
    scenario = args.scenario or os.environ.get("EQLAB_SCENARIO", "")
    if scenario not in SCENARIOS:
        print(f"unknown scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}", file=sys.stderr)
        return USAGE_ERROR
    try:
        config = Config.from_environment()
    except ConfigError as exc:
        print(f"reference client: {exc}", file=sys.stderr)
        return USAGE_ERROR
    wire = Wire(args.trace)
    try:
        SCENARIOS[scenario](Client(config, faults, wire))
    except ConfigError as exc:
        print(f"reference client: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except ScenarioFailed as exc:
        print(f"{scenario} failed: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"{scenario} failed: {type(exc).__name__} {exc}", file=sys.stderr)
        return 1
    finally:
        wire.close()
    print(f"{scenario}: ok")
    return 0
