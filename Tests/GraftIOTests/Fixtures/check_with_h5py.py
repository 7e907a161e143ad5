#!/usr/bin/env python3
"""Interop check for GraftIO: lists what h5py sees in an HDF5 file.

Usage: python check_with_h5py.py FILE.h5

Prints every dataset with its numpy dtype, shape and first values, and every
attribute with its Python type, so a file written by Graft can be checked by
eye: float16 datasets must show dtype float16, string attributes type str.
Not run by `swift test` (the Swift tests need no Python).
"""
import sys

import h5py
import numpy as np


def describe_attributes(obj, indent):
    for name, value in sorted(obj.attrs.items()):
        print(f"{indent}@{name}: {type(value).__name__} = {value!r}")


def main(path):
    with h5py.File(path, "r") as file:
        print(f"h5py {h5py.__version__}, HDF5 {h5py.version.hdf5_version}: {path}")
        describe_attributes(file, "")

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                values = np.asarray(obj[()]).ravel()[:6]
                print(f"{name}: dtype={obj.dtype} shape={obj.shape} values={values.tolist()}")
                describe_attributes(obj, "  ")

        file.visititems(visit)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
