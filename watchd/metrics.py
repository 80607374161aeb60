"""/metrics and /healthz over HTTP (`metrics: 127.0.0.1:9385`, --metrics ADDR).

/metrics is the Prometheus exposition format written by prometheus_client (the reference client;
the OpenMetrics format for a scraper that asks for it), from the same per-watch reports as
`watchd status` (see watchd.stats), read at each scrape: nothing is counted twice or kept in
step. Per watch (label `watch`):

    watchd_events_total                     changes received
    watchd_batches_total                    batches of changes
    watchd_actions_total{result}            ok, failed, refused, check_failed, timeout, stopped
    watchd_action_duration_seconds          histogram of the actions' durations
    watchd_last_action_timestamp_seconds    when the last action ended (Unix time)
    watchd_last_action_duration_seconds
    watchd_reload_confirmations_total{result}  confirmed, not_confirmed (the signal action)
    watchd_restarts_total                   the app restarted after exiting by itself (run)
    watchd_overflows_total                  events were lost and the watch acted on a rescan
    watchd_watched_directories
    watchd_polling_fallbacks                roots polled because native watching was impossible
    watchd_paused                           1 while paused
    watchd_healthy                          0 while /healthz counts it as a problem

and the process's own metrics from the client's collectors (process_*, python_*).

/healthz answers 200 while every watch is watching (or knowingly degraded to polling, or paused),
503 with the reasons otherwise: a root that was there is gone, a watch failed to start, the app of
a `run` watch crash-loops, a file-system observer thread died, or watchd's main loop does not
answer. Kubernetes' livenessProbe restarts watchd on it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from watchd import __version__, platform
from watchd.model import ListenAddress
from watchd.stats import DURATION_BUCKETS, Report

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every watch's report and what makes watchd unhealthy, at one moment (from the daemon's loop)."""

    reports: tuple[Report, ...]
    problems: tuple[str, ...]


Source = Callable[[], Snapshot | None]  # None: the daemon's loop did not answer in time


class MetricsError(Exception):
    """The metrics address cannot be bound; the message names it and what to do."""


