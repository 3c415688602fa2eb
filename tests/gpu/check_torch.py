#!/usr/bin/env python3
"""Every relat kernel against torch's own operations, on the same device.

    python3 check_torch.py LIBRARY --lib cuda|cpu [--only SUBSTRING]

LIBRARY is librelat_cuda.so (--lib cuda: torch tensors on the GPU, calls on torch's current stream)
or librelat_cpu.so (--lib cpu: torch tensors on the host; runs anywhere, e.g. to test this script).
The library is loaded with ctypes and each relat_<lib>_<op> is called with the data_ptr()s of torch
tensors; the reference is written in plain torch operations in fp32 from the same (rounded) inputs:
independent maths, not relat's algorithm. Backward ops are compared with torch autograd.

Shapes: the widths of Qwen3-0.6B (hidden 1024, 16 query / 8 KV heads, head_dim 128, intermediate
3072), Qwen3-8B (4096, 32/8, 12288) and Qwen3-32B (5120, 64/8, 25600), the Qwen vocabulary 151,936,
1 and 512 tokens, f32 and bf16. With --lib cpu the row counts of the slow cases are smaller (the
widths are not) and the vocabulary-sized tables stop at hidden 4096 (memory), so that the whole run
takes a few minutes on two cores.

Error: norm-wise relative error ||got - want|| / ||want|| over the whole output (computed in fp64),
against the bounds in BOUNDS; the reference is never all zeros (checked). Outputs are poisoned
with NaN (ids with -1) before every call, so an element not written fails. Inputs are fresh random
numbers: the seed is printed, RELAT_TEST_SEED=<seed> replays a run.

Every result is printed (and flushed) as it is produced: "PASS op dtype shape err=... bound=..." or
"FAIL ...", then a final count line "check_torch: N passed, M failed". Exit status 1 on any failure.
"""
import argparse
import ctypes
import math
import os
import random
import sys
import time
import traceback

import torch
import torch.nn.functional as F

VOCAB = 151936
ROPE_THETA = 1e6  # Qwen3
# name: (hidden, q heads, kv heads, head_dim, intermediate)
MODELS = {"0.6B": (1024, 16, 8, 128, 3072), "8B": (4096, 32, 8, 128, 12288),
          "32B": (5120, 64, 8, 128, 25600)}
DTYPES = {"f32": (torch.float32, 0), "bf16": (torch.bfloat16, 1)}

# Norm-wise relative error bounds. "elementwise": each output is a short fp32 computation rounded
# once to the storage type (bf16 rounding alone is up to 2^-9 relative per element, ~1.1e-3
# norm-wise). "reduction": long sums (GEMV, attention, cross-entropy, vocabulary softmax) and
# gradients with cancellation; in bf16 the fused kernels also round probabilities to bf16 before
# their second product. Exact ops (embedding gather, greedy sampling) must match bit for bit.
BOUNDS = {("elementwise", "f32"): 2e-5, ("elementwise", "bf16"): 8e-3,
          ("reduction", "f32"): 1e-4, ("reduction", "bf16"): 2e-2,
          ("exact", "f32"): 0.0, ("exact", "bf16"): 0.0}

# C signatures: p pointer, q int64, i int (enums), f float, d double, u uint64.
SIGS = {
    "embedding_forward": "piqpqqppip",
    "rmsnorm_forward": "ppppqqfip",
    "rmsnorm_backward_workspace_bytes": "qqp",
    "rmsnorm_backward": "pppppppqqqip",
    "add_rmsnorm_forward": "ppppppqqfip",
    "add_rmsnorm_backward": "ppppppppqqqip",
    "rope_forward": "ppppppqqqqqqip",
    "rope_backward": "ppppppqqqqqqip",
    "attention_forward": "pppppqqqqqqfip",
    "attention_backward_workspace_bytes": "qqqqqip",
    "attention_backward": "ppppppppppqqqqqqqfiip",
    "decode_attention_workspace_bytes": "qqqqp",
    "decode_attention_forward": "pppppqqqqqqqfpqip",
    "swiglu_forward": "ppqpqqip",
    "swiglu_backward": "pppqppqqqip",
    "gemv_forward": "pppqqqip",
    "gemv_backward": "pppqqqip",
    "lora_segmented_forward": "ppppqqqqqfpip",
    "lora_segmented_backward": "pppppqqqqqfpppip",
    "linear_cross_entropy_workspace_bytes": "qqqip",
    "linear_cross_entropy": "pppqppqqqpqip",
    "latent_soft_workspace_bytes": "qqqipp",
    "latent_soft_forward": "ppppppqqqfpqip",
    "latent_soft_backward": "pppppppqqqfpqip",
    "row_rescale_forward": "ppqqffip",
    "row_rescale_backward": "pppqqffip",
    "adamw_step": "pppppqiidddddqp",
    "sample_workspace_bytes": "qqp",
    "sample": "pqqqfqfuuppqip",
}
CTYPE = {"p": ctypes.c_void_p, "q": ctypes.c_int64, "i": ctypes.c_int, "f": ctypes.c_float,
         "d": ctypes.c_double, "u": ctypes.c_uint64}


def say(line):
    print(line, flush=True)


