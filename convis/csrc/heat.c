/* The retina's loops through time (convis.functional.retina_loops), in float and double: heat_body.h is included
   once per precision with REAL the element type, EXP its exponential and NAME(f) the name f with the
   precision's suffix (f_f64, f_f32). */
#include <math.h>
#include <stdint.h>
#include "convis_loops.h"
#include "convis_threads.h"
/* Leaky heat loop: for every step s and image b,
     t  = y[s-1] + ratio * u[s]                                  (ratio = (1-e)/e)
     t2 = R t         (R = e A_rows, by groups of ROWS rows: RG[g, k, r] = R[ROWS g + r, k], zero outside the
                       band; group g only uses columns k in [glo[g], ghi[g]))
     y[s][i, j] = sum_{|d| <= K} D[d + K, j] t2[i, j + d]        (= t2 A_cols^T by diagonals)
   u, out: [BC, T, H, W] (a contiguous [B, C, T, H, W]); y0: [BC, H, W]; RG: [HP / ROWS, H, ROWS];
   D: [2K+1, WP] (zero for j >= W).
   Scratch, zero-filled by the caller: t [H, WP] and t2 [HP, WP + 2K] (row data at column K), with WP = W
   rounded up to LANES and HP = H rounded up to ROWS.  Products run on blocks of LANES columns of ROWS rows,
   accumulated in registers (ROWS independent chains). */
#define LANES 16
#define ROWS 4
/* The blur operator convis_blur (convis_loops.h).  mode 0: separable (RG, glo, ghi, D, K as above; scratch
   t [H, WP], t2 [HP, WP + 2K]).
   mode 1: one matrix per line (VirtualRetina's log-polar scheme), first along x (row i by its own matrix, by
   diagonals DX [H, 2KX+1, WP]: x-pass[i, j] = sum_d DX[i, d + KX, j] t[i, j + d]), then along y (column j by
   its own matrix, stored per output row: EY [H, 2KY+1, WP], y[i, j] = sum_d EY[i, d + KY, j] x-pass[i + d, j]);
   row i only uses diagonals [xlo[i], xhi[i]) of DX and [ylo[i], yhi[i]) of EY (indices into the 2K+1);
   scratch t [H, WP + 2KX] (row data at column KX) and t2 [H + 2KY, WP] (data from row KY).  Scratch is
   zero-filled by the caller and belongs to one operator.
   mode 2: separable, as VirtualRetina's recursive Deriche filter itself (for wide blurs, where it takes fewer
   operations than the band of the matrix): along y with the coefficients cr (c0, c1, c2, c3, b1, b2, and the
   steady-state gains (c0 + c1)/(1 - b1 - b2), (c2 + c3)/(1 - b1 - b2)) when use_rows, then along x with cc when
   use_cols; edges as in convis.filters.spatial; in double precision; scratch t, t2, t3, t4 of H*W doubles
   (the prepared map, the pass along y, its anticausal part, the pass along x). */

/* The Deriche recursion along axis 0 of x [N, L] for the columns [l0, l1) (both directions, edge rule of
   convis.filters.spatial), in double precision whatever the maps' precision: y = causal + anticausal, anti
   [N, L] scratch; vectorised over the columns. */
static void deriche_axis0(int64_t N, int64_t L, int64_t l0, int64_t l1, const double *restrict x,
                          double *restrict y, double *restrict anti, const double *cf) {
    const double c0 = cf[0], c1 = cf[1], c2 = cf[2], c3 = cf[3], b1 = cf[4], b2 = cf[5], sc = cf[6], sa = cf[7];
    const double *first = x, *last = x + (N - 1) * L;
    for (int64_t i = 0; i < N; i++) {
        const double *xi = x + i * L, *xm = x + (i > 0 ? i - 1 : 0) * L;
        const double *y1 = i >= 1 ? y + (i - 1) * L : 0, *y2 = i >= 2 ? y + (i - 2) * L : 0;
        double *yi = y + i * L;
        if (i >= 2)
            for (int64_t l = l0; l < l1; l++) yi[l] = c0 * xi[l] + c1 * xm[l] + b1 * y1[l] + b2 * y2[l];
        else if (i == 1)
            for (int64_t l = l0; l < l1; l++) yi[l] = c0 * xi[l] + c1 * xm[l] + b1 * y1[l] + b2 * (sc * first[l]);
        else
            for (int64_t l = l0; l < l1; l++) yi[l] = c0 * xi[l] + c1 * xm[l] + (b1 + b2) * (sc * first[l]);
    }
    for (int64_t i = N - 1; i >= 0; i--) {
        const double *x1 = x + (i + 1 < N ? i + 1 : N - 1) * L, *x2 = x + (i + 2 < N ? i + 2 : N - 1) * L;
        const double *a1 = i + 1 < N ? anti + (i + 1) * L : 0, *a2 = i + 2 < N ? anti + (i + 2) * L : 0;
        double *ai = anti + i * L;
        if (i + 2 < N)
            for (int64_t l = l0; l < l1; l++) ai[l] = c2 * x1[l] + c3 * x2[l] + b1 * a1[l] + b2 * a2[l];
        else if (i + 1 < N)
            for (int64_t l = l0; l < l1; l++) ai[l] = c2 * x1[l] + c3 * x2[l] + b1 * a1[l] + b2 * (sa * last[l]);
        else
            for (int64_t l = l0; l < l1; l++) ai[l] = c2 * x1[l] + c3 * x2[l] + (b1 + b2) * (sa * last[l]);
    }
    for (int64_t i = 0; i < N; i++)
        for (int64_t l = l0; l < l1; l++) y[i * L + l] += anti[i * L + l];
}

