"""The `ccfrec` command line, run as users run it: bin/ccfrec in a subprocess."""

import json
import os
import subprocess

from tests.conftest import REPO

CCFREC = os.path.join(REPO, "bin", "ccfrec")


def ccfrec(*args):
    return subprocess.run([CCFREC, *args], capture_output=True, text=True, cwd=REPO)


def test_help_lists_commands():
    result = ccfrec("--help")
    assert result.returncode == 0
    assert "version" in result.stdout and "data" in result.stdout


def test_version_json_reports_the_stack():
    from tf_ccfrec import __version__

    result = ccfrec("version", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["tf-ccfrec"] == __version__
    assert report["stack"]["tfx"] == "1.21.0"
    assert report["stack"]["tensorflow"] == "2.21.0"


def test_data_stats_prints_and_writes_json(tmp_path, office_dir):
    output = tmp_path / "out" / "stats.json"
    result = ccfrec("data", "stats", "--input", office_dir, "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert "users         4,905" in result.stdout
    assert "interactions  53,258" in result.stdout
    assert json.loads(output.read_text())["items"] == 2420


def test_data_stats_bad_input_exits_2_and_writes_nothing(tmp_path):
    (tmp_path / "Toy.inter.json").write_text('{"0": [0, 3]}')
    (tmp_path / "Toy.item.json").write_text('{"0": {"title": "pen"}}')
    output = tmp_path / "stats.json"
    result = ccfrec("data", "stats", "--input", str(tmp_path), "--output", str(output))
    assert result.returncode == 2
    assert "Toy.inter.json: user '0', position 1: item 3 is not in the item catalog" in result.stderr
    assert not output.exists()
    assert os.listdir(tmp_path) == sorted(["Toy.inter.json", "Toy.item.json"]) or \
        sorted(os.listdir(tmp_path)) == ["Toy.inter.json", "Toy.item.json"]


def test_unknown_command_exits_2():
    result = ccfrec("frobnicate")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
