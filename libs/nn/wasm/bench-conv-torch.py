#!/usr/bin/env python3
"""PyTorch's times for the layers bench-conv.mjs times: lenet's convolution and pooling layers at batch 64, one
thread, forward and backward per layer (aten's convolution_backward and max_pool2d_with_indices_backward, the
kernels autograd calls), on MNIST images or synthetic ones with ~80% zero pixels.
Usage: /usr/bin/python3 libs/nn/wasm/bench-conv-torch.py [MNIST_DIR]   (apt-get install python3-torch)
"""

import gzip
import os
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(1)
B = 64
if len(sys.argv) > 1:
    with gzip.open(os.path.join(sys.argv[1], "train-images-idx3-ubyte.gz")) as f:
        raw = f.read()[16 : 16 + B * 784]
    x = torch.frombuffer(bytearray(raw), dtype=torch.uint8).float().div(255).reshape(B, 1, 28, 28)
else:
    x = torch.where(torch.rand(B, 1, 28, 28) < 0.8, 0.0, torch.rand(B, 1, 28, 28))
conv1 = torch.nn.Conv2d(1, 16, 5)
conv2 = torch.nn.Conv2d(16, 32, 5)
w1, b1, w2, b2 = (t.detach() for t in (conv1.weight, conv1.bias, conv2.weight, conv2.bias))

# One pass to make realistic activations and gradients, as bench-conv.mjs does.
y1 = F.conv2d(x, w1, b1).relu()
p1, i1 = F.max_pool2d_with_indices(y1, 2)
y2 = F.conv2d(p1, w2, b2).relu()
p2, i2 = F.max_pool2d_with_indices(y2, 2)
dp2 = torch.rand(p2.shape) * 2 - 1
dy2 = torch.ops.aten.max_pool2d_with_indices_backward(dp2, y2, [2, 2], [2, 2], [0, 0], [1, 1], False, i2) * (y2 > 0)
dp1 = torch.ops.aten.convolution_backward(dy2, p1, w2, [32], [1, 1], [0, 0], [1, 1], False, [0, 0], 1, [True, False, False])[0]
dy1 = torch.ops.aten.max_pool2d_with_indices_backward(dp1, y1, [2, 2], [2, 2], [0, 0], [1, 1], False, i1) * (y1 > 0)


def time_ms(fn):
    """Best and median ms per call over 15 rounds of ~50 ms, after a warm-up."""
    calls, t0 = 1, time.perf_counter()
    while time.perf_counter() - t0 < 0.05:
        for _ in range(calls):
            fn()
        calls *= 2
    rounds = []
    for _ in range(15):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        rounds.append((time.perf_counter() - t0) / calls * 1e3)
    rounds.sort()
    return rounds[0], rounds[7]


cb = torch.ops.aten.convolution_backward
pb = torch.ops.aten.max_pool2d_with_indices_backward
rows = [
    ("conv1 forward", lambda: F.conv2d(x, w1, b1)),
    ("conv1 backward dw db", lambda: cb(dy1, x, w1, [16], [1, 1], [0, 0], [1, 1], False, [0, 0], 1, [False, True, True])),
    ("conv2 forward", lambda: F.conv2d(p1, w2, b2)),
    ("conv2 backward dx dw db", lambda: cb(dy2, p1, w2, [32], [1, 1], [0, 0], [1, 1], False, [0, 0], 1, [True, True, True])),
    ("pool1 forward", lambda: F.max_pool2d_with_indices(y1, 2)),
    ("pool1 backward", lambda: pb(dp1, y1, [2, 2], [2, 2], [0, 0], [1, 1], False, i1)),
    ("pool2 forward", lambda: F.max_pool2d_with_indices(y2, 2)),
    ("pool2 backward", lambda: pb(dp2, y2, [2, 2], [2, 2], [0, 0], [1, 1], False, i2)),
]
print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} thread; {'MNIST' if len(sys.argv) > 1 else 'synthetic'} images")
print(f"{'ms per call, batch 64':52}{'best':>9}{'median':>9}")
with torch.no_grad():
    for name, fn in rows:
        best, median = time_ms(fn)
        print(f"{name:52}{best:9.3f}{median:9.3f}")
