"""The predict call over a loaded version, for REST and gRPC alike: parsing "instances" (row)
and "inputs" (columnar) JSON bodies, or a PredictRequest's tensors, into per-row inputs; running
a signature on a batch of rows (exact, or through the ScaNN index); writing "predictions" /
"outputs" (strict JSON: non-finite scores are null) or output tensors back.

Inputs, per signature input: strings (a `{"b64": ...}` object for binary data). A `history`
row is a list of item ids, oldest first; rows of one batch may differ in length (padded with ""
here). `search` ("exact" or "scann", an extension of the API) picks how `serving_default` and
`serving_excluding_history` search; by default ScaNN from `SCANN_MIN_ITEMS` catalog items on.
"""

from __future__ import annotations

import base64
import math
from typing import Any, Dict, List, Tuple

import numpy as np
import tensorflow as tf

SCANN_MIN_ITEMS = 100_000
SEARCHABLE = ("serving_default", "serving_excluding_history")


class BadRequest(ValueError):
    """A client error; the message is returned as {"error": message} with HTTP 400 (gRPC
    INVALID_ARGUMENT)."""


def default_search(version) -> str:
    """"scann" from `SCANN_MIN_ITEMS` catalog items on when the export has an index."""
    return "scann" if version.scann and version.items >= SCANN_MIN_ITEMS else "exact"


def searches(version, signature_name: str) -> List[str]:
    """The searches a signature can run on a version (what warm-up exercises)."""
    if signature_name in SEARCHABLE and version.scann:
        return ["exact", "scann"]
    return ["exact"]


def check_search(version, signature_name: str, search) -> str:
    """The request's `search` field (None: the default) checked against the version."""
    if search is None:
        return default_search(version)
    if search not in ("exact", "scann"):
        raise BadRequest("'search' must be \"exact\" or \"scann\"")
    if search == "scann" and not version.scann:
        raise BadRequest(f"version {version.version} has no ScaNN index")
    return search


def input_specs(signature) -> Dict[str, Any]:
    """{input name: TensorSpec} of a concrete function."""
    return dict(signature.structured_input_signature[1])


def _decode_value(value, name):
    if isinstance(value, dict):
        if set(value) == {"b64"} and isinstance(value["b64"], str):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except ValueError:
                raise BadRequest(f"input '{name}': invalid base64") from None
        raise BadRequest(f"input '{name}': an object must be {{\"b64\": \"...\"}}")
    if isinstance(value, str):
        try:
            return value.encode()
        except UnicodeEncodeError:
            raise BadRequest(f"input '{name}': a string is not valid unicode (lone "
                             "surrogate)") from None
    raise BadRequest(f"input '{name}': expected a string, got {type(value).__name__}")


def _decode_cell(value, spec, name):
    """One row's value of an input: a list of strings for [batch, n] inputs, a string for
    [batch] inputs."""
    if spec.shape.rank == 2:
        if not isinstance(value, list):
            raise BadRequest(f"input '{name}': each row must be a list of strings")
        return [_decode_value(v, name) for v in value]
    if isinstance(value, list):
        raise BadRequest(f"input '{name}': each row must be a single string")
    return _decode_value(value, name)


