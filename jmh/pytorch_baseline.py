#!/usr/bin/env python3
"""The JMH kernel benchmarks' libtorch baselines as a PyTorch user writes them in Python, timed on
the CPU at the same shapes and dtypes, so docs/benchmarks.md can show relat next to what PyTorch
itself gives (not only next to libtorch driven from Java).

    python3 jmh/pytorch_baseline.py [--threads N] [--seconds S] [--only REGEX] [--out FILE.csv]

    python3 jmh/pytorch_baseline.py --table JMH.json[,JMH.json...] PYTORCH.csv

Prints one CSV line per case, flushed as it is measured: benchmark,method,params,us (median of
individually timed calls after a warm-up; params as JMH writes them, so the docs can join the two).
--table joins a JMH results file (relat bench's jmh-results.json) with such a CSV: one Markdown row
per relat method with its libtorch baseline from the same JMH run and the PyTorch (Python) time of
that baseline, medians and ratios. Memory: glibc returns the pages of a freed multi-megabyte tensor to the system and faults fresh
ones in at the next call, which alone made the Qwen RMSNorm composite at [512, 4096] fp32 take
6.4 ms instead of 0.65 ms here; so the script runs with MALLOC_MMAP_THRESHOLD_ and
MALLOC_TRIM_THRESHOLD_ raised (freed memory is kept and reused, as a long-running PyTorch process or
PyTorch's caching allocator on a GPU does) unless they are set already; --glibc-defaults keeps
glibc's. BLAS: Debian's python3-torch calls the system BLAS (torch.__config__: BLAS_INFO=generic);
install libopenblas0-pthread, or its fp32 GEMMs run on the reference BLAS (~50x slower).
Threads default to the machine's cores (torch.set_num_threads), as the JMH baselines run. Where
torch has no fused op (RMSNorm before torch 2.4, attention before 2.0), the method is the
composition Hugging Face's Qwen code runs. Works with Debian's python3-torch (1.13) and torch 2.x.
"""
import argparse
import math
import os
import re
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # --table needs no torch
    torch = F = None

DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16} if torch else {}
VOCAB = 151936


def rms_norm(x, w, eps=1e-6):
    if hasattr(F, "rms_norm"):
        return F.rms_norm(x, (x.shape[-1],), w, eps)
    # Qwen3RMSNorm.forward (transformers): fp32 statistics, then the weight in the input dtype.
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return w * xf.to(x.dtype)


def rms_norm_backward(dy, x, w, rstd):
    """The composition of the JMH baseline: g = dy * w; dx = rstd * g - x * rstd^3 * sum(g * x) / n."""
    xf, g = x.float(), dy.float() * w.float()
    k = (g * xf).sum(-1, keepdim=True) * rstd.pow(3) / x.shape[-1]
    return (g * rstd - xf * k).to(x.dtype)


def randn(*shape, dtype=None):
    return torch.randn(*shape).to(dtype or torch.float32)


def cases_rmsnorm():
    for hidden in (1024, 4096):
        for tokens in (1, 512):
            for d in DTYPES:
                x, w, dy = randn(tokens, hidden, dtype=DTYPES[d]), randn(hidden, dtype=DTYPES[d]), \
                    randn(tokens, hidden, dtype=DTYPES[d])
                rstd = torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6)
                p = f"dtype={d},hidden={hidden},tokens={tokens}"
                yield "RmsNormBench", "libtorch", p, lambda x=x, w=w: rms_norm(x, w)
                yield "RmsNormBench", "libtorchBackward", p, \
                    lambda dy=dy, x=x, w=w, r=rstd: rms_norm_backward(dy, x, w, r)


def cases_add_rmsnorm():
    for hidden in (1024, 4096):
        for tokens in (1, 512):
            for d in DTYPES:
                t = DTYPES[d]
                x, r, w = randn(tokens, hidden, dtype=t), randn(tokens, hidden, dtype=t), randn(hidden, dtype=t)
                dy, ds_next = randn(tokens, hidden, dtype=t), randn(tokens, hidden, dtype=t)
                s = x + r
                rstd = torch.rsqrt(s.float().pow(2).mean(-1, keepdim=True) + 1e-6)
                p = f"dtype={d},hidden={hidden},tokens={tokens}"
                yield "AddRmsNormBench", "libtorch", p, lambda x=x, r=r, w=w: rms_norm(x + r, w)
                yield "AddRmsNormBench", "libtorchBackward", p, \
                    lambda dy=dy, s=s, w=w, rs=rstd, dn=ds_next: (rms_norm_backward(dy, s, w, rs).float()
                                                                   + dn.float()).to(s.dtype)


