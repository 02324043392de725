"""The versions of one served model, with TF Serving's version lifecycle: `<base_path>/<version>/`
directories on local or remote storage, served as the model's version policy says.

- A version directory is loaded once its completion marker and every file it lists are there
  (`tf_ccfrec.storage.is_complete`): until then it is being written or copied (TFX's Pusher
  copies file by file) and shows as START.
- Loading replays the export's warm-up requests (`assets.extra/tf_serving_warmup_requests`)
  before the version is AVAILABLE.
- A whole version that does not load shows as END with its error; it is tried again when its
  directory changes (files or sizes), never otherwise.
- The policy's versions are loaded newest first; a version leaves (END, memory freed) once the
  policy is met by newer AVAILABLE versions, so a new version that is still copying or failed
  to load never leaves the model without a version.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from tf_ccfrec import storage
from tf_ccfrec.serving.model_config import ModelConfig

log = logging.getLogger("ccfrec.serve")

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


@dataclass
class LoadedVersion:
    """One loaded SavedModel version.

    Attributes:
      model: the model's name.
      version: the directory's number.
      path: its directory.
      signatures: {name: concrete function}.
      signature_defs: {name: tensorflow.SignatureDef} as saved (for model metadata).
      scann: (searcher, item ids as a numpy object array of UTF-8 bytes, built once at load)
        when the export has a ScaNN index, else None.
      items: catalog size.
      info: `assets.extra/ccfrec.json`.
      module: the restored objects the signatures use (kept alive with them).
      gradients: names this load added to TensorFlow's gradient registry (`release`).
      retired: unloaded; requests that resolved it before run unbatched.
    """

    model: str
    version: int
    path: str
    signatures: Dict[str, object]
    signature_defs: Dict[str, object]
    scann: Optional[tuple]
    items: int
    info: dict = field(default_factory=dict)
    module: object = None
    gradients: Tuple[str, ...] = ()
    retired: bool = False


@dataclass(frozen=True)
class VersionStatus:
    """A version's state as TF Serving reports it (`ModelVersionStatus`)."""

    state: str
    error_code: str = "OK"
    error_message: str = ""


def load_version(model: str, path: str, version: int, warmup: bool = True) -> LoadedVersion:
    """Loads a SavedModel version directory and replays its warm-up requests (raises on
    anything that is not a whole, working export)."""
    from tensorflow.core.protobuf import saved_model_pb2

    from tf_ccfrec.export import saved_model, scann_index, warmup as warmup_requests

    registered = set(_gradient_registry())
    try:
        loaded = saved_model.load(path)
        gradients = tuple(sorted(set(_gradient_registry()) - registered))
        info = storage.read_json(storage.join(path, saved_model.EXPORT_INFO))
        graph = saved_model_pb2.SavedModel.FromString(
            storage.read_bytes(storage.join(path, "saved_model.pb")))
        signature_defs = {name: definition for name, definition
                          in graph.meta_graphs[0].signature_def.items()
                          if not name.startswith("__")}
        scann = None
        if info.get("scann"):
            searcher, item_ids = scann_index.load(storage.join(path, scann_index.DIRECTORY))
            # Answers carry ids as bytes: encoded once here, not per request (a million ids).
            scann = (searcher, np.array([i.encode() for i in item_ids], object))
        result = LoadedVersion(model, version, path, dict(loaded.signatures), signature_defs,
                               scann, int(info["items"]), info, loaded, gradients)
        if warmup:
            from tf_ccfrec.serving import predict

            for signature_name, arrays in warmup_requests.read(path, result.signatures):
                rows = predict.rows_from_arrays(
                    arrays, predict.input_specs(result.signatures[signature_name]), 1 << 20)
                for search in predict.searches(result, signature_name):
                    predict.run_rows(result, signature_name, search, rows)
    except BaseException:
        for name in set(_gradient_registry()) - registered:
            _gradient_registry().pop(name, None)
        raise
    return result


def _gradient_registry() -> dict:
    """TensorFlow's process-wide {op type: gradient function} registry."""
    from tensorflow.python.framework import ops

    return ops.gradient_registry._registry  # noqa: SLF001  (no public way to unregister)


def release(version: LoadedVersion) -> None:
    """Frees what an unloaded version leaves outside its own objects: tf.saved_model.load
    registers a gradient function for each restored function in TensorFlow's process-wide
    gradient registry and never removes it, which keeps every function of every unloaded
    version alive (about 40 MB for a 60-item export). Serving takes no gradients."""
    registry = _gradient_registry()
    for name in version.gradients:
        registry.pop(name, None)


def _error_code(error: Exception) -> str:
    """TF Serving's error_code name of a load failure."""
    import tensorflow as tf
    from tensorflow.core.protobuf import error_codes_pb2

    if isinstance(error, tf.errors.OpError) and error.error_code in error_codes_pb2.Code.values():
        return error_codes_pb2.Code.Name(error.error_code)
    if isinstance(error, (FileNotFoundError, storage.IncompleteOutput)):
        return "NOT_FOUND"
    return "UNKNOWN"


