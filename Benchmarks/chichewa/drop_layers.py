"""Writes a copy of a Graft bottleneck adapter checkpoint whose adapters in the given layers add nothing.

    python drop_layers.py SOURCE.h5 TARGET.h5 10,11

A sequential (Pfeiffer) bottleneck adds Up(act(Down(h))) to the residual stream; with Up's weight and bias
zero it adds 0, so the layer computes what the frozen backbone computes: MAD-X 2.0's dropping of the last
layers' language adapters, done on a trained adapter. Needs h5py (the peer venv has it).
"""
import os
import shutil
import sys

import h5py


def main():
    source, target, layers = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3].split(",")]
    if os.path.abspath(source) == os.path.abspath(target):
        sys.exit("drop_layers.py: the output would overwrite the input")
    temporary = target + ".partial"
    shutil.copyfile(source, temporary)
    try:
        with h5py.File(temporary, "r+") as checkpoint:
            for layer in layers:
                for name in ("weight", "bias"):
                    key = f"adapter/layer.{layer}.feed_forward.up.{name}"
                    if key not in checkpoint:
                        sys.exit(f"drop_layers.py: {source} has no {key} (not a sequential bottleneck adapter?)")
                    checkpoint[key][...] = 0
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


if __name__ == "__main__":
    main()