/* The same recursion along each of the n rows (1 <= n <= ROWS) of x [n, L] (rows L apart), the rows stepped
   together as the lanes of one vector: y = causal + anticausal (y may not alias x). */
typedef double rows_vec __attribute__((vector_size(ROWS * sizeof(double))));
_Static_assert(ROWS == 4, "deriche_rows writes its vectors out for ROWS = 4");
static void deriche_rows(int64_t n, int64_t L, const double *restrict x, double *restrict y, const double *cf) {
    const double c0 = cf[0], c1 = cf[1], c2 = cf[2], c3 = cf[3], b1 = cf[4], b2 = cf[5], sc = cf[6], sa = cf[7];
    const double *xr[ROWS];
    double *yr[ROWS];
    for (int64_t r = 0; r < ROWS; r++) {       /* lanes past n repeat the last row, not written back */
        const int64_t k = r < n ? r : n - 1;
        xr[r] = x + k * L;
        yr[r] = y + k * L;
    }
#define ROWS_AT(p, j) ((rows_vec){p[0][j], p[1][j], p[2][j], p[3][j]})
    rows_vec xm = ROWS_AT(xr, 0), y1 = xm, y2 = xm;
    const rows_vec first = xm;
    for (int64_t j = 0; j < L; j++) {
        const rows_vec xj = ROWS_AT(xr, j);
        rows_vec v;
        if (j >= 2) v = c0 * xj + c1 * xm + b1 * y1 + b2 * y2;
        else if (j == 1) v = c0 * xj + c1 * xm + b1 * y1 + b2 * (sc * first);
        else v = c0 * xj + c1 * xm + (b1 + b2) * (sc * first);
        for (int64_t r = 0; r < n; r++) yr[r][j] = v[r];
        y2 = y1; y1 = v; xm = xj;
    }
    const rows_vec last = ROWS_AT(xr, L - 1);
    rows_vec x1 = last, x2 = last, a1 = last, a2 = last;
    for (int64_t j = L - 1; j >= 0; j--) {
        rows_vec a;
        if (j + 2 < L) a = c2 * x1 + c3 * x2 + b1 * a1 + b2 * a2;
        else if (j + 1 < L) a = c2 * x1 + c3 * x2 + b1 * a1 + b2 * (sa * last);
        else a = c2 * x1 + c3 * x2 + (b1 + b2) * (sa * last);
        for (int64_t r = 0; r < n; r++) yr[r][j] += a[r];
        a2 = a1; a1 = a; x2 = x1; x1 = ROWS_AT(xr, j);
    }
#undef ROWS_AT
}

/* How heat_body.h splits one step of an operator among threads (see there): the output by parts of
   heat_parts(H, W, B), part g being the rows [r0, r1) of heat_part_rows: groups of ROWS rows (modes 0 and 2),
   single rows (mode 1), or bands of MID_COLUMNS columns over all rows (mode 3, whose pass along y runs down the
   columns); mode 2 first runs its pass along y by bands of columns (heat_mid_parts, heat_mid).
   heat_split(B) names the split of the output (0: groups of rows, 1: single rows, 2: bands of columns): two
   operators with the same split of rows can update the rows of a part at once. */
#define MID_COLUMNS 16
static inline int heat_split(const convis_blur *B) {
    return B->mode == 1 ? 1 : B->mode == 3 ? 2 : 0;
}

static inline int64_t heat_parts(int64_t H, int64_t W, const convis_blur *B) {
    return B->mode == 1 ? H : B->mode == 3 ? (W + MID_COLUMNS - 1) / MID_COLUMNS : (H + ROWS - 1) / ROWS;
}

static inline void heat_part_rows(int64_t g, int64_t H, const convis_blur *B, int64_t *r0, int64_t *r1) {
    if (B->mode == 3) { *r0 = 0; *r1 = H; return; }
    const int64_t n = B->mode == 1 ? 1 : ROWS;
    *r0 = g * n;
    *r1 = g * n + n < H ? g * n + n : H;
}

static inline int64_t heat_mid_parts(int64_t W, const convis_blur *B) {
    return B->mode == 2 && B->use_rows ? (W + MID_COLUMNS - 1) / MID_COLUMNS : 0;
}

