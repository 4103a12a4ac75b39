"""``eqlab seed``: the national dataset (``reference_impl/seed/national.py``) loaded into a store.

Like ``eqlab/cli.py`` and ``store_admin.py``, it imports the reference implementation lazily, inside
the command (ARCHITECTURE.md, layer rules). The store is migrated first, then loaded in chunks
(``reference_impl/store/bulk.py``); a load stopped by Ctrl-C or a crash continues where it stopped
when the same command runs again. ``eqlab serve --db URL`` then serves it (``--seed demo`` adds the
demo accounts and data beside it).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, date, datetime
from typing import Protocol, TextIO

import click

from eqlab.commands.run import EXIT_INTERRUPTED
from eqlab.commands.store_admin import migrate_store, safe_url, store_errors

PLAIN_PROGRESS_SECONDS = 10.0  # a line this often when stderr is no terminal (a log, CI)
BAR_WIDTH = 30


class Progress(Protocol):
    """What the loader reports (``reference_impl.store.bulk.Progress``)."""

    @property
    def chunks_done(self) -> int: ...
    @property
    def chunks(self) -> int: ...
    @property
    def resources(self) -> int: ...
    @property
    def rate(self) -> float: ...
    @property
    def eta_seconds(self) -> float | None: ...


class ProgressLine:
    """The load's progress on stderr: a bar redrawn in place on a terminal, else a line now and then."""

    def __init__(self, stream: TextIO, enabled: bool | None) -> None:
        self.stream = stream
        self.shown = enabled is not False  # --no-progress: silent
        self.live = stream.isatty() if enabled is None else enabled
        self._last_plain = 0.0
        self._drawn = False

    def __call__(self, progress: Progress) -> None:
        if not self.shown:
            return
        share = progress.chunks_done / progress.chunks if progress.chunks else 1.0
        eta = progress.eta_seconds
        text = (
            f"{share:6.1%}  {progress.resources:,} resources  {progress.rate:,.0f}/s"
            f"  ETA {_duration(eta) if eta is not None else '?'}"
        )
        if self.live:
            filled = int(share * BAR_WIDTH)
            self.stream.write(f"\r[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {text}\x1b[K")
            self._drawn = True
        elif time.monotonic() - self._last_plain >= PLAIN_PROGRESS_SECONDS or progress.chunks_done == progress.chunks:
            self.stream.write(f"seeding: {progress.chunks_done}/{progress.chunks} chunks, {text}\n")
            self._last_plain = time.monotonic()
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _duration(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


@click.command("seed")
@click.option("--patients", type=click.IntRange(min=1), required=True, help="People in the national dataset.")
@click.option(
    "--documents-per-patient",
    type=click.FloatRange(min=0, max=100),
    default=8.0,
    show_default=True,
    help="Shared care record documents per person, on average (the agency: 8 million for 1 million).",
)
@click.option(
    "--db", "db_url", default=None, help="sqlite:///FILE (default: in the user data dir) or postgresql://HOST/DB."
)
@click.option("--seed", "seed_value", type=int, default=None, help="Seed of the generator (default: a fixed one).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Loading processes (PostgreSQL; default: one per core). SQLite has one writer.",
)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
def seed(
    patients: int,
    documents_per_patient: float,
    db_url: str | None,
    seed_value: int | None,
    workers: int | None,
    progress: bool | None,
) -> None:
    """Load the national dataset: patients, institutions, practitioners, care relationships, shared care
    record documents, prescriptions and vaccinations, deterministic for a seed.

    Run the same command again after an interruption: it continues where the load stopped.
    """
    from reference_impl.seed.national import NATIONAL_SEED, NationalPlan, NationalSource  # noqa: PLC0415 (lazily: the engine does not depend on it)
    from reference_impl.settings import Settings  # noqa: PLC0415 (lazily: the engine does not depend on it)
    from reference_impl.store import bulk  # noqa: PLC0415 (lazily: the engine does not depend on it)
    from reference_impl.store.database import Database  # noqa: PLC0415 (lazily: the engine does not depend on it)

    settings = Settings() if db_url is None else Settings(db_url=db_url)
    url = settings.db_url
    try:
        with store_errors(url):
            migrate_store(url)
            db = Database(url)
            try:
                recorded = bulk.recorded_parameters(db, NationalSource.name)
            finally:
                db.dispose()
    except ValueError as exc:  # an unusable URL
        raise click.ClickException(str(exc)) from None
    chosen_seed = NATIONAL_SEED if seed_value is None else seed_value
    source = NationalSource(
        NationalPlan(
            patients, documents_per_patient, chosen_seed, _as_of(recorded, patients, documents_per_patient, chosen_seed)
        )
    )
    if workers is None:
        workers = os.cpu_count() or 1
    show = ProgressLine(sys.stderr, progress)
    try:
        with store_errors(url):
            result = bulk.load(url, source, settings.master, workers=workers, on_progress=show)
    except bulk.LoadRefused as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        show.close()
        click.echo("interrupted: the chunks committed so far stay; run the same command to continue", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    finally:
        show.close()
    rate = result.resources_loaded / result.load_seconds if result.load_seconds else 0.0
    click.echo(
        f"seeded {patients:,} patients into {safe_url(url)}: {result.resources_loaded:,} resources in "
        f"{result.load_seconds:.1f} s ({rate:,.0f}/s), indexes and statistics in {result.index_seconds:.1f} s; "
        f"{result.resources:,} resources of the national dataset in the store"
    )


def _as_of(recorded: dict[str, object] | None, patients: int, documents_per_patient: float, seed: int) -> date:
    """The day the dataset is dated from: a resumed load keeps its own, a new one takes today (UTC)."""
    if recorded is not None and (recorded["patients"], recorded["documents_per_patient"], recorded["seed"]) == (
        patients,
        documents_per_patient,
        seed,
    ):
        return date.fromisoformat(str(recorded["as_of"]))
    return datetime.now(UTC).date()