def cases_qknorm():
    for heads in (16, 32):
        for tokens in (1, 512):
            for d in DTYPES:
                t = DTYPES[d]
                q, dy, w = randn(tokens, heads, 128, dtype=t), randn(tokens, heads, 128, dtype=t), randn(128, dtype=t)
                rstd = torch.rsqrt(q.float().pow(2).mean(-1, keepdim=True) + 1e-6)
                p = f"dtype={d},heads={heads},tokens={tokens}"
                yield "QkNormBench", "libtorch", p, lambda q=q, w=w: rms_norm(q, w)
                yield "QkNormBench", "libtorchBackward", p, \
                    lambda dy=dy, q=q, w=w, r=rstd: rms_norm_backward(dy, q, w, r)


def cases_swiglu():
    for inter in (3072, 12288):
        for tokens in (1, 512):
            for d in DTYPES:
                t = DTYPES[d]
                gate, up, dout = (randn(tokens, inter, dtype=t) for _ in range(3))
                gv, uv = randn(tokens, 2 * inter, dtype=t).chunk(2, -1)
                p = f"dtype={d},intermediate={inter},tokens={tokens}"
                yield "SwiGluBench", "libtorch", p, lambda g=gate, u=up: F.silu(g) * u
                yield "SwiGluBench", "libtorchFused", p, lambda g=gv, u=uv: F.silu(g) * u
                # silu'(g) * dout * up and dout * silu(g), as autograd computes them.
                yield "SwiGluBench", "libtorchBackward", p, \
                    lambda g=gate, u=up, o=dout: (torch.ops.aten.silu_backward(o * u, g), o * F.silu(g))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), -1)


def rotate_half_backward(y):
    half = y.shape[-1] // 2
    return torch.cat((y[..., half:], -y[..., :half]), -1)


def cases_rope():
    inv_freq = 1.0 / (1e6 ** (torch.arange(0, 128, 2, dtype=torch.float32) / 128))
    for model, hq in (("0.6B", 16), ("8B", 32)):
        for tokens in (1, 512):
            for d in DTYPES:
                t = DTYPES[d]
                q, k = randn(tokens, hq, 128, dtype=t), randn(tokens, 8, 128, dtype=t)
                positions = torch.arange(tokens) + 37

                def tables(positions=positions, t=t):
                    freqs = torch.outer(positions.float(), inv_freq)
                    emb = torch.cat((freqs, freqs), -1)
                    return emb.cos().to(t).unsqueeze(1), emb.sin().to(t).unsqueeze(1)

                cos, sin = tables()
                p = f"dtype={d},model={model},tokens={tokens}"
                yield "RopeBench", "libtorchForward", p, \
                    lambda q=q, k=k, c=cos, s=sin: (q * c + rotate_half(q) * s, k * c + rotate_half(k) * s)
                yield "RopeBench", "libtorchWithTables", p, \
                    lambda q=q, k=k, tb=tables: (lambda c, s: (q * c + rotate_half(q) * s,
                                                               k * c + rotate_half(k) * s))(*tb())
                yield "RopeBench", "libtorchBackward", p, \
                    lambda q=q, k=k, c=cos, s=sin: (q * c + rotate_half_backward(q * s),
                                                    k * c + rotate_half_backward(k * s))


def attention_composition(q, k, v, scale, mask):
    """[t, H, D] inputs, GQA by repeat_interleave, additive causal mask: the JMH baseline's maths."""
    g = q.shape[1] // k.shape[1]
    qh = q.permute(1, 0, 2)
    kh = k.repeat_interleave(g, 1).permute(1, 2, 0)
    vh = v.repeat_interleave(g, 1).permute(1, 0, 2)
    return torch.matmul(torch.softmax(torch.matmul(qh, kh) * scale + mask, -1), vh).permute(1, 0, 2)


