"""The retina's loops through time as compiled C functions (CPU, without autograd).

* :func:`leaky_heat_loop`: VirtualRetina's discrete leaky heat equation with a blur,
  ``y[s] = B (e y[s-1] + (1-e) u[s])``, using only the band of each blur matrix that is not negligible in the
  working precision;
* :func:`opl_loop`: the whole outer plexiform layer (both leaky heat equations and the undershoot) in one
  loop over the steps, without intermediate maps;
* :func:`cgc_loop`: the contrast gain control (bipolar stage with its blurred feedback);
* :func:`ganglion_input_loop`: a ganglion layer's transient high-pass and smooth rectifier.

Blurs are separable (:class:`~convis.filters.spatial.SeparableBlur`) or have one matrix per line
(:class:`~convis.filters.spatial.PerLineBlur`, VirtualRetina's log-polar scheme).  Each function returns None
where it does not apply (no C compiler, ``CONVIS_NO_COMPILE``, a GPU): the stages then run their torch code,
which computes the same (see :mod:`convis.native`).
"""
import ctypes
import threading
from collections import OrderedDict

import torch

from ..native import BAND_TOLERANCE, _number, _ranges, _significant, compile_c_library, matrix_diagonals

__all__ = ['leaky_heat_loop', 'opl_loop', 'cgc_loop', 'ganglion_input_loop']

