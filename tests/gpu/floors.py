#!/usr/bin/env python3
"""The floors report.py measures relat's kernels against, measured on this GPU in this run:

    python3 floors.py OUT.csv

  copy_bw    GB/s      device-to-device copy_ of a 1 GiB buffer, bytes counted as read + write
  gemm_bf16  TFLOP/s   torch.matmul 8192 x 8192 x 8192 in bf16 (2 n^3 FLOPs)
  gemm_f32   TFLOP/s   torch.matmul 4096 x 4096 x 4096 in fp32, TF32 off (the fp32 kernels' rate)

Each is the median of individually CUDA-event-timed repetitions after a warm-up. OUT.csv has the
columns name,value,unit; every row is flushed as it is written.
"""
import sys

import torch

REPS, WARMUP = 20, 5


def median_ms(fn):
    for _ in range(WARMUP):
        fn()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in range(REPS)]
    for start, stop in events:
        start.record()
        fn()
        stop.record()
    torch.cuda.synchronize()
    times = sorted(start.elapsed_time(stop) for start, stop in events)
    return times[REPS // 2]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    if not torch.cuda.is_available():
        sys.exit("floors.py: no CUDA device visible to torch")
    torch.backends.cuda.matmul.allow_tf32 = False
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}", flush=True)
    with open(sys.argv[1], "w", buffering=1) as out:  # line-buffered
        out.write("name,value,unit\n")

        def row(name, value, unit, how):
            out.write(f"{name},{value:.1f},{unit}\n")
            print(f"{name}: {value:.1f} {unit} ({how})", flush=True)

        n = 1 << 30
        src = torch.empty(n, dtype=torch.uint8, device="cuda").random_(0, 255)
        dst = torch.empty_like(src)
        ms = median_ms(lambda: dst.copy_(src))
        row("copy_bw", 2 * n / (ms * 1e-3) / 1e9, "GB/s", f"1 GiB copy_, {ms:.3f} ms")
        del src, dst

        for name, dtype, size in (("gemm_bf16", torch.bfloat16, 8192), ("gemm_f32", torch.float32, 4096)):
            a = torch.randn(size, size, device="cuda").to(dtype)
            b = torch.randn(size, size, device="cuda").to(dtype)
            c = torch.empty(size, size, device="cuda", dtype=dtype)
            ms = median_ms(lambda: torch.matmul(a, b, out=c))
            row(name, 2 * size**3 / (ms * 1e-3) / 1e12, "TFLOP/s", f"{size}^3 matmul, {ms:.3f} ms")
            del a, b, c
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
