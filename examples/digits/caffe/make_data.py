"""Write scikit-learn's digits as the HDF5 files the Caffe example's ``HDF5Data`` layers read.

Run it once before the sweep (it takes about a second and is safe to re-run)::

    python examples/digits/caffe/make_data.py && sweeper run configs/digits-caffe.yml

It writes ``data/{train,test}.h5`` next to this script (datasets ``data``: N,1,8,8 float32 in
[0, 1], and ``label``: N float32) and the list files ``data/{train,test}.txt`` that the net's
``source:`` names. Caffe opens the .h5 paths in a list file as written, relative to its working
directory (a trial's output folder), so they are absolute.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

DEFAULT_OUT = Path(__file__).resolve().parent / "data"
TEST_SIZE = 297  # one test batch of the net covers the whole test split


def main(out: Path = DEFAULT_OUT, seed: int = 0) -> None:
    """Write the train and test splits and their list files into ``out``."""
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = digits.target.astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_SIZE, random_state=seed, stratify=y
    )
    out.mkdir(parents=True, exist_ok=True)
    # Generated files stay out of git without touching the repository's .gitignore.
    (out / ".gitignore").write_text("*\n")
    for split, data, label in (("train", x_train, y_train), ("test", x_test, y_test)):
        h5 = (out / f"{split}.h5").resolve()
        with h5py.File(h5, "w") as handle:
            handle.create_dataset("data", data=data)
            handle.create_dataset("label", data=label)
        (out / f"{split}.txt").write_text(f"{h5}\n")
    print(f"wrote {len(y_train)} training and {len(y_test)} test digits to {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write into")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    args = parser.parse_args()
    main(args.out, args.seed)
