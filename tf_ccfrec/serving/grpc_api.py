"""TF Serving's gRPC API on grpc.aio: `tensorflow.serving.PredictionService` (Predict,
GetModelMetadata; Classify, Regress and MultiInference answer UNIMPLEMENTED) and
`tensorflow.serving.ModelService` (GetModelStatus), over the same models, versions, labels and
batchers as the REST API. Clients: `tensorflow_serving.apis.prediction_service_pb2_grpc.
PredictionServiceStub` with `tf.make_tensor_proto` inputs.

Status codes: NOT_FOUND (model, version, label, signature), INVALID_ARGUMENT (inputs, or
input TensorFlow refuses), UNAVAILABLE (overload, shutting down), DEADLINE_EXCEEDED (the
client's deadline passed while queued).
"""

from __future__ import annotations

import logging
import time
from typing import Optional

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_service_pb2_grpc, predict_pb2,
                                     prediction_service_pb2_grpc)

from tf_ccfrec.serving import predict, servables as servables_module
from tf_ccfrec.serving.batching import DeadlineExceeded, Overloaded

log = logging.getLogger("ccfrec.serve")

_STATES = {"START": 10, "LOADING": 20, "AVAILABLE": 30, "UNLOADING": 40, "END": 50}


def _spec(model_spec):
    """(name, version or None, label or None) of a ModelSpec."""
    choice = model_spec.WhichOneof("version_choice")
    version = model_spec.version.value if choice == "version" else None
    label = model_spec.version_label if choice == "version_label" else None
    return model_spec.name, version, label


def _tensor_array(name: str, proto) -> np.ndarray:
    """A request's TensorProto as an array; string tensors without a copy through NumPy's
    converters (the common case), anything else through `tf.make_ndarray`."""
    if proto.dtype == types_pb2.DT_STRING and not proto.tensor_content:
        shape = [d.size for d in proto.tensor_shape.dim]
        values = proto.string_val
        count = int(np.prod(shape)) if shape else 1
        if any(d < 0 for d in shape) or (len(values) != count and len(values) != 1):
            raise predict.BadRequest(f"input '{name}': {len(values)} values do not fill "
                                     f"shape {shape}")
        array = np.empty(count, object)
        array[:] = list(values) if len(values) == count else [values[0]] * count
        return array.reshape(shape)
    try:
        return tf.make_ndarray(proto)
    except Exception as failure:  # noqa: BLE001  (any malformed TensorProto)
        raise predict.BadRequest(f"input '{name}': not a valid TensorProto: "
                                 f"{failure}"[:300]) from None


_DTYPES = {np.dtype(np.float32): types_pb2.DT_FLOAT, np.dtype(np.float64): types_pb2.DT_DOUBLE,
           np.dtype(np.int32): types_pb2.DT_INT32, np.dtype(np.int64): types_pb2.DT_INT64,
           np.dtype(np.bool_): types_pb2.DT_BOOL}


def _tensor_proto(array: np.ndarray, proto) -> None:
    """Fills a response TensorProto from an output array (what `tf.make_tensor_proto` writes,
    without its per-call overhead)."""
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    if array.dtype == object:
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(array.ravel().tolist())
    elif array.dtype in _DTYPES:
        proto.dtype = _DTYPES[array.dtype]
        proto.tensor_content = np.ascontiguousarray(array).tobytes()
    else:
        proto.CopyFrom(tf.make_tensor_proto(array))


