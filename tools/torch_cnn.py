"""The PyTorch reference for gradq's convolutional models: the same architecture, on the CPU, one process, one thread.
Adapted from ../shared/bench/torch_cnn.py (which takes only lenet or convnet) to read any gradq cnn spec.
Usage: torch_cnn.py DATA_DIR EPOCHS SPEC BATCH [TRAIN_SAMPLES]
SPEC:  lenet, convnet, or cnn:CxHxW/LAYER/... with the layers convKxF, convKxFsame, relu, pool2, flatten, denseN
       (gradq's syntax; a dense layer after an image gets the flatten implied).
Adam lr 1e-3 with cosine decay to 0 over the run, PyTorch's default initialisation; prints one line per epoch and
a last line "torch-cnn spec=... samples_per_s=N test_acc=A" (samples/s over training steps only)."""
import re, sys, time
import numpy as np, torch, torch.nn as nn
from idx import load

PRESETS = {
    "lenet": "cnn:1x28x28/conv5x16/relu/pool2/conv5x32/relu/pool2/flatten/dense128/relu/dense10",
    "convnet": "cnn:1x28x28/conv3x32/relu/conv3x64/relu/pool2/flatten/dense128/relu/dense10",
}

def make(spec):
    spec = PRESETS.get(spec, spec)
    head, *tokens = spec[len("cnn:"):].split("/") if spec.startswith("cnn:") else sys.exit(f"not a cnn spec: {spec}")
    c, h, w = (int(v) for v in head.split("x"))
    layers, flat = [], False
    for t in tokens:
        conv, dense = re.fullmatch(r"conv(\d+)x(\d+)(same)?", t), re.fullmatch(r"dense(\d+)", t)
        if conv:
            k, f = int(conv[1]), int(conv[2])
            pad = (k - 1) // 2 if conv[3] else 0
            layers.append(nn.Conv2d(c, f, k, padding=pad)); c, h, w = f, h + 2 * pad - k + 1, w + 2 * pad - k + 1
        elif t == "relu": layers.append(nn.ReLU())
        elif t == "pool2": layers.append(nn.MaxPool2d(2)); h, w = h // 2, w // 2
        elif t == "flatten" or (dense and not flat):
            layers.append(nn.Flatten()); flat, c = True, c * h * w
            if dense: layers.append(nn.Linear(c, int(dense[1]))); c = int(dense[1])
        elif dense: layers.append(nn.Linear(c, int(dense[1]))); c = int(dense[1])
        else: sys.exit(f"unknown layer {t}")
    return nn.Sequential(*layers), spec

def main(data, epochs, spec, batch, limit):
    torch.set_num_threads(1); torch.manual_seed(0)
    xtr, ytr = load(data, "train"); xte, yte = load(data, "t10k")
    xtr, ytr = xtr[:limit], ytr[:limit]
    xtr = torch.from_numpy(xtr).reshape(-1, 1, 28, 28); ytr = torch.from_numpy(ytr.astype(np.int64))
    model, spec = make(spec)
    steps = epochs * ((len(xtr) + batch - 1) // batch)
    opt = torch.optim.Adam(model.parameters(), 1e-3); lossf = nn.CrossEntropyLoss()
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(0); t = 0.0
    for ep in range(epochs):
        perm = torch.randperm(len(xtr), generator=g); t0 = time.perf_counter()
        model.train()
        for s in range(0, len(xtr), batch):
            idx = perm[s:s + batch]
            opt.zero_grad(); lossf(model(xtr[idx]), ytr[idx]).backward(); opt.step(); sched.step()
        t += time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            acc = (model(torch.from_numpy(xte).reshape(-1, 1, 28, 28)).argmax(1).numpy() == yte).mean()
        print(f"epoch {ep + 1} test_acc={acc:.4f} samples_per_s={(ep + 1) * len(xtr) / t:.0f}", flush=True)
    print(f"torch-cnn spec={spec} batch={batch} epochs={epochs} train_samples={len(xtr)} "
          f"samples_per_s={epochs * len(xtr) / t:.0f} test_acc={acc:.4f}")

if __name__ == "__main__":
    limit = int(sys.argv[5]) if len(sys.argv) > 5 else 60000
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), limit)