class Relat:
    """relat_<lib>_<op> of one library, called on torch tensors."""

    def __init__(self, path, lib, device):
        self.dll = ctypes.CDLL(os.path.abspath(path))
        self.lib, self.device = lib, device
        err = getattr(self.dll, f"relat_{lib}_last_error")
        err.restype, err.argtypes = ctypes.c_char_p, []
        self.last_error = lambda: err().decode(errors="replace")
        self.fns = {}
        for op, sig in SIGS.items():
            fn = getattr(self.dll, f"relat_{lib}_{op}")
            fn.restype, fn.argtypes = ctypes.c_int, [CTYPE[c] for c in sig]
            self.fns[op] = fn
        if lib == "cuda":
            # librelat_cuda has its own runtime: torch's default stream (NULL) means its current
            # device, which torch's current device does not set.
            set_device = self.dll.relat_cuda_set_device
            set_device.restype, set_device.argtypes = ctypes.c_int, [ctypes.c_int]
            if set_device(torch.cuda.current_device()) != 0:
                raise RuntimeError(f"relat_cuda_set_device: {self.last_error()}")

    def stream(self):
        return torch.cuda.current_stream().cuda_stream if self.lib == "cuda" else None

    def call(self, op, *args, expect_ok=True):
        """Calls the op; tensors become their data_ptr(), None NULL. The stream goes last."""
        conv = [a.data_ptr() if isinstance(a, torch.Tensor) else a for a in args]
        status = self.fns[op](*conv, self.stream())
        if self.lib == "cuda":
            torch.cuda.synchronize()
        if expect_ok and status != 0:
            raise RuntimeError(f"relat_{self.lib}_{op}: status {status}: {self.last_error()}")
        return status

    def size(self, op, *args, outputs=1):
        vals = [ctypes.c_int64(-1) for _ in range(outputs)]
        status = self.fns[op](*args, *[ctypes.addressof(v) for v in vals])
        if status != 0:
            raise RuntimeError(f"relat_{self.lib}_{op}: status {status}: {self.last_error()}")
        return [v.value for v in vals] if outputs > 1 else vals[0].value

    def workspace(self, nbytes):
        return torch.empty(max(int(nbytes), 1), dtype=torch.uint8, device=self.device)


class Checker:
    def __init__(self, device):
        self.device, self.passed, self.failed = device, 0, 0
        self.worst = {}  # (op, dtype) -> (err, bound)

    def rand(self, shape, dtype, lo=-1.0, hi=1.0):
        return torch.empty(shape, device=self.device).uniform_(lo, hi).to(dtype)

    def poison(self, shape, dtype):
        return torch.full(shape, float("nan"), dtype=dtype, device=self.device)

    def result(self, ok, op, dt, shape, err, bound, note=""):
        key = (op, dt)
        if err == err and (key not in self.worst or err > self.worst[key][0]):
            self.worst[key] = (err, bound)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        say(f"{'PASS' if ok else 'FAIL'} {op} {dt} {shape} err={err:.3g} bound={bound:.3g}"
            + (f" ({note})" if note else ""))

    def compare(self, op, dt, shape, got, want, kind, what="", stat=False):
        """Norm-wise relative error of got against the fp32 reference want. stat: an fp32 statistic
        (rstd, log-sum-exp, loss) held to the f32 bound of its kind whatever the storage type."""
        bound = BOUNDS[(kind, "f32" if stat else dt)]
        label = op + (f".{what}" if what else "")
        g, w = got.detach().double(), want.detach().double()
        wn = w.norm().item()
        if got.shape != want.shape:
            return self.result(False, label, dt, shape, float("inf"), bound,
                               f"shape {tuple(got.shape)} vs {tuple(want.shape)}")
        if not math.isfinite(wn) or wn == 0:
            return self.result(False, label, dt, shape, float("inf"), bound,
                               "reference is zero or not finite: nothing to compare")
        bad = (~torch.isfinite(g)).sum().item()
        if bad:
            return self.result(False, label, dt, shape, float("inf"), bound,
                               f"{bad} non-finite output(s) (NaN poison not overwritten?)")
        err = (g - w).norm().item() / wn
        self.result(err <= bound, label, dt, shape, err, bound)

    def fail(self, op, dt, shape, message):
        self.failed += 1
        say(f"FAIL {op} {dt} {shape} error: {message}")


def ref_rmsnorm(x32, w32, eps):
    return x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps) * w32


# ---- the ops ---------------------------------------------------------------------------------------

