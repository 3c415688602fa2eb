// Launch-plan sweep: every CUDA op of relat.h driven by the library's own host code with the shapes
// of every released dense Qwen2, Qwen2.5 and Qwen3 model and 1, 16, 512 and 4,096 tokens, on an
// emulated sm_80 (A100, 108 SMs) and sm_90 (H100, 132 SMs). The emulation runs dry: each launch is
// checked against the device's limits (block and grid dimensions, the kernel's launch bound and
// register limit, static + dynamic shared memory against 48 KiB or the opt-in, all from nvcc's
// compilation of the kernel) and recorded, but not executed, so full-size shapes cost nothing and
// pointers are never read. Each recorded launch is checked again here, and a table of the largest
// launch per kernel and architecture is printed.
#include <algorithm>
#include <chrono>
#include <map>
#include <vector>

#include "cuda_emu.h"
#include "test_util.h"

using namespace relat::test;

namespace {

// From each model's published config.json (hidden_size, num_attention_heads, num_key_value_heads,
// head_dim (Qwen2/2.5: hidden / heads), intermediate_size, vocab_size, num_hidden_layers).
struct Model {
  const char *name;
  int64_t hidden, heads, kv_heads, head_dim, intermediate, vocab, layers;
  bool qk_norm;  // Qwen3
};
constexpr Model kModels[] = {
    {"Qwen2-0.5B", 896, 14, 2, 64, 4864, 151936, 24, false},
    {"Qwen2-1.5B", 1536, 12, 2, 128, 8960, 151936, 28, false},
    {"Qwen2-7B", 3584, 28, 4, 128, 18944, 152064, 28, false},
    {"Qwen2-72B", 8192, 64, 8, 128, 29568, 152064, 80, false},
    {"Qwen2.5-0.5B", 896, 14, 2, 64, 4864, 151936, 24, false},
    {"Qwen2.5-1.5B", 1536, 12, 2, 128, 8960, 151936, 28, false},
    {"Qwen2.5-3B", 2048, 16, 2, 128, 11008, 151936, 36, false},
    {"Qwen2.5-7B", 3584, 28, 4, 128, 18944, 152064, 28, false},
    {"Qwen2.5-14B", 5120, 40, 8, 128, 13824, 152064, 48, false},
    {"Qwen2.5-32B", 5120, 40, 8, 128, 27648, 152064, 64, false},
    {"Qwen2.5-72B", 8192, 64, 8, 128, 29568, 152064, 80, false},
    {"Qwen3-0.6B", 1024, 16, 8, 128, 3072, 151936, 28, true},
    {"Qwen3-1.7B", 2048, 16, 8, 128, 6144, 151936, 28, true},
    {"Qwen3-4B", 2560, 32, 8, 128, 9728, 151936, 36, true},
    {"Qwen3-8B", 4096, 32, 8, 128, 12288, 151936, 36, true},
    {"Qwen3-14B", 5120, 40, 8, 128, 17408, 151936, 40, true},
    {"Qwen3-32B", 5120, 64, 8, 128, 25600, 151936, 64, true},
};
constexpr int64_t kTokens[] = {1, 16, 512, 4096};
constexpr int64_t kLoraRank = 16;

struct ArchLimits {
  int arch;
  size_t optin;
};
constexpr ArchLimits kArchs[] = {{80, 166912}, {90, 232448}};

// Every op runs on a stream of emulated device 1 while device 0 is current: the emulation refuses
// a launch into another device's stream, so each op must make its stream's device current (and
// restore the caller's afterwards, checked after every call).
cudaStream_t g_stream = nullptr;

// Pointers the dry run never reads: distinct, far apart, 256-byte aligned.
void *fake(int i) { return reinterpret_cast<void *>((uintptr_t(1) << 44) + (uintptr_t(i) << 36)); }
template <class T>
T *fake_as(int i) {
  return static_cast<T *>(fake(i));
}

// "void relat::cuda::(anonymous namespace)::f<float, 128>(float const*, ...)" -> "f<float, 128>".
std::string short_name(std::string k) {
  for (const std::string prefix : {"relat::cuda::(anonymous namespace)::", "relat::cuda::"})
    for (size_t at; (at = k.find(prefix)) != std::string::npos;) k.erase(at, prefix.size());
  if (k.rfind("void ", 0) == 0) k.erase(0, 5);
  int depth = 0;
  for (size_t i = 0; i < k.size(); ++i) {
    depth += k[i] == '<' ? 1 : k[i] == '>' ? -1 : 0;
    if (k[i] == '(' && depth == 0) return k.substr(0, i);
  }
  return k;
}

struct Largest {
  int launches = 0;
  unsigned threads = 0, max_threads = 1024;
  uint64_t blocks = 0;
  unsigned grid_y = 0, grid_z = 0;
  size_t shared = 0, limit = 0;
  std::string where;  // the shape of the launch with the most shared memory
};

class Sweep {
 public:
  Sweep(Counter &c, const ArchLimits &a) : c_(c), arch_(a) {}

