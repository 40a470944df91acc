#!/usr/bin/env python3
"""The paper's CNN and one training step in PyTorch, to time next to `host-trainer bench`.

Same network (934,471 trainable parameters), batch 40 of 48x48 gray inputs, cross-entropy,
Adam lr 0.0005; prints the median time of a training step and of batch-1 inference.

    pip install torch==2.9.0
    python3 bench/pytorch_step.py --threads 2 --steps 20
"""
import argparse
import statistics
import time

import torch
from torch import nn


def block(cin, cout):
    # Conv 3x3 'same' + ReLU -> BatchNorm -> MaxPool 2x2 -> Dropout 0.25 (the paper's order).
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(cout),
        nn.MaxPool2d(2), nn.Dropout(0.25),
    )


def paper_cnn():
    filters = [32, 64, 128, 128, 256]
    layers, cin = [], 1
    for f in filters:
        layers.append(block(cin, f))
        cin = f
    return nn.Sequential(
        *layers, nn.Flatten(), nn.Dropout(0.25), nn.Dropout(0.25),
        nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 7),
    )


def training_setup(threads, batch=40):
    """The network, Adam, the loss and one synthetic batch, as `host-trainer bench` has them."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = paper_cnn()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == 934_471, trainable
    opt = torch.optim.Adam(model.parameters(), lr=0.0005)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(batch, 1, 48, 48)
    y = torch.arange(batch) % 7
    model.train()
    return model, opt, loss_fn, x, y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--inferences", type=int, default=200)
    args = ap.parse_args()
    model, opt, loss_fn, x, y = training_setup(args.threads)
    times = []
    for i in range(args.steps + 3):
        t = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if i >= 3:
            times.append(time.perf_counter() - t)
    step = statistics.median(times)
    print(f"pytorch {torch.__version__}, {args.threads} threads: training step, batch 40: "
          f"{step * 1e3:.1f} ms median of {args.steps} ({40 / step:.1f} images/s)")
    model.eval()
    one = torch.rand(1, 1, 48, 48)
    times = []
    with torch.no_grad():
        for i in range(args.inferences + 10):
            t = time.perf_counter()
            model(one)
            if i >= 10:
                times.append(time.perf_counter() - t)
    inf = statistics.median(times)
    print(f"pytorch: inference, batch 1: {inf * 1e3:.2f} ms median of {args.inferences} ({1 / inf:.0f} images/s)")


if __name__ == "__main__":
    main()