def cases_attention():
    tq, prefix, hq, hkv, dim = 256, 200, 16, 8, 128
    tk, scale = tq + prefix, 1 / math.sqrt(dim)
    for d in DTYPES:
        t = DTYPES[d]
        torch.manual_seed(42)
        q, k, v, dout = randn(tq, hq, dim, dtype=t), randn(tk, hkv, dim, dtype=t), randn(tk, hkv, dim, dtype=t), \
            randn(tq, hq, dim, dtype=t)
        keep = torch.ones(tq, tk, dtype=torch.bool).tril(prefix)
        mask = torch.zeros(tq, tk).masked_fill(~keep, float("-inf")).to(t)
        p = f"dtype={d},prefix={prefix},tq={tq}"
        yield "AttentionBench", "libtorchForward", p, lambda: attention_composition(q, k, v, scale, mask)
        qg, kg, vg = (x.detach().clone().requires_grad_(True) for x in (q, k, v))

        def forward_backward(qg=qg, kg=kg, vg=vg, mask=mask, dout=dout):
            for x in (qg, kg, vg):
                x.grad = None
            attention_composition(qg, kg, vg, scale, mask).backward(dout)
            return kg.grad

        yield "AttentionBench", "libtorchForwardBackward", p, forward_backward
        if hasattr(F, "scaled_dot_product_attention"):
            def sdpa(q=q, k=k, v=v, keep=keep):
                g = hq // hkv
                return F.scaled_dot_product_attention(q.permute(1, 0, 2), k.repeat_interleave(g, 1).permute(1, 0, 2),
                                                      v.repeat_interleave(g, 1).permute(1, 0, 2), attn_mask=keep)

            yield "AttentionBench", "sdpaForward", p, sdpa