/* The pass along y of mode 2 for the columns of band g: t2 = the recursion of t along y (t3 scratch). */
static void heat_mid(int64_t g, int64_t H, int64_t W, const convis_blur *B) {
    const int64_t l0 = g * MID_COLUMNS, l1 = l0 + MID_COLUMNS < W ? l0 + MID_COLUMNS : W;
    deriche_axis0(H, W, l0, l1, (const double *)B->t, (double *)B->t2, (double *)B->t3, B->cr);
}

/* Mode 3, VirtualRetina's log-polar recursion with each pixel's coefficients (convis.filters.spatial's
   _run_log_polar: the causal pass starts from x[0]/2, the anticausal one from x[n-1]/2 and uses x[i], x[i+1]),
   the identity at the pixels of LK.  Along x for row i: t2[i] from t[i]. */
static void log_polar_row(int64_t i, int64_t H, int64_t W, const convis_blur *B) {
    const int64_t HW = H * W, o = i * W;
    const double *x = (const double *)B->t + o, *keep = B->LK + o;
    const double *c0 = B->LC + o, *c1 = c0 + HW, *c2 = c1 + HW, *c3 = c2 + HW, *b1 = c3 + HW, *b2 = b1 + HW;
    double *y = (double *)B->t2 + o;
    double y1 = x[0] / 2, y2 = y1, xm = x[0];
    for (int64_t j = 0; j < W; j++) {
        const double v = c0[j] * x[j] + c1[j] * xm + b1[j] * y1 + b2[j] * y2;
        y[j] = v;
        y2 = y1; y1 = v; xm = x[j];
    }
    y1 = y2 = x[W - 1] / 2;
    for (int64_t j = W - 1; j >= 0; j--) {
        const double xn = j + 1 < W ? x[j + 1] : x[W - 1];
        const double v = c2[j] * x[j] + c3[j] * xn + b1[j] * y1 + b2[j] * y2;
        y[j] = keep[j] != 0 ? x[j] : y[j] + v;
        y2 = y1; y1 = v;
    }
}

/* Along y for the columns [l0, l1) of t2, into t (which the pass along x has read), t3 scratch; vectorised
   over the columns. */
static void log_polar_columns(int64_t l0, int64_t l1, int64_t H, int64_t W, const convis_blur *B) {
    const int64_t HW = H * W;
    const double *x = (const double *)B->t2;
    double *out = (double *)B->t, *causal = (double *)B->t3;
    const double *c0 = B->LC, *c1 = c0 + HW, *c2 = c1 + HW, *c3 = c2 + HW, *b1 = c3 + HW, *b2 = b1 + HW;
    for (int64_t i = 0; i < H; i++) {
        const int64_t p = i * W, m = (i > 0 ? i - 1 : 0) * W, m2 = (i > 1 ? i - 2 : 0) * W;
        for (int64_t l = l0; l < l1; l++) {
            const double y1 = i > 0 ? causal[m + l] : x[l] / 2, y2 = i > 1 ? causal[m2 + l] : x[l] / 2;
            causal[p + l] = c0[p + l] * x[p + l] + c1[p + l] * x[m + l] + b1[p + l] * y1 + b2[p + l] * y2;
        }
    }
    for (int64_t i = H - 1; i >= 0; i--) {
        const int64_t p = i * W, n1 = (i + 1 < H ? i + 1 : H - 1) * W, n2 = (i + 2 < H ? i + 2 : H - 1) * W;
        const double *last = x + (H - 1) * W;
        for (int64_t l = l0; l < l1; l++) {
            /* the anticausal values of rows i+1 and i+2 are out[.] - causal[.] (kept in out until row i is done) */
            const double a1 = i + 1 < H ? out[n1 + l] : last[l] / 2, a2 = i + 2 < H ? out[n2 + l] : last[l] / 2;
            out[p + l] = c2[p + l] * x[p + l] + c3[p + l] * x[n1 + l] + b1[p + l] * a1 + b2[p + l] * a2;
        }
        if (i + 2 < H)                 /* row i+2 is no longer needed as an anticausal value: finish it */
            for (int64_t l = l0; l < l1; l++)
                out[n2 + l] = B->LK[n2 + l] != 0 ? x[n2 + l] : causal[n2 + l] + out[n2 + l];
    }
    for (int64_t i = 0; i < 2 && i < H; i++)
        for (int64_t l = l0; l < l1; l++) {
            const int64_t p = i * W + l;
            out[p] = B->LK[p] != 0 ? x[p] : causal[p] + out[p];
        }
}

#define REAL double
#define EXP exp
#define NAME(f) f##_f64
#include "heat_body.h"
#undef REAL
#undef EXP
#undef NAME

#define REAL float
#define EXP expf
#define NAME(f) f##_f32
#include "heat_body.h"
#undef REAL
#undef EXP
#undef NAME