  // Runs one op call and checks what it launched.
  template <class F>
  void op(const char *name, const std::string &shape, F &&call) {
    const relat_status s = call();
    ++calls_;
    c_.check(s == RELAT_OK, "sm_%d %s %s: status %d: %s", arch_.arch, name, shape.c_str(), s,
             relat_cuda_last_error());
    int device = -1;
    cudaGetDevice(&device);
    c_.check(device == 0, "sm_%d %s %s: left device %d current, not the caller's 0", arch_.arch,
             name, shape.c_str(), device);
    for (const relat_emu::PlannedLaunch &l : relat_emu::take_planned_launches()) {
      c_.check(l.device == 1, "sm_%d %s %s: %s launched on device %d, its stream's is 1",
               arch_.arch, name, shape.c_str(), l.kernel.c_str(), l.device);
      record(l, shape);
    }
  }

  void print() const {
    std::printf("\nsm_%d: %lld op calls, %lld launches\n", arch_.arch, (long long)calls_,
                (long long)launches_);
    std::printf(
        "| kernel | launches | most threads (limit) | most blocks | most shared bytes, static + "
        "dynamic (limit) | at |\n|---|--:|--:|--:|--:|---|\n");
    for (const auto &[kernel, l] : largest_)
      std::printf("| %s | %d | %u (%u) | %llu | %zu (%zu) | %s |\n", kernel.c_str(), l.launches,
                  l.threads, l.max_threads, (unsigned long long)l.blocks, l.shared, l.limit,
                  l.where.c_str());
  }

 private:
  void record(const relat_emu::PlannedLaunch &l, const std::string &shape) {
    ++launches_;
    const uint64_t threads = uint64_t(l.block.x) * l.block.y * l.block.z;
    const uint64_t blocks = uint64_t(l.grid.x) * l.grid.y * l.grid.z;
    const size_t shared = l.static_shared + l.dynamic_shared;
    // 48 KiB in all unless the kernel raised its dynamic limit, and never above the opt-in.
    const size_t limit =
        std::min(arch_.optin, std::max<size_t>(48 * 1024, l.static_shared + l.dynamic_limit));
    const char *k = l.kernel.c_str();
    const int a = arch_.arch;
    c_.check(threads >= 1 && threads <= l.max_threads && threads <= 1024 && l.block.z <= 64,
             "sm_%d %s %s: block (%u,%u,%u) vs the kernel's %u threads", a, k, shape.c_str(),
             l.block.x, l.block.y, l.block.z, l.max_threads);
    c_.check(l.grid.x >= 1 && l.grid.x <= 0x7fffffffu && l.grid.y >= 1 && l.grid.y <= 65535 &&
                 l.grid.z >= 1 && l.grid.z <= 65535,
             "sm_%d %s %s: grid (%u,%u,%u)", a, k, shape.c_str(), l.grid.x, l.grid.y, l.grid.z);
    c_.check(shared <= limit, "sm_%d %s %s: %zu static + %zu dynamic shared bytes, limit %zu", a, k,
             shape.c_str(), l.static_shared, l.dynamic_shared, limit);
    Largest &g = largest_[short_name(l.kernel)];
    ++g.launches;
    g.threads = std::max(g.threads, unsigned(threads));
    g.max_threads = l.max_threads;
    g.blocks = std::max(g.blocks, blocks);
    if (shared >= g.shared) g.shared = shared, g.limit = limit, g.where = shape;
  }

