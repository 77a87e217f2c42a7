"""Metrics exposed at `GET /metrics` in the Prometheus text format, kept by `prometheus_client`
in a registry of this gateway's own (CONTRACT 3 and 6).

Families are made at first use, with the label names of that use. Gauges that come from the
store (backlog, oldest pending age) are set by `refresh` callbacks run before each scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase

log = logging.getLogger("gateway.metrics")

disable_created_metrics()  # type: ignore[no-untyped-call]  # `*_created` series would double what is exposed, for no alert

# Accepted -> delivered spans retries, so its buckets reach hours; one attempt's reach its timeout.
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600)
ATTEMPT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# A group commit takes well under a millisecond on a local SQLite file; seconds mean trouble.
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
_BUCKETS = {"gateway_store_commit_seconds": COMMIT_BUCKETS}

Refresh = Callable[["Metrics"], Awaitable[None]]


class Metrics:
    """Counters, gauges and histograms with labels, in one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._help: dict[str, tuple[str, str]] = {}
        self._families: dict[str, MetricWrapperBase] = {}
        # Labelled children by (name, labels): `labels()` costs a lock and a dict build per call,
        # and counters move on every delivery attempt.
        self._children: dict[tuple[str, tuple[tuple[str, str], ...]], MetricWrapperBase] = {}
        self._refresh: list[Refresh] = []

    def describe(self, name: str, kind: str, text: str) -> None:
        self._help[name] = (kind, text)

    def _family(self, name: str, kind: str, labels: Mapping[str, str]) -> MetricWrapperBase:
        key = (name, tuple(labels.items()))
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._labelled(name, kind, labels)
        return child

    def _labelled(self, name: str, kind: str, labels: Mapping[str, str]) -> MetricWrapperBase:
        family = self._families.get(name)
        if family is None:
            text = self._help.get(name, (kind, name))[1]
            names = sorted(labels)
            if kind == "counter":
                family = Counter(name, text, names, registry=self.registry)
            elif kind == "gauge":
                family = Gauge(name, text, names, registry=self.registry)
            else:
                buckets = _BUCKETS.get(name) or (
                    LATENCY_BUCKETS if "latency" in name else ATTEMPT_BUCKETS
                )
                family = Histogram(name, text, names, registry=self.registry, buckets=buckets)
            self._families[name] = family
        return family.labels(**labels) if labels else family

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        counter = self._family(name, "counter", labels)
        assert isinstance(counter, Counter)
        counter.inc(amount)

    def observe(self, name: str, value: float, **labels: str) -> None:
        histogram = self._family(name, "histogram", labels)
        assert isinstance(histogram, Histogram)
        histogram.observe(max(value, 0.0))

    def set(self, name: str, value: float, **labels: str) -> None:
        gauge = self._family(name, "gauge", labels)
        assert isinstance(gauge, Gauge)
        gauge.set(value)

    def clear(self, name: str) -> None:
        """Forget every label set of a family (subscriptions that are gone)."""
        family = self._families.get(name)
        if family is not None:
            family.clear()
            for key in [key for key in self._children if key[0] == name]:
                del self._children[key]

    def gauge(self, name: str, text: str, read: Callable[[], float]) -> None:
        """A gauge read at scrape time."""
        self._help[name] = ("gauge", text)
        gauge = self._family(name, "gauge", {})
        assert isinstance(gauge, Gauge)
        gauge.set_function(read)

    def value(self, name: str, **labels: str) -> float:
        found = self.registry.get_sample_value(name, dict(labels))
        return 0.0 if found is None else found

    def on_refresh(self, callback: Refresh) -> None:
        """Run `callback` before each scrape (gauges read from the store)."""
        self._refresh.append(callback)

    async def refresh(self) -> None:
        for callback in self._refresh:
            try:
                await callback(self)
            except Exception as exc:  # a scrape still answers with what is known
                log.warning("metrics not refreshed: %s", exc)

    def render(self) -> str:
        return generate_latest(self.registry).decode()


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
        ("gateway_delivery_yielded_seconds_total",
         "Seconds delivery slowed down for arriving events while the event loop was CPU-bound"),
    ):
        metrics.describe(name, "counter", text)
    for name, text in (
        ("gateway_backlog", "Pending deliveries, by subscription"),
        ("gateway_oldest_pending_seconds", "Age of the oldest pending delivery, by subscription"),
        ("gateway_breaker_open", "1 while the subscription's circuit breaker is open"),
        ("gateway_subscription_paused", "1 while the subscription is paused"),
        ("gateway_config_generation", "Config generation loaded (1 at start, +1 per reload)"),
        ("gateway_config_reload_failed", "1 when the last reload was refused"),
    ):
        metrics.describe(name, "gauge", text)
    for name, text in (
        ("gateway_delivery_latency_seconds", "Accepted to delivered, by subscription"),
        ("gateway_attempt_duration_seconds", "One delivery attempt, by subscription"),
        ("gateway_store_commit_seconds", "One group commit of the store, BEGIN to COMMIT"),
    ):
        metrics.describe(name, "histogram", text)
    return metrics