_HEAT_SOURCE = r"""
#include <math.h>
#include <stdint.h>
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
/* A blur operator.  mode 0: separable (RG, glo, ghi, D, K as above; scratch t [H, WP], t2 [HP, WP + 2K]).
   mode 1: one matrix per line (VirtualRetina's log-polar scheme), first along x (row i by its own matrix, by
   diagonals DX [H, 2KX+1, WP]: x-pass[i, j] = sum_d DX[i, d + KX, j] t[i, j + d]), then along y (column j by
   its own matrix, stored per output row: EY [H, 2KY+1, WP], y[i, j] = sum_d EY[i, d + KY, j] x-pass[i + d, j]);
   row i only uses diagonals [xlo[i], xhi[i]) of DX and [ylo[i], yhi[i]) of EY (indices into the 2K+1);
   scratch t [H, WP + 2KX] (row data at column KX) and t2 [H + 2KY, WP] (data from row KY).  Scratch is
   zero-filled by the caller and belongs to one operator.
   mode 2: separable, as VirtualRetina's recursive Deriche filter itself (for wide blurs, where it takes fewer
   operations than the band of the matrix): along y with the coefficients cr (c0, c1, c2, c3, b1, b2, and the
   steady-state gains (c0 + c1)/(1 - b1 - b2), (c2 + c3)/(1 - b1 - b2)) when use_rows, then along x with cc when
   use_cols; edges as in convis.filters.spatial; in double precision; scratch t, t2, t3, t4, t5 of H*W doubles. */
typedef struct {
    int64_t mode;
    const void *RG; const int64_t *glo, *ghi; const void *D; int64_t K;
    const void *DX; int64_t KX; const int64_t *xlo, *xhi; const void *EY; int64_t KY; const int64_t *ylo, *yhi;
    void *t, *t2;
    int64_t use_rows, use_cols; double cr[8], cc[8]; void *t3, *t4, *t5;
} convis_blur;

/* The Deriche recursion along axis 0 of x [N, L] (both directions, edge rule of convis.filters.spatial), in
   double precision whatever the maps' precision: y = causal + anticausal, anti [N, L] scratch; vectorised
   over L. */
static void deriche_axis0(int64_t N, int64_t L, const double *restrict x, double *restrict y,
                                 double *restrict anti, const double *cf) {
    const double c0 = cf[0], c1 = cf[1], c2 = cf[2], c3 = cf[3], b1 = cf[4], b2 = cf[5], sc = cf[6], sa = cf[7];
    const double *first = x, *last = x + (N - 1) * L;
    for (int64_t i = 0; i < N; i++) {
        const double *xi = x + i * L, *xm = x + (i > 0 ? i - 1 : 0) * L;
        const double *y1 = i >= 1 ? y + (i - 1) * L : 0, *y2 = i >= 2 ? y + (i - 2) * L : 0;
        double *yi = y + i * L;
        if (i >= 2)
            for (int64_t l = 0; l < L; l++) yi[l] = c0 * xi[l] + c1 * xm[l] + b1 * y1[l] + b2 * y2[l];
        else if (i == 1)
            for (int64_t l = 0; l < L; l++) yi[l] = c0 * xi[l] + c1 * xm[l] + b1 * y1[l] + b2 * (sc * first[l]);
        else
            for (int64_t l = 0; l < L; l++) yi[l] = c0 * xi[l] + c1 * xm[l] + (b1 + b2) * (sc * first[l]);
    }
    for (int64_t i = N - 1; i >= 0; i--) {
        const double *x1 = x + (i + 1 < N ? i + 1 : N - 1) * L, *x2 = x + (i + 2 < N ? i + 2 : N - 1) * L;
        const double *a1 = i + 1 < N ? anti + (i + 1) * L : 0, *a2 = i + 2 < N ? anti + (i + 2) * L : 0;
        double *ai = anti + i * L;
        if (i + 2 < N)
            for (int64_t l = 0; l < L; l++) ai[l] = c2 * x1[l] + c3 * x2[l] + b1 * a1[l] + b2 * a2[l];
        else if (i + 1 < N)
            for (int64_t l = 0; l < L; l++) ai[l] = c2 * x1[l] + c3 * x2[l] + b1 * a1[l] + b2 * (sa * last[l]);
        else
            for (int64_t l = 0; l < L; l++) ai[l] = c2 * x1[l] + c3 * x2[l] + (b1 + b2) * (sa * last[l]);
    }
    for (int64_t p = 0; p < N * L; p++) y[p] += anti[p];
}

static void transpose(int64_t N, int64_t L, const double *restrict x, double *restrict y) {
    for (int64_t i0 = 0; i0 < N; i0 += 16)
        for (int64_t l0 = 0; l0 < L; l0 += 16)
            for (int64_t i = i0; i < N && i < i0 + 16; i++)
                for (int64_t l = l0; l < L && l < l0 + 16; l++) y[l * N + i] = x[i * L + l];
}
"""
_HEAT_FUNCTION = r"""
/* One step for one image: o = R (y + a (x + c)) A_cols^T (see above); t, t2 scratch. */
static void per_line_step_@NAME@(int64_t H, int64_t W, const @REAL@ *y, const @REAL@ *x, @REAL@ a, @REAL@ c,
                                 @REAL@ *o, const convis_blur *B) {
    typedef @REAL@ vec __attribute__((vector_size(LANES * sizeof(@REAL@))));
    typedef @REAL@ uvec __attribute__((vector_size(LANES * sizeof(@REAL@)), aligned(sizeof(@REAL@))));
    const int64_t WP = (W + LANES - 1) / LANES * LANES, KX = B->KX, KY = B->KY, WT = WP + 2 * KX;
    const @REAL@ *DX = (const @REAL@ *)B->DX, *EY = (const @REAL@ *)B->EY;
    @REAL@ *t = (@REAL@ *)B->t, *t2 = (@REAL@ *)B->t2;
    for (int64_t i = 0; i < H; i++)
        for (int64_t j = 0; j < W; j++) t[i * WT + KX + j] = y[i * W + j] + a * (x[i * W + j] + c);
    for (int64_t i = 0; i < H; i++) {
        const @REAL@ *dx = DX + i * (2 * KX + 1) * WP, *src = t + i * WT;
        @REAL@ *dst = t2 + (i + KY) * WP;
        for (int64_t j0 = 0; j0 < WP; j0 += 2 * LANES) {
            vec a0 = {0}, a1 = {0};
            const int two = j0 + LANES < WP;
            for (int64_t d = B->xlo[i]; d < B->xhi[i]; d++) {
                a0 += *(const uvec *)(dx + d * WP + j0) * *(const uvec *)(src + j0 + d);
                if (two) a1 += *(const uvec *)(dx + d * WP + j0 + LANES) * *(const uvec *)(src + j0 + LANES + d);
            }
            *(uvec *)(dst + j0) = a0;
            if (two) *(uvec *)(dst + j0 + LANES) = a1;
        }
    }
    for (int64_t i = 0; i < H; i++) {
        const @REAL@ *ey = EY + i * (2 * KY + 1) * WP, *src = t2 + i * WP;
        for (int64_t j0 = 0; j0 < WP; j0 += LANES) {
            vec a0 = {0}, a1 = {0};
            int64_t d = B->ylo[i];
            for (; d + 1 < B->yhi[i]; d += 2) {
                a0 += *(const uvec *)(ey + d * WP + j0) * *(const uvec *)(src + d * WP + j0);
                a1 += *(const uvec *)(ey + (d + 1) * WP + j0) * *(const uvec *)(src + (d + 1) * WP + j0);
            }
            if (d < B->yhi[i]) a0 += *(const uvec *)(ey + d * WP + j0) * *(const uvec *)(src + d * WP + j0);
            a0 += a1;
            const int64_t n = W - j0 < LANES ? W - j0 : LANES;
            if (n == LANES) *(uvec *)(o + i * W + j0) = a0;
            else for (int64_t jj = 0; jj < n; jj++) o[i * W + j0 + jj] = a0[jj];
        }
    }
}

static void recursive_step_@NAME@(int64_t H, int64_t W, const @REAL@ *y, const @REAL@ *x, @REAL@ a, @REAL@ c,
                                  @REAL@ *o, const convis_blur *B) {
    double *t = (double *)B->t, *t2 = (double *)B->t2, *t3 = (double *)B->t3, *t4 = (double *)B->t4;
    double *t5 = (double *)B->t5;
    const int64_t HW = H * W;
    for (int64_t p = 0; p < HW; p++) t[p] = (double)(y[p] + a * (x[p] + c));
    const double *src = t;
    if (B->use_rows) { deriche_axis0(H, W, t, t2, t3, B->cr); src = t2; }
    if (!B->use_cols) { for (int64_t p = 0; p < HW; p++) o[p] = (@REAL@)src[p]; return; }
    transpose(H, W, src, t4);
    deriche_axis0(W, H, t4, t5, t3, B->cc);
    for (int64_t i = 0; i < H; i++)
        for (int64_t j = 0; j < W; j++) o[i * W + j] = (@REAL@)t5[j * H + i];
}

static void heat_step_@NAME@(int64_t H, int64_t W, const @REAL@ *y, const @REAL@ *x, @REAL@ a, @REAL@ c,
                             @REAL@ *o, const convis_blur *B) {
    typedef @REAL@ vec __attribute__((vector_size(LANES * sizeof(@REAL@))));
    typedef @REAL@ uvec __attribute__((vector_size(LANES * sizeof(@REAL@)), aligned(sizeof(@REAL@))));
    if (B->mode == 1) { per_line_step_@NAME@(H, W, y, x, a, c, o, B); return; }
    if (B->mode == 2) { recursive_step_@NAME@(H, W, y, x, a, c, o, B); return; }
    const @REAL@ *RG = (const @REAL@ *)B->RG, *D = (const @REAL@ *)B->D;
    const int64_t *glo = B->glo, *ghi = B->ghi, K = B->K;
    @REAL@ *t = (@REAL@ *)B->t, *t2 = (@REAL@ *)B->t2;
    const int64_t WP = (W + LANES - 1) / LANES * LANES, W2 = WP + 2 * K;
    const int64_t HP = (H + ROWS - 1) / ROWS * ROWS;
    for (int64_t i = 0; i < H; i++)
        for (int64_t j = 0; j < W; j++) t[i * WP + j] = y[i * W + j] + a * (x[i * W + j] + c);
    for (int64_t i0 = 0; i0 < HP; i0 += ROWS) {
        const int64_t g = i0 / ROWS;
        const @REAL@ *rg = RG + g * H * ROWS;
        @REAL@ *dst = t2 + i0 * W2 + K;
        for (int64_t j0 = 0; j0 < WP; j0 += LANES) {
            vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (int64_t k = glo[g]; k < ghi[g]; k++) {
                const vec v = *(const uvec *)(t + k * WP + j0);
                const @REAL@ *r = rg + k * ROWS;
                a0 += r[0] * v; a1 += r[1] * v; a2 += r[2] * v; a3 += r[3] * v;
            }
            *(uvec *)(dst + j0) = a0; *(uvec *)(dst + W2 + j0) = a1;
            *(uvec *)(dst + 2 * W2 + j0) = a2; *(uvec *)(dst + 3 * W2 + j0) = a3;
        }
    }
    for (int64_t i0 = 0; i0 < HP; i0 += ROWS) {
        const @REAL@ *src = t2 + i0 * W2 + K;
        for (int64_t j0 = 0; j0 < WP; j0 += LANES) {
            vec acc[ROWS];
            vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (int64_t dd = 0; dd <= 2 * K; dd++) {
                const vec dv = *(const uvec *)(D + dd * WP + j0);
                const @REAL@ *sv = src + j0 + dd - K;
                a0 += dv * *(const uvec *)sv; a1 += dv * *(const uvec *)(sv + W2);
                a2 += dv * *(const uvec *)(sv + 2 * W2); a3 += dv * *(const uvec *)(sv + 3 * W2);
            }
            acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
            const int64_t n = W - j0 < LANES ? W - j0 : LANES;
            for (int64_t r = 0; r < ROWS && i0 + r < H; r++) {
                if (n == LANES) *(uvec *)(o + (i0 + r) * W + j0) = acc[r];
                else for (int64_t jj = 0; jj < n; jj++) o[(i0 + r) * W + j0 + jj] = acc[r][jj];
            }
        }
    }
}

void convis_heat_@NAME@(int64_t T, int64_t BC, int64_t H, int64_t W, const @REAL@ *u, @REAL@ *out,
                        const @REAL@ *y0, double ratio, const convis_blur *B) {
    const int64_t HW = H * W;
    for (int64_t s = 0; s < T; s++)
        for (int64_t b = 0; b < BC; b++)
            heat_step_@NAME@(H, W, s == 0 ? y0 + b * HW : out + (b * T + s - 1) * HW, u + (b * T + s) * HW,
                             (@REAL@)ratio, 0, out + (b * T + s) * HW, B);
}

/* VirtualRetina's OPL for T steps of BC images x [BC, T, H, W] (see convis.filters.retina.OPL):
     C[s] = heat_C(C[s-1], a_c (x[s] + c_c))
     with undershoot:  U[s] = e_u U[s-1] + (1 - e_u) C[s-1],  R[s] = C[s-1] - w_u U[s];  without: R[s] = C[s]
     S[s] = heat_S(S[s-1], a_s R[s-1]),  out[s] = R[s] - S[s] + offset
   The states C, U, R, S [BC, H, W] are read and updated in place; cn, sn [H, W] scratch; the two blur
   operators (with their own scratch) Bc and Bs. */
void convis_opl_@NAME@(int64_t T, int64_t BC, int64_t H, int64_t W, const @REAL@ *x, @REAL@ *out,
                       @REAL@ *C, @REAL@ *U, @REAL@ *R, @REAL@ *S, double a_c, double c_c, double a_s,
                       int64_t undershoot, double e_u, double w_u, double offset,
                       const convis_blur *Bc, const convis_blur *Bs, @REAL@ *cn, @REAL@ *sn) {
    const int64_t HW = H * W;
    const @REAL@ eu = (@REAL@)e_u, gu = (@REAL@)(1 - e_u), wu = (@REAL@)w_u, off = (@REAL@)offset;
    for (int64_t s = 0; s < T; s++) {
        for (int64_t b = 0; b < BC; b++) {
            @REAL@ *c = C + b * HW, *u = U + b * HW, *r = R + b * HW, *sr = S + b * HW;
            @REAL@ *o = out + (b * T + s) * HW;
            heat_step_@NAME@(H, W, c, x + (b * T + s) * HW, (@REAL@)a_c, (@REAL@)c_c, cn, Bc);
            heat_step_@NAME@(H, W, sr, r, (@REAL@)a_s, 0, sn, Bs);
            if (undershoot) {
                for (int64_t p = 0; p < HW; p++) {
                    const @REAL@ un = eu * u[p] + gu * c[p], rec = c[p] - wu * un;
                    u[p] = un; r[p] = rec; o[p] = rec - sn[p] + off; c[p] = cn[p]; sr[p] = sn[p];
                }
            } else {
                for (int64_t p = 0; p < HW; p++) {
                    r[p] = cn[p]; o[p] = cn[p] - sn[p] + off; c[p] = cn[p]; sr[p] = sn[p];
                }
            }
        }
    }
}
"""
_HEAT_FUNCTION += r"""
/* VirtualRetina's contrast gain control (convis.filters.retina.Bipolar with feedback) for T steps of BC
   images; x [BC, T, H, W] is the OPL output, read one step late (xp [BC, H, W] before the chunk):
     g = g0 + gA,  Einf = amp x[s-1] / g,  q = G w / (1 + w) with w = lam V^2 / G,
     V <- Einf + (V - Einf) exp(-dt g),  gA <- eA gA + (1 - eA) blur(q)
   States xp, V, gA [BC, H, W] updated in place; out [BC, T, H, W] gets V; ei, at, q, qb [H, W] scratch.
   Without feedback (lam = 0 and gA = 0 everywhere) only V is updated, with the constant exp(-dt g0). */
void convis_cgc_@NAME@(int64_t T, int64_t BC, int64_t H, int64_t W, const @REAL@ *x, @REAL@ *out,
                       @REAL@ *XP, @REAL@ *V, @REAL@ *GA, double amp_d, double g0_d, double lam_d, double dt_d,
                       double ea_d, double sat_d, int64_t feedback, const convis_blur *B, @REAL@ *ei, @REAL@ *at,
                       @REAL@ *q, @REAL@ *qb) {
    const int64_t HW = H * W;
    const @REAL@ amp = (@REAL@)amp_d, g0 = (@REAL@)g0_d, lam = (@REAL@)lam_d, ea = (@REAL@)ea_d, sat = (@REAL@)sat_d;
    const @REAL@ dt = (@REAL@)dt_d, at0 = @EXP@(-dt * g0);
    for (int64_t s = 0; s < T; s++) {
        for (int64_t b = 0; b < BC; b++) {
            const @REAL@ *xin = s == 0 ? XP + b * HW : x + (b * T + s - 1) * HW;
            @REAL@ *v = V + b * HW, *ga = GA + b * HW, *o = out + (b * T + s) * HW;
            if (!feedback) {            /* no gain control (lam = 0, gA = 0): a low-pass of the input */
                for (int64_t p = 0; p < HW; p++) {
                    const @REAL@ e_inf = amp * xin[p] / g0;
                    v[p] = e_inf + (v[p] - e_inf) * at0;
                    o[p] = v[p];
                }
                continue;
            }
            for (int64_t p = 0; p < HW; p++) {
                const @REAL@ g = g0 + ga[p], w = lam * v[p] * v[p] / sat;
                at[p] = @EXP@(-dt * g);
                ei[p] = amp * xin[p] / g;
                q[p] = sat * w / (1 + w);
            }
            heat_step_@NAME@(H, W, q, q, 0, 0, qb, B);
            for (int64_t p = 0; p < HW; p++) {
                v[p] = ei[p] + (v[p] - ei[p]) * at[p];
                ga[p] = ea * ga[p] + (1 - ea) * qb[p];
                o[p] = v[p];
            }
        }
    }
    for (int64_t b = 0; b < BC && T > 0; b++)
        for (int64_t p = 0; p < HW; p++) XP[b * HW + p] = x[(b * T + T - 1) * HW + p];
}

/* Input current of a ganglion layer (convis.filters.ganglion.GanglionInput, before pooling) for T steps of
   BC maps of P values, x [BC, T, P] (the bipolar signal, read one step late: xp [BC, P] before the chunk):
     F <- e F + (1 - e) x[s-1],  Tn = x[s-1] - w F,  out[s] = N(sign T_old),  T_old <- Tn
   with VirtualRetina's smooth rectifier N (i0, v0, lam, saturation G).  States xp, F, Tr [BC, P] in place. */
void convis_ganglion_@NAME@(int64_t T, int64_t BC, int64_t P, const @REAL@ *x, @REAL@ *out, @REAL@ *XP,
                            @REAL@ *F, @REAL@ *TR, double e_d, double w_d, double sign_d, double v0_d, double i0_d,
                            double lam_d, double sat_d) {
    const @REAL@ e = (@REAL@)e_d, ge = (@REAL@)(1 - e_d), w = (@REAL@)w_d, sign = (@REAL@)sign_d;
    const @REAL@ v0 = (@REAL@)v0_d, i0 = (@REAL@)i0_d, lam = (@REAL@)lam_d, g = (@REAL@)(sat_d - i0_d);
    const @REAL@ i02 = i0 * i0;
    for (int64_t b = 0; b < BC; b++) {
        @REAL@ *xp = XP + b * P, *fs = F + b * P, *tr = TR + b * P;
        for (int64_t s = 0; s < T; s++) {
            const @REAL@ *xin = s == 0 ? xp : x + (b * T + s - 1) * P;
            @REAL@ *o = out + (b * T + s) * P;
            for (int64_t p = 0; p < P; p++) {
                const @REAL@ f = e * fs[p] + ge * xin[p], tn = xin[p] - w * f;
                const @REAL@ d = (sign * tr[p] - v0) * lam;
                const @REAL@ neg = d < 0 ? -d : 0, pos = d > 0 ? d : 0;
                o[p] = i02 / (i0 + neg) + pos * g / (pos + g);
                fs[p] = f;
                tr[p] = tn;
            }
        }
        if (T > 0)
            for (int64_t p = 0; p < P; p++) xp[p] = x[(b * T + T - 1) * P + p];
    }
}
"""
_HEAT_SOURCE += (_HEAT_FUNCTION.replace('@NAME@', 'f64').replace('@REAL@', 'double').replace('@EXP@', 'exp')
                 + _HEAT_FUNCTION.replace('@NAME@', 'f32').replace('@REAL@', 'float').replace('@EXP@', 'expf'))
