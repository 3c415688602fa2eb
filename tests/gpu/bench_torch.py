#!/usr/bin/env python3
"""The torch equivalent of each relat kernel, timed like check_kernels' bench mode (CUDA events,
median of individually timed calls after a warm-up), on the same dtypes and shapes.

    python3 bench_torch.py OUT.csv

Writes kernel,dtype,rows,cols,us. Adding a kernel: one entry in OPS with the same shapes as
check_kernels.cpp.
"""
import csv
import sys

import torch
import torch.nn.functional as F

DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}
SHAPES = {"rmsnorm": [(65536, 1024), (32768, 2560), (16384, 5120)]}


def rmsnorm(rows, cols, dtype):
    x = torch.empty(rows, cols, dtype=dtype, device="cuda").uniform_(-3, 3)
    w = torch.empty(cols, dtype=dtype, device="cuda").uniform_(0.5, 1.5)
    if hasattr(F, "rms_norm"):  # torch >= 2.4
        return lambda: F.rms_norm(x, (cols,), w, 1e-6)
    # Older torch: the same maths, as a user would write it.
    return lambda: (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6)).to(dtype) * w


OPS = {"rmsnorm": rmsnorm}


def median_us(fn, warmup=10, iters=100):
    for _ in range(warmup):
        fn()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in range(iters)]
    for start, stop in events:
        start.record()
        fn()
        stop.record()
    torch.cuda.synchronize()
    times = sorted(start.elapsed_time(stop) * 1000.0 for start, stop in events)
    return times[iters // 2]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}")
    with open(sys.argv[1], "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["kernel", "dtype", "rows", "cols", "us"])
        for kernel, make in OPS.items():
            for name, dtype in DTYPES.items():
                for rows, cols in SHAPES[kernel]:
                    us = median_us(make(rows, cols, dtype))
                    out.writerow([kernel, name, rows, cols, f"{us:.3f}"])
                    print(f"{kernel} {name} {rows}x{cols}: {us:.1f} us")
                    torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