class _Calls:
    """Shared by both services: status codes of the servables' errors, metrics."""

    def __init__(self, servables, metrics):
        self.servables, self.metrics = servables, metrics

    async def guarded(self, method: str, context, call):
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            return await call()
        except LookupError as failure:
            code, message = grpc.StatusCode.NOT_FOUND, str(failure)
        except predict.BadRequest as failure:
            code, message = grpc.StatusCode.INVALID_ARGUMENT, str(failure)
        except Overloaded as failure:
            code, message = grpc.StatusCode.UNAVAILABLE, str(failure)
        except DeadlineExceeded as failure:
            code, message = grpc.StatusCode.DEADLINE_EXCEEDED, str(failure)
        except Exception as failure:  # noqa: BLE001  (logged; the client sees INTERNAL)
            log.exception("internal error")
            code, message = grpc.StatusCode.INTERNAL, f"internal error: {type(failure).__name__}"
        finally:
            self.metrics.request("grpc", method, code.name, time.perf_counter() - started)
        await context.abort(code, message)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, servables, metrics):
        self.calls = _Calls(servables, metrics)
        self.servables = servables

    async def Predict(self, request, context):
        return await self.calls.guarded("predict", context,
                                        lambda: self._predict(request, context))

    async def _predict(self, request, context):
        name, version_number, label = _spec(request.model_spec)
        version = self.servables.resolve(name, version_number, label)
        signature_name, function = servables_module.signature(
            version, request.model_spec.signature_name)
        specs = predict.input_specs(function)
        arrays = {key: _tensor_array(key, value) for key, value in request.inputs.items()}
        rows = predict.rows_from_arrays(arrays, specs, self.servables.batching.max_rows)
        remaining: Optional[float] = context.time_remaining()
        results = await self.servables.predict(version, signature_name,
                                               predict.default_search(version), rows, remaining)
        outputs = predict.output_arrays(results, list(request.output_filter))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = name
        response.model_spec.version.value = version.version
        response.model_spec.signature_name = signature_name
        for key, value in outputs.items():
            _tensor_proto(value, response.outputs[key])
        return response

    async def GetModelMetadata(self, request, context):
        return await self.calls.guarded("metadata", context, lambda: self._metadata(request))

    async def _metadata(self, request):
        fields = list(request.metadata_field)
        if fields != ["signature_def"]:
            raise predict.BadRequest(f"metadata_field must be [\"signature_def\"], got {fields}")
        name, version_number, label = _spec(request.model_spec)
        version = self.servables.resolve(name, version_number, label)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for key, definition in version.signature_defs.items():
            signatures.signature_def[key].CopyFrom(definition)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = name
        response.model_spec.version.value = version.version
        response.metadata["signature_def"].Pack(signatures)
        return response

    async def Classify(self, request, context):
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Classify is not served: the "
                            "export has predict signatures only")

    async def Regress(self, request, context):
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Regress is not served: the "
                            "export has predict signatures only")

    async def MultiInference(self, request, context):
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "MultiInference is not served: "
                            "the export has predict signatures only")


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, servables, metrics):
        self.calls = _Calls(servables, metrics)
        self.servables = servables

    async def GetModelStatus(self, request, context):
        return await self.calls.guarded("status", context, lambda: self._status(request))

    async def _status(self, request):
        name, version_number, label = _spec(request.model_spec)
        response = get_model_status_pb2.GetModelStatusResponse()
        for version, status in self.servables.statuses(name, version_number, label):
            entry = response.model_version_status.add()
            entry.version = version
            entry.state = _STATES[status.state]
            entry.status.error_code = _error_code(status.error_code)
            entry.status.error_message = status.error_message
        return response

    async def HandleReloadConfigRequest(self, request, context):
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the model config is read from "
                            "--model_config_file (again every "
                            "--model_config_file_poll_wait_seconds)")


def _error_code(name: str) -> int:
    from tensorflow.core.protobuf import error_codes_pb2

    return error_codes_pb2.Code.Value(name) if name in error_codes_pb2.Code.keys() else 2


async def start(servables, metrics, host: str, port: int, max_message_bytes: int):
    """A started grpc.aio server on host:port; returns (server, bound port)."""
    server = grpc.aio.server(options=[
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", 64 << 20),
        ("grpc.so_reuseport", 0)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(servables, metrics), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelService(servables, metrics), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return server, bound
