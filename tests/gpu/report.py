#!/usr/bin/env python3
"""Joins check_kernels' and bench_torch.py's timings into one table, with each kernel's bandwidth
floor (bytes that must move / peak bandwidth).

    python3 report.py RELAT.csv TORCH.csv PEAK_GBS

TORCH.csv may be missing (torch columns then read n/a).
"""
import csv
import os
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    relat_csv, torch_csv, peak_gbs = sys.argv[1], sys.argv[2], float(sys.argv[3])
    torch_us = {}
    if os.path.exists(torch_csv):
        with open(torch_csv) as f:
            for r in csv.DictReader(f):
                torch_us[(r["kernel"], r["dtype"], r["rows"], r["cols"])] = float(r["us"])
    head = ["kernel", "dtype", "shape", "relat us", "torch us", "torch/relat", "floor us",
            "% of floor", "relat GB/s"]
    rows = []
    with open(relat_csv) as f:
        for r in csv.DictReader(f):
            us, nbytes = float(r["us"]), float(r["bytes"])
            floor = nbytes / (peak_gbs * 1e9) * 1e6
            t = torch_us.get((r["kernel"], r["dtype"], r["rows"], r["cols"]))
            rows.append([r["kernel"], r["dtype"], f'{r["rows"]}x{r["cols"]}', f"{us:.1f}",
                         f"{t:.1f}" if t else "n/a", f"{t / us:.2f}x" if t else "n/a",
                         f"{floor:.1f}", f"{100 * floor / us:.0f}%", f"{nbytes / us / 1e3:.0f}"])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))
    print(f"floor = bytes moved / {peak_gbs:.0f} GB/s; % of floor = floor / relat time")
    print(line(head))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))


if __name__ == "__main__":
    main()
