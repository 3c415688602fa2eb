#!/usr/bin/env python3
"""The torch equivalent of each relat kernel, timed like check_kernels' bench mode (CUDA events,
median of individually timed calls after a warm-up), on the same dtypes and shapes.

    python3 bench_torch.py OUT.csv

Writes kernel,dtype,rows,cols,us, each row flushed as it is written. Adding a kernel: one entry in OPS with the same shapes as its
bench in checks/<op>.cpp.
"""
import csv
import sys

import torch
import torch.nn.functional as F

DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}
VOCAB = 151936
SAMPLE_MODES = {"greedy": (0.0, 0, 1.0), "temperature": (0.7, 0, 1.0), "topk": (0.6, 20, 1.0),
                "topp": (0.6, 0, 0.95), "topk_topp": (0.6, 20, 0.95), "topk3000": (1.3, 3000, 0.5)}


def lora_sizes(qwen3_8b):
    """LoRA rank 8 on q/k/v/o/gate/up/down of every Qwen3 layer (as checks/adamw.cpp)."""
    layers, hidden, inter, q_out, kv = (36, 4096, 12288, 4096, 1024) if qwen3_8b else (28, 1024, 3072, 2048, 1024)
    proj = [(hidden, q_out), (hidden, kv), (hidden, kv), (q_out, hidden), (hidden, inter), (hidden, inter),
            (inter, hidden)]
    return [s for _ in range(layers) for i, o in proj for s in ((8, i), (o, 8))]


SHAPES = {"rmsnorm": [(65536, 1024), (32768, 2560), (16384, 5120)],
          # Qwen3-0.6B heads (16 query, 8 KV, D = 128): rows = tq, cols = tk (decode: 1, length).
          "attention_fwd": [(256, 456), (2048, 2048)],
          "attention_bwd": [(256, 456), (2048, 2048)],
          "decode_attention": [(1, 4096), (1, 32768)],
          # rows = tokens, cols = hidden; vocabulary 151,936 (Qwen). Forward + dL/dh.
          "linear_cross_entropy": [(512, 4096)],
          # rows = batch, cols = hidden; vocabulary 151,936, untied. Forward + dL/dh.
          "latent_soft": [(1, 4096)],
          # rows = tokens, cols = query heads (8 KV heads, head_dim 128)
          "rope_forward": [(t, h) for t in (1, 512, 8192) for h in (16, 32)],
          # rows = tensors, cols = parameters
          "adamw": [(len(lora_sizes(b)), sum(a * c for a, c in lora_sizes(b))) for b in (False, True)]}
SHAPES.update({f"sample_{m}": [(1, VOCAB), (64, VOCAB)] for m in SAMPLE_MODES})
DTYPES_OF = {"linear_cross_entropy": ["bf16", "f32"], "latent_soft": ["bf16", "f32"],
             "rope_forward": ["f32", "bf16"], "adamw": ["f32"]}
DTYPES_OF.update({f"sample_{m}": ["f32"] for m in SAMPLE_MODES})
# RMSNorm backward and the residual forms on the rmsnorm shapes; QK-norm is rmsnorm at cols = 128
# (T*H rows); SwiGLU at the Qwen3-0.6B / 8B intermediate widths; embedding (tokens, hidden) rows
# of a 151,936-row table.
NORM_SHAPES = [(65536, 1024), (32768, 2560), (16384, 5120)]
SHAPES["rmsnorm"] = SHAPES["rmsnorm"] + [(65536 * 32, 128)]
for _k in ["rmsnorm_backward", "rmsnorm_backward_dweight", "add_rmsnorm_forward", "add_rmsnorm_backward"]:
    SHAPES[_k] = NORM_SHAPES
SHAPES["swiglu_forward"] = SHAPES["swiglu_backward"] = [(16384, 3072), (4096, 12288)]
SHAPES["embedding"] = [(16384, 1024), (16384, 4096)]
# One row through a weight [n, k]: Qwen3-0.6B q|k|v, down, LM head; Qwen3-8B q|k|v, down.
SHAPES["gemv_forward"] = SHAPES["gemv_backward"] = [(4096, 1024), (1024, 3072), (151936, 1024),
                                                    (6144, 4096), (4096, 12288)]
DTYPES_OF["gemv_forward"] = DTYPES_OF["gemv_backward"] = ["bf16", "f32"]
for _k in ["rmsnorm_backward", "rmsnorm_backward_dweight", "add_rmsnorm_forward",
           "add_rmsnorm_backward", "swiglu_forward", "swiglu_backward", "embedding"]:
    DTYPES_OF[_k] = ["bf16", "f32"]
QWEN_VOCAB = 151936


def rmsnorm(rows, cols, dtype):
    x = torch.empty(rows, cols, dtype=dtype, device="cuda").uniform_(-3, 3)
    w = torch.empty(cols, dtype=dtype, device="cuda").uniform_(0.5, 1.5)
    if hasattr(F, "rms_norm"):  # torch >= 2.4
        return lambda: F.rms_norm(x, (cols,), w, 1e-6)
    # Older torch: the same maths, as a user would write it.
    return lambda: (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6)).to(dtype) * w


