"""Which models `ccfrec serve` serves and which of their versions: TF Serving's model server
config (`--model_config_file`, the `model_config_list` text format of
`tensorflow_serving/config/model_server_config.proto`) or the single-model flags.

    model_config_list {
      config {
        name: "ccfrec"
        base_path: "/models/ccfrec"        # holds <version>/ directories
        model_platform: "tensorflow"
        model_version_policy { latest { num_versions: 2 } }   # or all {} / specific {versions: 7}
        version_labels { key: "stable" value: 7 }
      }
    }

The default policy is TF Serving's: the latest version only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

from tf_ccfrec import storage


class ConfigError(ValueError):
    """A model config that cannot be served; the message names the file and the field."""


@dataclass(frozen=True)
class VersionPolicy:
    """TF Serving's `ServableVersionPolicy`.

    Attributes:
      kind: "latest" (the `num_versions` newest that load), "all", or "specific".
      num_versions: for "latest".
      versions: for "specific".
    """

    kind: str = "latest"
    num_versions: int = 1
    versions: Tuple[int, ...] = ()

    def candidates(self, on_disk: Iterable[int]) -> List[int]:
        """The versions on disk the policy may serve, newest first."""
        versions = sorted(on_disk, reverse=True)
        if self.kind == "specific":
            return [v for v in versions if v in self.versions]
        return versions

    def wants(self, available: int) -> bool:
        """Whether another version should be loaded when `available` newer ones serve."""
        return self.kind != "latest" or available < self.num_versions

    def describe(self) -> str:
        if self.kind == "latest":
            return f"latest {self.num_versions}"
        if self.kind == "specific":
            return "specific " + ",".join(map(str, self.versions))
        return "all"


@dataclass(frozen=True)
class ModelConfig:
    """One served model.

    Attributes:
      name: the model's name in requests.
      base_path: the directory holding its `<version>/` directories (local or any filesystem
        `tf.io.gfile` reads).
      policy: which versions serve.
      labels: {label: version}, TF Serving's `version_labels`.
    """

    name: str
    base_path: str
    policy: VersionPolicy = field(default_factory=VersionPolicy)
    labels: Dict[str, int] = field(default_factory=dict)


def single(base: str, name: str, labels: Optional[Dict[str, int]] = None,
           policy: Optional[VersionPolicy] = None) -> List[ModelConfig]:
    """The config of the single-model flags: `<base>/<name>/<version>/`."""
    return [ModelConfig(name, storage.absolute(storage.join(base, name)),
                        policy or VersionPolicy(), dict(labels or {}))]


def parse(text: str, source: str = "<model config>") -> List[ModelConfig]:
    """TF Serving's ModelServerConfig text -> [ModelConfig].

    Relative base paths are taken relative to the directory of `source` (TF Serving asks for
    absolute ones).

    Raises:
      ConfigError: text that does not parse or that TF Serving would refuse, naming `source`.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    proto = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as error:
        raise ConfigError(f"{source}: {error}") from None
    if proto.WhichOneof("config") != "model_config_list":
        raise ConfigError(f"{source}: expected a model_config_list")
    configs, names = [], set()
    for i, config in enumerate(proto.model_config_list.config):
        where = f"{source}: config {i + 1}"
        if not config.name:
            raise ConfigError(f"{where}: name is empty")
        if config.name in names:
            raise ConfigError(f"{where}: model name {config.name!r} appears twice")
        names.add(config.name)
        if not config.base_path:
            raise ConfigError(f"{where} ({config.name}): base_path is empty")
        if config.model_platform not in ("", "tensorflow"):
            raise ConfigError(f"{where} ({config.name}): model_platform "
                              f"{config.model_platform!r} is not served (only \"tensorflow\")")
        policy = _policy(config.model_version_policy, f"{where} ({config.name})")
        labels = dict(config.version_labels)
        for label, version in labels.items():
            if not label or not (label[0].isalpha() or label[0] == "_") or \
                    not all(c.isalnum() or c in "_-" for c in label):
                raise ConfigError(f"{where} ({config.name}): version label {label!r} is not a "
                                  "valid label")
            if policy.kind == "specific" and version not in policy.versions:
                raise ConfigError(f"{where} ({config.name}): label {label!r} names version "
                                  f"{version}, which the specific policy does not serve")
        base = config.base_path
        if storage.is_local(base) and not base.startswith("/") and source.startswith("/"):
            base = storage.join(storage.dirname(source), base)
        configs.append(ModelConfig(config.name, storage.absolute(base), policy, labels))
    if not configs:
        raise ConfigError(f"{source}: model_config_list has no config")
    return configs


def read(path: str) -> List[ModelConfig]:
    """`parse` of a model config file (local or remote)."""
    try:
        text = storage.read_bytes(path).decode()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read: {error}") from None
    except Exception as error:  # noqa: BLE001  (tf.errors.NotFoundError and kin from gfile)
        raise ConfigError(f"{path}: cannot be read: {error}") from None
    return parse(text, storage.absolute(path))


def _policy(proto, where: str) -> VersionPolicy:
    choice = proto.WhichOneof("policy_choice")
    if choice is None:
        return VersionPolicy()
    if choice == "latest":
        if proto.latest.num_versions < 1:
            # TF Serving reads an unset num_versions as 1.
            return VersionPolicy("latest", 1)
        return VersionPolicy("latest", int(proto.latest.num_versions))
    if choice == "all":
        return VersionPolicy("all")
    versions = tuple(sorted(int(v) for v in proto.specific.versions))
    if not versions:
        raise ConfigError(f"{where}: a specific version policy names no version")
    return VersionPolicy("specific", versions=versions)