_LANES, _ROWS = 16, 4
_HEAT = []


def _row_groups(rows, tolerance):
    """``rows`` [H, H] by groups of ``_ROWS`` rows for the compiled loop: ``RG[g, k, r] = rows[ROWS g + r, k]``
    (entries below the tolerance of their row set to 0, rows past H zero) and the column range of each group."""
    h = rows.shape[0]
    keep = _significant(rows, tolerance)
    groups = -(-h // _ROWS)
    rg = torch.zeros((groups * _ROWS, h), dtype=rows.dtype)
    rg[:h] = torch.where(keep, rows.detach().cpu(), torch.zeros((), dtype=rows.dtype))
    kg = torch.zeros((groups * _ROWS, h), dtype=torch.bool)
    kg[:h] = keep
    glo, ghi = _ranges(kg.reshape(groups, _ROWS, h).any(dim=1))
    return rg.reshape(groups, _ROWS, h).transpose(1, 2).contiguous(), glo, ghi


class _Blur(ctypes.Structure):
    """The C ``convis_blur`` operator (see the C source)."""
    _fields_ = [('mode', ctypes.c_int64), ('RG', ctypes.c_void_p), ('glo', ctypes.c_void_p), ('ghi', ctypes.c_void_p),
                ('D', ctypes.c_void_p), ('K', ctypes.c_int64), ('DX', ctypes.c_void_p), ('KX', ctypes.c_int64),
                ('xlo', ctypes.c_void_p), ('xhi', ctypes.c_void_p), ('EY', ctypes.c_void_p), ('KY', ctypes.c_int64),
                ('ylo', ctypes.c_void_p), ('yhi', ctypes.c_void_p), ('t', ctypes.c_void_p), ('t2', ctypes.c_void_p),
                ('use_rows', ctypes.c_int64), ('use_cols', ctypes.c_int64), ('cr', ctypes.c_double * 8),
                ('cc', ctypes.c_double * 8), ('t3', ctypes.c_void_p), ('t4', ctypes.c_void_p), ('t5', ctypes.c_void_p)]


def _heat_functions():
    if not _HEAT:
        i64, dbl, p = ctypes.c_int64, ctypes.c_double, ctypes.c_void_p
        sig = ([i64, i64, i64, i64, p, p, p, dbl, p], None)
        opl = ([i64, i64, i64, i64, p, p, p, p, p, p, dbl, dbl, dbl, i64, dbl, dbl, dbl, p, p, p, p], None)
        cgc = ([i64, i64, i64, i64, p, p, p, p, p, dbl, dbl, dbl, dbl, dbl, dbl, i64, p] + [p] * 4, None)
        gang = ([i64, i64, i64, p, p, p, p, p] + [dbl] * 7, None)
        names = {'heat': sig, 'opl': opl, 'cgc': cgc, 'ganglion': gang}
        fns = compile_c_library('heat', _HEAT_SOURCE, {'convis_%s_%s' % (n, t): a for n, a in names.items()
                                                       for t in ('f32', 'f64')}, contract=True)
        _HEAT.append(None if fns is None else {
            n: {torch.float64: fns['convis_%s_f64' % n], torch.float32: fns['convis_%s_f32' % n]} for n in names})
    return _HEAT[0]


_OPERANDS = OrderedDict()
_OPERANDS_LOCK = threading.Lock()


def _cached(key, owners, build):
    """``build()`` cached under ``key`` while the objects ``owners`` are alive and the same (kept with the entry,
    so that their ids stay theirs).  Safe to call from several threads (a Runner and a notebook)."""
    with _OPERANDS_LOCK:
        found = _OPERANDS.get(key)
        if found is not None and all(a is b for a, b in zip(found[0], owners)):
            _OPERANDS.move_to_end(key)
            return found[1]
    value = build()
    with _OPERANDS_LOCK:
        _OPERANDS[key] = (owners, value)
        while len(_OPERANDS) > 32:
            _OPERANDS.popitem(last=False)
    return value


def _separable_operands(a_rows, a_cols, e, h, w, dtype):
    """Operands of a separable blur ``e A_rows . A_cols^T``: row groups, their column ranges, the diagonals of
    A_cols padded to whole blocks of columns, their reach K."""
    def build():
        eye = lambda n: torch.eye(n, dtype=dtype)  # noqa: E731
        rows = (e * (a_rows if a_rows is not None else eye(h))).detach().to(dtype).cpu().contiguous()
        tol = BAND_TOLERANCE[dtype]
        rg, glo, ghi = _row_groups(rows, tol)
        diag, k = matrix_diagonals(a_cols if a_cols is not None else eye(w), tol, _padded(w))
        return {'mode': 0, 'RG': rg, 'glo': glo, 'ghi': ghi, 'D': diag.to(dtype), 'K': k}
    return _cached(('separable', id(a_rows), id(a_cols), e, h, w, dtype), (a_rows, a_cols), build)


def _diagonal_ranges(e_mats):
    """Per line, the range of diagonals ``[lo, hi)`` holding a non-zero entry."""
    return _ranges(e_mats.abs().amax(dim=2) > 0)


def _per_line_operands(blur, e, h, w, dtype):
    """Operands of a per-line (log-polar) blur ``e B``: the x matrices by diagonals per row, the y matrices
    by diagonals per output row (see the C source)."""
    def build():
        a_cols, a_rows = (torch.as_tensor(m, dtype=torch.float64).cpu() for m in blur.mats)
        tol = BAND_TOLERANCE[dtype]
        wp = _padded(w)
        dx, kx = matrix_diagonals(a_cols, tol, wp)                         # [H, 2KX+1, WP]
        ey_cols, ky = matrix_diagonals(a_rows, tol)                        # [W, 2KY+1, H]: column j, output row i
        ey = torch.zeros((h, 2 * ky + 1, wp), dtype=torch.float64)
        ey[:, :, :w] = e * ey_cols.permute(2, 1, 0)
        xlo, xhi = _diagonal_ranges(dx)
        ylo, yhi = _diagonal_ranges(ey)
        return {'mode': 1, 'DX': dx.to(dtype).contiguous(), 'KX': kx, 'xlo': xlo, 'xhi': xhi,
                'EY': ey.to(dtype).contiguous(), 'KY': ky, 'ylo': ylo, 'yhi': yhi}
    return _cached(('per line', id(blur.mats[0]), id(blur.mats[1]), e, h, w, dtype), tuple(blur.mats), build)


def _padded(w):
    return -(-w // _LANES) * _LANES


RECURSION_COST = 75
"""A separable blur runs as the recursive filter (mode 2) when its matrix band (the mean width of the row
groups plus the number of diagonals) is wider than this: on 50x50 to 160x128 maps (float32, one thread) both
take the same time at a band of about 70-80; at a band of 200 the recursion is twice as fast, at 28 the
band 1.5 times (``benchmarks/bench_retina.py --blurs``)."""


def _recursive_operands(blur, e):
    """Deriche coefficients (scaled by ``e`` on the first blurred axis) of a separable blur for mode 2."""
    from .spatial import deriche_coefficients

    def coefficients(sigma, scale):
        c0, c1, c2, c3, a = deriche_coefficients(sigma)
        c0, c1, c2, c3 = (scale * v for v in (c0, c1, c2, c3))
        denom = 1 - 2 * a + a * a
        return [c0, c1, c2, c3, 2 * a, -a * a, (c0 + c1) / denom, (c2 + c3) / denom]
    use_rows, use_cols = blur.a_rows is not None, blur.a_cols is not None
    return {'mode': 2, 'use_rows': int(use_rows), 'use_cols': int(use_cols),
            'cr': coefficients(blur.sigma_rows, e) if use_rows else [0.0] * 8,
            'cc': coefficients(blur.sigma_cols, 1.0 if use_rows else e) if use_cols else [0.0] * 8}


def _operator(blur, e, h, w, dtype):
    """The C operator of ``e`` times the blur (None: identity, a SeparableBlur, or a per-line blur with ``mats``)
    with fresh scratch; returns ``(struct, tensors to keep alive)``, or None for an unsupported blur."""
    if blur is None or hasattr(blur, 'a_rows'):
        ops = _separable_operands(None if blur is None else blur.a_rows, None if blur is None else blur.a_cols,
                                  e, h, w, dtype)
        wp, k = _padded(w), ops['K']
        band = float((ops['ghi'] - ops['glo']).double().mean()) + 2 * k + 1
        sigmas = (getattr(blur, 'sigma_rows', None), getattr(blur, 'sigma_cols', None))
        if band > RECURSION_COST and blur is not None and all(
                m is None or sig is not None for m, sig in zip((blur.a_rows, blur.a_cols), sigmas)):
            ops = _recursive_operands(blur, e)
            scratch = [torch.zeros(h * w, dtype=torch.float64) for _ in range(5)]
        else:
            scratch = [torch.zeros((h, wp), dtype=dtype),
                       torch.zeros((-(-h // _ROWS) * _ROWS, wp + 2 * k), dtype=dtype)]
    elif hasattr(blur, 'mats'):
        ops = _per_line_operands(blur, e, h, w, dtype)
        wp = _padded(w)
        scratch = [torch.zeros((h, wp + 2 * ops['KX']), dtype=dtype), torch.zeros((h + 2 * ops['KY'], wp), dtype=dtype)]
    else:
        return None
    struct = _Blur(mode=ops['mode'])
    for name, buf in zip(('t', 't2', 't3', 't4', 't5'), scratch):
        setattr(struct, name, buf.data_ptr())
    for name, value in ops.items():
        if name in ('cr', 'cc'):
            setattr(struct, name, (ctypes.c_double * 8)(*value))
        elif name != 'mode':
            setattr(struct, name, value if isinstance(value, int) else value.data_ptr())
    return struct, (ops, scratch)


def _compiled(name, x):
    """The compiled loop ``name`` for the dtype of ``x``, or None (no compiler, not on the CPU, another dtype)."""
    fns = _heat_functions()
    if fns is None or x.dtype not in fns[name] or x.device.type != 'cpu':
        return None
    return fns[name][x.dtype]


def _contiguous(x):
    """``x`` ``[B, C, T, H, W]`` detached and contiguous (no copy when it already is): the layout of the loops."""
    return x.detach().contiguous()


def _state_copies(states, x):
    """Contiguous copies of the states ``[B, C, 1, H, W]`` (of the input ``x``) in its dtype, for a loop to update in
    place."""
    shape = x.shape[:2] + (1,) + x.shape[3:]
    return [s.detach().to(x.dtype).reshape(shape).clone(memory_format=torch.contiguous_format) for s in states]


def leaky_heat_loop(u, e, blur, y_prev):
    """VirtualRetina's leaky heat equation ``y[s] = B (e y[s-1] + (1-e) u[s])`` as a compiled loop.

    ``u`` is ``[B, C, T, H, W]`` (float32 or float64, CPU, no gradient), ``e`` the decay per step
    (``0 < e``), ``blur`` the blur B (None: identity, a :class:`~convis.filters.spatial.SeparableBlur` or a
    log-polar blur), ``y_prev`` ``[B, C, 1, H, W]`` the value before the chunk.  Returns ``y`` shaped like ``u``,
    or None when no compiled loop is available (the caller then runs the torch loop).  Only the band of each
    matrix above :data:`BAND_TOLERANCE` of its row's largest entry takes part.
    """
    fn = _compiled('heat', u)
    if fn is None:
        return None
    b, c, n_t, h, w = u.shape
    e = _number(e)
    op = _operator(blur, e, h, w, u.dtype)
    if op is None:
        return None
    ut = _contiguous(u)
    out = torch.empty_like(ut)
    y0 = y_prev.detach().reshape(b * c, h, w).to(u.dtype).contiguous()
    fn(n_t, b * c, h, w, ut.data_ptr(), out.data_ptr(), y0.data_ptr(), (1 - e) / e, ctypes.byref(op[0]))
    return out


def opl_loop(x, states, center, surround, lam, offset_in, undershoot, e_u, w_u, w_s, offset_out):
    """VirtualRetina's OPL (centre and surround leaky heat equations, undershoot) as one compiled loop.

    ``x`` ``[B, C, T, H, W]``: the input; the centre's input is ``lam (x + offset_in)``.  ``states``: the
    tensors ``(C, U, R, S)`` of :class:`convis.filters.retina.OPL` (``[B, C, 1, H, W]``; copies are updated and
    returned).  ``center``/``surround``: ``(e, blur)`` of each leaky heat equation (blur: None, a
    :class:`~convis.filters.spatial.SeparableBlur` or a log-polar blur); ``undershoot`` (bool), ``e_u``, ``w_u``:
    the undershoot; ``w_s``: the surround's weight; ``offset_out`` added to the output.
    Returns ``(out, (C, U, R, S))`` or None when no compiled loop applies (no compiler, a GPU, ``e`` = 0).
    """
    fn = _compiled('opl', x)
    if fn is None:
        return None
    b, c, n_t, h, w = x.shape
    e_c, e_s = _number(center[0]), _number(surround[0])
    if e_c <= 1e-12 or e_s <= 1e-12:
        return None
    ops = [_operator(blur, e, h, w, x.dtype) for e, blur in ((e_c, center[1]), (e_s, surround[1]))]
    if None in ops:
        return None
    xt = _contiguous(x)
    out = torch.empty_like(xt)
    st = _state_copies(states, x)
    cn, sn = torch.empty((h, w), dtype=x.dtype), torch.empty((h, w), dtype=x.dtype)
    fn(n_t, b * c, h, w, xt.data_ptr(), out.data_ptr(), *[s.data_ptr() for s in st],
                        (1 - e_c) / e_c * _number(lam), _number(offset_in), (1 - e_s) / e_s * _number(w_s),
                        int(bool(undershoot)), _number(e_u), _number(w_u), _number(offset_out),
                        ctypes.byref(ops[0][0]), ctypes.byref(ops[1][0]), cn.data_ptr(), sn.data_ptr())
    return out, tuple(st)


def cgc_loop(x, states, amp, g0, lam, dt, e_a, saturation, blur, feedback=True):
    """VirtualRetina's contrast gain control (the bipolar stage with feedback) as one compiled loop.

    ``x`` ``[B, C, T, H, W]``: the OPL output; ``states``: ``(input_prev, V, g_A)`` of
    :class:`convis.filters.retina.Bipolar` (``[B, C, 1, H, W]``; copies are updated and returned);
    ``amp`` (Hz), ``g0`` (Hz), ``lam`` (Hz), ``dt`` (s), ``e_a`` the adaptation's decay per step,
    ``saturation`` (Hz), ``blur`` the adaptation blur (None: identity; separable or log-polar);
    ``feedback=False`` (only when ``lam`` = 0 and ``g_A`` = 0) leaves the adaptation out: a low-pass of the input.
    Returns ``(V [B, C, T, H, W], (input_prev, V, g_A))``, or None when no compiled loop applies.
    """
    fn = _compiled('cgc', x)
    if fn is None:
        return None
    b, c, n_t, h, w = x.shape
    op = _operator(blur if feedback else None, 1.0, h, w, x.dtype)
    if op is None:
        return None
    xt = _contiguous(x)
    out = torch.empty_like(xt)
    st = _state_copies(states, x)
    maps = [torch.empty((h, w), dtype=x.dtype) for _ in range(4)]
    fn(n_t, b * c, h, w, xt.data_ptr(), out.data_ptr(), *[s.data_ptr() for s in st],
                        *[_number(v) for v in (amp, g0, lam, dt, e_a, saturation)], int(bool(feedback)),
                        ctypes.byref(op[0]),
                        *[m.data_ptr() for m in maps])
    return out, tuple(st)


def ganglion_input_loop(x, states, e, w, sign, v0, i0, lam, saturation):
    """The input current of a ganglion layer before pooling (transient high-pass, smooth rectifier) as one
    compiled loop.

    ``x`` ``[B, C, T, H, W]``: the bipolar signal; ``states``: ``(input_prev, F, T)`` of
    :class:`convis.filters.ganglion.GanglionInput` (``[B, C, 1, H, W]``; copies are updated and returned);
    ``e`` the transient's decay per step, ``w`` its weight, ``sign`` +1/-1, ``v0``, ``i0`` (Hz, > 0),
    ``lam`` (Hz), ``saturation`` (Hz).  Returns ``(rates [B, C, T, H, W], (input_prev, F, T))`` or None.
    """
    fn = _compiled('ganglion', x)
    if fn is None:
        return None
    b, c, n_t, h, w_ = x.shape
    xt = _contiguous(x)
    out = torch.empty_like(xt)
    st = _state_copies(states, x)
    fn(n_t, b * c, h * w_, xt.data_ptr(), out.data_ptr(), *[s.data_ptr() for s in st],
       *[_number(v) for v in (e, w, sign, v0, i0, lam, saturation)])
    return out, tuple(st)


