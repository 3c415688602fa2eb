/* Calls one relat kernel through relat.h: RMSNorm of a few rows on the CPU, checked against the
 * formula in plain C. Exits 0 when they agree, 1 otherwise (or when the call fails). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <relat/relat.h>

enum { ROWS = 3, COLS = 8 };

int main(void) {
  float x[ROWS * COLS], weight[COLS], y[ROWS * COLS], rstd[ROWS];
  const float eps = 1e-6f;
  for (int i = 0; i < ROWS * COLS; ++i) x[i] = (float)((i * 37 % 17) - 8) / 4.0f;
  for (int c = 0; c < COLS; ++c) weight[c] = 0.5f + 0.125f * (float)c;

  relat_status status = relat_cpu_rmsnorm_forward(x, weight, y, rstd, ROWS, COLS, eps, RELAT_F32, NULL);
  if (status != RELAT_OK) {
    fprintf(stderr, "relat_cpu_rmsnorm_forward failed (%d): %s\n", (int)status, relat_cpu_last_error());
    return 1;
  }

  double worst = 0.0;
  for (int r = 0; r < ROWS; ++r) {
    double sum = 0.0;
    for (int c = 0; c < COLS; ++c) sum += (double)x[r * COLS + c] * x[r * COLS + c];
    double expected_rstd = 1.0 / sqrt(sum / COLS + eps);
    for (int c = 0; c < COLS; ++c) {
      double expected = x[r * COLS + c] * expected_rstd * weight[c];
      double error = fabs(y[r * COLS + c] - expected) / (fabs(expected) + 1e-6);
      if (error > worst) worst = error;
    }
  }
  printf("relat %s: rmsnorm of %dx%d on the CPU, worst relative error %.2e\n", relat_cpu_version(), ROWS, COLS,
         worst);
  /* fp32 with fp32 accumulation over 8 terms: a few ulps */
  return worst < 1e-5 ? 0 : 1;
}
