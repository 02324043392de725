"""What a finished run produced, read from ML Metadata: the component states of the latest
run, the evaluation report, the blessing and the pushed model."""

from __future__ import annotations

from typing import Any, Dict, List

from ml_metadata.proto import metadata_store_pb2

from tf_ccfrec import storage

STATES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}


def _store(metadata_path: str):
    from ml_metadata import metadata_store

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def runs(metadata_path: str, pipeline_name: str) -> List[Dict[str, Any]]:
    """The pipeline's runs, oldest first: {"run_id", "executions": {node id: {"state",
    "seconds"}}} (states: COMPLETE, CACHED, RUNNING, FAILED, ...; seconds from the execution's
    creation to its last update)."""
    store = _store(metadata_path)
    prefix = pipeline_name + "."
    result = []
    for context in sorted(store.get_contexts_by_type("pipeline_run"),
                          key=lambda c: (c.create_time_since_epoch, c.id)):
        nodes = {}
        executions = sorted(store.get_executions_by_context(context.id),
                            key=lambda e: (e.create_time_since_epoch, e.id))
        for execution in executions:
            for owner in store.get_contexts_by_execution(execution.id):
                if owner.type == "node" and owner.name.startswith(prefix):
                    nodes[owner.name[len(prefix):]] = {
                        "state": STATES[execution.last_known_state],
                        "seconds": (execution.last_update_time_since_epoch
                                    - execution.create_time_since_epoch) / 1000.0}
        if nodes:
            result.append({"run_id": context.name, "executions": nodes})
    return result


def node_state(metadata_path: str, pipeline_name: str, node: str) -> str | None:
    """The state of `node`'s newest execution (COMPLETE, CACHED, FAILED, ...), or None when it
    has none: one node's executions, not the whole store."""
    store = _store(metadata_path)
    context = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node}")
    if context is None:
        return None
    executions = store.get_executions_by_context(context.id)
    if not executions:
        return None
    newest = max(executions, key=lambda e: (e.create_time_since_epoch, e.id))
    return STATES[newest.last_known_state]


def latest_artifact_uri(metadata_path: str, type_name: str) -> str | None:
    store = _store(metadata_path)
    artifacts = [a for a in store.get_artifacts_by_type(type_name)
                 if a.state == metadata_store_pb2.Artifact.LIVE]
    if not artifacts:
        return None
    return max(artifacts, key=lambda a: (a.create_time_since_epoch, a.id)).uri


def dataset_statistics(metadata_path: str) -> Dict[str, int]:
    """The newest interaction and catalog ExampleGen outputs' statistics: users, items,
    interactions, examples_<split> (custom properties the executor sets)."""
    from tfx_pipeline.components.example_gen import CATALOG_SPLIT, STATISTICS

    store = _store(metadata_path)
    found: Dict[str, int] = {}
    for artifact in sorted(store.get_artifacts_by_type("Examples"),
                           key=lambda a: (a.create_time_since_epoch, a.id)):
        values = {k: v.int_value for k, v in artifact.custom_properties.items()
                  if k in STATISTICS or k.startswith("examples_")}
        if "users" not in values:
            continue  # Transform's output
        if f"examples_{CATALOG_SPLIT}" in values:
            found[f"examples_{CATALOG_SPLIT}"] = values[f"examples_{CATALOG_SPLIT}"]
        else:
            found.update(values)
    return found


def summary(metadata_path: str, pipeline_name: str) -> Dict[str, Any]:
    """{"executions": of the latest run, "dataset": `dataset_statistics`, "report":
    report.json, "report_dir", "pushed_model": the pushed version's directory or None}."""
    from tfx_pipeline.components.evaluation_report import JSON_FILE, EvaluationReport

    store = _store(metadata_path)
    history = runs(metadata_path, pipeline_name)
    report_dir = latest_artifact_uri(metadata_path, EvaluationReport.TYPE_NAME)
    report = None
    if report_dir and storage.exists(storage.join(report_dir, JSON_FILE)):
        report = storage.read_json(storage.join(report_dir, JSON_FILE))
    pushed = None
    pushed_models = store.get_artifacts_by_type("PushedModel")
    if pushed_models:
        latest = max(pushed_models, key=lambda a: (a.create_time_since_epoch, a.id))
        if latest.custom_properties["pushed"].int_value == 1:
            pushed = latest.custom_properties["pushed_destination"].string_value
    return {"executions": history[-1]["executions"] if history else {},
            "dataset": dataset_statistics(metadata_path),
            "report": report, "report_dir": report_dir, "pushed_model": pushed}