def check_embedding(r, c, dt, tokens, hidden, table):
    dtype, tag = DTYPES[dt]
    for id_dt, id_tag in ((torch.int64, 1), (torch.int32, 0)):
        shape = f"n={tokens} V={VOCAB} dim={hidden} ids={'i64' if id_tag else 'i32'}"
        ids = torch.randint(0, VOCAB, (tokens,), device=c.device, dtype=id_dt)
        out = c.poison((tokens, hidden), dtype)
        bad = torch.full((1,), -1, dtype=torch.int64, device=c.device)
        r.call("embedding_forward", ids, id_tag, tokens, table, VOCAB, hidden, out, bad, tag)
        want = table[ids.long()]
        c.compare("embedding_forward", dt, shape, out, want, "exact")
        if bad.item() != -1:
            c.fail("embedding_forward", dt, shape, f"bad_position {bad.item()} for valid ids")
    # One id out of range: cpu fails the call, cuda zero-fills the row; both report the position.
    n = max(tokens, 3)
    ids = torch.randint(0, VOCAB, (n,), device=c.device)
    ids[n // 2] = VOCAB
    out = c.poison((n, hidden), dtype)
    bad = torch.full((1,), -1, dtype=torch.int64, device=c.device)
    status = r.call("embedding_forward", ids, 1, n, table, VOCAB, hidden, out, bad, tag,
                    expect_ok=False)
    pos = bad.item()
    ok = pos == n // 2 and (status != 0 if r.lib == "cpu" else
                            status == 0 and bool((out[n // 2] == 0).all()))
    c.result(ok, "embedding_forward.bad_id", dt, f"n={n} bad at {n // 2}", 0.0 if ok else 1.0,
             0.0, f"status {status}, bad_position {pos}")


def check_rmsnorm(r, c, dt, rows, cols):
    dtype, tag = DTYPES[dt]
    shape, eps = f"{rows}x{cols}", 1e-6
    x, w = c.rand((rows, cols), dtype, -3, 3), c.rand((cols,), dtype, 0.5, 1.5)
    y, rstd = c.poison((rows, cols), dtype), c.poison((rows,), torch.float32)
    r.call("rmsnorm_forward", x, w, y, rstd, rows, cols, eps, tag)
    x32, w32 = x.float(), w.float()
    c.compare("rmsnorm_forward", dt, shape, y, ref_rmsnorm(x32, w32, eps), "elementwise")
    want_rstd = torch.rsqrt(x32.pow(2).mean(-1) + eps)
    c.compare("rmsnorm_forward", dt, shape, rstd, want_rstd, "elementwise", "rstd", stat=True)
    # backward, from the reference rstd; dx and dweight against autograd
    dy = c.rand((rows, cols), dtype)
    xr, wr = x32.clone().requires_grad_(), w32.clone().requires_grad_()
    dx_want, dw_want = torch.autograd.grad(ref_rmsnorm(xr, wr, eps), (xr, wr), dy.float())
    ws_bytes = r.size("rmsnorm_backward_workspace_bytes", rows, cols)
    ws = r.workspace(ws_bytes)
    dx, dw = c.poison((rows, cols), dtype), c.poison((cols,), torch.float32)
    r.call("rmsnorm_backward", dy, x, w, want_rstd, dx, dw, ws, ws_bytes, rows, cols, tag)
    c.compare("rmsnorm_backward", dt, shape, dx, dx_want, "reduction", "dx")
    c.compare("rmsnorm_backward", dt, shape, dw, dw_want, "reduction", "dweight")
    dx = c.poison((rows, cols), dtype)
    r.call("rmsnorm_backward", dy, x, w, want_rstd, dx, None, None, 0, rows, cols, tag)
    c.compare("rmsnorm_backward", dt, shape + " no dweight", dx, dx_want, "reduction", "dx")


def check_add_rmsnorm(r, c, dt, rows, cols):
    dtype, tag = DTYPES[dt]
    shape, eps = f"{rows}x{cols}", 1e-6
    x, res, w = (c.rand((rows, cols), dtype, -3, 3), c.rand((rows, cols), dtype, -3, 3),
                 c.rand((cols,), dtype, 0.5, 1.5))
    s, y, rstd = (c.poison((rows, cols), dtype), c.poison((rows, cols), dtype),
                  c.poison((rows,), torch.float32))
    r.call("add_rmsnorm_forward", x, res, s, w, y, rstd, rows, cols, eps, tag)
    s_want = (x.float() + res.float()).to(dtype).float()
    c.compare("add_rmsnorm_forward", dt, shape, s, x.float() + res.float(), "elementwise", "s")
    c.compare("add_rmsnorm_forward", dt, shape, y, ref_rmsnorm(s_want, w.float(), eps), "elementwise", "y")
    want_rstd = torch.rsqrt(s_want.pow(2).mean(-1) + eps)
    c.compare("add_rmsnorm_forward", dt, shape, rstd, want_rstd, "elementwise", "rstd", stat=True)
    dy, dn = c.rand((rows, cols), dtype), c.rand((rows, cols), dtype)
    sr, wr = s_want.clone().requires_grad_(), w.float().clone().requires_grad_()
    ds_want, dw_want = torch.autograd.grad(ref_rmsnorm(sr, wr, eps), (sr, wr), dy.float())
    ws_bytes = r.size("rmsnorm_backward_workspace_bytes", rows, cols)
    ws = r.workspace(ws_bytes)
    sd = s_want.to(dtype)
    ds, dw = c.poison((rows, cols), dtype), c.poison((cols,), torch.float32)
    r.call("add_rmsnorm_backward", dy, dn, sd, w, want_rstd, ds, dw, ws, ws_bytes, rows, cols, tag)
    c.compare("add_rmsnorm_backward", dt, shape, ds, ds_want + dn.float(), "reduction", "ds")
    c.compare("add_rmsnorm_backward", dt, shape, dw, dw_want, "reduction", "dweight")


def rope_ref(x32, pos, inv_freq, inverse=False):
    angle = pos.float()[:, None] * inv_freq[None, :]  # [T, D/2], one fp32 multiply
    cos, sin = angle.cos()[:, None, :], angle.sin()[:, None, :]
    half = x32.shape[-1] // 2
    x1, x2 = x32[..., :half], x32[..., half:]
    if inverse:
        sin = -sin
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


def check_rope(r, c, dt, tokens, hq, hkv, dim):
    dtype, tag = DTYPES[dt]
    pad = 64  # token rows wider than the heads: ld > heads * dim
    ldq, ldk = hq * dim + pad, hkv * dim
    shape = f"T={tokens} hq={hq} hkv={hkv} D={dim} ldq={ldq}"
    inv_freq = 1.0 / (ROPE_THETA ** (torch.arange(0, dim, 2, device=c.device).float() / dim))
    pos = torch.randint(0, 40000, (tokens,), device=c.device, dtype=torch.int64)
    qbuf, k = c.rand((tokens, ldq), dtype, -2, 2), c.rand((tokens, hkv, dim), dtype, -2, 2)
    q = qbuf[:, :hq * dim].view(tokens, hq, dim)
    q_want, k_want = rope_ref(q.float(), pos, inv_freq), rope_ref(k.float(), pos, inv_freq)
    # The outputs share the strided layout: the padding must stay untouched.
    qo, ko = c.poison((tokens, ldq), dtype), c.poison((tokens, hkv, dim), dtype)
    qo[:, hq * dim:] = 7.0
    r.call("rope_forward", qbuf, k, qo, ko, pos, inv_freq, tokens, hq, hkv, dim, ldq, ldk, tag)
    c.compare("rope_forward", dt, shape, qo[:, :hq * dim].view(tokens, hq, dim), q_want,
              "elementwise", "q")
    c.compare("rope_forward", dt, shape, ko, k_want, "elementwise", "k")
    if not bool((qo[:, hq * dim:] == 7.0).all()):
        c.fail("rope_forward", dt, shape, "wrote into the padding of the q rows")
    # backward: the input gradients of the forward, against autograd
    dqbuf, dk = c.rand((tokens, ldq), dtype), c.rand((tokens, hkv, dim), dtype)
    dq = dqbuf[:, :hq * dim].view(tokens, hq, dim)
    qr, kr = q.float().requires_grad_(), k.float().requires_grad_()
    gq, gk = torch.autograd.grad((rope_ref(qr, pos, inv_freq), rope_ref(kr, pos, inv_freq)),
                                 (qr, kr), (dq.float(), dk.float()))
    qo, ko = c.poison((tokens, ldq), dtype), c.poison((tokens, hkv, dim), dtype)
    r.call("rope_backward", dqbuf, dk, qo, ko, pos, inv_freq, tokens, hq, hkv, dim, ldq, ldk, tag)
    c.compare("rope_backward", dt, shape, qo[:, :hq * dim].view(tokens, hq, dim), gq,
              "elementwise", "dq")
    c.compare("rope_backward", dt, shape, ko, gk, "elementwise", "dk")


def attention_ref(q32, k32, v32, scale):
    """q [tq, hq, D], k/v [tk, hkv, D]: causal over the last tq keys, GQA h -> h / (hq / hkv)."""
    tq, hq, _ = q32.shape
    tk, hkv, _ = k32.shape
    kk = k32.transpose(0, 1).repeat_interleave(hq // hkv, 0)  # [hq, tk, D]
    vv = v32.transpose(0, 1).repeat_interleave(hq // hkv, 0)
    s = torch.matmul(q32.transpose(0, 1), kk.transpose(1, 2)) * scale  # [hq, tq, tk]
    i = torch.arange(tq, device=q32.device)[:, None]
    j = torch.arange(tk, device=q32.device)[None, :]
    s = s.masked_fill(j > (tk - tq) + i, float("-inf"))
    lse = torch.logsumexp(s, -1)  # [hq, tq]
    out = torch.matmul(torch.softmax(s, -1), vv).transpose(0, 1)  # [tq, hq, D]
    return out, lse.transpose(0, 1)


def check_attention(r, c, dt, tq, tk, hq, hkv, dim, kv_pad):
    dtype, tag = DTYPES[dt]
    stride = hkv * dim + kv_pad
    shape = f"tq={tq} tk={tk} hq={hq} hkv={hkv} D={dim} kv_stride={stride}"
    scale = 1.0 / math.sqrt(dim)
    q = c.rand((tq, hq, dim), dtype, -2, 2)
    kbuf, vbuf = c.rand((tk, stride), dtype, -2, 2), c.rand((tk, stride), dtype, -2, 2)
    k, v = kbuf[:, :hkv * dim].view(tk, hkv, dim), vbuf[:, :hkv * dim].view(tk, hkv, dim)
    out, lse = c.poison((tq, hq, dim), dtype), c.poison((tq, hq), torch.float32)
    r.call("attention_forward", q, kbuf, vbuf, out, lse, tq, tk, hq, hkv, dim, stride, scale, tag)
    qr, kr, vr = (t.float().clone().requires_grad_() for t in (q, k, v))
    out_want, lse_want = attention_ref(qr, kr, vr, scale)
    c.compare("attention_forward", dt, shape, out, out_want, "reduction", "out")
    c.compare("attention_forward", dt, shape, lse, lse_want, "reduction", "lse", stat=True)
    dout = c.rand((tq, hq, dim), dtype)
    gq, gk, gv = torch.autograd.grad(out_want, (qr, kr, vr), dout.float())
    ws_bytes = r.size("attention_backward_workspace_bytes", tq, tk, hq, hkv, dim, tag)
    ws = r.workspace(ws_bytes)
    dq, dk, dv = (c.poison((tq, hq, dim), dtype), c.poison((tk, hkv, dim), dtype),
                  c.poison((tk, hkv, dim), dtype))
    r.call("attention_backward", dout, q, kbuf, vbuf, out, lse, dq, dk, dv, ws, ws_bytes, tq, tk,
           hq, hkv, dim, stride, scale, 0, tag)
    for name, got, want in (("dq", dq, gq), ("dk", dk, gk), ("dv", dv, gv)):
        c.compare("attention_backward", dt, shape, got, want, "reduction", name)
    # accumulate_dkv: dk and dv are added to
    dk0, dv0 = c.rand((tk, hkv, dim), dtype), c.rand((tk, hkv, dim), dtype)
    dk, dv, dq = dk0.clone(), dv0.clone(), c.poison((tq, hq, dim), dtype)
    r.call("attention_backward", dout, q, kbuf, vbuf, out, lse, dq, dk, dv, ws, ws_bytes, tq, tk,
           hq, hkv, dim, stride, scale, 1, tag)
    c.compare("attention_backward", dt, shape + " accumulate", dk, dk0.float() + gk, "reduction", "dk")
    c.compare("attention_backward", dt, shape + " accumulate", dv, dv0.float() + gv, "reduction", "dv")


def check_decode_attention(r, c, dt, batch, max_len, hq, hkv, dim):
    dtype, tag = DTYPES[dt]
    seq_stride = hkv * dim + 64
    batch_stride = max_len * seq_stride
    shape = f"B={batch} max_len={max_len} hq={hq} hkv={hkv} D={dim}"
    scale = 1.0 / math.sqrt(dim)
    q = c.rand((batch, hq, dim), dtype, -2, 2)
    kc = c.rand((batch, max_len, seq_stride), dtype, -2, 2)
    vc = c.rand((batch, max_len, seq_stride), dtype, -2, 2)
    lens = torch.randint(1, max_len + 1, (batch,), dtype=torch.int32, device=c.device)
    lens[0] = max_len
    ws_bytes = r.size("decode_attention_workspace_bytes", batch, hq, dim, max_len)
    ws = r.workspace(ws_bytes)
    out = c.poison((batch, hq, dim), dtype)
    r.call("decode_attention_forward", q, kc, vc, out, lens, batch, max_len, hq, hkv, dim,
           seq_stride, batch_stride, scale, ws, ws_bytes, tag)
    want = []
    for b in range(batch):
        n = int(lens[b].item())
        k = kc[b, :n, :hkv * dim].float().view(n, hkv, dim)
        v = vc[b, :n, :hkv * dim].float().view(n, hkv, dim)
        want.append(attention_ref(q[b:b + 1].float(), k, v, scale)[0][0])  # one query sees all n
    c.compare("decode_attention_forward", dt, shape, out, torch.stack(want), "reduction")


def silu(g):
    return g / (1 + torch.exp(-g))


def check_swiglu(r, c, dt, rows, cols):
    dtype, tag = DTYPES[dt]
    for fused in (True, False):
        shape = f"{rows}x{cols} {'fused gate|up' if fused else 'separate'}"
        if fused:
            gu = c.rand((rows, 2 * cols), dtype, -6, 6)
            gate, up, ld = gu[:, :cols], gu[:, cols:], 2 * cols
            gp, upp = gu, gu[:, cols:]
        else:
            gate, up, ld = c.rand((rows, cols), dtype, -6, 6), c.rand((rows, cols), dtype, -6, 6), cols
            gp, upp = gate, up
        out = c.poison((rows, cols), dtype)
        r.call("swiglu_forward", gp, upp, ld, out, rows, cols, tag)
        gr, ur = gate.float().clone().requires_grad_(), up.float().clone().requires_grad_()
        want = silu(gr) * ur
        c.compare("swiglu_forward", dt, shape, out, want, "elementwise")
        dout = c.rand((rows, cols), dtype)
        dg_want, du_want = torch.autograd.grad(want, (gr, ur), dout.float())
        grad = c.poison((rows, ld if fused else cols), dtype)
        dup = grad[:, cols:] if fused else c.poison((rows, cols), dtype)
        r.call("swiglu_backward", dout, gp, upp, ld, grad, dup, ld, rows, cols, tag)
        c.compare("swiglu_backward", dt, shape, grad[:, :cols], dg_want, "elementwise", "dgate")
        c.compare("swiglu_backward", dt, shape, dup, du_want, "elementwise", "dup")


def check_gemv(r, c, dt, rows, n, k, w=None, name=""):
    dtype, tag = DTYPES[dt]
    shape = f"rows={rows} w={n}x{k}" + (f" ({name})" if name else "")
    if w is None:
        w = c.rand((n, k), dtype, -1, 1)
    x = c.rand((rows, k), dtype)
    y = c.poison((rows, n), dtype)
    r.call("gemv_forward", x, w, y, rows, n, k, tag)
    c.compare("gemv_forward", dt, shape, y, x.float() @ w.float().t(), "reduction")
    dy = c.rand((rows, n), dtype)
    dx = c.poison((rows, k), dtype)
    r.call("gemv_backward", dy, w, dx, rows, n, k, tag)
    c.compare("gemv_backward", dt, shape, dx, dy.float() @ w.float(), "reduction")


def check_lora_segmented(r, c, dt, sizes, n_in, n_out, rank, name=""):
    """Segmented LoRA against a per-segment loop of fp32 matmuls (the deltas rounded to dtype, then
    added); y, dx, da and db start from random values since the op accumulates into them."""
    dtype, tag = DTYPES[dt]
    shape = f"in={n_in} out={n_out} rank={rank} segments={list(sizes)}" + (f" ({name})" if name else "")
    segs, rows = len(sizes), sum(sizes)
    bounds = [0]
    for n in sizes:
        bounds.append(bounds[-1] + n)
    offsets = torch.tensor(bounds, dtype=torch.int64, device=c.device)
    x, dy = c.rand((rows, n_in), dtype), c.rand((rows, n_out), dtype)
    a = c.rand((segs, rank, n_in), torch.float32, -1 / math.sqrt(n_in), 1 / math.sqrt(n_in))
    b = c.rand((segs, n_out, rank), torch.float32, -1 / math.sqrt(rank), 1 / math.sqrt(rank))
    y0, dx0 = c.rand((rows, n_out), dtype), c.rand((rows, n_in), dtype)
    da0, db0 = c.rand((segs, rank, n_in), torch.float32), c.rand((segs, n_out, rank), torch.float32)
    scale = 2.0
    y, dx, da, db = y0.clone(), dx0.clone(), da0.clone(), db0.clone()
    r.call("lora_segmented_forward", x, a, b, offsets, segs, rows, n_in, n_out, rank, scale, y, tag)
    r.call("lora_segmented_backward", x, dy, a, b, offsets, segs, rows, n_in, n_out, rank, scale, da, db, dx,
           tag)
    wy, wdx, wda, wdb = y0.float(), dx0.float(), da0.clone(), db0.clone()
    for s in range(segs):
        t0, t1 = bounds[s], bounds[s + 1]
        if t0 == t1:
            continue
        xs, dys = x[t0:t1].float(), dy[t0:t1].float()
        u, g = xs @ a[s].t(), dys @ b[s]
        wy[t0:t1] += (u @ b[s].t() * scale).to(dtype).float()
        wdx[t0:t1] += (g @ a[s] * scale).to(dtype).float()
        wda[s] += g.t() @ xs * scale
        wdb[s] += dys.t() @ u * scale
    c.compare("lora_segmented_forward", dt, shape, y, wy, "reduction")
    c.compare("lora_segmented_backward", dt, shape, dx, wdx, "reduction", "dx")
    c.compare("lora_segmented_backward", dt, shape, da, wda, "reduction", "da", stat=True)
    c.compare("lora_segmented_backward", dt, shape, db, wdb, "reduction", "db", stat=True)


def check_linear_cross_entropy(r, c, dt, tokens, hidden, u, all_ignored=False):
    dtype, tag = DTYPES[dt]
    shape = f"T={tokens} H={hidden} V={VOCAB}" + (" all ignored" if all_ignored else "")
    h = c.rand((tokens, hidden), dtype, -1.5, 1.5)
    t = torch.randint(0, VOCAB, (tokens,), device=c.device)
    if all_ignored:
        t[:] = -100
    elif tokens > 1:
        t[torch.rand(tokens, device=c.device) < 0.1] = -100
        t[0] = 7  # at least one counted position
    ws_bytes = r.size("linear_cross_entropy_workspace_bytes", tokens, hidden, VOCAB, tag)
    ws = r.workspace(ws_bytes)
    loss, dh = c.poison((1,), torch.float32), c.poison((tokens, hidden), dtype)
    r.call("linear_cross_entropy", h, u, t, -100, loss, dh, tokens, hidden, VOCAB, ws, ws_bytes, tag)
    if all_ignored:
        ok = bool(torch.isnan(loss).all()) and bool((dh == 0).all())
        return c.result(ok, "linear_cross_entropy.no_counted", dt, shape, 0.0 if ok else 1.0, 0.0,
                        "loss NaN and dh zero" if ok else f"loss {loss.item()}, dh not all zero")
    hr = h.float().clone().requires_grad_()
    logits = hr @ u.float().t()
    keep = t != -100
    logp = torch.log_softmax(logits, -1)
    nll = -logp.gather(1, t.clamp_min(0)[:, None])[:, 0]
    loss_want = (nll * keep).sum() / keep.sum()
    (dh_want,) = torch.autograd.grad(loss_want, (hr,))
    c.compare("linear_cross_entropy", dt, shape, loss, loss_want.detach().reshape(1), "reduction",
              "loss", stat=True)
    c.compare("linear_cross_entropy", dt, shape, dh, dh_want, "reduction", "dh")


def check_latent_soft(r, c, dt, batch, hidden, u, emb, inv_tau=1 / 0.7):
    dtype, tag = DTYPES[dt]
    tied = emb is u
    shape = f"B={batch} H={hidden} V={VOCAB}{' tied' if tied else ''}"
    h, de = c.rand((batch, hidden), dtype, -1.5, 1.5), c.rand((batch, hidden), dtype)
    fb, bb = r.size("latent_soft_workspace_bytes", batch, hidden, VOCAB, tag, outputs=2)
    wf, wb = r.workspace(fb), r.workspace(bb)
    e, lse, e32 = (c.poison((batch, hidden), dtype), c.poison((batch,), torch.float32),
                   c.poison((batch, hidden), torch.float32))
    r.call("latent_soft_forward", h, u, emb, e, lse, e32, batch, hidden, VOCAB, inv_tau, wf, fb, tag)
    hr = h.float().clone().requires_grad_()
    z = (hr @ u.float().t()) * inv_tau
    e_want = torch.softmax(z, -1) @ emb.float()
    c.compare("latent_soft_forward", dt, shape, e, e_want, "reduction", "e")
    c.compare("latent_soft_forward", dt, shape, e32, e_want, "reduction", "e32")
    c.compare("latent_soft_forward", dt, shape, lse, torch.logsumexp(z, -1), "reduction", "lse", stat=True)
    (dh_want,) = torch.autograd.grad(e_want, (hr,), de.float())
    dh = c.poison((batch, hidden), dtype)
    r.call("latent_soft_backward", h, u, emb, lse, e32, de, dh, batch, hidden, VOCAB, inv_tau, wb, bb,
           tag)
    c.compare("latent_soft_backward", dt, shape, dh, dh_want, "reduction", "dh")


def check_row_rescale(r, c, dt, rows, cols):
    dtype, tag = DTYPES[dt]
    shape, target, min_norm = f"{rows}x{cols}", math.sqrt(cols) * 0.8, 1e-6
    x = c.rand((rows, cols), dtype, -2, 2)
    y = c.poison((rows, cols), dtype)
    r.call("row_rescale_forward", x, y, rows, cols, target, min_norm, tag)
    xr = x.float().clone().requires_grad_()
    want = xr * target / xr.norm(dim=-1, keepdim=True).clamp_min(min_norm)
    c.compare("row_rescale_forward", dt, shape, y, want, "elementwise")
    dy = c.rand((rows, cols), dtype)
    (dx_want,) = torch.autograd.grad(want, (xr,), dy.float())
    dx = c.poison((rows, cols), dtype)
    r.call("row_rescale_backward", x, dy, dx, rows, cols, target, min_norm, tag)
    c.compare("row_rescale_backward", dt, shape, dx, dx_want, "reduction")


def check_adamw(r, c, pdt, gdt, sizes):
    pdtype, ptag = DTYPES[pdt]
    gdtype, gtag = DTYPES[gdt]
    lr, b1, b2, eps, wd, step = 1e-2, 0.9, 0.999, 1e-8, 0.1, 3
    shape = f"{len(sizes)} tensors, {sum(sizes)} params, grads {gdt}, step {step}"
    params = [c.rand((n,), pdtype) for n in sizes]
    grads = [c.rand((n,), gdtype) for n in sizes]
    m = [c.rand((n,), torch.float32, -0.1, 0.1) for n in sizes]
    v = [c.rand((n,), torch.float32, 0, 0.01) for n in sizes]
    before = [p.float().clone() for p in params]
    want = []
    bc1, bc2 = 1 - b1 ** step, 1 - b2 ** step
    for p, g, mm, vv in zip(before, grads, m, v):
        g = g.float()
        p = p * (1 - lr * wd)
        mm = b1 * mm + (1 - b1) * g
        vv = b2 * vv + (1 - b2) * g * g
        p = p - (lr / bc1) * mm / (vv.sqrt() / math.sqrt(bc2) + eps)
        want.append((p.to(pdtype).float(), mm, vv))
    # Host arrays of device pointers, kept alive (named) until the call returns.
    ptrs = [(ctypes.c_void_p * len(ts))(*[t.data_ptr() for t in ts]) for ts in (params, grads, m, v)]
    numels = (ctypes.c_int64 * len(sizes))(*sizes)
    r.call("adamw_step", *[ctypes.addressof(a) for a in ptrs], ctypes.addressof(numels), len(sizes),
           ptag, gtag, lr, b1, b2, eps, wd, step)
    cat = lambda ts: torch.cat([t.reshape(-1) for t in ts])
    # The update p_new - p_old (p itself would hide it), m and v.
    # The update is a difference of two fp32 numbers near 1 (rounding ~6e-8 of a ~1e-2 step):
    # held to the reduction bound.
    c.compare("adamw_step", pdt, shape, cat(params).float() - cat(before),
              cat([w[0] for w in want]) - cat(before), "reduction", "update")
    c.compare("adamw_step", pdt, shape, cat(m), cat([w[1] for w in want]), "elementwise", "exp_avg")
    c.compare("adamw_step", pdt, shape, cat(v), cat([w[2] for w in want]), "elementwise", "exp_avg_sq")


def check_sample(r, c, dt, rows):
    dtype, tag = DTYPES[dt]
    V = VOCAB
    ws_bytes = r.size("sample_workspace_bytes", rows, V)
    ws = r.workspace(ws_bytes)
    logits = c.rand((rows, V), dtype, -9, 9)
    if rows > 1:
        logits[1, 5] = logits[1, 77] = 20.0  # a tie at the maximum: the lower index wins
    out = torch.full((rows,), -1, dtype=torch.int64, device=c.device)
    r.call("sample", logits, rows, V, V, 0.0, 0, 1.0, 11, 0, out, ws, ws_bytes, tag)
    lf = logits.float()
    mx = lf.max(-1, keepdim=True).values
    idx = torch.arange(V, device=c.device).expand(rows, V)
    want = torch.where(lf == mx, idx, torch.full_like(idx, V)).min(-1).values
    wrong = int((out != want).sum().item())
    c.result(wrong == 0, "sample.greedy", dt, f"{rows}x{V}", float(wrong), 0.0, "mismatching rows")
    # top-k / top-p / temperature: valid ids inside the kept set
    for temp, top_k, top_p in ((0.7, 0, 1.0), (0.6, 20, 1.0), (0.6, 0, 0.95), (1.3, 3000, 0.5)):
        out = torch.full((rows,), -1, dtype=torch.int64, device=c.device)
        r.call("sample", logits, rows, V, V, temp, top_k, top_p, 12345, 3, out, ws, ws_bytes, tag)
        valid = bool(((out >= 0) & (out < V)).all())
        ok = valid
        if valid and top_k > 0:
            kth = lf.topk(top_k, -1).values[:, -1]
            ok = bool((lf.gather(1, out[:, None])[:, 0] >= kth).all())
        if valid and ok and top_p < 1:
            s = lf / temp
            if top_k > 0:
                s = s.masked_fill(s < s.topk(top_k, -1).values[:, -1:], float("-inf"))
            ps, _ = torch.softmax(s, -1).sort(-1, descending=True)
            before = ps.cumsum(-1) - ps  # mass strictly before each rank
            kept = (before < top_p).sum(-1)  # nucleus size, a little slack for rounding below
            rank = (s > s.gather(1, out[:, None])).sum(-1)
            ok = bool((rank <= kept + 2).all())
        c.result(ok, "sample.filtered", dt, f"{rows}x{V} T={temp} k={top_k} p={top_p}", 0.0 if ok else 1.0,
                 0.0, f"ids {out[:4].tolist()}...")
    # Distribution: 2048 rows of one logit row with 5 likely tokens; frequencies vs softmax.
    n = 2048
    base = torch.full((V,), -30.0, device=c.device)
    hot = torch.tensor([3, 1000, 50000, 100000, V - 1], device=c.device)
    base[hot] = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0], device=c.device)
    lg = base.to(dtype).expand(n, V).contiguous()
    out = torch.full((n,), -1, dtype=torch.int64, device=c.device)
    ws_bytes = r.size("sample_workspace_bytes", n, V)
    ws = r.workspace(ws_bytes)
    r.call("sample", lg, n, V, V, 1.0, 0, 1.0, random.getrandbits(63), 1, out, ws, ws_bytes, tag)
    p = torch.softmax(base.to(dtype).float()[hot], 0)
    counts = torch.stack([(out == h).sum() for h in hot]).float()
    z = ((counts - n * p).abs() / (n * p * (1 - p)).sqrt()).max().item()
    outside = n - int(counts.sum().item())
    ok = z < 5 and outside == 0
    c.result(ok, "sample.distribution", dt, f"{n}x{V} T=1", z, 5.0,
             f"max |z| of 5 token frequencies, {outside} draws outside them")


# ---- the plan --------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("library")
    ap.add_argument("--lib", choices=["cuda", "cpu"], required=True)
    ap.add_argument("--only", default="", help="run only the groups whose name contains this")
    args = ap.parse_args()
    device = "cuda" if args.lib == "cuda" else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            sys.exit("check_torch: --lib cuda but torch.cuda.is_available() is false")
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 references in true fp32
        torch.backends.cudnn.allow_tf32 = False
    seed = int(os.environ.get("RELAT_TEST_SEED", random.SystemRandom().randrange(1, 2**31)))
    random.seed(seed)
    torch.manual_seed(seed)
    r = Relat(args.library, args.lib, device)
    c = Checker(device)
    gpu = device == "cuda"
    cores = len(os.sched_getaffinity(0))
    if not gpu and "OMP_NUM_THREADS" not in os.environ and torch.get_num_threads() < cores:
        torch.set_num_threads(cores)  # the references on every core, as relat_cpu runs
    say(f"check_torch: {args.library} (--lib {args.lib}), torch {torch.__version__}"
        + (f" on {torch.cuda.get_device_name()}" if gpu else f" on cpu, {torch.get_num_threads()} threads"))
    say(f"seed {seed} (replay: RELAT_TEST_SEED={seed})")
    say("bounds (norm-wise relative error): " + ", ".join(
        f"{k}/{d} {b:g}" for (k, d), b in BOUNDS.items()))
    big = 512  # tokens of the multi-token cases
    cpu_small = 64 if not gpu else big  # CPU: fewer rows where the full count is slow
    vocab_rows = 512 if gpu else 4  # cross-entropy tokens at the full vocabulary
    vocab_models = ["0.6B", "8B", "32B"] if gpu else ["0.6B", "8B"]  # CPU memory: [V, 5120] tables

    groups = []
    for mname, (H, hq, hkv, D, I) in MODELS.items():
        for dt in DTYPES:
            for T in (1, big):
                groups.append((f"rmsnorm {mname}", lambda dt=dt, T=T, H=H: check_rmsnorm(r, c, dt, T, H)))
                groups.append((f"rmsnorm qk-norm {mname}", lambda dt=dt, T=T, hq=hq, D=D:
                               check_rmsnorm(r, c, dt, T * hq, D)))
                groups.append((f"add_rmsnorm {mname}", lambda dt=dt, T=T, H=H:
                               check_add_rmsnorm(r, c, dt, T, H)))
                groups.append((f"row_rescale {mname}", lambda dt=dt, T=T, H=H:
                               check_row_rescale(r, c, dt, T, H)))
                groups.append((f"rope {mname}", lambda dt=dt, T=T, hq=hq, hkv=hkv, D=D:
                               check_rope(r, c, dt, T, hq, hkv, D)))
                groups.append((f"swiglu {mname}", lambda dt=dt, T=T, I=I: check_swiglu(r, c, dt, T, I)))
            # attention: one query after a prefix; the full causal segment; a segment after a prefix
            # read from an interleaved KV buffer (kv_stride = 2 * hkv * D)
            ta = big if gpu else cpu_small
            for tq, tk, pad in ((1, 300, 0), (ta, ta, 0), (ta, ta + 200, hkv * D)):
                groups.append((f"attention {mname}", lambda dt=dt, tq=tq, tk=tk, pad=pad, hq=hq, hkv=hkv, D=D:
                               check_attention(r, c, dt, tq, tk, hq, hkv, D, pad)))
            groups.append((f"decode_attention {mname}", lambda dt=dt, hq=hq, hkv=hkv, D=D:
                           check_decode_attention(r, c, dt, 4, 4096 if gpu else 1024, hq, hkv, D)))
            # GEMV: rows 1 and 8 (the maximum) through the q|k|v and down projections
            for rows in (1, 8):
                groups.append((f"gemv {mname}", lambda dt=dt, rows=rows, H=H, hq=hq, hkv=hkv, D=D:
                               check_gemv(r, c, dt, rows, (hq + 2 * hkv) * D, H, name="q|k|v")))
                groups.append((f"gemv {mname}", lambda dt=dt, rows=rows, H=H, I=I:
                               check_gemv(r, c, dt, rows, H, I, name="down")))
                if gpu:
                    groups.append((f"gemv {mname}", lambda dt=dt, rows=rows, H=H, I=I:
                                   check_gemv(r, c, dt, rows, 2 * I, H, name="gate|up")))
            # Segmented LoRA on gate/up and down: one row per question (decode), ragged segments
            # with empty ones, rank 16 and the largest, 64
            for sizes, rank in (((1,) * 16, 16), ((200, 0, 37, 1), 16), ((3, 0, 5), 64)):
                for n_in, n_out, pname in ((H, I, "gate|up"), (I, H, "down")):
                    groups.append((f"lora_segmented {mname}",
                                   lambda dt=dt, sizes=sizes, rank=rank, n_in=n_in, n_out=n_out, pname=pname:
                                   check_lora_segmented(r, c, dt, sizes, n_in, n_out, rank, pname)))
    for dt in DTYPES:
        groups.append(("adamw", lambda dt=dt:
                       check_adamw(r, c, dt, dt, [8 * 1024, 2048 * 8, 0, 12288 * 8, 1000])))
    groups.append(("adamw", lambda: check_adamw(r, c, "bf16", "f32", [8 * 4096, 4096 * 8, 0, 333])))
    for dt in DTYPES:
        for rows in (1, 64):
            groups.append(("sample", lambda dt=dt, rows=rows: check_sample(r, c, dt, rows)))

    # The vocabulary-sized ops share one [V, H] table per width and dtype (LM head / embeddings).
    def vocab_group(mname, dt):
        H = MODELS[mname][0]
        dtype = DTYPES[dt][0]
        u = c.rand((VOCAB, H), dtype, -2 / math.sqrt(H), 2 / math.sqrt(H))
        emb = c.rand((VOCAB, H), dtype, -2 / math.sqrt(H), 2 / math.sqrt(H)) if gpu else u
        for T in (1, big):
            check_embedding(r, c, dt, T, H, emb)
        for rows in (1, 8):
            check_gemv(r, c, dt, rows, VOCAB, H, w=u, name="LM head")
        for T in (1, vocab_rows):
            check_linear_cross_entropy(r, c, dt, T, H, u)
        check_linear_cross_entropy(r, c, dt, 2, H, u, all_ignored=True)
        for B in ((1, 4) if gpu else (1,)):
            check_latent_soft(r, c, dt, B, H, u, emb)
        if gpu:
            check_latent_soft(r, c, dt, 1, H, u, u)  # tied embeddings

    for mname in vocab_models:
        for dt in DTYPES:
            groups.append((f"vocabulary {mname}", lambda mname=mname, dt=dt: vocab_group(mname, dt)))

    start = time.time()
    spent = {}  # seconds per group name, for the time budget of run.sh's step
    for name, run in groups:
        if args.only and args.only not in name:
            continue
        t0 = time.time()
        try:
            run()
        except Exception as e:  # a failed call or a crash of the reference: one FAIL, go on
            c.fail(name, "-", "-", f"{type(e).__name__}: {e}")
            traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
        if gpu:
            torch.cuda.empty_cache()
        spent[name] = spent.get(name, 0.0) + time.time() - t0
    say("slowest groups: " + ", ".join(
        f"{n} {t:.1f} s" for n, t in sorted(spent.items(), key=lambda kv: -kv[1])[:8]))
    say("worst error / bound per op and dtype:")
    for (op, dt), (e, b) in sorted(c.worst.items()):
        say(f"  {op} {dt}: {e:.3g} / {b:.3g}")
    say(f"check_torch: {c.passed} passed, {c.failed} failed ({time.time() - start:.0f} s)")
    sys.exit(1 if c.failed else 0)


if __name__ == "__main__":
    main()
