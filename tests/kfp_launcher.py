"""Executes a compiled Kubeflow Pipelines v2 PipelineJob JSON the way the KFP / Vertex AI
launcher does, on this machine, for the tests: no cluster, but the spec's own DAG, parameters,
resolver queries, container commands and arguments.

    launcher = Launcher(json.load(open("ccfrec_pipeline.json")), store="artifacts.json",
                        env=ENV, cwd=WORKDIR)
    tasks = launcher.run()          # {task name: {output key: [runtime artifact dict]}}

For each task, in dependency order:
- a `container` executor: the launcher's ExecutorInput (input artifacts from the producers'
  executor outputs, typed by this component's input definitions; constant parameters; output
  artifacts with URIs `<pipeline root>/<job id>/<task>_<n>/<key>` and names; the output-file
  path) replaces the `{{$}}` placeholder; the `lifecycle.preCacheCheck` command (ExampleGen's
  driver) runs first, then the container's command and arguments, each in its own process, with
  `env` and `cwd`. The ExecutorOutput file gives the output artifacts' metadata.
- a `resolver` executor: each output artifact query (`schema_title=...`, `state=LIVE`,
  `name=...`, `metadata.<key>.number_value=...`, joined by AND, with `{{$.inputs.artifacts[...]
  .metadata[...]}}` placeholders) is answered from the artifact store, newest first, as ML
  Metadata answers it; no match gives an empty list.
- an `importer` executor: one artifact at the constant URI.

The store (a JSON file, `store`) plays ML Metadata: it lasts across runs, so a second run's
resolver sees the first run's blessed model. It also holds the launcher's cache: a task whose
`cachingOptions.enableCache` is set and whose key (its container, input artifact names,
parameters, output definitions and, where it has one, what its pre-cache check wrote: ExampleGen's
input fingerprint) matches an earlier execution's reuses that execution's outputs, as KFP's
launcher does.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import subprocess
import time
import uuid
from typing import Dict, List, Optional

import yaml

EXECUTOR_INPUT_PLACEHOLDER = "{{$}}"
_INPUT_METADATA = re.compile(
    r"\{\{\$\.inputs\.artifacts\['([^']+)'\]\.metadata\['([^']+)'\]\}\}")
_CLAUSE = re.compile(r'^\s*([\w.]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s]+)\s*$')


class TaskFailed(RuntimeError):
    """A task's process exited non-zero; the message has its command and output's tail."""


def topological_order(tasks: Dict[str, dict]) -> List[str]:
    """Task names, each after its `dependentTasks` and its artifact producers; ties by name."""
    def upstream(name):
        task = tasks[name]
        producers = {a["taskOutputArtifact"]["producerTask"]
                     for a in task.get("inputs", {}).get("artifacts", {}).values()
                     if "taskOutputArtifact" in a}
        return set(task.get("dependentTasks", [])) | producers

    order: List[str] = []
    pending = set(tasks)
    while pending:
        ready = sorted(n for n in pending if upstream(n) <= set(order))
        if not ready:
            raise ValueError(f"the DAG has a cycle among {sorted(pending)}")
        order += ready
        pending -= set(ready)
    return order


def _title(artifact_type: dict) -> str:
    if "schemaTitle" in artifact_type:
        return artifact_type["schemaTitle"]
    return yaml.safe_load(artifact_type["instanceSchema"])["title"]


def _matches(artifact: dict, clause: str) -> bool:
    match = _CLAUSE.match(clause)
    if not match:
        raise ValueError(f"unsupported resolver filter clause {clause!r}")
    key, value = match.group(1), match.group(2)
    if value.startswith('"'):
        value = json.loads(value)
    if key == "schema_title":
        return artifact["schemaTitle"] == value
    if key == "state":
        return artifact.get("state", "LIVE") == value
    if key == "name":
        return artifact["name"] == value
    parts = key.split(".")
    if len(parts) == 3 and parts[0] == "metadata":
        have = artifact.get("metadata", {}).get(parts[1])
        return have is not None and float(have) == float(value)
    raise ValueError(f"unsupported resolver filter key {key!r}")


class Launcher:
    """Runs one PipelineJob; see the module docstring.

    Args:
      job: the compiled PipelineJob (parsed JSON).
      store: the artifact store's JSON file (created if absent).
      env: the environment of every task process.
      cwd: the working directory of every task process.
      timeout: seconds one task process may run.
    """

    def __init__(self, job: dict, store: str, env: Dict[str, str], cwd: str,
                 timeout: float = 900):
        self.job, self.store, self.env, self.cwd, self.timeout = job, store, env, cwd, timeout
        self.spec = job["pipelineSpec"]
        self.root = job["runtimeConfig"]["gcsOutputDirectory"]
        self.job_id = f"{self.spec['pipelineInfo']['name']}-{time.strftime('%Y%m%d%H%M%S')}-" \
                      f"{uuid.uuid4().hex[:6]}"
        self.log: List[dict] = []   # one entry a task: name, kind, seconds

    # -- the store (ML Metadata's part): {"artifacts": [...], "cache": {key: outputs}} ---------
    def _load(self) -> dict:
        if not os.path.exists(self.store):
            return {"artifacts": [], "cache": {}}
        with open(self.store) as f:
            return json.load(f)

    def _save(self, store: dict) -> None:
        with open(self.store + ".tmp", "w") as f:
            json.dump(store, f, indent=1)
        os.replace(self.store + ".tmp", self.store)

    def _record(self, artifacts: List[dict], cache_key: Optional[str] = None,
                outputs: Optional[dict] = None) -> None:
        store = self._load()
        store["artifacts"] += artifacts
        if cache_key:
            store["cache"][cache_key] = outputs
        self._save(store)

    # -- one task ------------------------------------------------------------------------------
    def _inputs(self, task: dict, component: dict, done: Dict[str, dict]) -> dict:
        definitions = component.get("inputDefinitions", {}).get("artifacts", {})
        artifacts = {}
        for key, source in task.get("inputs", {}).get("artifacts", {}).items():
            produced = source["taskOutputArtifact"]
            upstream = done[produced["producerTask"]].get(produced["outputArtifactKey"], [])
            artifacts[key] = {"artifacts": [
                {**{k: a[k] for k in ("name", "uri", "metadata")},
                 "type": definitions[key]["artifactType"]} for a in upstream]}
        parameters = {}
        for key, source in task.get("inputs", {}).get("parameters", {}).items():
            if "runtimeValue" not in source:
                raise NotImplementedError(f"parameter {key}: only constants are supported")
            parameters[key] = source["runtimeValue"]["constantValue"]
        return {"artifacts": artifacts, "parameters": parameters}

    def _outputs(self, name: str, component: dict, task_dir: str) -> dict:
        artifacts = {}
        for key, definition in component.get("outputDefinitions", {}).get("artifacts",
                                                                           {}).items():
            artifacts[key] = {"artifacts": [{
                "name": f"projects/local/locations/local/metadataStores/default/artifacts/"
                        f"{uuid.uuid4().hex}",
                "type": definition["artifactType"], "uri": os.path.join(task_dir, key),
                "metadata": {}}]}
        return {"artifacts": artifacts,
                "outputFile": os.path.join(task_dir, "executor_output.json")}

    def _execute(self, name: str, argv: List[str], executor_input: dict) -> None:
        text = json.dumps(executor_input)
        argv = [text if a == EXECUTOR_INPUT_PLACEHOLDER else a for a in argv]
        process = subprocess.run(argv, env=self.env, cwd=self.cwd, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, timeout=self.timeout)
        if process.returncode != 0:
            shown = [a if a != text else "<executor input>" for a in argv]
            raise TaskFailed(f"task {name}: {' '.join(shown)} exited {process.returncode}\n"
                             f"{process.stdout[-6000:]}")

    @staticmethod
    def _cache_key(container: dict, component: dict, inputs: dict, checked: dict) -> str:
        key = {"container": {k: container.get(k) for k in ("image", "command", "args")},
               "inputs": {k: [a["name"] for a in v["artifacts"]]
                          for k, v in inputs["artifacts"].items()},
               "parameters": inputs["parameters"],
               "outputs": component.get("outputDefinitions", {}),
               "pre_cache_check": checked.get("parameterValues", {})}
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()

    def _run_container(self, name: str, task: dict, component: dict, container: dict,
                       done: Dict[str, dict], number: int):
        """(outputs, whether they came from the cache)."""
        task_dir = os.path.join(self.root, self.job_id, f"{name}_{number}")
        executor_input = {"inputs": self._inputs(task, component, done),
                          "outputs": self._outputs(name, component, task_dir)}
        output_file = executor_input["outputs"]["outputFile"]
        pre = container.get("lifecycle", {}).get("preCacheCheck")
        checked = {}
        if pre:
            self._execute(name, pre["command"] + pre.get("args", []), executor_input)
            with open(output_file) as f:
                checked = json.load(f)
        cache_key = None
        if task.get("cachingOptions", {}).get("enableCache"):
            cache_key = self._cache_key(container, component, executor_input["inputs"], checked)
            cached = self._load()["cache"].get(cache_key)
            if cached is not None:
                return cached, True
        self._execute(name, container["command"] + container.get("args", []), executor_input)
        with open(output_file) as f:
            executor_output = json.load(f)
        results = {}
        for key, listed in executor_input["outputs"]["artifacts"].items():
            [declared] = listed["artifacts"]
            written = executor_output.get("artifacts", {}).get(key, {}).get("artifacts", [{}])
            [written] = written
            results[key] = [{"name": declared["name"], "uri": written.get("uri",
                                                                         declared["uri"]),
                             "metadata": written.get("metadata", {}),
                             "schemaTitle": _title(declared["type"]), "state": "LIVE",
                             "producer": name, "job": self.job_id}]
        self._record([a for listed in results.values() for a in listed], cache_key, results)
        return results, False

    def _resolve(self, task: dict, resolver: dict, done: Dict[str, dict]) -> Dict[str, list]:
        inputs = self._inputs(task, {"inputDefinitions": {"artifacts": {
            k: {"artifactType": {}} for k in task.get("inputs", {}).get("artifacts", {})}}},
            done)["artifacts"]
        store = self._load()["artifacts"]
        results = {}
        for key, query in resolver["outputArtifactQueries"].items():
            text = query["filter"]
            unresolved = False
            for match in _INPUT_METADATA.finditer(text):
                listed = inputs.get(match.group(1), {}).get("artifacts", [])
                if not listed or match.group(2) not in listed[0]["metadata"]:
                    unresolved = True
                    break
                text = text.replace(match.group(0), str(listed[0]["metadata"][match.group(2)]))
            clauses = text.split(" AND ")
            found = [] if unresolved else [a for a in store
                                          if all(_matches(a, c) for c in clauses)]
            results[key] = found[-1:]   # the newest
        return results

    def _import(self, task: dict, importer: dict, component: dict) -> Dict[str, list]:
        uri = importer["artifactUri"]["runtimeParameter"] if "runtimeParameter" in \
            importer["artifactUri"] else importer["artifactUri"]["constant"]["stringValue"]
        [(key, definition)] = component["outputDefinitions"]["artifacts"].items()
        imported = {"name": f"projects/local/locations/local/metadataStores/default/artifacts/"
                            f"{uuid.uuid4().hex}", "uri": uri,
                    "metadata": importer.get("metadata", {}),
                    "schemaTitle": _title(importer["typeSchema"]), "state": "LIVE"}
        self._record([imported])
        return {key: [imported]}

    def run(self, stop_after: Optional[str] = None) -> Dict[str, Dict[str, List[dict]]]:
        """Runs every task (or up to and including `stop_after`); returns their outputs."""
        tasks = self.spec["root"]["dag"]["tasks"]
        executors = self.spec["deploymentSpec"]["executors"]
        done: Dict[str, Dict[str, List[dict]]] = {}
        for number, name in zip(itertools.count(), topological_order(tasks)):
            task = tasks[name]
            component = self.spec["components"][task["componentRef"]["name"]]
            executor = executors[component["executorLabel"]]
            started = time.time()
            if "container" in executor:
                done[name], cached = self._run_container(name, task, component,
                                                         executor["container"], done, number)
                kind = "cached" if cached else "container"
            elif "resolver" in executor:
                kind = "resolver"
                done[name] = self._resolve(task, executor["resolver"], done)
            elif "importer" in executor:
                kind = "importer"
                done[name] = self._import(task, executor["importer"], component)
            else:
                raise NotImplementedError(f"task {name}: executor kinds {sorted(executor)}")
            self.log.append({"task": name, "kind": kind,
                             "seconds": round(time.time() - started, 1)})
            if name == stop_after:
                break
        return done
