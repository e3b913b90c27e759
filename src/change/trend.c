/* SPDX-License-Identifier: MIT
 *
 * Trend statistics for slow change over a series of visits.
 *
 * Mann-Kendall test (Mann 1945; Kendall 1975): S = sum over i < j of
 * sign(y_j - y_i), visits ordered by time. Without ties and for n <= 10 the
 * p-value comes from the exact null distribution of S (all n! orders equally
 * likely; the number of orders with k inversions is a Mahonian number, by the
 * usual recurrence), two-sided P(|S| >= |s|). Otherwise the normal
 * approximation with the tie-corrected variance
 *   Var S = [n(n-1)(2n+5) - sum_g t_g(t_g-1)(2t_g+5)] / 18
 * and continuity correction Z = (S - sign(S)) / sqrt(Var S).
 * tau is Kendall's tau-b (ties in y; times are distinct).
 *
 * Theil-Sen slope (Theil 1950; Sen 1968): the median of the pairwise slopes,
 * with Sen's distribution-free confidence interval: with N slopes sorted and
 * C = z_{1-a/2} sqrt(Var S), the bounds are the slopes of ranks (N - C)/2 and
 * (N + C)/2 + 1, and the intercept is median(y) - slope median(t), exactly
 * as scipy.stats.theilslopes computes them (tools/trend_reference.py).
 *
 * Event analysis (as in glaucoma progression analysis): the first visit at
 * which the change from baseline exceeds the limit and stays beyond it on
 * the next confirm - 1 visits.
 */
#include <math.h>
#include <string.h>

#include "cxr/trend.h"

static int
sgn (double x)
{
  return (x > 0) - (x < 0);
}

static double
normal_sf (double z)
{
  return 0.5 * erfc (z / sqrt (2.0));
}

/* Two-sided exact p-value of S for n distinct values. */
static double
exact_p (int n, double s)
{
  int maxk = n * (n - 1) / 2;
  g_autofree double *c = g_new0 (double, maxk + 1), *nx = g_new0 (double, maxk + 1);
  c[0] = 1;
  for (int m = 2; m <= n; m++)
    {
      /* insert element m: adds 0..m-1 inversions */
      int top = m * (m - 1) / 2;
      for (int k = 0; k <= top; k++)
        {
          double acc = 0;
          for (int j = 0; j < m && j <= k; j++)
            acc += c[k - j];
          nx[k] = acc;
        }
      memcpy (c, nx, sizeof (double) * (top + 1));
    }
  double total = 0, tail = 0;
  for (int k = 0; k <= maxk; k++)
    {
      double sk = maxk - 2.0 * k; /* S = concordant - discordant */
      total += c[k];
      if (fabs (sk) >= fabs (s) - 1e-9)
        tail += c[k];
    }
  return MIN (1.0, tail / total);
}

/**
 * cxr_trend_mann_kendall:
 * @t: times, strictly increasing
 * @y: values
 *
 * Returns: %FALSE when n < 3 or the times are not increasing.
 */
gboolean
cxr_trend_mann_kendall (const double *t, const double *y, int n, CxrMannKendall *out)
{
  memset (out, 0, sizeof *out);
  out->n = n;
  out->p_value = 1;
  if (n < 3)
    return FALSE;
  for (int i = 1; i < n; i++)
    if (!(t[i] > t[i - 1]))
      return FALSE;
  double s = 0;
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      s += sgn (y[j] - y[i]);
  /* tie groups in y */
  g_autofree double *sorted = g_memdup2 (y, sizeof (double) * n);
  for (int i = 1; i < n; i++) /* insertion sort: n is a patient's visits */
    for (int j = i; j > 0 && sorted[j] < sorted[j - 1]; j--)
      {
        double tmp = sorted[j];
        sorted[j] = sorted[j - 1];
        sorted[j - 1] = tmp;
      }
  double ties = 0, tie_pairs = 0;
  gboolean any_tie = FALSE;
  for (int i = 0; i < n;)
    {
      int j = i;
      while (j + 1 < n && sorted[j + 1] == sorted[i])
        j++;
      double g = j - i + 1;
      if (g > 1)
        {
          any_tie = TRUE;
          ties += g * (g - 1) * (2 * g + 5);
          tie_pairs += g * (g - 1) / 2;
        }
      i = j + 1;
    }
  double n0 = n * (n - 1) / 2.0;
  out->s = s;
  out->var_s = (n * (n - 1.0) * (2 * n + 5) - ties) / 18.0;
  out->tau = n0 - tie_pairs > 0 ? s / sqrt (n0 * (n0 - tie_pairs)) : 0;
  out->z = out->var_s > 0 ? (s - sgn (s)) / sqrt (out->var_s) : 0;
  if (n <= 10 && !any_tie)
    {
      out->exact = TRUE;
      out->p_value = exact_p (n, s);
    }
  else
    out->p_value = out->var_s > 0 ? MIN (1.0, 2 * normal_sf (fabs (out->z))) : 1.0;
  return TRUE;
}

