"""Counters and gauges exposed at `GET /metrics` in the Prometheus text format (version 0.0.4)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """A few named counters with labels, and gauges read at scrape time."""

    def __init__(self) -> None:
        self._counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self._help: dict[str, tuple[str, str]] = {}
        self._gauges: dict[str, Callable[[], float]] = {}

    def describe(self, name: str, kind: str, text: str) -> None:
        self._help[name] = (kind, text)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self._counters[name][tuple(sorted(labels.items()))] += amount

    def gauge(self, name: str, text: str, read: Callable[[], float]) -> None:
        self._help[name] = ("gauge", text)
        self._gauges[name] = read

    def value(self, name: str, **labels: str) -> float:
        return self._counters.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        lines: list[str] = []
        for name in sorted(set(self._counters) | set(self._gauges)):
            kind, text = self._help.get(name, ("counter", name))
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")
            if name in self._gauges:
                lines.append(f"{name} {self._gauges[name]()}")
                continue
            for labels, value in sorted(self._counters[name].items()):
                rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                lines.append(f"{name}{{{rendered}}} {value}" if rendered else f"{name} {value}")
        return "\n".join(lines) + "\n"


def standard() -> Metrics:
    """The gateway's metric families, described once."""
    metrics = Metrics()
    for name, text in (
        ("gateway_events_accepted_total", "Events stored (202)"),
        ("gateway_events_duplicate_total", "Events answered as duplicates"),
        ("gateway_events_unmatched_total", "Events stored that matched no subscription, by type"),
        ("gateway_ingest_rejected_total", "Ingest requests refused, by status"),
        ("gateway_delivery_attempts_total", "Delivery attempts, by subscription and result"),
        ("gateway_dead_letters_total", "Deliveries dead-lettered, by subscription and reason"),
        ("gateway_connections_refused_total", "Connections refused past server.max_connections"),
        ("gateway_connections_timed_out_total", "Connections cut off by a deadline, by phase"),
    ):
        metrics.describe(name, "counter", text)
    return metrics