  Counter &c_;
  ArchLimits arch_;
  int64_t calls_ = 0, launches_ = 0;
  std::map<std::string, Largest> largest_;
};

std::string shape_name(const Model &m, int64_t tokens, relat_dtype d) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s T=%lld %s", m.name, (long long)tokens, dtype_name(d));
  return buf;
}

void sweep_model(Sweep &s, const Model &m, int64_t T, relat_dtype d) {
  const std::string at = shape_name(m, T, d);
  const int64_t H = m.hidden, D = m.head_dim, hq = m.heads, hkv = m.kv_heads, I = m.intermediate,
                V = m.vocab;
  const float eps = 1e-6f;
  int64_t ws = 0;

  // Norms: the layer norms over hidden, and Qwen3's q/k norms over head_dim rows.
  std::vector<std::pair<int64_t, int64_t>> norms = {{T, H}};
  if (m.qk_norm) norms.push_back({T * hq, D});
  for (auto [rows, cols] : norms) {
    const std::string sh = at + " rows=" + std::to_string(rows) + " cols=" + std::to_string(cols);
    s.op("rmsnorm_forward", sh, [&] {
      return relat_cuda_rmsnorm_forward(fake(1), fake(2), fake(3), fake_as<float>(4), rows, cols,
                                        eps, d, g_stream);
    });
    s.op("add_rmsnorm_forward", sh, [&] {
      return relat_cuda_add_rmsnorm_forward(fake(1), fake(2), fake(3), fake(4), fake(5),
                                            fake_as<float>(6), rows, cols, eps, d, g_stream);
    });
    relat_cuda_rmsnorm_backward_workspace_bytes(rows, cols, &ws);
    s.op("rmsnorm_backward", sh, [&] {
      return relat_cuda_rmsnorm_backward(fake(1), fake(2), fake(3), fake_as<float>(4), fake(5),
                                         fake_as<float>(6), fake(7), ws, rows, cols, d, g_stream);
    });
    s.op("add_rmsnorm_backward", sh, [&] {
      return relat_cuda_add_rmsnorm_backward(fake(1), fake(2), fake(3), fake(4), fake_as<float>(5),
                                             fake(6), fake_as<float>(7), fake(8), ws, rows, cols, d,
                                             g_stream);
    });
  }

  // Attention over the tokens themselves and after a 512-token prefix (a prompt, earlier latents).
  for (int64_t prefix : {int64_t(0), int64_t(512)}) {
    const int64_t tk = T + prefix;
    const std::string sh = at + " tk=" + std::to_string(tk);
    s.op("attention_forward", sh, [&] {
      return relat_cuda_attention_forward(fake(1), fake(2), fake(3), fake(4), fake_as<float>(5), T,
                                          tk, hq, hkv, D, hkv * D, 0.088f, d, g_stream);
    });
    relat_cuda_attention_backward_workspace_bytes(T, tk, hq, hkv, D, d, &ws);
    s.op("attention_backward", sh, [&] {
      return relat_cuda_attention_backward(
          fake(1), fake(2), fake(3), fake(4), fake(5), fake_as<float>(6), fake(7), fake(8), fake(9),
          fake_as<float>(10), ws, T, tk, hq, hkv, D, hkv * D, 0.088f, 0, d, g_stream);
    });
  }
  // Decoding: T sequences (capped at 64) over a cache of T positions, and one over 32,768.
  for (auto [batch, len] : {std::pair<int64_t, int64_t>{std::min<int64_t>(T, 64), T}, {1, 32768}}) {
    const std::string sh = at + " batch=" + std::to_string(batch) + " len=" + std::to_string(len);
    relat_cuda_decode_attention_workspace_bytes(batch, hq, D, len, &ws);
    s.op("decode_attention_forward", sh, [&] {
      return relat_cuda_decode_attention_forward(
          fake(1), fake(2), fake(3), fake(4), fake_as<int32_t>(5), batch, len, hq, hkv, D, hkv * D,
          len * hkv * D, 0.088f, fake_as<float>(6), ws, d, g_stream);
    });
  }

  relat_cuda_linear_cross_entropy_workspace_bytes(T, H, V, d, &ws);
  s.op("linear_cross_entropy", at, [&] {
    return relat_cuda_linear_cross_entropy(fake(1), fake(2), fake_as<int64_t>(3), -100,
                                           fake_as<float>(4), fake(5), T, H, V, fake(6), ws, d,
                                           g_stream);
  });

  // The latent step with one latent row per question: batch T.
  int64_t fwd = 0, bwd = 0;
  relat_cuda_latent_soft_workspace_bytes(T, H, V, d, &fwd, &bwd);
  s.op("latent_soft_forward", at, [&] {
    return relat_cuda_latent_soft_forward(fake(1), fake(2), fake(3), fake(4), fake_as<float>(5),
                                          fake_as<float>(6), T, H, V, 1.f, fake(7), fwd, d,
                                          g_stream);
  });
  s.op("latent_soft_backward", at, [&] {
    return relat_cuda_latent_soft_backward(fake(1), fake(2), fake(3), fake_as<float>(4),
                                           fake_as<float>(5), fake(6), fake(7), T, H, V, 1.f,
                                           fake(8), bwd, d, g_stream);
  });
  s.op("row_rescale_forward", at, [&] {
    return relat_cuda_row_rescale_forward(fake(1), fake(2), T, H, 1.f, 1e-6f, d, g_stream);
  });
  s.op("row_rescale_backward", at, [&] {
    return relat_cuda_row_rescale_backward(fake(1), fake(2), fake(3), T, H, 1.f, 1e-6f, d,
                                           g_stream);
  });

  // The few-row linear on every projection and the LM head, when the tokens fit its row limit.
  if (T <= RELAT_GEMV_MAX_ROWS) {
    const int64_t projections[][2] = {
        {(hq + 2 * hkv) * D, H}, {H, hq * D}, {2 * I, H}, {H, I}, {V, H}};
    for (const auto &p : projections) {
      const std::string sh = at + " n=" + std::to_string(p[0]) + " k=" + std::to_string(p[1]);
      s.op("gemv_forward", sh, [&] {
        return relat_cuda_gemv_forward(fake(1), fake(2), fake(3), T, p[0], p[1], d, g_stream);
      });
      s.op("gemv_backward", sh, [&] {
        return relat_cuda_gemv_backward(fake(1), fake(2), fake(3), T, p[0], p[1], d, g_stream);
      });
    }
  }

  // Segmented LoRA on the seven projections: one question, or T questions of one row each (up to
  // RELAT_LORA_MAX_SEGMENTS), at the sweep's rank and the largest.
  {
    const int64_t q = hq * D, kv = hkv * D;
    const int64_t shapes[][2] = {{H, q}, {H, kv}, {q, H}, {H, I}, {I, H}};  // {in, out}
    for (const auto &io : shapes)
      for (int64_t segments : {int64_t(1), std::min<int64_t>(T, RELAT_LORA_MAX_SEGMENTS)})
        for (int64_t rank : {kLoraRank, int64_t(RELAT_LORA_MAX_RANK)}) {
          const std::string sh =
              at + " in=" + std::to_string(io[0]) + " out=" + std::to_string(io[1]) +
              " segments=" + std::to_string(segments) + " rank=" + std::to_string(rank);
          s.op("lora_segmented_forward", sh, [&] {
            return relat_cuda_lora_segmented_forward(fake(1), fake_as<float>(2), fake_as<float>(3),
                                                     fake_as<int64_t>(4), segments, T, io[0], io[1],
                                                     rank, 2.f, fake(5), d, g_stream);
          });
          s.op("lora_segmented_backward", sh, [&] {
            return relat_cuda_lora_segmented_backward(
                fake(1), fake(2), fake_as<float>(3), fake_as<float>(4), fake_as<int64_t>(5),
                segments, T, io[0], io[1], rank, 2.f, fake_as<float>(6), fake_as<float>(7), fake(8),
                d, g_stream);
          });
        }
  }

  // SwiGLU on the fused [gate | up] projection output.
  const int64_t up = I * int64_t(dtype_size(d));  // bytes from gate to up within a row
  s.op("swiglu_forward", at, [&] {
    return relat_cuda_swiglu_forward(fake(1), fake_as<char>(1) + up, 2 * I, fake(2), T, I, d,
                                     g_stream);
  });
  s.op("swiglu_backward", at, [&] {
    return relat_cuda_swiglu_backward(fake(1), fake(2), fake_as<char>(2) + up, 2 * I, fake(3),
                                      fake_as<char>(3) + up, 2 * I, T, I, d, g_stream);
  });
  s.op("embedding_forward", at, [&] {
    return relat_cuda_embedding_forward(fake(1), RELAT_I64, T, fake(2), V, H, fake(3),
                                        fake_as<int64_t>(4), d, g_stream);
  });
  s.op("rope_forward", at, [&] {
    return relat_cuda_rope_forward(fake(1), fake(2), fake(1), fake(2), fake_as<int64_t>(3),
                                   fake_as<float>(4), T, hq, hkv, D, hq * D, hkv * D, d, g_stream);
  });
  s.op("rope_backward", at, [&] {
    return relat_cuda_rope_backward(fake(1), fake(2), fake(1), fake(2), fake_as<int64_t>(3),
                                    fake_as<float>(4), T, hq, hkv, D, hq * D, hkv * D, d, g_stream);
  });
  relat_cuda_sample_workspace_bytes(T, V, &ws);
  s.op("sample", at, [&] {
    return relat_cuda_sample(fake(1), T, V, V, 0.7f, 20, 0.9f, 1, 1, fake_as<int64_t>(2), nullptr,
                             0, d, g_stream);
  });
}

