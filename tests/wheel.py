"""tf-ccfrec as a user installs it: a wheel built from a copy of the sources, installed into a
directory of its own (the tests that must not import the source tree put it on PYTHONPATH)."""

import os
import shutil
import subprocess
import sys

from tests.conftest import REPO

SOURCES = ("setup.py", "pyproject.toml", "README.md", "requirements", "tf_ccfrec", "tfx_pipeline",
           "tools", "serving")


def build(directory: str) -> str:
    """Builds the wheel under `directory` (a copy of the sources: setuptools writes build/ and
    *.egg-info beside setup.py); returns its path."""
    source = os.path.join(directory, "src")
    os.makedirs(source)
    for name in SOURCES:
        path = os.path.join(REPO, name)
        if os.path.isdir(path):
            shutil.copytree(path, os.path.join(source, name),
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, os.path.join(source, name))
    dist = os.path.join(directory, "dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", dist, source], check=True)
    [wheel] = os.listdir(dist)
    return os.path.join(dist, wheel)


def install(wheel: str, target: str) -> str:
    """Installs `wheel` (no dependencies: the environment has them) into `target`; returns it."""
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
                    "--no-compile", "--target", target, wheel], check=True)
    return target


def environment(site: str) -> dict:
    """os.environ for a process that imports tf-ccfrec from `site` only (not the checkout)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = site
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    return env
