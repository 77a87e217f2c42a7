"""Running tallies of each subscription's delivered and failed attempts (CONTRACT 6 `status`),
kept by the stores as outcomes are recorded, so that `counts` reads a few rows instead of
scanning every delivery and attempt ever retained (a scan that grew with the history and, on
SQLite, ran on the event loop at every `/metrics` scrape).

`delivered` and `failed` are cumulative: purging old rows does not lower them. Backlog, oldest
pending and dead letters are read from their partial indexes, which hold only those rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gateway.store.base import Ack, Kind, Outcome
from gateway.store.ops import Counts, error_text
from gateway.store.opsrows import Row


def failed(status: int | None) -> bool:
    """An attempt that failed: no response, or a status outside 2xx."""
    return status is None or not 200 <= status < 300


@dataclass(slots=True)
class Tally:
    delivered: int = 0
    failed: int = 0
    last_status: int | None = None  # of the latest failed attempt
    last_error: str | None = None
    last_at: float | None = None

    def add(self, outcome: Outcome, now: float) -> None:
        """Count one outcome that was applied (its lease was current)."""
        if isinstance(outcome, Ack):
            self.delivered += 1
        attempt = outcome.attempt
        if attempt is not None and failed(attempt.status):
            self.failed += 1
            if self.last_at is None or now >= self.last_at:
                self.last_status, self.last_error, self.last_at = attempt.status, attempt.error, now


@dataclass(slots=True)
class Tallies:
    """What one `finish` call adds, per subscription (SINK rows only)."""

    by_name: dict[str, Tally] = field(default_factory=dict)

    def add(self, outcome: Outcome, now: float) -> None:
        row = outcome.delivery
        if row.kind is Kind.SINK:
            self.by_name.setdefault(row.subscription, Tally()).add(outcome, now)

    def rows(self, replica: str) -> list[dict[str, object]]:
        """Parameters of the SQL stores' `tally` upsert."""
        return [
            {"subscription": name, "replica": replica, "delivered": t.delivered,
             "failed": t.failed, "last_status": t.last_status, "last_error": t.last_error,
             "last_at": t.last_at}
            for name, t in self.by_name.items()
        ]  # fmt: skip


def tallied(rows: Iterable[Row]) -> dict[str, Tally]:
    """The rows of `ops_tallies`: subscription, delivered, failed, and the latest failure."""
    return {
        row[0]: Tally(int(row[1] or 0), int(row[2] or 0), row[3], row[4], row[5]) for row in rows
    }


def counts(
    pending: Iterable[Row], dead: Iterable[Row], tallies: Mapping[str, Tally]
) -> dict[str, Counts]:
    """One `Counts` per subscription seen in any of the three."""
    backlog = {row[0]: (int(row[1]), row[2]) for row in pending}
    dead_counts = {row[0]: int(row[1]) for row in dead}
    out: dict[str, Counts] = {}
    for name in sorted({*backlog, *dead_counts, *tallies}):
        waiting, oldest = backlog.get(name, (0, None))
        t = tallies.get(name, Tally())
        last = None if t.failed == 0 else error_text(t.last_status, t.last_error)
        out[name] = Counts(
            waiting, None if oldest is None else float(oldest), t.delivered, t.failed,
            dead_counts.get(name, 0), last,
        )  # fmt: skip
    return out