def _attention_inputs(tq, tk, dtype, grad):
    hq, hkv, d = 16, 8, 128
    q = torch.randn(1, hq, tq, d, dtype=dtype, device="cuda", requires_grad=grad)
    k = torch.randn(1, hkv, tk, d, dtype=dtype, device="cuda", requires_grad=grad)
    v = torch.randn(1, hkv, tk, d, dtype=dtype, device="cuda", requires_grad=grad)
    # Query i sees keys 0 .. (tk - tq) + i: the prefix, then causal.
    mask = torch.ones(tq, tk, dtype=torch.bool, device="cuda").tril(tk - tq)
    return q, k, v, mask


def _sdpa(q, k, v, mask):
    if q.shape[1] != k.shape[1]:  # torch < 2.5 has no enable_gqa: expand the KV heads
        try:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
        except TypeError:
            g = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def attention_fwd(tq, tk, dtype):
    q, k, v, mask = _attention_inputs(tq, tk, dtype, False)
    return lambda: _sdpa(q, k, v, mask)


def attention_bwd(tq, tk, dtype):
    q, k, v, mask = _attention_inputs(tq, tk, dtype, True)
    out = _sdpa(q, k, v, mask)
    dout = torch.randn_like(out)
    return lambda: out.backward(dout, retain_graph=True)


def decode_attention(rows, length, dtype):
    q, k, v, _ = _attention_inputs(1, length, dtype, False)
    return lambda: _sdpa(q, k, v, None)


def linear_cross_entropy(rows, cols, dtype):
    h = torch.empty(rows, cols, dtype=dtype, device="cuda").uniform_(-1.5, 1.5)
    u = torch.empty(QWEN_VOCAB, cols, dtype=dtype, device="cuda").uniform_(-2 / cols**0.5, 2 / cols**0.5)
    t = torch.randint(0, QWEN_VOCAB, (rows,), device="cuda")

    def step():
        hh = h.detach().requires_grad_(True)
        F.cross_entropy(F.linear(hh, u), t, ignore_index=-100).backward()
        return hh.grad
    return step


def latent_soft(rows, cols, dtype):
    h = torch.empty(rows, cols, dtype=dtype, device="cuda").uniform_(-1.5, 1.5)
    u = torch.empty(QWEN_VOCAB, cols, dtype=dtype, device="cuda").uniform_(-2 / cols**0.5, 2 / cols**0.5)
    e = torch.empty(QWEN_VOCAB, cols, dtype=dtype, device="cuda").uniform_(-2 / cols**0.5, 2 / cols**0.5)
    de = torch.empty(rows, cols, dtype=dtype, device="cuda").uniform_(-1, 1)

    def step():
        hh = h.detach().requires_grad_(True)
        (torch.softmax(hh @ u.t(), dim=-1) @ e).backward(de)
        return hh.grad
    return step


def _rms_norm(x, w):
    if hasattr(F, "rms_norm"):
        return F.rms_norm(x, (x.shape[-1],), w, 1e-6)
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)).to(x.dtype) * w


def rmsnorm_backward(rows, cols, dtype, with_weight=False):
    """Autograd's backward of rms_norm (dx only, or dx and dweight), from a recorded forward."""
    x = torch.empty(rows, cols, dtype=dtype, device="cuda").uniform_(-3, 3).requires_grad_()
    w = torch.empty(cols, dtype=dtype, device="cuda").uniform_(0.5, 1.5).requires_grad_(with_weight)
    dy = torch.empty(rows, cols, dtype=dtype, device="cuda").uniform_(-1, 1)
    y = _rms_norm(x, w)
    inputs = (x, w) if with_weight else (x,)
    return lambda: torch.autograd.grad(y, inputs, dy, retain_graph=True)


def add_rmsnorm_forward(rows, cols, dtype):
    x = torch.empty(rows, cols, dtype=dtype, device="cuda").uniform_(-3, 3)
    r = torch.empty(rows, cols, dtype=dtype, device="cuda").uniform_(-3, 3)
    w = torch.empty(cols, dtype=dtype, device="cuda").uniform_(0.5, 1.5)

    def run():
        s = x + r
        return s, _rms_norm(s, w)
    return run


def add_rmsnorm_backward(rows, cols, dtype):
    s = torch.empty(rows, cols, dtype=dtype, device="cuda").uniform_(-3, 3).requires_grad_()
    w = torch.empty(cols, dtype=dtype, device="cuda").uniform_(0.5, 1.5)
    dy = torch.empty(rows, cols, dtype=dtype, device="cuda").uniform_(-1, 1)
    dn = torch.empty(rows, cols, dtype=dtype, device="cuda").uniform_(-1, 1)
    y = _rms_norm(s, w)
    return lambda: torch.autograd.grad(y, (s,), dy, retain_graph=True)[0] + dn


