"""`ccfrec serve`: the TF Serving REST API (predict, model status, metadata) for one model's
versions under `<base>/<name>/`, on aiohttp, with dynamic batching, version polling and a
Prometheus endpoint.

    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}][/metadata]
    GET  /monitoring/prometheus/metrics

Client faults answer {"error": "..."} with 400 (bad body), 404 (unknown model, version, label,
signature), 413 (body over the limit); the server never answers a bad request with a 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Optional

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST

from tf_ccfrec.serving import predict
from tf_ccfrec.serving.batching import Batchers
from tf_ccfrec.serving.registry import ModelRegistry

log = logging.getLogger("ccfrec.serve")

_MODEL_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<rest>:predict|/metadata)?$")


@dataclass(frozen=True)
class ServerConfig:
    """Attributes:
      base, name: serve `<base>/<name>/<version>/` directories.
      host, port: where to listen (loopback unless told otherwise).
      max_body_bytes: larger request bodies get 413.
      max_rows: rows per request at most.
      max_batch, max_wait_ms: dynamic batching.
      poll_seconds: how often the version directory is scanned.
      labels: {label: version}, as TF Serving's version_labels.
    """

    base: str
    name: str
    host: str = "127.0.0.1"
    port: int = 8501
    max_body_bytes: int = 4 << 20
    max_rows: int = 1024
    max_batch: int = 64
    max_wait_ms: float = 0.0
    poll_seconds: float = 2.0
    labels: Optional[dict] = None


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class Server:
    def __init__(self, config: ServerConfig):
        self.config = config
        self.registry = ModelRegistry(config.base, config.name)
        self.registry.labels.update(config.labels or {})
        self.metrics = CollectorRegistry()
        self.requests = Counter("ccfrec_requests", "Requests by endpoint and status",
                                ["endpoint", "code"], registry=self.metrics)
        self.latency = Histogram("ccfrec_request_latency_seconds", "Request latency",
                                 ["endpoint"], registry=self.metrics,
                                 buckets=(.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5))
        self.batch_rows = Histogram("ccfrec_batch_rows", "Rows per executed batch",
                                    registry=self.metrics, buckets=(1, 2, 4, 8, 16, 32, 64, 128))
        self.batchers: Optional[Batchers] = None

    # -- app --------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body_bytes,
                              middlewares=[self._guard])
        app.router.add_route("*", "/monitoring/prometheus/metrics", self._prometheus)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, app):
        self.batchers = Batchers(self.config.max_batch, self.config.max_wait_ms)
        await asyncio.get_running_loop().run_in_executor(None, self.registry.refresh)
        app["poller"] = asyncio.get_running_loop().create_task(self._poll())

    async def _stop(self, app):
        app["poller"].cancel()
        self.batchers.close()

    async def _poll(self):
        while True:
            await asyncio.sleep(self.config.poll_seconds)
            await asyncio.get_running_loop().run_in_executor(None, self.registry.refresh)

    @web.middleware
    async def _guard(self, request, handler):
        started = time.perf_counter()
        endpoint = "predict" if request.path.endswith(":predict") else (
            "metrics" if request.path.startswith("/monitoring") else "status")
        try:
            result = await handler(request)
        except web.HTTPRequestEntityTooLarge:
            result = _error(413, f"request body over {self.config.max_body_bytes} bytes")
        except web.HTTPException as error:
            result = _error(error.status, error.reason)
        except Exception as error:  # noqa: BLE001  (logged; the client sees a 500)
            log.exception("internal error")
            result = _error(500, f"internal error: {type(error).__name__}")
        self.requests.labels(endpoint, str(result.status)).inc()
        self.latency.labels(endpoint).observe(time.perf_counter() - started)
        return result

    async def _prometheus(self, request):
        return web.Response(body=generate_latest(self.metrics),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _dispatch(self, request):
        match = _MODEL_PATH.match(request.path)
        if not match:
            return _error(404, f"Malformed request: {request.method} {request.path}")
        if match["name"] != self.config.name:
            return _error(404, f"Servable not found for request: Latest({match['name']})")
        try:
            version = self.registry.resolve(
                int(match["version"]) if match["version"] else None, match["label"])
        except LookupError as error:
            return _error(404, str(error))
        if match["rest"] == ":predict":
            if request.method != "POST":
                return _error(405, "predict takes POST")
            return await self._predict(request, version)
        if request.method != "GET":
            return _error(405, "model status and metadata take GET")
        if match["rest"] == "/metadata":
            return web.json_response({
                "model_spec": {"name": self.config.name, "signature_name": "",
                               "version": str(version.version)},
                "metadata": {"signature_def": {"signature_def": {
                    name: predict.signature_metadata(fn)
                    for name, fn in version.signatures.items()}}}})
        versions = [version.version] if (match["version"] or match["label"]) else \
            self.registry.available()
        return web.json_response({"model_version_status": [
            {"version": str(v), "state": "AVAILABLE",
             "status": {"error_code": "OK", "error_message": ""}} for v in versions]})

    async def _predict(self, request, version):
        try:
            body = json.loads(await request.read())
        except web.HTTPRequestEntityTooLarge:
            raise
        except ValueError as error:
            return _error(400, f"malformed JSON: {error}")
        if not isinstance(body, dict):
            return _error(400, "the request body must be a JSON object")
        name = body.get("signature_name", "serving_default")
        if name not in version.signatures:
            return _error(404, f"Serving signature name: \"{name}\" not found in signature def")
        search = body.get("search")
        if search is None:
            search = "scann" if version.scann and version.items >= predict.SCANN_MIN_ITEMS \
                else "exact"
        if search not in ("exact", "scann"):
            return _error(400, "'search' must be \"exact\" or \"scann\"")
        if search == "scann" and not version.scann:
            return _error(400, f"version {version.version} has no ScaNN index")
        try:
            rows, row_format = predict.parse_body(
                body, predict.input_specs(version.signatures[name]), self.config.max_rows)
        except predict.BadRequest as error:
            return _error(400, str(error))

        def run(batch_rows):
            self.batch_rows.observe(len(batch_rows))
            return predict.run_rows(version, name, search, batch_rows)

        batcher = self.batchers.get((version.version, id(version), name, search), run)
        results = await batcher.submit(rows)
        return web.json_response(predict.response(results, row_format))


def serve(config: ServerConfig) -> None:
    """Runs the server until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    web.run_app(Server(config).app(), host=config.host, port=config.port,
                print=lambda *_: log.info("listening on http://%s:%d", config.host,
                                          config.port))
