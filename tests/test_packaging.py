"""setup.py builds a wheel whose metadata carries the exact pins and the `ccfrec` entry point."""

import zipfile

from tests import wheel as wheels


def test_wheel_metadata(tmp_path):
    with zipfile.ZipFile(wheels.build(str(tmp_path))) as archive:
        names = archive.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(info).decode()
        entry_points = archive.read(info.replace("METADATA", "entry_points.txt")).decode()
    requires = [line.split(": ", 1)[1] for line in metadata.splitlines()
                if line.startswith("Requires-Dist: ")]
    for pin in ("tensorflow==2.21.0", "tf-keras==2.21.0", "tensorflow-recommenders==0.7.7",
                "tensorflow-text==2.21.1", "keras-nlp==0.32.0", "tfx==1.21.0",
                "tensorflow-transform==1.21.0", "tensorflow-model-analysis==0.52.0",
                "scann==1.4.2", "kfp==2.16.0", "kfp-pipeline-spec==2.16.0"):
        assert pin in requires
    assert 'pytest==9.2.0; extra == "test"' in requires
    assert not any("minilm" in r for r in requires)  # installed with --no-deps, separately
    [python] = [line for line in metadata.splitlines() if line.startswith("Requires-Python: ")]
    assert sorted(python.split(": ")[1].split(",")) == ["<3.14", ">=3.10"]
    assert "ccfrec = tfx_pipeline.cli:main" in entry_points
    assert "tf_ccfrec/compat.py" in names
    assert "tfx_pipeline/schema/interactions.pbtxt" in names  # the pipeline's curated schema
    assert "tf_ccfrec/serving/client.py" in names  # the server and its client, one package
    # Only what users import: no tests, no environment tooling, no top-level `serving` package.
    tops = {n.split("/")[0] for n in names if "/" in n and ".dist-info/" not in n
            and ".data/" not in n}
    assert tops == {"tf_ccfrec", "tfx_pipeline"}, tops
    assert not any("env_runner" in n or "startup_hook" in n for n in names)
