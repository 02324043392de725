"""The library's layering, read from its imports (the AST of every module, lazy imports too):
tf_ccfrec imports nothing above it (the pipeline, the tools, tests, benchmarks), and each of its
parts imports only the parts below it in LAYERS, so no import cycle can form between them."""

import ast
import os

from tests.conftest import REPO

# tf_ccfrec's parts, lowest first: a part may import the parts before it.
LAYERS = ("version", "compat", "storage", "distribute", "data", "text", "codes", "layers",
          "models", "ranking", "export", "serving", "training", "cli")
ABOVE_THE_LIBRARY = ("tfx_pipeline", "tools", "tests", "bench", "serving")


def imports(path):
    """Every module name an `import` or `from ... import` of the file names."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            if node.module == "tf_ccfrec":   # `from tf_ccfrec import ranking`
                yield from (f"tf_ccfrec.{alias.name}" for alias in node.names)


def library_modules():
    root = os.path.join(REPO, "tf_ccfrec")
    for directory, _, names in os.walk(root):
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                yield os.path.relpath(path, root)[:-3].replace(os.sep, "."), path


def part(module):
    return module.split(".")[0]


def test_every_part_of_the_library_is_layered():
    parts = {part(module) for module, _ in library_modules()} - {"__init__"}
    assert parts == set(LAYERS), parts ^ set(LAYERS)


def test_the_library_imports_nothing_above_it():
    found = [(module, name) for module, path in library_modules() for name in imports(path)
             if name.split(".")[0] in ABOVE_THE_LIBRARY]
    assert not found


def test_each_part_imports_only_the_parts_below_it():
    found = []
    for module, path in library_modules():
        here = part(module)
        for name in imports(path):
            if not name.startswith("tf_ccfrec."):
                continue
            there = part(name[len("tf_ccfrec."):])
            if here != "__init__" and there != here and \
                    LAYERS.index(there) > LAYERS.index(here):
                found.append(f"tf_ccfrec.{module} imports {name}")
    assert not found, "\n".join(found)
