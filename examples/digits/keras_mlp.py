"""A small Keras MLP on scikit-learn's bundled digits (8x8 images, 10 classes).

sweeper calls ``train(params, ctx)`` once per trial, each in a fresh process with TensorFlow
seeded from ``ctx.seed``; ``ReportCallback`` reports every epoch's Keras logs.
"""

from __future__ import annotations

import keras
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sweeper.frameworks.tensorflow import ReportCallback


def _data(seed: int = 0) -> tuple[np.ndarray, ...]:
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int64")
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.25, random_state=seed, stratify=y
    )
    return x_train, x_val, y_train, y_val


def train(params: dict, ctx) -> None:
    x_train, x_val, y_train, y_val = _data()
    model = keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(params["hidden"], activation="relu"),
            keras.layers.Dropout(params["dropout"]),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=params["lr"]),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=params["epochs"],
        batch_size=int(params.get("batch_size", 32)),
        verbose=0,
        # Reports loss, accuracy, val_loss and val_accuracy at step epoch + 1.
        callbacks=[ReportCallback(ctx)],
    )
    model.save(ctx.output_dir / "model.keras")
