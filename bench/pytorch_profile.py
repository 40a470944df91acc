#!/usr/bin/env python3
"""PyTorch's own split of one training step of the paper's CNN (batch 40), from torch.profiler,
to read next to `host-trainer bench --profile`.

Same network and step as bench/pytorch_step.py; prints the operators that take the most
self CPU time over the profiled steps, and the mean time of a step.

    pip install torch==2.9.0
    python3 bench/pytorch_profile.py --threads 2 --steps 20
"""
import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from pytorch_step import training_setup


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=40)
    ap.add_argument("--rows", type=int, default=25)
    args = ap.parse_args()
    model, opt, loss_fn, x, y = training_setup(args.threads, args.batch)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    events = prof.key_averages()
    total_us = sum(e.self_cpu_time_total for e in events)
    print(f"pytorch {torch.__version__}, {args.threads} threads, batch {args.batch}: "
          f"{total_us / args.steps / 1e3:.1f} ms of self CPU time per step (profiled, {args.steps} steps)")
    print(f"{'operator':<48} {'ms/step':>9} {'share':>7}")
    for e in sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[: args.rows]:
        ms = e.self_cpu_time_total / args.steps / 1e3
        print(f"{e.key:<48} {ms:>9.2f} {100 * e.self_cpu_time_total / total_us:>6.1f}%")


if __name__ == "__main__":
    main()