def parse_body(body: Any, specs: Dict[str, Any], max_rows: int) -> Tuple[List[dict], bool]:
    """(rows: [{input name: value}], row_format) of a predict body.

    Raises:
      BadRequest: anything that does not fit the signature.
    """
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    if ("instances" in body) == ("inputs" in body):
        raise BadRequest("the request must have exactly one of 'instances' or 'inputs'")
    names = sorted(specs)
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise BadRequest("'instances' must be a list")
        rows = []
        for i, instance in enumerate(instances):
            if isinstance(instance, dict) and not set(instance) <= {"b64"}:
                missing = set(names) - set(instance)
                extra = set(instance) - set(names)
                if missing or extra:
                    raise BadRequest(f"instance {i}: expected inputs {names}, got "
                                     f"{sorted(instance)}")
                rows.append({n: _decode_cell(instance[n], specs[n], n) for n in names})
            elif len(names) == 1:
                rows.append({names[0]: _decode_cell(instance, specs[names[0]], names[0])})
            else:
                raise BadRequest(f"instance {i}: expected an object with inputs {names}")
        row_format = True
    else:
        inputs = body["inputs"]
        if not isinstance(inputs, dict) or (len(names) == 1 and names[0] not in inputs):
            inputs = {names[0]: inputs} if len(names) == 1 else inputs
        if not isinstance(inputs, dict) or set(inputs) != set(names):
            raise BadRequest(f"'inputs' must name the inputs {names}")
        columns = {}
        for n in names:
            if not isinstance(inputs[n], list):
                raise BadRequest(f"input '{n}': expected a list (one entry per row)")
            columns[n] = [_decode_cell(v, specs[n], n) for v in inputs[n]]
        counts = {len(c) for c in columns.values()}
        if len(counts) != 1:
            raise BadRequest("inputs have different numbers of rows")
        rows = [{n: columns[n][i] for n in names} for i in range(counts.pop())]
        row_format = False
    if not rows:
        raise BadRequest("the request has no rows")
    if len(rows) > max_rows:
        raise BadRequest(f"the request has {len(rows)} rows; at most {max_rows} are accepted")
    return rows, row_format


def rows_from_arrays(arrays: Dict[str, np.ndarray], specs: Dict[str, Any],
                     max_rows: int) -> List[dict]:
    """Per-row inputs of a PredictRequest's tensors ({name: numpy array}, e.g. from
    `tf.make_ndarray`).

    Raises:
      BadRequest: inputs that do not fit the signature.
    """
    names = sorted(specs)
    if set(arrays) != set(names):
        raise BadRequest(f"expected inputs {names}, got {sorted(arrays)}")
    rows = None
    for name in names:
        array, rank = arrays[name], specs[name].shape.rank
        if array.dtype != object:
            raise BadRequest(f"input '{name}': expects a DT_STRING tensor, got "
                             f"{array.dtype.name}")
        if array.ndim != rank:
            raise BadRequest(f"input '{name}': expects rank {rank}, got shape "
                             f"{list(array.shape)}")
        if rows is None:
            rows = [{} for _ in range(array.shape[0])]
        if array.shape[0] != len(rows):
            raise BadRequest("inputs have different numbers of rows")
        for row, value in zip(rows, array):
            row[name] = list(value) if rank == 2 else value
    if not rows:
        raise BadRequest("the request has no rows")
    if len(rows) > max_rows:
        raise BadRequest(f"the request has {len(rows)} rows; at most {max_rows} are accepted")
    return rows


def batch_inputs(rows: List[dict], specs: Dict[str, Any]) -> Dict[str, np.ndarray]:
    """Per-row inputs -> batched arrays ([batch, n] inputs padded with "")."""
    batched = {}
    for name, spec in specs.items():
        values = [row[name] for row in rows]
        if spec.shape.rank == 2:
            width = max(1, max(len(v) for v in values))
            batched[name] = np.array([v + [b""] * (width - len(v)) for v in values], object)
        else:
            batched[name] = np.array(values, object)
    return batched


def run_rows(version, signature_name: str, search: str, rows: List[dict]) -> List[dict]:
    """Runs a signature on rows; returns per-row {output: numpy value}.

    Raises:
      BadRequest: TensorFlow refused the input (an invalid argument: a malformed tf.Example,
        a feature of the wrong shape, bytes that are not UTF-8 where text is normalized).
    """
    signature = version.signatures[signature_name]
    specs = input_specs(signature)
    try:
        inputs = {n: tf.constant(v, tf.string) for n, v in batch_inputs(rows, specs).items()}
        if search == "scann" and signature_name in SEARCHABLE:
            outputs = _scann_outputs(version, signature_name, inputs["history"])
        else:
            outputs = {k: v.numpy() for k, v in signature(**inputs).items()}
    except (tf.errors.InvalidArgumentError, tf.errors.OutOfRangeError) as error:
        raise BadRequest(f"the model refused the input: {_op_message(error.message)}") from None
    except UnicodeDecodeError as error:
        # TensorFlow's message quoted the client's bytes, which are not UTF-8.
        message = error.object.decode("utf-8", "replace") if isinstance(
            error.object, bytes) else str(error)
        raise BadRequest(f"the model refused the input: {_op_message(message)}") from None
    return [{k: v[i] for k, v in outputs.items()} for i in range(len(rows))]


