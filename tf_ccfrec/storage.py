"""Files and directories on every filesystem TensorFlow knows: local paths, `gs://`, `s3://`,
`hdfs://`, `ram://` (through `tf.io.gfile`), and outputs that are whole or absent on each.

Every read and write of data and artifacts in tf-ccfrec goes through this module (Beam code
uses Beam's `FileSystems`). Paths are strings; a path with a scheme (`gs://b/x`) is kept as it
is, a local one is made absolute.

Whole-or-absent directories (`atomic_directory`): the content is written under a staging
prefix beside the target, then moved into place. A local rename is atomic; an object store has
no directory rename, so there the files are copied and the completion marker
(`_COMPLETE.json`, the list of files and their sizes) is written last. `is_complete` checks the
marker and every file it lists, so a reader never takes a directory that is still being copied,
whatever order a copy (TFX's Pusher, `gsutil cp -r`) writes its files in.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import posixpath
import uuid
from typing import Callable, Dict, Iterator, List

import numpy as np

COMPLETE_MARKER = "_COMPLETE.json"


class OutputExists(FileExistsError):
    """The output directory exists and overwriting was not asked for."""


class IncompleteOutput(FileNotFoundError):
    """A directory without a valid completion marker: being written, or left by a crash."""


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def absolute(path: str) -> str:
    """Local paths absolute; URLs (gs://, s3://, ram://, ...) as given."""
    return os.path.abspath(path) if "://" not in path else path


def join(*parts: str) -> str:
    return posixpath.join(*parts) if not is_local(parts[0]) else os.path.join(*parts)


def dirname(path: str) -> str:
    return posixpath.dirname(path) if not is_local(path) else os.path.dirname(path)


def exists(path: str) -> bool:
    return _gfile().exists(path)


def isdir(path: str) -> bool:
    return _gfile().isdir(path)


def isfile(path: str) -> bool:
    """A file (not a directory; on ram:// a path that is a prefix of a file is a directory)."""
    return _gfile().exists(path) and not _gfile().isdir(path)


def listdir(path: str) -> List[str]:
    """Entry names, sorted (object stores' trailing "/" of directories removed)."""
    return sorted(name.rstrip("/") for name in _gfile().listdir(path))


def glob(pattern: str) -> List[str]:
    """Sorted matches; none when the directory does not exist."""
    import tensorflow as tf

    try:
        return sorted(_gfile().glob(pattern))
    except tf.errors.NotFoundError:
        return []


def makedirs(path: str) -> None:
    _gfile().makedirs(path)


def rmtree(path: str) -> None:
    """Removes a directory tree (or a file); nothing if absent."""
    import tensorflow as tf

    gfile = _gfile()
    if gfile.isdir(path):
        try:
            gfile.rmtree(path)
        except tf.errors.NotFoundError:
            # ram:// has no directory objects to delete: its files go one by one.
            for name in walk_files(path):
                gfile.remove(join(path, name))
    elif gfile.exists(path):
        gfile.remove(path)


def size(path: str) -> int:
    return _gfile().stat(path).length


def walk_files(directory: str) -> List[str]:
    """Every file under `directory`, as sorted paths relative to it ("/"-separated)."""
    files = set()
    for root, _, names in _gfile().walk(directory):
        relative = root[len(directory):].strip("/")
        for name in names:
            path = posixpath.join(relative, name.rstrip("/")) if relative else name.rstrip("/")
            if isfile(join(directory, path)):  # ram:// lists by bare prefix: drop what is not
                files.add(path)
    return sorted(files)


def open_binary(path: str, mode: str = "rb"):
    """A binary file object; a `.gz` file opened for reading is decompressed."""
    handle = _gfile().GFile(path, mode)
    if path.endswith(".gz") and "r" in mode:
        return gzip.GzipFile(fileobj=handle, mode="rb")
    return handle


def read_bytes(path: str) -> bytes:
    with open_binary(path) as f:
        return f.read()


def read_json(path: str):
    return json.loads(read_bytes(path).decode("utf-8"))


def write_bytes(path: str, data: bytes) -> None:
    """Writes a whole file: locally through a temporary file renamed into place; on object
    stores one upload, which appears at close or not at all."""
    path = absolute(path)
    gfile = _gfile()
    if not is_local(path):
        parent = dirname(path)
        if parent:
            gfile.makedirs(parent)
        with gfile.GFile(path, "wb") as f:
            f.write(data)
        return
    _write_local(path, lambda f: f.write(data))


def _write_local(path: str, write: Callable) -> None:
    """`write(binary file)` into a temporary file beside local `path`, renamed into place once
    it returns; on any error no file is left, neither `path` nor the temporary one."""
    gfile = _gfile()
    parent = dirname(path)
    if parent:
        gfile.makedirs(parent)
    tmp = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp[len("file://"):] if tmp.startswith("file://") else tmp, "wb") as f:
            write(f)
        gfile.rename(tmp, path, overwrite=True)
    finally:
        if gfile.exists(tmp):
            gfile.remove(tmp)


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str, value) -> None:
    """JSON, indented, written whole (`write_bytes`)."""
    write_text(path, json.dumps(value, indent=2, sort_keys=False) + "\n")


