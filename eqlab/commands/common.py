"""Helpers shared by the commands: loading what a command needs and reporting problems clearly."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from eqlab import paths, yamlsource
from eqlab.catalogue import Catalogue

F = TypeVar("F", bound=Callable[..., Any])
EXIT_LAB_ERROR = 2


def reports_source_errors(exit_code: int) -> Callable[[F], F]:
    """Print a SourceError's problems (file:line:column: key: message) and exit with ``exit_code``."""

    def decorate(command: F) -> F:
        @wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return command(*args, **kwargs)
            except yamlsource.SourceError as exc:
                for problem in exc.problems:
                    click.echo(f"error: {problem}", err=True)
                raise SystemExit(exit_code) from None

        return wrapper  # type: ignore[return-value]

    return decorate


def load_catalogue(directory: Path | None) -> Catalogue:
    return Catalogue.load(directory or paths.catalogue_dir())


catalogue_option = click.option(
    "--catalogue",
    "catalogue_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="requirement catalogue folder (default: suites/requirements)",
)


key_option = click.option(
    "--key",
    "key_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="lab signing key (default: $EQLAB_LAB_KEY or the user data dir; made on first use)",
)
