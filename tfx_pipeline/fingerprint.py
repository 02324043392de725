"""Cache keys that follow the code: a fingerprint of the tf-ccfrec source each component runs.

TFX reuses a component's earlier output when its inputs and exec properties are unchanged; the
Python code it runs is not part of that key. Every component that runs tf-ccfrec code therefore
carries `code_fingerprint(node)` in its exec properties (a parameter, `custom_config`, or the
metric configs of the Evaluator): `<tf-ccfrec version>-<hash>`, the hash over the source files of
the modules the component runs, found by following their imports (module level and inside
functions) through `tf_ccfrec` and `tfx_pipeline`, plus the package data the component reads.
A change to a file re-runs the components whose modules import it, and nothing else; a new
version re-runs them all.

The files are read where the packages are imported from (the installed package in the pipeline
image), so a fingerprint computed where the pipeline is compiled matches the code the
containers run when both have the same package.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import os
from typing import Dict, FrozenSet, Iterable, Optional, Tuple

PACKAGES = ("tf_ccfrec", "tfx_pipeline")

# The modules each node runs (its executor, module functions named in the pipeline, TFMA's
# metric module), and package data it reads.
ENTRY_MODULES: Dict[str, Tuple[str, ...]] = {
    "ExampleGen": ("tfx_pipeline.components.example_gen",),
    "CatalogExampleGen": ("tfx_pipeline.components.example_gen",),
    "CuratedSchemaGen": ("tfx_pipeline.components.curated_schema",),
    "AnomaliesGate": ("tfx_pipeline.components.anomalies_gate",),
    "SemanticCodesGen": ("tfx_pipeline.components.semantic_codes",),
    "CatalogRefresh": ("tfx_pipeline.components.catalog_refresh",),
    "Transform": ("tfx_pipeline.models.preprocessing",),
    "CCFRecTrainer": ("tfx_pipeline.components.trainer", "tfx_pipeline.models.model"),
    "Evaluator": ("tfx_pipeline.models.retrieval_metrics",),
    "TestEvaluator": ("tfx_pipeline.models.retrieval_metrics",),
    "EvaluationReportGen": ("tfx_pipeline.components.evaluation_report",),
}
DATA_FILES: Dict[str, Tuple[str, ...]] = {
    "CuratedSchemaGen": ("tfx_pipeline/schema/interactions.pbtxt",),
}


@functools.lru_cache(maxsize=None)
def package_root(package: str) -> str:
    """The directory holding the package (site-packages, or a source checkout)."""
    spec = importlib.util.find_spec(package)
    return os.path.dirname(os.path.dirname(spec.origin))


def module_path(name: str) -> Optional[str]:
    """The source file of a tf-ccfrec or pipeline module, without importing it; None for
    anything else (a name inside a module, another package)."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = os.path.join(package_root(name.split(".")[0]), *name.split("."))
    for path in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(path):  # local-only: the installed package's own source
            return path
    return None


def _imports(path: str, name: str) -> Iterable[str]:
    """Module names a source file imports, wherever in the file (absolute and relative)."""
    with open(path, "rb") as f:  # local-only: the installed package's own source
        tree = ast.parse(f.read(), filename=path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


@functools.lru_cache(maxsize=None)
def module_closure(entries: Tuple[str, ...]) -> FrozenSet[str]:
    """The source files of `entries`, of every tf-ccfrec/pipeline module they import,
    transitively, and of the packages' `__init__.py` on the way."""
    seen: Dict[str, str] = {}
    pending = list(entries)
    while pending:
        name = pending.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__
            prefix = ".".join(parts[:i])
            path = module_path(prefix)
            if path and prefix not in seen:
                seen[prefix] = path
                pending.extend(_imports(path, prefix))
    return frozenset(seen.values())


def files_of(node: str) -> Tuple[str, ...]:
    """Sorted `<package>/<path>` names of the files whose content makes `node`'s fingerprint."""
    if node not in ENTRY_MODULES:
        raise KeyError(f"{node} runs no tf-ccfrec code; nodes that do: "
                       f"{', '.join(sorted(ENTRY_MODULES))}")
    names = set(DATA_FILES.get(node, ()))
    for path in module_closure(ENTRY_MODULES[node]):
        for package in PACKAGES:
            root = package_root(package)
            if path.startswith(os.path.join(root, package) + os.sep):
                names.add(os.path.relpath(path, root))
    return tuple(sorted(names))


def code_fingerprint(node: str) -> str:
    """`<tf-ccfrec version>-<16 hex digits>`: the version and a hash of `files_of(node)`."""
    from tf_ccfrec import __version__

    digest = hashlib.sha256()
    for name in files_of(node):
        path = os.path.join(package_root(name.split("/")[0]), name)
        with open(path, "rb") as f:  # local-only: the installed package's own source
            digest.update(name.encode() + b"\0" + f.read() + b"\0")
    return f"{__version__}-{digest.hexdigest()[:16]}"