def save_npz(path: str, **arrays: np.ndarray) -> None:
    """An .npz file written whole (`write_bytes`' guarantee). Locally the arrays stream into the
    temporary file, with no copy of them in memory (a million items' view vectors are 2 GB); on
    object stores the file is built in memory and uploaded once."""
    path = absolute(path)
    if is_local(path):
        _write_local(path, lambda f: np.savez(f, **arrays))
        return
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes(path, buffer.getvalue())


def load_npz(path: str) -> Dict[str, np.ndarray]:
    """Every array of an .npz file, from any filesystem; read member by member through a
    seekable file, so no copy of the file's bytes is held beside the arrays (a million items'
    view vectors are 2 GB)."""
    with _gfile().GFile(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def copy_tree(source: str, destination: str, skip=()) -> None:
    """Copies every file under `source` (but those named in `skip`) to `destination`."""
    gfile = _gfile()
    for name in walk_files(source):
        if name in skip:
            continue
        target = join(destination, name)
        gfile.makedirs(dirname(target))
        gfile.copy(join(source, name), target, overwrite=True)


def mark_complete(directory: str) -> None:
    """Writes the completion marker: every file under `directory` with its size."""
    files = {name: size(join(directory, name)) for name in walk_files(directory)
             if name != COMPLETE_MARKER}
    write_json(join(directory, COMPLETE_MARKER), {"files": files})


def is_complete(directory: str) -> bool:
    """The marker is there and every file it lists is there with its size."""
    import tensorflow as tf

    try:
        files = read_json(join(directory, COMPLETE_MARKER))["files"]
        return all(size(join(directory, name)) == length for name, length in files.items())
    except (tf.errors.OpError, OSError, ValueError, KeyError, TypeError):
        return False


def check_complete(directory: str, what: str) -> None:
    """Raises IncompleteOutput naming `directory` unless it is complete."""
    if not is_complete(directory):
        state = "does not exist" if not exists(directory) else (
            f"has no valid {COMPLETE_MARKER} (still being written, or left by a failed write)")
        raise IncompleteOutput(f"{directory}: {what} {state}")


@contextlib.contextmanager
def atomic_directory(path: str, overwrite: bool = False) -> Iterator[str]:
    """Yields a staging directory whose content replaces `path` when the block succeeds,
    completion marker included.

    On any exception the staging directory is removed and `path` is left as it was.

    Raises:
      OutputExists: `path` exists and is not empty, and overwrite is False.
    """
    path = absolute(path).rstrip("/")
    gfile = _gfile()
    if gfile.exists(path) and (not gfile.isdir(path) or gfile.listdir(path)) and not overwrite:
        raise OutputExists(f"{path} exists; pass --overwrite to replace it")
    staging = f"{path}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    gfile.makedirs(staging)
    try:
        yield staging
        mark_complete(staging)
    except BaseException:
        rmtree(staging)
        raise
    if is_local(path):
        old = f"{path}.old-{os.getpid()}"
        if gfile.exists(path):
            gfile.rename(path, old)
        gfile.rename(staging, path)
        rmtree(old)
        return
    # Object stores: the old content goes first (readers see it absent, not mixed), the new
    # files are copied, and the marker, copied last, completes it.
    rmtree(path)
    copy_tree(staging, path, skip=(COMPLETE_MARKER,))
    gfile.copy(join(staging, COMPLETE_MARKER), join(path, COMPLETE_MARKER), overwrite=True)
    rmtree(staging)