def cases_decode_attention():
    hq, hkv, dim, capacity = 16, 8, 128, 32768
    scale = 1 / math.sqrt(dim)
    for d in DTYPES:
        t = DTYPES[d]
        q = randn(1, hq, dim, dtype=t)
        k_cache, v_cache = randn(capacity, hkv, dim, dtype=t), randn(capacity, hkv, dim, dtype=t)
        for length in (4096, 32768):
            def decode(length=length, q=q, kc=k_cache, vc=v_cache):
                qh = q.reshape(hkv, hq // hkv, dim)
                p = torch.softmax(torch.matmul(qh, kc[:length].permute(1, 2, 0)) * scale, -1)
                return torch.matmul(p, vc[:length].permute(1, 0, 2)).reshape(1, hq, dim)

            yield "DecodeAttentionBench", "libtorch", f"dtype={d},length={length}", decode


def cases_embedding():
    for hidden in (1024, 4096):
        table = torch.full((VOCAB, hidden), 0.5, dtype=torch.bfloat16)
        for tokens in (1, 512):
            ids = torch.randint(VOCAB, (tokens,))
            yield "EmbeddingBench", "libtorch", f"dtype=BF16,hidden={hidden},tokens={tokens}", \
                lambda t=table, i=ids: F.embedding(i, t)


GEMV_SHAPES = ["0.6b-qkv:4096x1024", "0.6b-down:1024x3072", "0.6b-lmhead:151936x1024", "8b-qkv:6144x4096",
               "8b-down:4096x12288"]


def cases_gemv():
    for shape in GEMV_SHAPES:
        n, k = map(int, shape.split(":")[1].split("x"))
        for d in DTYPES:
            t = DTYPES[d]
            w, x, dy = randn(n, k, dtype=t), randn(1, k, dtype=t), randn(1, n, dtype=t)
            p = f"dtype={d},rows=1,shape={shape},threads=0"
            yield "GemvBench", "libtorchForward", p, lambda x=x, w=w: F.linear(x, w)
            yield "GemvBench", "libtorchBackward", p, lambda dy=dy, w=w: dy @ w


def cases_latent_step():
    hidden, tau = 1024, 1.0
    for d in DTYPES:
        t = DTYPES[d]
        for tied in (False, True):
            h = randn(1, hidden, dtype=t)
            u = (torch.randn(VOCAB, hidden) * (2 / math.sqrt(hidden))).to(t)
            emb = u if tied else (torch.randn(VOCAB, hidden) * 0.05).to(t)
            de = randn(1, hidden, dtype=t)
            p = f"batch=1,dtype={d},hidden={hidden},tied={str(tied).lower()},vocab={VOCAB}"
            yield "LatentStepBench", "libtorchForward", p, lambda h=h, u=u, e=emb: torch.softmax(h @ u.t() / tau, 1) @ e

            def step(h=h, u=u, e=emb, de=de):
                hf = h.detach().requires_grad_(True)
                (torch.softmax(hf @ u.t() / tau, 1) @ e).backward(de)
                return hf.grad

            yield "LatentStepBench", "libtorchStep", p, step


def cases_linear_cross_entropy():
    tokens, hidden = 128, 1024
    for d in DTYPES:
        t = DTYPES[d]
        torch.manual_seed(1)
        h = randn(tokens, hidden, dtype=t)
        u = (torch.randn(VOCAB, hidden) * (2 / math.sqrt(hidden))).to(t)
        targets = torch.randint(VOCAB, (tokens,))

        def ce(h=h, u=u, targets=targets):
            hf = h.detach().requires_grad_(True)
            F.cross_entropy(F.linear(hf, u), targets, ignore_index=-100).backward()
            return hf.grad

        yield "LinearCrossEntropyBench", "libtorch", \
            f"cpuGemm=AUTO,dtype={d},hidden={hidden},threads=0,tokens={tokens},vocab={VOCAB}", ce


def lora_shapes(model):
    big = model == "8B"
    layers, hidden, inter = (36, 4096, 12288) if big else (28, 1024, 3072)
    q_out, kv_out, rank = (32 if big else 16) * 128, 8 * 128, 8
    proj = [(hidden, q_out), (hidden, kv_out), (hidden, kv_out), (q_out, hidden), (hidden, inter), (hidden, inter),
            (inter, hidden)]
    return [s for _ in range(layers) for i, o in proj for s in ((rank, i), (o, rank))]


def cases_adamw():
    for model in ("0.6B", "8B"):
        params = [torch.randn(*s).requires_grad_(True) for s in lora_shapes(model)]
        for p in params:
            p.grad = torch.randn_like(p)
        for foreach in (False, True):
            opt = torch.optim.AdamW(params, lr=2e-5, weight_decay=0.0, foreach=foreach)
            yield "AdamWBench", "pytorchForeach" if foreach else "libtorchAdamW", f"model={model}", opt.step


def cases_sampling():
    modes = {"greedy": None, "temperature": (0.7, 0, 1.0), "topk": (0.6, 20, 1.0), "topp": (0.6, 0, 0.95),
             "topk_topp": (0.6, 20, 0.95)}
    for rows in (1, 512):
        logits = torch.randn(rows, VOCAB) * 3
        for mode, params in modes.items():
            def sample(logits=logits, params=params):
                if params is None:
                    return logits.argmax(-1)
                temperature, top_k, top_p = params
                scores, ids = logits / temperature, None
                if top_k > 0:
                    scores, ids = torch.topk(scores, top_k)
                elif top_p < 1:
                    scores, ids = torch.sort(scores, -1, descending=True)
                probs = scores.softmax(-1)
                if top_p < 1:
                    probs = probs.masked_fill(torch.cumsum(probs, -1) - probs > top_p, 0.0)
                pick = torch.multinomial(probs, 1)
                return pick if ids is None else ids.gather(-1, pick)

            yield "SamplingBench", "libtorch", f"dtype=F32,mode={mode},rows={rows}", sample


CASES = [cases_rmsnorm, cases_add_rmsnorm, cases_qknorm, cases_swiglu, cases_rope, cases_attention,
         cases_decode_attention, cases_embedding, cases_gemv, cases_latent_step, cases_linear_cross_entropy,
         cases_adamw, cases_sampling]


def median_us(fn, seconds):
    """Median of individually timed calls: a warm-up of a quarter of the time, then the rest."""
    end = time.perf_counter() + seconds / 4
    while time.perf_counter() < end:
        fn()
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def table(jmh_jsons, pytorch_csv):
    """Markdown: each relat method against its baselines, libtorch in the JVM (same JMH run) and the
    same baseline in PyTorch from Python, as medians. A baseline pairs with the relat method whose
    name has the same words after the first (relatForward: libtorchForward, sdpaForward); a class's
    only relat method pairs with every other method of the class (AdamW). Python-only baselines
    (e.g. AdamW's foreach) get a row of their own. With several JMH files (runs under different
    settings, named by their folders), relat and the JVM baseline each take their fastest run (each
    side at its best setting; the last column names the runs, relat's first)."""
    rows = {}
    for path in jmh_jsons.split(","):
        label = os.path.basename(os.path.dirname(os.path.abspath(path)))
        for key, row in _table_rows(path, pytorch_csv).items():
            best = rows.setdefault(key, dict(row, ours_run=label, jvm_run=label))
            if row["ours"] < best["ours"]:
                best.update(ours=row["ours"], ours_run=label)
            if row["jvm"] is not None and (best["jvm"] is None or row["jvm"] < best["jvm"]):
                best.update(jvm=row["jvm"], jvm_run=label)
    for r in rows.values():
        r["run"] = r["ours_run"] + (" / " + r["jvm_run"] if r["jvm"] is not None else "")
    cell = lambda v: f"{v:,.1f}" if v is not None else "n/a"
    several = "," in jmh_jsons
    print("| benchmark | params | relat method | relat us | baseline | libtorch (JVM) us | PyTorch (Python) us"
          " | JVM / relat | Python / relat |" + (" run |" if several else ""))
    print("|---|---|---|--:|---|--:|--:|--:|--:|" + ("---|" if several else ""))
    for (bench, key, method, baseline), r in sorted(rows.items()):
        ratio = lambda v: f"{v / r['ours']:.2f}x" if v is not None else "n/a"
        print(f"| {bench} | {key} | {method} | {cell(r['ours'])} | {baseline} | {cell(r['jvm'])} | {cell(r['py'])}"
              f" | {ratio(r['jvm'])} | {ratio(r['py'])} |" + (f" {r['run']} |" if several else ""))


def _table_rows(jmh_json, pytorch_csv):
    import csv
    import json

    def median(r):
        raw = [x for fork in r["primaryMetric"]["rawData"] for x in fork]
        return statistics.median(raw) if raw else r["primaryMetric"]["score"]

    def rest(method):  # the words after the first: relatForward -> Forward
        return re.sub(r"^[a-z]+", "", method)

    runs = {}
    for r in json.load(open(jmh_json)):
        scale = {"ns/op": 1e-3, "us/op": 1.0, "ms/op": 1e3, "s/op": 1e6}.get(r["primaryMetric"]["scoreUnit"])
        if scale is None:  # a throughput benchmark
            continue
        bench, method = r["benchmark"].rsplit(".", 2)[-2:]
        params = {k: v for k, v in (r.get("params") or {}).items() if k != "device"}
        key = ",".join(f"{k}={params[k]}" for k in sorted(params))
        runs[(bench, key, method)] = median(r) * scale
    python = {}
    with open(pytorch_csv) as f:
        for row in csv.DictReader(line for line in f if not line.startswith("#")):
            python[(row["benchmark"], row["params"], row["method"])] = float(row["us"])
    out = {}
    for (bench, key, method), ours in sorted(runs.items()):
        if not method.startswith("relat"):
            continue
        others = sorted({m for (b, k, m) in list(runs) + list(python) if b == bench and k == key
                         and not m.startswith("relat")})
        relats = {m for (b, k, m) in runs if b == bench and k == key and m.startswith("relat")}
        paired = [m for m in others if rest(m) == rest(method)] or (others if len(relats) == 1 else [])
        for baseline in paired:
            out[(bench, key, method, baseline)] = dict(ours=ours, jvm=runs.get((bench, key, baseline)),
                                                       py=python.get((bench, key, baseline)))
    return out


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--table":
        return table(sys.argv[2], sys.argv[3])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seconds", type=float, default=2.0, help="measured time per case (default 2)")
    parser.add_argument("--only", default="", help="regex on 'benchmark.method params'")
    parser.add_argument("--out", help="also write the CSV here")
    parser.add_argument("--glibc-defaults", action="store_true", help="keep glibc's malloc thresholds")
    args = parser.parse_args()
    keep = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "4294967296"}  # 32 MiB: mmap's cap
    if not args.glibc_defaults and not all(k in os.environ for k in keep):
        os.execve(sys.executable, [sys.executable] + sys.argv, {**keep, **os.environ})
    if torch is None:
        sys.exit("pytorch_baseline.py: this python3 cannot import torch (Debian: apt install python3-torch,"
                 " then run /usr/bin/python3)")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = open(args.out, "w") if args.out else None
    header = "benchmark,method,params,us"
    blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, python {sys.version.split()[0]},"
          f" BLAS_INFO={blas.group(1) if blas else '?'}, MALLOC_MMAP_THRESHOLD_="
          f"{os.environ.get('MALLOC_MMAP_THRESHOLD_', 'glibc default')}", flush=True)
    for f in (sys.stdout,) + ((out,) if out else ()):
        print(header, file=f, flush=True)
    pattern = re.compile(args.only)
    for cases in CASES:
        for bench, method, params, fn in cases():
            if not pattern.search(f"{bench}.{method} {params}"):
                continue
            line = f'{bench},{method},"{params}",{median_us(fn, args.seconds):.2f}'
            for f in (sys.stdout,) + ((out,) if out else ()):
                print(line, file=f, flush=True)


if __name__ == "__main__":
    main()
