"""Code fingerprints: each component's cache key covers exactly the tf-ccfrec source it runs."""

import os
import shutil

import pytest

from tests.conftest import REPO
from tfx_pipeline import fingerprint


def test_each_node_covers_the_modules_it_runs():
    trainer = fingerprint.files_of("CCFRecTrainer")
    for name in ("tfx_pipeline/models/model.py", "tf_ccfrec/training/train.py",
                 "tf_ccfrec/export/saved_model.py", "tf_ccfrec/storage.py",
                 "tf_ccfrec/__init__.py", "tfx_pipeline/__init__.py"):
        assert name in trainer, name
    example_gen = fingerprint.files_of("ExampleGen")
    assert "tf_ccfrec/data/lcrec.py" in example_gen  # through readers, imported in a function
    assert "tf_ccfrec/export/saved_model.py" not in example_gen
    assert "tfx_pipeline/schema/interactions.pbtxt" in fingerprint.files_of("CuratedSchemaGen")
    assert fingerprint.code_fingerprint("ExampleGen").startswith(
        __import__("tf_ccfrec").__version__ + "-")
    with pytest.raises(KeyError, match="runs no tf-ccfrec code"):
        fingerprint.files_of("Pusher")


def test_a_changed_file_changes_exactly_the_nodes_that_run_it(tmp_path, monkeypatch):
    for package in fingerprint.PACKAGES:
        shutil.copytree(os.path.join(REPO, package), tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(fingerprint, "package_root", lambda package: str(tmp_path))
    fingerprint.module_closure.cache_clear()
    try:
        nodes = sorted(fingerprint.ENTRY_MODULES)
        before = {n: fingerprint.code_fingerprint(n) for n in nodes}
        for changed in ("tf_ccfrec/export/saved_model.py", "tf_ccfrec/data/io.py",
                        "tfx_pipeline/components/evaluation_report.py"):
            with open(tmp_path / changed, "a") as f:
                f.write("\n# changed\n")
            after = {n: fingerprint.code_fingerprint(n) for n in nodes}
            moved = {n for n in nodes if after[n] != before[n]}
            assert moved == {n for n in nodes if changed in fingerprint.files_of(n)}, changed
            assert moved, changed
            before = after
        assert "CCFRecTrainer" in {n for n in nodes
                                   if "tf_ccfrec/export/saved_model.py" in
                                   fingerprint.files_of(n)}
        assert "ExampleGen" not in {n for n in nodes
                                    if "tf_ccfrec/export/saved_model.py" in
                                    fingerprint.files_of(n)}
    finally:
        fingerprint.module_closure.cache_clear()