def fingerprint(path: str) -> Tuple[tuple, ...]:
    """(relative path, size, modification time) of every file under a version directory."""
    import tensorflow as tf

    entries = []
    for name in storage.walk_files(path):
        stat = tf.io.gfile.stat(storage.join(path, name))
        entries.append((name, stat.length, stat.mtime_nsec))
    return tuple(entries)


class ModelRegistry:
    """The versions of one model; `refresh()` applies what changed on disk.

    Args:
      config: the model's name, base path, version policy and labels.
      warmup: replay each version's warm-up requests before it serves.
    """

    def __init__(self, config: ModelConfig, warmup: bool = True):
        self.config, self.name, self.directory = config, config.name, config.base_path
        self.warmup = warmup
        self.labels: Dict[str, int] = dict(config.labels)
        self.versions: Dict[int, LoadedVersion] = {}
        self.status: Dict[int, VersionStatus] = {}
        self._failed: Dict[int, tuple] = {}  # version -> fingerprint of the failed attempt
        self._lock = threading.Lock()

    def _on_disk(self) -> Dict[int, str]:
        from tf_ccfrec.export.saved_model import version_directories

        return version_directories(self.directory)

    def _set(self, version: int, status: VersionStatus) -> None:
        with self._lock:
            self.status[version] = status

    def _try_load(self, version: int, path: str) -> Optional[LoadedVersion]:
        if not storage.is_complete(path):
            self._failed.pop(version, None)
            self._set(version, VersionStatus(START, "OK", f"waiting for {path} to be whole "
                                             f"(its {storage.COMPLETE_MARKER} and every file "
                                             "it lists)"))
            return None
        try:
            files = fingerprint(path)
        except Exception:  # noqa: BLE001  (removed while listed: looked at again next time)
            return None
        if self._failed.get(version) == files:
            return None
        self._set(version, VersionStatus(LOADING))
        try:
            loaded = load_version(self.name, path, version, self.warmup)
        except Exception as error:  # noqa: BLE001  (any failure: this version is not served)
            message = f"{type(error).__name__}: {error}"[:1000]
            self._failed[version] = files
            self._set(version, VersionStatus(END, _error_code(error), message))
            log.warning("version %s of %s does not load (tried again when its directory "
                        "changes): %s", version, self.name, message)
            return None
        self._failed.pop(version, None)
        with self._lock:
            self.versions[version] = loaded
            self.status[version] = VersionStatus(AVAILABLE)
        log.info("serving %s version %s (%d items)", self.name, version, loaded.items)
        return loaded

    def refresh(self) -> List[LoadedVersion]:
        """Loads the versions the policy wants, unloads those it no longer does; returns the
        unloaded versions (their memory is freed once the caller drops them too)."""
        on_disk = self._on_disk()
        policy = self.config.policy
        keep, visited, available = set(), set(), 0
        for version in policy.candidates(on_disk):
            if not policy.wants(available):
                break
            visited.add(version)
            if version in self.versions or self._try_load(version, on_disk[version]):
                keep.add(version)
                available += 1
        unloaded = []
        with self._lock:
            for version in [v for v in self.versions if v not in keep]:
                unloaded.append(self.versions.pop(version))
                if version in on_disk:
                    self.status[version] = VersionStatus(END)
            for version in [v for v in self.status if v not in on_disk]:
                del self.status[version]
                self._failed.pop(version, None)
            # Waiting for a copy that the policy no longer looks at (newer versions serve).
            for version in [v for v, s in self.status.items()
                            if s.state == START and v not in visited]:
                del self.status[version]
        for gone in unloaded:
            log.info("unloaded %s version %s", self.name, gone.version)
        return unloaded

    def reconfigure(self, config: ModelConfig) -> None:
        """A new policy and labels for the same base path (applied at the next refresh)."""
        with self._lock:
            self.config = config
            self.labels = dict(config.labels)

    def unload_all(self) -> List[LoadedVersion]:
        """Unloads every version (the model left the config); returns them."""
        with self._lock:
            unloaded = list(self.versions.values())
            self.versions.clear()
            self.status.clear()
        return unloaded

    def resolve(self, version: Optional[int] = None,
                label: Optional[str] = None) -> LoadedVersion:
        """The version a request names, or the newest.

        Raises:
          LookupError: no such version or label (the message says which, as TF Serving does).
        """
        with self._lock:
            if label is not None:
                if label not in self.labels:
                    raise LookupError(f"Unrecognized servable version label: {label}")
                version = self.labels[label]
            if version is not None:
                if version not in self.versions:
                    raise LookupError(f"Servable not found for request: Specific({self.name}, "
                                      f"{version})")
                return self.versions[version]
            if not self.versions:
                raise LookupError(f"Servable not found for request: Latest({self.name})")
            return self.versions[max(self.versions)]

    def available(self) -> List[int]:
        with self._lock:
            return sorted(self.versions)

    def statuses(self, version: Optional[int] = None) -> List[Tuple[int, VersionStatus]]:
        """[(version, status)] of every version the model knows (or of one), oldest first.

        Raises:
          LookupError: `version` is not known.
        """
        with self._lock:
            if version is None:
                return sorted(self.status.items())
            if version not in self.status:
                raise LookupError(f"Could not find version {version} of model {self.name}")
            return [(version, self.status[version])]
