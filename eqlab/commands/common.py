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


class FullHelpGroup(click.Group):
    """A command group whose help lists each command's whole first sentence, wrapped, where click
    would cut it at the terminal's width ("Run a test plan against a system; print the...")."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        commands = [(name, self.get_command(ctx, name)) for name in self.list_commands(ctx)]
        rows = [(name, command.get_short_help_str(limit=1_000)) for name, command in commands if command]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


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
