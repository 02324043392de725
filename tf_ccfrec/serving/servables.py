"""What the REST and gRPC front ends share: the served models (one `ModelRegistry` each), the
batchers, and the three calls of TF Serving's API on them: predict, model status and model
metadata. Errors are the front ends' to map:

    LookupError (no such model, version, label, signature) -> 404 / NOT_FOUND
    predict.BadRequest                                    -> 400 / INVALID_ARGUMENT
    batching.Overloaded                                   -> 503 / UNAVAILABLE
    batching.DeadlineExceeded                             -> 504 / DEADLINE_EXCEEDED
"""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from tf_ccfrec.serving import predict
from tf_ccfrec.serving.batching import Batchers
from tf_ccfrec.serving.model_config import ModelConfig
from tf_ccfrec.serving.registry import LoadedVersion, ModelRegistry, VersionStatus, release

log = logging.getLogger("ccfrec.serve")


@dataclass(frozen=True)
class BatchingConfig:
    """Attributes:
      max_batch: rows per executed batch at most.
      max_wait_ms: how long a batch waits for more rows after its first.
      max_queued_rows: rows waiting per batcher at most; more are refused (overload).
      max_rows: rows per request at most.
    """

    max_batch: int = 64
    max_wait_ms: float = 0.0
    max_queued_rows: int = 4096
    max_rows: int = 1024


class Servables:
    """The served models.

    Args:
      models: their configs (names must differ).
      batching: dynamic batching and queue bounds.
      warmup: replay each version's warm-up requests before it serves.
    """

    def __init__(self, models: List[ModelConfig], batching: BatchingConfig,
                 warmup: bool = True):
        self.registries: Dict[str, ModelRegistry] = {
            m.name: ModelRegistry(m, warmup) for m in models}
        self.warmup = warmup
        self.batching = batching
        self.batchers: Optional[Batchers] = None
        self.on_batch = None  # callable(rows) for metrics

    def start(self) -> None:
        """Makes the batchers (inside the running event loop)."""
        self.batchers = Batchers(self.batching.max_batch, self.batching.max_wait_ms,
                                 self.batching.max_queued_rows)

    def refresh(self) -> List[LoadedVersion]:
        """Applies every model's version directory (in a worker thread); returns the versions
        unloaded, for `forget`."""
        unloaded = []
        for registry in self.registries.values():
            unloaded += registry.refresh()
        return unloaded

    def reconfigure(self, models: List[ModelConfig]) -> List[LoadedVersion]:
        """Serves `models` from now on (a model config file that changed): new models are
        added, models gone are unloaded, changed policies and labels apply at the next
        `refresh`; returns the versions unloaded, for `forget`."""
        unloaded, registries = [], {}
        for config in models:
            registry = self.registries.get(config.name)
            if registry is not None and registry.config.base_path == config.base_path:
                registry.reconfigure(config)
            else:
                if registry is not None:
                    unloaded += registry.unload_all()
                registry = ModelRegistry(config, self.warmup)
            registries[config.name] = registry
        for name in set(self.registries) - set(registries):
            unloaded += self.registries[name].unload_all()
        self.registries = registries
        for config in models:
            log.info("model %s: %s, policy %s, labels %s", config.name, config.base_path,
                     config.policy.describe(), config.labels or "none")
        return unloaded

    def forget(self, unloaded: List[LoadedVersion]) -> None:
        """Closes the batchers of unloaded versions and frees their memory (in the event
        loop)."""
        if not unloaded:
            return
        gone = {id(v) for v in unloaded}
        if self.batchers is not None:
            self.batchers.retire(lambda key: key[1] not in gone)
        for version in unloaded:
            version.retired = True
            release(version)
        unloaded.clear()
        gc.collect()

    def registry(self, name: str) -> ModelRegistry:
        if name not in self.registries:
            raise LookupError(f"Servable not found for request: Latest({name})")
        return self.registries[name]

    def resolve(self, name: str, version: Optional[int] = None,
                label: Optional[str] = None) -> LoadedVersion:
        return self.registry(name).resolve(version, label)

    async def predict(self, version: LoadedVersion, signature_name: str, search: str,
                      rows: List[dict], timeout: Optional[float]) -> List[dict]:
        """Per-row results of `rows` on a version's signature, batched with concurrent
        requests for the same version, signature and search."""

        def run(batch_rows):
            if self.on_batch is not None:
                self.on_batch(len(batch_rows))
            return predict.run_rows(version, signature_name, search, batch_rows)

        if version.retired:
            # Resolved just before it was unloaded: answered on its own, not batched.
            return await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(None, run, rows), timeout)
        batcher = self.batchers.get((version.model, id(version), version.version,
                                     signature_name, search), run)
        return await batcher.submit(rows, timeout)

    def statuses(self, name: str, version: Optional[int] = None,
                 label: Optional[str] = None) -> List[Tuple[int, VersionStatus]]:
        registry = self.registry(name)
        if label is not None:
            if label not in registry.labels:
                raise LookupError(f"Unrecognized servable version label: {label}")
            version = registry.labels[label]
        return registry.statuses(version)

    def close(self) -> None:
        if self.batchers is not None:
            self.batchers.close()


def signature(version: LoadedVersion, name: str):
    """The concrete function of a signature name ("" = serving_default).

    Raises:
      LookupError: the version has no such signature (TF Serving's message).
    """
    name = name or "serving_default"
    if name not in version.signatures:
        raise LookupError(f"Serving signature name: \"{name}\" not found in signature def")
    return name, version.signatures[name]