def swiglu_forward(rows, cols, dtype):
    gu = torch.empty(rows, 2 * cols, dtype=dtype, device="cuda").uniform_(-6, 6)
    g, u = gu.chunk(2, -1)
    return lambda: F.silu(g) * u


def swiglu_backward(rows, cols, dtype):
    gu = torch.empty(rows, 2 * cols, dtype=dtype, device="cuda").uniform_(-6, 6).requires_grad_()
    dout = torch.empty(rows, cols, dtype=dtype, device="cuda").uniform_(-1, 1)
    g, u = gu.chunk(2, -1)
    out = F.silu(g) * u
    return lambda: torch.autograd.grad(out, (gu,), dout, retain_graph=True)


def gemv_forward(n, k, dtype):
    x = torch.empty(1, k, dtype=dtype, device="cuda").uniform_(-1, 1)
    w = torch.empty(n, k, dtype=dtype, device="cuda").uniform_(-1, 1)
    return lambda: F.linear(x, w)


def gemv_backward(n, k, dtype):
    dy = torch.empty(1, n, dtype=dtype, device="cuda").uniform_(-1, 1)
    w = torch.empty(n, k, dtype=dtype, device="cuda").uniform_(-1, 1)
    return lambda: dy @ w


def embedding(tokens, hidden, dtype):
    table = torch.empty(151936, hidden, dtype=dtype, device="cuda").uniform_(-2, 2)
    ids = torch.randint(0, 151936, (tokens,), device="cuda")
    return lambda: F.embedding(ids, table)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_forward(tokens, q_heads, dtype):
    """transformers' apply_rotary_pos_emb on q and k, cos/sin precomputed in the activation dtype."""
    q = torch.randn(tokens, q_heads, 128, device="cuda").to(dtype)
    k = torch.randn(tokens, 8, 128, device="cuda").to(dtype)
    inv_freq = 1.0 / (1e6 ** (torch.arange(0, 128, 2, dtype=torch.int64, device="cuda").float() / 128))
    freqs = torch.arange(tokens, device="cuda").float()[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(dtype)[:, None, :], emb.sin().to(dtype)[:, None, :]
    return lambda: (q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin)


def adamw(count, total, dtype):
    """torch.optim.AdamW with fused=True (torch's fastest) over the same LoRA list."""
    sizes = next(s for s in (lora_sizes(False), lora_sizes(True)) if len(s) == count)
    params = [torch.randn(*s, device="cuda", requires_grad=True) for s in sizes]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = torch.optim.AdamW(params, lr=2e-5, weight_decay=0.0, fused=True)
    return opt.step


def sample(mode):
    temperature, top_k, top_p = SAMPLE_MODES[mode]

    def make(rows, vocab, dtype):
        logits = torch.empty(rows, vocab, device="cuda").uniform_(-9, 9)

        def run():
            if temperature <= 0:
                return logits.argmax(-1)
            scores, ids = logits / temperature, None
            if top_k > 0:
                scores, ids = torch.topk(scores, top_k)
            elif top_p < 1:
                scores, ids = torch.sort(scores, descending=True)
            probs = scores.softmax(-1)
            if top_p < 1:
                probs = probs.masked_fill(probs.cumsum(-1) - probs > top_p, 0.0)
            pick = torch.multinomial(probs, 1)
            return pick if ids is None else ids.gather(-1, pick)
        return run
    return make


OPS = {"rmsnorm": rmsnorm, "attention_fwd": attention_fwd, "attention_bwd": attention_bwd,
       "decode_attention": decode_attention, "linear_cross_entropy": linear_cross_entropy,
       "latent_soft": latent_soft, "rope_forward": rope_forward,
       "adamw": adamw}
OPS.update({f"sample_{m}": sample(m) for m in SAMPLE_MODES})
OPS.update({
    "rmsnorm_backward": rmsnorm_backward,
    "rmsnorm_backward_dweight": lambda r, c, d: rmsnorm_backward(r, c, d, with_weight=True),
    "add_rmsnorm_forward": add_rmsnorm_forward,
    "add_rmsnorm_backward": add_rmsnorm_backward,
    "swiglu_forward": swiglu_forward,
    "swiglu_backward": swiglu_backward,
    "gemv_forward": gemv_forward,
    "gemv_backward": gemv_backward,
    "embedding": embedding,
})


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
    with open(sys.argv[1], "w", newline="", buffering=1) as f:  # line-buffered: a timeout keeps the rows
        out = csv.writer(f)
        out.writerow(["kernel", "dtype", "rows", "cols", "us"])
        for kernel, make in OPS.items():
            for name, dtype in DTYPES.items():
                if name not in DTYPES_OF.get(kernel, DTYPES):
                    continue
                for rows, cols in SHAPES[kernel]:
                    us = median_us(make(rows, cols, dtype))
                    out.writerow([kernel, name, rows, cols, f"{us:.3f}"])
                    print(f"{kernel} {name} {rows}x{cols}: {us:.1f} us")
                    torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