// AdamW over the whole LoRA adapter of a model (A and B of the seven projections of every layer).
void sweep_adamw(Sweep &s, const Model &m, relat_dtype d) {
  const int64_t q = m.heads * m.head_dim, kv = m.kv_heads * m.head_dim;
  const int64_t outs[7] = {q, kv, kv, m.hidden, m.intermediate, m.intermediate, m.hidden};
  const int64_t ins[7] = {m.hidden, m.hidden, m.hidden, q, m.hidden, m.hidden, m.intermediate};
  std::vector<void *> params;
  std::vector<const void *> grads;
  std::vector<float *> m1, m2;
  std::vector<int64_t> numels;
  int i = 0;
  for (int64_t l = 0; l < m.layers; ++l)
    for (int p = 0; p < 7; ++p)
      for (int64_t n : {kLoraRank * ins[p], outs[p] * kLoraRank}) {
        params.push_back(fake(++i));
        grads.push_back(fake(++i));
        m1.push_back(fake_as<float>(++i));
        m2.push_back(fake_as<float>(++i));
        numels.push_back(n);
      }
  s.op("adamw_step",
       std::string(m.name) + " " + dtype_name(d) + " " + std::to_string(numels.size()) + " tensors",
       [&] {
         return relat_cuda_adamw_step(params.data(), grads.data(), m1.data(), m2.data(),
                                      numels.data(), int64_t(numels.size()), d, RELAT_F32, 1e-4,
                                      0.9, 0.999, 1e-8, 0.0, 3, g_stream);
       });
}

}  // namespace

