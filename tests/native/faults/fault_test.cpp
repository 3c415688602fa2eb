// Seeded-fault tests: each faulty copy of the RMSNorm kernel (rmsnorm_faults.cu) must be caught by
// the CUDA-on-CPU test method: by comparison with the CPU twin, by the emulation's fault report, or
// by AddressSanitizer. ASan ends the process it reports in, so that case runs in a child process.
//   emu_faults barrier | shuffle | exit | overrun | trailing-barrier | split-accumulation
// trailing-barrier is caught only under the adversarial schedules (RELAT_EMU_SCHEDULE=priority or
// greedy); split-accumulation only by the race-checked build (emu_faults_race).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "rmsnorm_faults.h"
#include "test_util.h"

using namespace relat::test;

namespace {

struct Outcome {
  relat_status status;
  Comparison y;
};

Outcome run_once(relat_fault fault, Rng &rng, int64_t rows, int64_t cols, int64_t max_blocks = 0) {
  const size_t n = size_t(rows * cols);
  const Tensor x = random_tensor(rng, RELAT_F32, n, -3.f, 3.f);
  const Tensor w = random_tensor(rng, RELAT_F32, size_t(cols), 0.5f, 1.5f);
  Tensor y(RELAT_F32, n), want(RELAT_F32, n);
  poison(y);
  poison(want);
  auto f = [](const Tensor &t) { return static_cast<const float *>(t.data()); };
  const relat_status s = relat_fault_rmsnorm_forward(
      fault, f(x), f(w), static_cast<float *>(y.data()), nullptr, rows, cols, 1e-6f, max_blocks);
  relat_cpu_rmsnorm_forward(x.data(), w.data(), want.data(), nullptr, rows, cols, 1e-6f, RELAT_F32,
                            nullptr);
  return {s, compare(y, want, tolerance(RELAT_F32))};
}

// The unfaulted copy passes on the same shapes, so a detection is the fault's doing.
void control(Counter &c, Rng &rng, int64_t rows, int64_t cols, int64_t max_blocks = 0) {
  const Outcome o = run_once(RELAT_FAULT_NONE, rng, rows, cols, max_blocks);
  c.check(o.status == RELAT_OK && o.y.ok,
          "control: unfaulted kernel, rows=%lld cols=%lld max_blocks=%lld: %s", (long long)rows,
          (long long)cols, (long long)max_blocks, o.y.describe().c_str());
}

// A fault caught by comparison (or by a fault report) on every one of several fresh inputs.
void detect_by_comparison(Counter &c, Rng &rng, relat_fault fault, const char *name, int64_t rows,
                          int64_t cols, int trials, int64_t max_blocks = 0) {
  control(c, rng, rows, cols, max_blocks);
  int detected = 0;
  std::string how;
  for (int t = 0; t < trials; ++t) {
    const Outcome o = run_once(fault, rng, rows, cols, max_blocks);
    if (o.status != RELAT_OK) {
      ++detected;
      how = std::string("kernel fault: ") + relat_fault_message();
      relat_fault_reset();
    } else if (!o.y.ok) {
      ++detected;
      how = "comparison: " + o.y.describe();
    }
  }
  c.check(detected == trials, "%s, rows=%lld cols=%lld: detected in %d of %d runs (%s)", name,
          (long long)rows, (long long)cols, detected, trials, how.c_str());
}

// dw = sum over rows of dy*x*rstd split over blocks of `per_block` rows. The atomic version must
// pass (no conflict, right sums); `dw[c] += partial` must be a kernel fault naming two blocks.
void split_accumulation(Counter &c, Rng &rng, int64_t rows, int64_t cols, int64_t per_block) {
  const size_t n = size_t(rows * cols);
  const Tensor dy = random_tensor(rng, RELAT_F32, n, -1.f, 1.f);
  const Tensor x = random_tensor(rng, RELAT_F32, n, -3.f, 3.f);
  const Tensor rstd = random_tensor(rng, RELAT_F32, size_t(rows), 0.5f, 2.f);
  std::vector<double> want(size_t(cols), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < cols; ++k)
      want[size_t(k)] +=
          double(dy.at(size_t(r * cols + k))) * x.at(size_t(r * cols + k)) * rstd.at(size_t(r));
  auto f = [](const Tensor &t) { return static_cast<const float *>(t.data()); };
  for (bool atomic : {true, false}) {
    std::vector<float> dw(size_t(cols), 0.f);
    const relat_status s = relat_fault_split_dweight(atomic, f(dy), f(x), f(rstd), dw.data(), rows,
                                                     cols, per_block);
    const std::string msg = relat_fault_message();
    if (atomic) {
      double worst = 0;
      for (int64_t k = 0; k < cols; ++k)
        worst = std::max(worst, std::fabs(dw[size_t(k)] - want[size_t(k)]) /
                                    (1e-4 + 1e-4 * std::fabs(want[size_t(k)])));
      c.check(s == RELAT_OK && worst <= 1.0,
              "control: atomicAdd split accumulation, rows=%lld cols=%lld, %lld rows per block: "
              "status %d, max error %.3g of tolerance %s",
              (long long)rows, (long long)cols, (long long)per_block, s, worst, msg.c_str());
    } else {
      const bool named = msg.find("split_dweight_kernel<false>") != std::string::npos &&
                         msg.find("in the same launch") != std::string::npos;
      c.check(s == RELAT_ERR_DEVICE && named,
              "dw[c] += partial across blocks, rows=%lld cols=%lld: status %d, \"%s\"",
              (long long)rows, (long long)cols, s, msg.c_str());
    }
    relat_fault_reset();
  }
}

void early_exit(Counter &c, Rng &rng) {
  control(c, rng, 4, 20);
  const Outcome o = run_once(RELAT_FAULT_EARLY_EXIT, rng, 4, 20);
  const std::string msg = relat_fault_message();
  c.check(o.status == RELAT_ERR_DEVICE && msg.find("does not take part") != std::string::npos,
          "early exit before the block reduction: status %d, \"%s\"", o.status, msg.c_str());
  relat_fault_reset();
}

// Runs this program with `mode` in a child process; returns its exit status and output.
int run_child(const char *self, const char *mode, std::string &output) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    execl(self, self, mode, static_cast<char *>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  char buf[4096];
  for (ssize_t k; (k = read(fds[0], buf, sizeof buf)) > 0;) output.append(buf, size_t(k));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

void overrun(Counter &c, const char *self) {
  std::string ok_output, bad_output;
  const int ok_status = run_child(self, "overrun-control-child", ok_output);
  c.check(WIFEXITED(ok_status) && WEXITSTATUS(ok_status) == 0 &&
              ok_output.find("AddressSanitizer") == std::string::npos,
          "control: the unfaulted kernel runs clean under ASan in a child process");
  const int status = run_child(self, "overrun-child", bad_output);
  const bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const bool asan = bad_output.find("AddressSanitizer: heap-buffer-overflow") != std::string::npos;
  const bool named = bad_output.find("rmsnorm_fault_kernel") != std::string::npos;
  std::printf("---- child output (first lines) ----\n");
  size_t pos = 0;
  for (int line = 0; line < 12 && pos < bad_output.size(); ++line) {
    const size_t end = bad_output.find('\n', pos);
    std::printf("  %s\n", bad_output.substr(pos, end - pos).c_str());
    pos = end == std::string::npos ? bad_output.size() : end + 1;
  }
  c.check(failed && asan && named,
          "loop bound c <= cols: child %s, ASan heap-buffer-overflow reported: %s, in "
          "rmsnorm_fault_kernel: %s",
          failed ? "failed" : "exited 0", asan ? "yes" : "no", named ? "yes" : "no");
}

int child(relat_fault fault) {
  Rng rng(test_seed());
  const Outcome o = run_once(fault, rng, 3, 100);
  std::printf("child finished: status %d, comparison %s\n", o.status, o.y.describe().c_str());
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "overrun-child") return child(RELAT_FAULT_ROW_OVERRUN);
  if (mode == "overrun-control-child") return child(RELAT_FAULT_NONE);
  Rng rng(test_seed());
  Counter c;
  if (mode == "barrier") {
    detect_by_comparison(c, rng, RELAT_FAULT_DROPPED_BARRIER, "dropped __syncthreads", 16, 4096, 5);
    detect_by_comparison(c, rng, RELAT_FAULT_DROPPED_BARRIER, "dropped __syncthreads", 8, 1000, 5);
  } else if (mode == "shuffle") {
    detect_by_comparison(c, rng, RELAT_FAULT_SHUFFLE_OFFSET, "shuffle offsets 32..2", 4, 32, 3);
    detect_by_comparison(c, rng, RELAT_FAULT_SHUFFLE_OFFSET, "shuffle offsets 32..2", 16, 4096, 3);
  } else if (mode == "exit") {
    early_exit(c, rng);
  } else if (mode == "overrun") {
    overrun(c, argv[0]);
  } else if (mode == "trailing-barrier") {
    // Blocks of 32 warps striding over rows: each row's block_sum reuses the scratch of the last.
    detect_by_comparison(c, rng, RELAT_FAULT_TRAILING_BARRIER, "block_sum without its last barrier",
                         64, 4096, 5, 4);
    detect_by_comparison(c, rng, RELAT_FAULT_TRAILING_BARRIER, "block_sum without its last barrier",
                         24, 1000, 5, 3);
  } else if (mode == "split-accumulation") {
    if (!relat_fault_race_checked())
      std::printf("note: this executable has no inter-block conflict check (use emu_faults_race)\n");
    split_accumulation(c, rng, 64, 300, 8);
    split_accumulation(c, rng, 3, 1000, 1);
  } else {
    std::fprintf(stderr,
                 "usage: %s barrier|shuffle|exit|overrun|trailing-barrier|split-accumulation\n",
                 argv[0]);
    return 2;
  }
  return c.finish();
}
