"""TF Serving's REST API on aiohttp:

    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}][/metadata]
    GET  /monitoring/prometheus/metrics

Client faults answer {"error": "..."} with 400 (bad body, input TensorFlow refuses), 404
(unknown model, version, label, signature), 405, 413 (body over the limit); overload 503 and a
passed deadline 504. Every answer is strict JSON (RFC 8259: no NaN or Infinity).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tf_ccfrec.serving import predict, servables as servables_module
from tf_ccfrec.serving.batching import DeadlineExceeded, Overloaded

log = logging.getLogger("ccfrec.serve")

_MODEL_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d{1,18})|/labels/(?P<label>[^/:]+))?"
    r"(?P<rest>:predict|/metadata)?$")
_dumps = functools.partial(json.dumps, allow_nan=False, ensure_ascii=False)


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, dumps=_dumps)


def status_json(statuses) -> dict:
    return {"model_version_status": [
        {"version": str(v), "state": s.state,
         "status": {"error_code": s.error_code, "error_message": s.error_message}}
        for v, s in statuses]}


def metadata_json(version) -> dict:
    """TF Serving's metadata answer: the SignatureDefMap as saved, in proto JSON form."""
    from google.protobuf import json_format
    from tensorflow_serving.apis import get_model_metadata_pb2

    signatures = get_model_metadata_pb2.SignatureDefMap()
    for name, definition in version.signature_defs.items():
        signatures.signature_def[name].CopyFrom(definition)
    return {"model_spec": {"name": version.model, "signature_name": "",
                           "version": str(version.version)},
            "metadata": {"signature_def": json_format.MessageToDict(
                signatures, preserving_proto_field_name=True,
                always_print_fields_with_no_presence=True)}}


class RestApi:
    """Args:
      servables: the served models.
      metrics: the server's `Metrics`.
      max_body_bytes: larger bodies get 413.
      timeout_s: a predict request's deadline.
    """

    def __init__(self, servables, metrics, max_body_bytes: int, timeout_s: float):
        self.servables, self.metrics = servables, metrics
        self.max_body_bytes, self.timeout_s = max_body_bytes, timeout_s
        self.in_flight = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes, middlewares=[self._guard])
        app.router.add_route("*", "/monitoring/prometheus/metrics", self._prometheus)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    @web.middleware
    async def _guard(self, request, handler):
        started = time.perf_counter()
        endpoint = "predict" if request.path.endswith(":predict") else (
            "metrics" if request.path.startswith("/monitoring") else "status")
        self.in_flight += 1
        try:
            result = await handler(request)
        except web.HTTPRequestEntityTooLarge:
            result = error(413, f"request body over {self.max_body_bytes} bytes")
        except web.HTTPException as failure:
            result = error(failure.status, failure.reason)
        except Exception as failure:  # noqa: BLE001  (logged; the client sees a 500)
            log.exception("internal error")
            result = error(500, f"internal error: {type(failure).__name__}")
        finally:
            self.in_flight -= 1
        self.metrics.request("rest", endpoint, str(result.status), time.perf_counter() - started)
        return result

    async def _prometheus(self, request):
        return web.Response(body=generate_latest(self.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _dispatch(self, request):
        match = _MODEL_PATH.match(request.path)
        if not match:
            return error(404, f"Malformed request: {request.method} {request.path}"[:300])
        version_number = int(match["version"]) if match["version"] else None
        if match["rest"] is None:
            if request.method != "GET":
                return error(405, "model status takes GET")
            try:
                statuses = self.servables.statuses(match["name"], version_number,
                                                   match["label"])
            except LookupError as failure:
                return error(404, str(failure))
            return web.json_response(status_json(statuses), dumps=_dumps)
        try:
            version = self.servables.resolve(match["name"], version_number, match["label"])
        except LookupError as failure:
            return error(404, str(failure))
        if match["rest"] == ":predict":
            if request.method != "POST":
                return error(405, "predict takes POST")
            return await self._predict(request, version)
        if request.method != "GET":
            return error(405, "model metadata takes GET")
        return web.json_response(metadata_json(version), dumps=_dumps)

    async def _predict(self, request, version):
        try:
            body = json.loads(await request.read())
        except web.HTTPRequestEntityTooLarge:
            raise
        except web.RequestPayloadError as failure:  # e.g. a Content-Encoding it is not in
            return error(400, f"the request body cannot be read: {failure}"[:300])
        except (ValueError, RecursionError) as failure:
            return error(400, f"malformed JSON: {failure}"[:300])
        if not isinstance(body, dict):
            return error(400, "the request body must be a JSON object")
        signature_name = body.get("signature_name", "serving_default")
        if not isinstance(signature_name, str):
            return error(400, "'signature_name' must be a string")
        try:
            signature_name, function = servables_module.signature(version, signature_name)
        except LookupError as failure:
            return error(404, str(failure))
        try:
            search = predict.check_search(version, signature_name, body.get("search"))
            rows, row_format = predict.parse_body(body, predict.input_specs(function),
                                                  self.servables.batching.max_rows)
            results = await self.servables.predict(version, signature_name, search, rows,
                                                   self.timeout_s)
            answer = predict.response(results, row_format)
        except predict.BadRequest as failure:
            return error(400, str(failure))
        except Overloaded as failure:
            return error(503, str(failure))
        except DeadlineExceeded as failure:
            return error(504, str(failure))
        return web.json_response(answer, dumps=_dumps)
