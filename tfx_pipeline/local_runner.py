"""Runs the pipeline with TFX's LocalDagRunner (Beam's DirectRunner for the data components)
and ML Metadata in a local SQLite file.

    python -m tfx_pipeline.local_runner --input data/office --format lcrec  (see --help)
or `ccfrec pipeline run`, which also prints the evaluation.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from tfx_pipeline.pipeline.configs import PipelineConfig


class PipelineTerminated(BaseException):
    """SIGTERM arrived. A BaseException, so that no `except Exception` on the way (AutoGraph,
    Beam, TFX's launcher) can swallow it; `run` then closes the interrupted executions."""


_received: List[Tuple[int, float]] = []  # (signal, time) of each SIGTERM during `run`


def _message(signum: int) -> str:
    return (f"signal {signum}: pipeline run stopped; run it again to resume (finished "
            f"components come from the cache)")


def _terminate(signum, frame):
    _received.append((signum, time.time()))
    raise PipelineTerminated(_message(signum))


def metadata_path(config: PipelineConfig) -> str:
    return config.metadata_path or os.path.join(config.pipeline_root, "metadata.sqlite")


def close_unfinished(path: str, pipeline_name: str, reason: str,
                     failed_since: Optional[float] = None) -> List[str]:
    """Marks the pipeline's executions still NEW or RUNNING in ML Metadata as CANCELED, with
    `reason` in their `stopped` property, so that the store only holds finished executions;
    with `failed_since` (seconds since the epoch), also those marked FAILED since then (a
    signal that lands inside a C++ extension can come back as an ordinary exception, which
    TFX's launcher records as a failure). Returns their node ids. (One LocalDagRunner per
    metadata store at a time.)"""
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    if not os.path.exists(path):
        return []
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = path
    store = metadata_store.MetadataStore(connection)
    open_states = (metadata_store_pb2.Execution.NEW, metadata_store_pb2.Execution.RUNNING)
    prefix = pipeline_name + "."
    closed = []
    for execution in store.get_executions():
        failed_by_signal = (failed_since is not None
                            and execution.last_known_state == metadata_store_pb2.Execution.FAILED
                            and execution.last_update_time_since_epoch >= failed_since * 1000)
        if execution.last_known_state not in open_states and not failed_by_signal:
            continue
        nodes = [c.name[len(prefix):] for c in store.get_contexts_by_execution(execution.id)
                 if c.type == "node" and c.name.startswith(prefix)]
        if not nodes:
            continue
        execution.last_known_state = metadata_store_pb2.Execution.CANCELED
        execution.custom_properties["stopped"].string_value = reason
        store.put_executions([execution])
        closed += nodes
    return closed


# progress(node id, state, wall seconds): called as each component finishes.
Progress = Callable[[str, str, float], None]


@contextlib.contextmanager
def reporting(path: str, pipeline_name: str, progress: Optional[Progress]) -> Iterator[None]:
    """While active, LocalDagRunner reports each component through `progress` as it finishes:
    its state in ML Metadata (COMPLETE, CACHED; FAILED when it raised) and wall time.

    LocalDagRunner runs one component at a time in this thread and builds a
    `tfx.orchestration.portable.launcher.Launcher` for each; a subclass in its place times
    `launch()` and reads the execution's state after it returned, when no write is in flight."""
    if progress is None:
        yield
        return
    from tfx.orchestration.portable import launcher as portable

    from tfx_pipeline import outputs

    original = portable.Launcher

    class ReportingLauncher(original):
        def launch(self):
            node = self._pipeline_node.node_info.id
            started = time.time()
            try:
                result = super().launch()
            except BaseException:
                progress(node, "FAILED", time.time() - started)
                raise
            state = outputs.node_state(path, pipeline_name, node) or "COMPLETE"
            progress(node, state, time.time() - started)
            return result

    portable.Launcher = ReportingLauncher
    try:
        yield
    finally:
        portable.Launcher = original


def run(config: PipelineConfig, progress: Optional[Progress] = None) -> Dict[str, Any]:
    """Runs the pipeline to the end; returns `outputs.summary` of it. `progress`, when given,
    hears of each component as it finishes (`reporting`).

    Raises:
      PipelineTerminated: on SIGTERM (and KeyboardInterrupt on SIGINT), after the interrupted
        executions were marked CANCELED.
    """
    from tfx import v1 as tfx

    from tfx_pipeline import outputs
    from tfx_pipeline.pipeline.pipeline import create_pipeline

    path = metadata_path(config)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # A run killed outright (SIGKILL, power loss) could not close its executions.
    close_unfinished(path, config.pipeline_name, "abandoned: its run ended without closing it")
    pipeline = create_pipeline(
        config, tfx.orchestration.metadata.sqlite_metadata_connection_config(path))
    previous = signal.signal(signal.SIGTERM, _terminate)
    del _received[:]
    try:
        with reporting(path, config.pipeline_name, progress):
            tfx.orchestration.LocalDagRunner().run(pipeline)
    except BaseException as stopped:
        # Raised inside a C++ extension (TensorFlow's nest, pybind11), the handler's exception
        # can come back as another type (a TypeError); the signal was received all the same.
        terminated = bool(_received)
        if not (terminated or isinstance(stopped, KeyboardInterrupt)):
            raise
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut this
        close_unfinished(path, config.pipeline_name,
                         f"stopped: {'PipelineTerminated' if terminated else 'KeyboardInterrupt'}",
                         failed_since=_received[0][1] if terminated else None)
        if terminated and not isinstance(stopped, PipelineTerminated):
            raise PipelineTerminated(_message(_received[0][0])) from stopped
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    return outputs.summary(path, config.pipeline_name)