class WatchdCollector:
    """Metric families from a snapshot, made at each scrape."""

    def __init__(self, source: Source) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        snap = self._source()
        yield _info()
        if snap is None:
            return
        reports = snap.reports
        yield _counter("watchd_events", "Changes received.", reports, lambda r: r.counts.events)
        yield _counter("watchd_batches", "Batches of changes.", reports, lambda r: r.counts.batches)
        actions = CounterMetricFamily("watchd_actions", "Actions by result.", labels=["watch", "result"])
        for r in reports:
            for result, n in r.counts.actions.items():
                actions.add_metric([r.name, result], n)
        yield actions
        durations = HistogramMetricFamily(
            "watchd_action_duration_seconds", "How long actions took.", labels=["watch"]
        )
        for r in reports:
            c = r.counts
            if not c.duration_buckets:
                continue
            cumulative, buckets = 0, []
            for bound, n in zip((*DURATION_BUCKETS, float("inf")), c.duration_buckets, strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            durations.add_metric([r.name], buckets, c.duration_sum)
        yield durations
        last_at = GaugeMetricFamily(
            "watchd_last_action_timestamp_seconds",
            "When the last action ended (Unix time).",
            labels=["watch"],
        )
        last_took = GaugeMetricFamily(
            "watchd_last_action_duration_seconds", "How long the last action took.", labels=["watch"]
        )
        for r in reports:
            last = r.counts.last_action
            if last is not None:
                last_at.add_metric([r.name], last.at)
                last_took.add_metric([r.name], last.duration)
        yield last_at
        yield last_took
        confirmations = CounterMetricFamily(
            "watchd_reload_confirmations",
            "Signals whose reload was confirmed (the workers replaced) or not.",
            labels=["watch", "result"],
        )
        for r in reports:
            if r.action in ("pidfile", "process", "run"):  # (run: its reloads by signal)
                for result, n in r.counts.confirmations.items():
                    confirmations.add_metric([r.name, result], n)
        yield confirmations
        yield _counter(
            "watchd_restarts",
            "The app restarted after exiting by itself.",
            [r for r in reports if r.action == "run"],
            lambda r: r.counts.restarts,
        )
        yield _counter(
            "watchd_overflows",
            "Times events were lost and the watch acted on a rescan.",
            reports,
            lambda r: r.counts.overflows,
        )
        yield _gauge("watchd_watched_directories", "Directories watched.", reports, lambda r: r.directories)
        yield _gauge(
            "watchd_polling_fallbacks",
            "Roots polled because native watching was impossible.",
            reports,
            lambda r: r.polled,
        )
        yield _gauge("watchd_paused", "1 while the watch is paused.", reports, lambda r: r.state == "paused")
        yield _gauge(
            "watchd_healthy", "0 while the watch has a problem.", reports, lambda r: r.problem is None
        )


def _info() -> GaugeMetricFamily:
    family = GaugeMetricFamily("watchd_info", "watchd's version.", labels=["version"])
    family.add_metric([__version__], 1)
    return family


def _counter(
    name: str, text: str, reports: list[Report] | tuple[Report, ...], value: Callable[[Report], float]
) -> Metric:
    family = CounterMetricFamily(name, text, labels=["watch"])
    for r in reports:
        family.add_metric([r.name], value(r))
    return family


def _gauge(name: str, text: str, reports: tuple[Report, ...], value: Callable[[Report], float]) -> Metric:
    family = GaugeMetricFamily(name, text, labels=["watch"])
    for r in reports:
        family.add_metric([r.name], float(value(r)))
    return family


def registry(source: Source) -> CollectorRegistry:
    """watchd's metrics and the process's own (platform.current.process_collector: /proc on Linux,
    psutil on macOS), in a registry of their own (not the client's global one)."""
    reg = CollectorRegistry()
    reg.register(WatchdCollector(source))
    reg.register(platform.current.process_collector())  # type: ignore[arg-type]
    PlatformCollector(registry=reg)
    GCCollector(registry=reg)
    return reg


class MetricsServer:
    """The HTTP server: bound when made (MetricsError if it cannot be), served on its own threads."""

    def __init__(self, address: ListenAddress, source: Source) -> None:
        self.address = address
        self._source = source
        self._registry = registry(source)
        handler = _handler(self._registry, source)
        try:
            family = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)[0][0]
        except OSError as exc:
            raise MetricsError(f"metrics: cannot resolve {address.describe()}: {exc}") from None

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True
            allow_reuse_address = True

        try:
            self._server = Server((address.host, address.port), handler)
        except OSError as exc:
            raise MetricsError(
                f"metrics: cannot listen on {address.describe()}: {exc.strerror or exc} "
                "(another process uses it? give another address, or port 0 for any free one)"
            ) from None
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="watchd-metrics", daemon=True)

    @property
    def url(self) -> str:
        host = self.address.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def _handler(reg: CollectorRegistry, source: Source) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"watchd/{__version__}"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._answer(200, encoder(reg), content_type)
            elif path == "/healthz":
                snap = source()
                if snap is None:
                    problems: tuple[str, ...] = ("watchd's main loop did not answer in time",)
                else:
                    problems = snap.problems
                if problems:
                    text = "unhealthy: " + "; ".join(problems) + "\n"
                    self._answer(503, text.encode(), "text/plain; charset=utf-8")
                else:
                    n = len(snap.reports) if snap is not None else 0
                    self._answer(
                        200, f"ok: {n} watch{'es' if n != 1 else ''}\n".encode(), "text/plain; charset=utf-8"
                    )
            elif path == "/":
                self._answer(200, b"watchd: /metrics, /healthz\n", "text/plain; charset=utf-8")
            else:
                self._answer(404, b"not found: /metrics or /healthz\n", "text/plain; charset=utf-8")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("metrics: %s %s", self.address_string(), format % args)

    return Handler