def _op_message(message: str) -> str:
    """The cause in a TensorFlow error message without its graph trace ("Graph execution
    error:", "Detected at node ...", stack frames, "[[{{node ...}}]]")."""
    kept = []
    for line in message.splitlines():
        text = line.strip()
        if not text or line[:1] in (" ", "\t") or text.startswith(
                ("Graph execution error", "Detected at node", "<stack traces", "[[")):
            continue
        kept.append(text)
    return ("; ".join(kept) or message.strip())[:500]


def _scann_outputs(version, signature_name, history):
    """Top-k through the ScaNN index, without scoring the whole catalog; only rows without a
    known item run the exact signature (its popularity fallback). The history left out is
    the one the encoder read (`embed_query`'s `history_items`: catalog ids as the export
    normalizes them), as on the exact path."""
    searcher, ids = version.scann
    embedded = version.signatures["embed_query"](history=history)
    query, known = embedded["query"].numpy(), embedded["known_items"].numpy()
    read = embedded["history_items"].numpy()
    k = int(version.info["top_k"])
    extra = read.shape[1] if signature_name == "serving_excluding_history" else 0
    neighbors, distances = searcher.search_batched(
        query, final_num_neighbors=min(k + extra, version.items))
    temperature = version.info["temperature"]
    result_ids = np.full((len(query), k), b"", object)
    result_scores = np.full((len(query), k), -np.inf, np.float32)
    for row in np.flatnonzero(known > 0):
        found_ids = ids[neighbors[row]]
        found_scores = np.asarray(distances[row], np.float32) / temperature
        if extra:
            keep = ~np.isin(found_ids, read[row][read[row] != b""])
            found_ids, found_scores = found_ids[keep], found_scores[keep]
        found_ids, found_scores = found_ids[:k], found_scores[:k]
        result_ids[row, :len(found_ids)] = found_ids
        result_scores[row, :len(found_ids)] = found_scores
    fallback = known == 0
    if fallback.any():
        exact = version.signatures[signature_name](history=tf.boolean_mask(history, fallback))
        result_ids[fallback] = exact["item_ids"].numpy()
        result_scores[fallback] = exact["scores"].numpy()
    return {"item_ids": result_ids, "scores": result_scores, "fallback": fallback,
            "known_items": known}


def _finite(values):
    """Nested lists of floats with non-finite values as None (strict JSON)."""
    if isinstance(values, list):
        return [_finite(v) for v in values]
    return values if math.isfinite(values) else None


def _bytes_value(value: bytes):
    try:
        return value.decode()
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(value).decode()}


def _json_value(value):
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return [_json_value(v) for v in value]
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            return _finite(value.tolist())
        return value.tolist()
    if isinstance(value, bytes):
        return _bytes_value(value)
    if isinstance(value, np.generic):
        value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, bytes):
            return _bytes_value(value)
    return value


def response(results: List[dict], row_format: bool) -> dict:
    """TF Serving's answer: "predictions" (rows) or "outputs" (columns); a single output is
    given bare."""
    names = sorted(results[0])
    if row_format:
        if len(names) == 1:
            return {"predictions": [_json_value(r[names[0]]) for r in results]}
        return {"predictions": [{n: _json_value(r[n]) for n in names} for r in results]}
    columns = {n: [_json_value(r[n]) for r in results] for n in names}
    return {"outputs": columns[names[0]] if len(names) == 1 else columns}


def output_arrays(results: List[dict], output_filter=()) -> Dict[str, np.ndarray]:
    """Per-row results -> {output: batched array} (a PredictResponse's outputs), only the
    outputs `output_filter` names when it names any.

    Raises:
      BadRequest: the filter names an output the signature does not have.
    """
    names = sorted(results[0])
    if output_filter:
        unknown = sorted(set(output_filter) - set(names))
        if unknown:
            raise BadRequest(f"output_filter names outputs the signature does not have: "
                             f"{unknown}; it has {names}")
        names = sorted(set(output_filter))
    return {n: np.stack([r[n] for r in results]) for n in names}
