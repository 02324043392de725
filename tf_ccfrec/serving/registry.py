"""The versions of one served model: `<base>/<name>/<version>/` directories as TF Serving lays
them out, on local or remote storage. A version directory is looked at once its completion
marker is there (`tf_ccfrec.storage.is_complete`; until then it is being written or copied). The
newest version that loads is served; a complete directory that does not load (corrupt) is
recorded as failed and skipped, and the previous version keeps serving. Versions stay
loaded while their directory exists, so a request can pin an older one."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from tf_ccfrec import storage

log = logging.getLogger("ccfrec.serve")


@dataclass
class LoadedVersion:
    """One loaded SavedModel version.

    Attributes:
      version: the directory's number.
      path: its directory.
      signatures: {name: concrete function}.
      scann: (searcher, item ids) when the export has a ScaNN index, else None.
      items: catalog size.
    """

    version: int
    path: str
    signatures: Dict[str, object]
    scann: Optional[tuple]
    items: int
    info: dict = field(default_factory=dict)
    module: object = None


def load_version(path: str, version: int) -> LoadedVersion:
    """Loads a SavedModel version directory (raises on anything that is not a whole export)."""
    from tf_ccfrec.export import saved_model, scann_index

    loaded = saved_model.load(path)
    info = storage.read_json(storage.join(path, saved_model.EXPORT_INFO))
    scann = None
    if info.get("scann"):
        scann = scann_index.load(storage.join(path, scann_index.DIRECTORY))
    # `module` keeps the restored objects the signatures use alive.
    return LoadedVersion(version, path, dict(loaded.signatures), scann, int(info["items"]),
                         info, loaded)


class ModelRegistry:
    """The versions under `<base>/<name>/`; `refresh()` picks up new and removed ones."""

    def __init__(self, base: str, name: str):
        self.base, self.name = base, name
        self.directory = storage.join(base, name)
        self.versions: Dict[int, LoadedVersion] = {}
        self.failed: Dict[int, str] = {}
        self.labels: Dict[str, int] = {}
        self._lock = threading.Lock()

    def _on_disk(self) -> Dict[int, str]:
        """Version directories under the model's directory (local or remote storage)."""
        if not storage.isdir(self.directory):
            return {}
        return {int(entry): storage.join(self.directory, entry)
                for entry in storage.listdir(self.directory)
                if entry.isdigit() and storage.isdir(storage.join(self.directory, entry))}

    def refresh(self) -> None:
        """Loads versions that appeared, drops versions whose directory is gone."""
        on_disk = self._on_disk()
        for version, path in sorted(on_disk.items()):
            if version in self.versions or version in self.failed:
                continue
            if not storage.is_complete(path):
                # Still being written or copied (the completion marker comes last): not a
                # failure, looked at again on the next refresh.
                continue
            try:
                loaded = load_version(path, version)
            except Exception as error:  # noqa: BLE001  (any failure: skip this version)
                self.failed[version] = f"{type(error).__name__}: {error}"[:500]
                log.warning("version %s of %s does not load, skipped: %s", version, self.name,
                            self.failed[version])
                continue
            with self._lock:
                self.versions[version] = loaded
            log.info("serving %s version %s (%d items)", self.name, version, loaded.items)
        with self._lock:
            for version in [v for v in self.versions if v not in on_disk]:
                del self.versions[version]
            for version in [v for v in self.failed if v not in on_disk]:
                del self.failed[version]

    def resolve(self, version: Optional[int] = None,
                label: Optional[str] = None) -> LoadedVersion:
        """The version a request names, or the newest.

        Raises:
          LookupError: no such version or label (the message says which).
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
