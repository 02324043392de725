"""`ccfrec serve`: TF Serving's REST API (`rest`) and gRPC API (`grpc_api`) over the versions of
one or more models (`model_config`, `registry`), in one process, with dynamic batching, version
polling, warm-up, Prometheus metrics and a draining shutdown.

Lifecycle: the models' versions are loaded (and warmed up) before either port listens; their
directories are polled every `poll_seconds`. SIGTERM or SIGINT stops both listeners at once,
lets requests in flight finish (at most `drain_seconds`) and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import dataclass, field
from typing import List, Optional

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from tf_ccfrec import storage
from tf_ccfrec.serving import grpc_api
from tf_ccfrec.serving.model_config import ModelConfig
from tf_ccfrec.serving.rest import RestApi
from tf_ccfrec.serving.servables import BatchingConfig, Servables

log = logging.getLogger("ccfrec.serve")


@dataclass(frozen=True)
class ServerConfig:
    """Attributes:
      models: what to serve (`model_config.single` or `model_config.read`).
      host: the address both APIs bind (loopback unless told otherwise).
      rest_port: the REST API's port (0: no REST API).
      grpc_port: the gRPC API's port (0: no gRPC API).
      max_body_bytes: larger REST bodies get 413, larger gRPC messages RESOURCE_EXHAUSTED.
      batching: dynamic batching and queue bounds.
      poll_seconds: how often version directories are scanned.
      timeout_s: a REST predict request's deadline (gRPC: the client's deadline).
      drain_seconds: how long a shutdown waits for requests in flight.
      warmup: replay each version's warm-up requests before it serves.
      config_file, config_poll_seconds: the model config file `models` came from and how
        often it is read again (0: never), TF Serving's
        `--model_config_file_poll_wait_seconds`.
    """

    models: List[ModelConfig]
    host: str = "127.0.0.1"
    rest_port: int = 8501
    grpc_port: int = 8500
    max_body_bytes: int = 4 << 20
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    poll_seconds: float = 2.0
    timeout_s: float = 30.0
    drain_seconds: float = 10.0
    warmup: bool = True
    config_file: Optional[str] = None
    config_poll_seconds: float = 0.0


class Metrics:
    """Prometheus series of both APIs."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("ccfrec_requests", "Requests by API, endpoint and status",
                                ["api", "endpoint", "code"], registry=self.registry)
        self.latency = Histogram("ccfrec_request_latency_seconds", "Request latency",
                                 ["api", "endpoint"], registry=self.registry,
                                 buckets=(.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5))
        self.batch_rows = Histogram("ccfrec_batch_rows", "Rows per executed batch",
                                    registry=self.registry,
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024))

    def request(self, api: str, endpoint: str, code: str, seconds: float) -> None:
        self.requests.labels(api, endpoint, code).inc()
        self.latency.labels(api, endpoint).observe(seconds)


async def _poll(servables: Servables, config: ServerConfig):
    """Scans the version directories every `poll_seconds`; reads the model config file again
    every `config_poll_seconds` (a file that no longer parses is logged, the models served
    stay as they were)."""
    from tf_ccfrec.serving import model_config

    loop = asyncio.get_running_loop()
    config_read, config_text = time.monotonic(), None
    if config.config_file:
        config_text = await loop.run_in_executor(None, storage.read_bytes, config.config_file)
    while True:
        await asyncio.sleep(config.poll_seconds)
        try:
            if config.config_file and config.config_poll_seconds and \
                    time.monotonic() - config_read >= config.config_poll_seconds:
                config_read = time.monotonic()
                text = await loop.run_in_executor(None, storage.read_bytes, config.config_file)
                if text != config_text:
                    config_text = text
                    try:
                        models = model_config.parse(text.decode("utf-8", "replace"),
                                                    storage.absolute(config.config_file))
                    except model_config.ConfigError as error:
                        log.error("the model config file changed and is refused (the models "
                                  "served stay as they were): %s", error)
                    else:
                        servables.forget(servables.reconfigure(models))
            unloaded = await loop.run_in_executor(None, servables.refresh)
        except Exception:  # noqa: BLE001  (storage hiccup: the next poll tries again)
            log.exception("polling the model directories failed")
            continue
        servables.forget(unloaded)


async def run(config: ServerConfig, started=None) -> None:
    """Serves until SIGTERM or SIGINT, then drains. `started(rest_port, grpc_port)` is called
    once both listen."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    metrics = Metrics()
    servables = Servables(config.models, config.batching, config.warmup)
    servables.on_batch = metrics.batch_rows.observe
    servables.start()
    servables.forget(await loop.run_in_executor(None, servables.refresh))
    for name, registry in servables.registries.items():
        for label, version in registry.labels.items():
            if version not in registry.available():
                log.warning("label %s of %s names version %s, which is not available",
                            label, name, version)
    if stop.is_set():
        return
    rest = RestApi(servables, metrics, config.max_body_bytes, config.timeout_s)
    runner = web.AppRunner(rest.app(), handle_signals=False,
                           shutdown_timeout=config.drain_seconds, access_log=None)
    await runner.setup()
    rest_port = grpc_port = 0
    if config.rest_port:
        site = web.TCPSite(runner, config.host, config.rest_port)
        await site.start()
        rest_port = runner.addresses[0][1]
        log.info("REST API on http://%s:%d", config.host, rest_port)
    grpc_server = None
    if config.grpc_port:
        grpc_server, grpc_port = await grpc_api.start(servables, metrics, config.host,
                                                      config.grpc_port, config.max_body_bytes)
        if not grpc_port:
            raise OSError(f"cannot bind the gRPC API to {config.host}:{config.grpc_port}")
        log.info("gRPC API on %s:%d", config.host, grpc_port)
    if started is not None:
        started(rest_port, grpc_port)
    poller = loop.create_task(_poll(servables, config))
    await stop.wait()
    log.info("shutting down: no new requests, draining those in flight (at most %.0f s)",
             config.drain_seconds)
    poller.cancel()
    drains = [runner.cleanup()]
    if grpc_server is not None:
        drains.append(grpc_server.stop(config.drain_seconds))
    await asyncio.gather(*drains)
    servables.close()
    log.info("stopped")


def serve(config: ServerConfig) -> None:
    """Runs the server until SIGTERM or SIGINT (then returns, after draining)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    asyncio.run(run(config))