int main() {
  Counter c;
  const auto t0 = std::chrono::steady_clock::now();
  relat_emu::set_device_count(2);
  c.check(relat_cuda_set_device(2) == RELAT_ERR_INVALID_ARGUMENT &&
              std::string(relat_cuda_last_error()).find("device 2") != std::string::npos,
          "set_device(2) of 2 devices: %s", relat_cuda_last_error());
  int device = -1;
  c.check(
      relat_cuda_set_device(1) == RELAT_OK && cudaGetDevice(&device) == cudaSuccess && device == 1,
      "set_device(1): device %d current", device);
  c.check(cudaStreamCreate(&g_stream) == cudaSuccess, "stream on device 1");
  c.check(relat_cuda_set_device(0) == RELAT_OK, "set_device(0)");
  relat_emu::set_dry_run(true);
  for (const ArchLimits &a : kArchs) {
    relat_emu::set_device_arch(a.arch);
    Sweep s(c, a);
    for (const Model &m : kModels) {
      for (relat_dtype d : {RELAT_F32, RELAT_BF16, RELAT_F16}) {
        for (int64_t T : kTokens) sweep_model(s, m, T, d);
        sweep_adamw(s, m, d);
      }
    }
    s.print();
  }
  relat_emu::set_dry_run(false);
  relat_emu::set_device_arch(0);
  cudaStreamDestroy(g_stream);
  relat_emu::set_device_count(1);
  std::printf("\n%zu models x %zu token counts x 3 dtypes x 2 architectures in %.1f s\n",
              std::size(kModels), std::size(kTokens),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return c.finish();
}
