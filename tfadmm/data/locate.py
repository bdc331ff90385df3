"""Finding a local copy of a dataset, and the offline error when there is none."""

from __future__ import annotations

import os
import pathlib

from tfadmm.data import tfds_source
from tfadmm.data.folder import is_image_tree
from tfadmm.data.idx import is_idx_directory
from tfadmm.errors import DataError

ENV_VAR = "TFADMM_DATA_DIR"


def detect_format(path):
    """The source a local path holds: "npz", "idx", "folder", "tfds" or None."""
    path = pathlib.Path(path)
    if path.is_file() and path.suffix == ".npz":
        return "npz"
    if not path.is_dir():
        return None
    if is_idx_directory(path):
        return "idx"
    if is_image_tree(path):
        return "folder"
    if any(p.is_dir() for p in path.iterdir()):
        return "tfds"  # a TFDS data_dir: <path>/<name>/<version>/
    return None


def candidates(name, spec):
    """Local paths to try, in order: `$TFADMM_DATA_DIR/<name>[.npz]`, then system dirs."""
    found = []
    root = os.environ.get(ENV_VAR)
    if root:
        found += [pathlib.Path(root) / name, pathlib.Path(root) / f"{name}.npz"]
    found += [pathlib.Path(d) for d in spec.system_dirs]
    return found


def find_local(name, spec):
    """`(source, path)` of the first local copy found, or `(None, None)`."""
    for path in candidates(name, spec):
        source = detect_format(path)
        if source in ("npz", "idx", "folder"):
            return source, path
    return None, None


def offline_error(name, spec, *, data_dir, cause):
    """The DataError `source="auto"` raises when no copy is found or can be downloaded."""
    looked = [str(p) for p in candidates(name, spec)]
    looked.append(f"TFDS data_dir {data_dir}")
    if spec.install_hint:
        fix = spec.install_hint.format(
            data_dir=data_dir, manual_dir=tfds_source.manual_dir(data_dir)
        )
    else:
        fix = (
            f"put an image tree (train/<class>/*, test/<class>/*) or a .npz file "
            f"(x_train, y_train, x_test, y_test) at $TFADMM_DATA_DIR/{name}, or pass it as `path`"
        )
    if name not in tfds_source.MANUAL:
        fix += (
            f"; or run `tfds build {name} --data_dir {data_dir}` on a machine with internet "
            f"access and copy {os.path.join(data_dir, name)} here"
        )
    env = os.environ.get(ENV_VAR)
    return DataError(
        f"Cannot load dataset '{name}': no local copy was found and TFDS could not "
        f"prepare it ({cause}). Looked in: {', '.join(looked)}"
        f" ({ENV_VAR} is {'set to ' + repr(env) if env else 'not set'}). "
        f"To use it offline, {fix}."
    )