static int
cmp_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double
median (double *v, int n)
{
  qsort (v, (gsize) n, sizeof (double), cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Inverse of the standard normal CDF (Acklam's rational approximation,
 * refined by one Newton step; |error| < 1e-12). */
static double
normal_quantile (double p)
{
  static const double a[]
      = { -3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
          1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00 };
  static const double b[] = { -5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                              6.680131188771972e+01, -1.328068155288572e+01 };
  static const double c[]
      = { -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
          -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00 };
  static const double d[] = { 7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                              3.754408661907416e+00 };
  double q, r, x;
  if (p < 0.02425)
    {
      q = sqrt (-2 * log (p));
      x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
          / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
  else if (p > 1 - 0.02425)
    {
      q = sqrt (-2 * log (1 - p));
      x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
          / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
  else
    {
      q = p - 0.5;
      r = q * q;
      x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
          / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    }
  double e = 0.5 * erfc (-x / sqrt (2.0)) - p;
  double u = e * sqrt (2 * G_PI) * exp (x * x / 2);
  return x - u / (1 + x * u / 2);
}

/**
 * cxr_trend_theil_sen:
 * @confidence: e.g. 0.95
 */
gboolean
cxr_trend_theil_sen (const double *t, const double *y, int n, double confidence, CxrTheilSen *out)
{
  memset (out, 0, sizeof *out);
  if (n < 2)
    return FALSE;
  int np = 0;
  g_autofree double *sl = g_new (double, (gsize) n * (n - 1) / 2);
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      if (t[j] != t[i])
        sl[np++] = (y[j] - y[i]) / (t[j] - t[i]);
  if (np == 0)
    return FALSE;
  out->slope = median (sl, np); /* sorts sl */
  g_autofree double *ty = g_memdup2 (t, sizeof (double) * n),
                    *yy = g_memdup2 (y, sizeof (double) * n);
  out->intercept = median (yy, n) - out->slope * median (ty, n);
  /* Var S with distinct times, rounded ranks half to even (nearbyint) */
  double sigma = sqrt (n * (n - 1.0) * (2 * n + 5) / 18.0);
  double c = normal_quantile (1 - (1 - confidence) / 2) * sigma;
  int lo = (int) nearbyint ((np - c) / 2.0) - 1, hi = (int) nearbyint ((np + c) / 2.0);
  out->low = sl[CLAMP (lo, 0, np - 1)];
  out->high = sl[CLAMP (hi, 0, np - 1)];
  return TRUE;
}

/**
 * cxr_trend_event:
 * @y: change from baseline at each visit (y[0] is the baseline, 0)
 * @limit: the test-retest limit; positive for a rise, negative for a fall
 * @confirm: consecutive visits that must all exceed it (>= 1)
 *
 * Returns: the index of the first visit of a confirmed event, or -1.
 */
int
cxr_trend_event (const double *y, int n, double limit, int confirm)
{
  for (int i = 1; i + confirm <= n; i++)
    {
      gboolean all = TRUE;
      for (int k = i; k < i + confirm && all; k++)
        all = limit >= 0 ? y[k] > limit : y[k] < limit;
      if (all)
        return i;
    }
  return -1;
}

/**
 * cxr_trend_min_visits:
 * The smallest n for which the exact Mann-Kendall test can reach a
 * two-sided p-value below @alpha (a perfectly monotone series).
 */
int
cxr_trend_min_visits (double alpha)
{
  for (int n = 3; n <= 10; n++)
    if (exact_p (n, n * (n - 1) / 2.0) < alpha)
      return n;
  return 11;
}

const char *
cxr_trend_kind_name (CxrTrendKind k)
{
  static const char *names[] = { "insufficient_visits", "stable",    "slow_progression",
                                 "acute_change",        "improving", "unconfirmed_change" };
  return names[k];
}
