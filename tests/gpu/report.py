#!/usr/bin/env python3
"""Joins check_kernels' and bench_torch.py's timings into one table, with each kernel's floor, the
shortest time the GPU allows:

    floor = max(bytes / copy bandwidth, flops / GEMM rate)

bytes and flops come from check_kernels' CSV (flops 0 for the bandwidth-bound kernels); the copy
bandwidth and the GEMM rates (bf16 for 16-bit kernels, fp32 for f32) from floors.py's CSV, measured
in the same run. A kernel under 50% of its floor is flagged "<50%".

    python3 report.py RELAT.csv TORCH.csv [--floors FLOORS.csv] [--check-torch LOG]
                      [--peak-gbs GBS]

TORCH.csv may be missing (torch columns then read n/a). Without FLOORS.csv the header says so and
datasheet values of an H200 are used (4800 GB/s, 989 / 67 TFLOP/s dense bf16 / fp32); --peak-gbs
(run.sh passes RELAT_PEAK_BW_GBS) overrides the bandwidth either way. --check-torch: check_torch.py's
log, whose pass/fail counts are printed under the table. Lines of a CSV that do not parse (a torn
last line when a step hit its time limit) are skipped and counted.
"""
import argparse
import csv
import os
import re

DATASHEET = {"copy_bw": 4800.0, "gemm_bf16": 989.0, "gemm_f32": 67.0}  # H200 SXM


def read_rows(path, need, notes):
    """Rows of a CSV as dicts; rows with the wrong field count or bad numbers are skipped."""
    rows, skipped = [], 0
    with open(path, newline="") as f:
        text = f.read()
    if text and not text.endswith("\n"):  # the last line was cut mid-write
        text, skipped = text[:text.rfind("\n") + 1], 1
    lines = list(csv.reader(text.splitlines()))
    if not lines:
        notes.append(f"{os.path.basename(path)}: empty")
        return rows
    head = lines[0]
    for fields in lines[1:]:
        if not fields:
            continue
        row = dict(zip(head, fields))
        try:
            if len(fields) != len(head):
                raise ValueError
            for k in need:
                float(row[k])
        except (ValueError, KeyError):
            skipped += 1
            continue
        rows.append(row)
    if skipped:
        notes.append(f"{os.path.basename(path)}: skipped {skipped} line(s) that do not parse")
    return rows


def check_torch_summary(path):
    if not path:
        return None
    if not os.path.exists(path):
        return f"check_torch: no log ({path})"
    text = open(path, errors="replace").read()
    if text and not text.endswith("\n"):  # a line cut mid-write by the step's time limit
        text = text[:text.rfind("\n") + 1]
    final = re.findall(r"^check_torch: (\d+) passed, (\d+) failed.*$", text, re.M)
    fails = [ln for ln in text.splitlines() if ln.startswith("FAIL")]
    if final:
        p, f = final[-1]
        line = f"check_torch (relat vs torch on the device): {p} passed, {f} failed"
    else:
        p = sum(1 for ln in text.splitlines() if ln.startswith("PASS"))
        line = (f"check_torch (relat vs torch on the device): INCOMPLETE (no final count): "
                f"{p} passed, {len(fails)} failed before it stopped")
    return "\n".join([line] + [f"  {ln}" for ln in fails[:20]])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("relat_csv")
    ap.add_argument("torch_csv")
    ap.add_argument("--floors")
    ap.add_argument("--check-torch")
    ap.add_argument("--peak-gbs", type=float)
    args = ap.parse_args()
    notes = []

    rates, source = dict(DATASHEET), "datasheet"
    if args.floors and os.path.exists(args.floors):
        got = {r["name"]: float(r["value"]) for r in read_rows(args.floors, ["value"], notes)}
        rates.update(got)
        source = "measured (floors.csv)" if got else "datasheet"
        missing = [k for k in DATASHEET if k not in got]
        if missing:
            notes.append(f"floors.csv lacks {', '.join(missing)}: datasheet value used")
    if source == "datasheet":
        header_src = ("floors.csv missing: H200 datasheet floors "
                      f"({DATASHEET['copy_bw']:.0f} GB/s, {DATASHEET['gemm_bf16']:.0f} bf16 / "
                      f"{DATASHEET['gemm_f32']:.0f} f32 TFLOP/s)")
    else:
        header_src = "floors measured in this run (floors.csv)"
    if args.peak_gbs:
        rates["copy_bw"] = args.peak_gbs
        header_src += f"; bandwidth overridden by RELAT_PEAK_BW_GBS = {args.peak_gbs:.0f}"

    torch_us = {}
    if os.path.exists(args.torch_csv):
        for r in read_rows(args.torch_csv, ["us"], notes):
            torch_us[(r["kernel"], r["dtype"], r["rows"], r["cols"])] = float(r["us"])
    head = ["kernel", "dtype", "shape", "relat us", "torch us", "torch/relat", "floor us", "bound",
            "% of floor", "relat GB/s", "TFLOP/s", "flag"]
    rows, flagged = [], []
    for r in read_rows(args.relat_csv, ["us", "bytes"], notes):
        us, nbytes = float(r["us"]), float(r["bytes"])
        flops = float(r.get("flops") or 0)
        gemm = rates["gemm_f32"] if r["dtype"] == "f32" else rates["gemm_bf16"]
        t_bw = nbytes / (rates["copy_bw"] * 1e9) * 1e6
        t_fl = flops / (gemm * 1e12) * 1e6
        floor, bound = (t_fl, "flops") if t_fl > t_bw else (t_bw, "bytes")
        frac = floor / us if us > 0 else 0.0
        flag = "<50%" if frac < 0.5 else ""
        t = torch_us.get((r["kernel"], r["dtype"], r["rows"], r["cols"]))
        rows.append([r["kernel"], r["dtype"], f'{r["rows"]}x{r["cols"]}', f"{us:.1f}",
                     f"{t:.1f}" if t else "n/a", f"{t / us:.2f}x" if t else "n/a",
                     f"{floor:.1f}", bound, f"{100 * frac:.0f}%", f"{nbytes / us / 1e3:.0f}",
                     f"{flops / us / 1e6:.1f}" if flops else "-", flag])
        if flag:
            flagged.append(f'{r["kernel"]} {r["dtype"]} {r["rows"]}x{r["cols"]} ({100 * frac:.0f}%)')
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))
    print(f"floor = max(bytes / {rates['copy_bw']:.0f} GB/s, flops / GEMM rate "
          f"{rates['gemm_bf16']:.0f} bf16 | {rates['gemm_f32']:.1f} f32 TFLOP/s); "
          f"% of floor = floor / relat time; {header_src}")
    for n in notes:
        print(f"note: {n}")
    print(line(head))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))
    print(f"{len(flagged)} of {len(rows)} timings under 50% of their floor" +
          (": " + "; ".join(flagged) if flagged else ""))
    summary = check_torch_summary(args.check_torch)
    if summary:
        print(summary)


if __name__ == "__main__":
    main()
