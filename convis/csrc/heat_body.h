/* The body of heat.c, included once per precision (REAL, EXP, NAME: see there); no include guard. */
/* One step for one image: o = R (y + a (x + c)) A_cols^T (see above); t, t2 scratch. */
static void NAME(per_line_step)(int64_t H, int64_t W, const REAL *y, const REAL *x, REAL a, REAL c,
                                REAL *o, const convis_blur *B) {
    typedef REAL vec __attribute__((vector_size(LANES * sizeof(REAL))));
    typedef REAL uvec __attribute__((vector_size(LANES * sizeof(REAL)), aligned(sizeof(REAL))));
    const int64_t WP = (W + LANES - 1) / LANES * LANES, KX = B->KX, KY = B->KY, WT = WP + 2 * KX;
    const REAL *DX = (const REAL *)B->DX, *EY = (const REAL *)B->EY;
    REAL *t = (REAL *)B->t, *t2 = (REAL *)B->t2;
    for (int64_t i = 0; i < H; i++)
        for (int64_t j = 0; j < W; j++) t[i * WT + KX + j] = y[i * W + j] + a * (x[i * W + j] + c);
    for (int64_t i = 0; i < H; i++) {
        const REAL *dx = DX + i * (2 * KX + 1) * WP, *src = t + i * WT;
        REAL *dst = t2 + (i + KY) * WP;
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
        const REAL *ey = EY + i * (2 * KY + 1) * WP, *src = t2 + i * WP;
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

static void NAME(recursive_step)(int64_t H, int64_t W, const REAL *y, const REAL *x, REAL a, REAL c,
                                 REAL *o, const convis_blur *B) {
    double *t = (double *)B->t, *t2 = (double *)B->t2, *t3 = (double *)B->t3, *t4 = (double *)B->t4;
    double *t5 = (double *)B->t5;
    const int64_t HW = H * W;
    for (int64_t p = 0; p < HW; p++) t[p] = (double)(y[p] + a * (x[p] + c));
    const double *src = t;
    if (B->use_rows) { deriche_axis0(H, W, t, t2, t3, B->cr); src = t2; }
    if (!B->use_cols) { for (int64_t p = 0; p < HW; p++) o[p] = (REAL)src[p]; return; }
    transpose(H, W, src, t4);
    deriche_axis0(W, H, t4, t5, t3, B->cc);
    for (int64_t i = 0; i < H; i++)
        for (int64_t j = 0; j < W; j++) o[i * W + j] = (REAL)t5[j * H + i];
}

static void NAME(heat_step)(int64_t H, int64_t W, const REAL *y, const REAL *x, REAL a, REAL c,
                            REAL *o, const convis_blur *B) {
    typedef REAL vec __attribute__((vector_size(LANES * sizeof(REAL))));
    typedef REAL uvec __attribute__((vector_size(LANES * sizeof(REAL)), aligned(sizeof(REAL))));
    if (B->mode == 1) { NAME(per_line_step)(H, W, y, x, a, c, o, B); return; }
   if (B->mode == 2) { NAME(recursive_step)(H, W, y, x, a, c, o, B); return; }
  const REAL *RG = (const REAL *)B->RG, *D = (const REAL *)B->D;
    const int64_t *glo = B->glo, *ghi = B->ghi, K = B->K;
    REAL *t = (REAL *)B->t, *t2 = (REAL *)B->t2;
    const int64_t WP = (W + LANES - 1) / LANES * LANES, W2 = WP + 2 * K;
    const int64_t HP = (H + ROWS - 1) / ROWS * ROWS;
    for (int64_t i = 0; i < H; i++)
        for (int64_t j = 0; j < W; j++) t[i * WP + j] = y[i * W + j] + a * (x[i * W + j] + c);
    for (int64_t i0 = 0; i0 < HP; i0 += ROWS) {
        const int64_t g = i0 / ROWS;
        const REAL *rg = RG + g * H * ROWS;
        REAL *dst = t2 + i0 * W2 + K;
        for (int64_t j0 = 0; j0 < WP; j0 += LANES) {
            vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (int64_t k = glo[g]; k < ghi[g]; k++) {
                const vec v = *(const uvec *)(t + k * WP + j0);
                const REAL *r = rg + k * ROWS;
                a0 += r[0] * v; a1 += r[1] * v; a2 += r[2] * v; a3 += r[3] * v;
            }
            *(uvec *)(dst + j0) = a0; *(uvec *)(dst + W2 + j0) = a1;
            *(uvec *)(dst + 2 * W2 + j0) = a2; *(uvec *)(dst + 3 * W2 + j0) = a3;
        }
    }
    for (int64_t i0 = 0; i0 < HP; i0 += ROWS) {
        const REAL *src = t2 + i0 * W2 + K;
        for (int64_t j0 = 0; j0 < WP; j0 += LANES) {
            vec acc[ROWS];
            vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (int64_t dd = 0; dd <= 2 * K; dd++) {
                const vec dv = *(const uvec *)(D + dd * WP + j0);
                const REAL *sv = src + j0 + dd - K;
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

void NAME(convis_heat)(int64_t T, int64_t BC, int64_t H, int64_t W, const REAL *u, REAL *out,
                       const REAL *y0, double ratio, const convis_blur *B) {
    const int64_t HW = H * W;
    for (int64_t s = 0; s < T; s++)
        for (int64_t b = 0; b < BC; b++)
            NAME(heat_step)(H, W, s == 0 ? y0 + b * HW : out + (b * T + s - 1) * HW, u + (b * T + s) * HW,
                            (REAL)ratio, 0, out + (b * T + s) * HW, B);
}

/* VirtualRetina's OPL for T steps of BC images x [BC, T, H, W] (see convis.filters.retina.OPL):
     C[s] = heat_C(C[s-1], a_c (x[s] + c_c))
     with undershoot:  U[s] = e_u U[s-1] + (1 - e_u) C[s-1],  R[s] = C[s-1] - w_u U[s];  without: R[s] = C[s]
     S[s] = heat_S(S[s-1], a_s R[s-1]),  out[s] = R[s] - S[s] + offset
   The states C, U, R, S [BC, H, W] are read and updated in place; cn, sn [H, W] scratch; the two blur
   operators (with their own scratch) Bc and Bs. */
void NAME(convis_opl)(int64_t T, int64_t BC, int64_t H, int64_t W, const REAL *x, REAL *out,
                      REAL *C, REAL *U, REAL *R, REAL *S, double a_c, double c_c, double a_s,
                      int64_t undershoot, double e_u, double w_u, double offset,
                      const convis_blur *Bc, const convis_blur *Bs, REAL *cn, REAL *sn) {
    const int64_t HW = H * W;
    const REAL eu = (REAL)e_u, gu = (REAL)(1 - e_u), wu = (REAL)w_u, off = (REAL)offset;
    for (int64_t s = 0; s < T; s++) {
        for (int64_t b = 0; b < BC; b++) {
            REAL *c = C + b * HW, *u = U + b * HW, *r = R + b * HW, *sr = S + b * HW;
            REAL *o = out + (b * T + s) * HW;
            NAME(heat_step)(H, W, c, x + (b * T + s) * HW, (REAL)a_c, (REAL)c_c, cn, Bc);
            NAME(heat_step)(H, W, sr, r, (REAL)a_s, 0, sn, Bs);
            if (undershoot) {
                for (int64_t p = 0; p < HW; p++) {
                    const REAL un = eu * u[p] + gu * c[p], rec = c[p] - wu * un;
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

/* VirtualRetina's contrast gain control (convis.filters.retina.Bipolar with feedback) for T steps of BC
   images; x [BC, T, H, W] is the OPL output, read one step late (xp [BC, H, W] before the chunk):
     g = g0 + gA,  Einf = amp x[s-1] / g,  q = G w / (1 + w) with w = lam V^2 / G,
     V <- Einf + (V - Einf) exp(-dt g),  gA <- eA gA + (1 - eA) blur(q)
   States xp, V, gA [BC, H, W] updated in place; out [BC, T, H, W] gets V; ei, at, q, qb [H, W] scratch.
   Without feedback (lam = 0 and gA = 0 everywhere) only V is updated, with the constant exp(-dt g0). */
void NAME(convis_cgc)(int64_t T, int64_t BC, int64_t H, int64_t W, const REAL *x, REAL *out,
                      REAL *XP, REAL *V, REAL *GA, double amp_d, double g0_d, double lam_d, double dt_d,
                      double ea_d, double sat_d, int64_t feedback, const convis_blur *B, REAL *ei, REAL *at,
                      REAL *q, REAL *qb) {
    const int64_t HW = H * W;
    const REAL amp = (REAL)amp_d, g0 = (REAL)g0_d, lam = (REAL)lam_d, ea = (REAL)ea_d, sat = (REAL)sat_d;
    const REAL dt = (REAL)dt_d, at0 = EXP(-dt * g0);
    for (int64_t s = 0; s < T; s++) {
        for (int64_t b = 0; b < BC; b++) {
            const REAL *xin = s == 0 ? XP + b * HW : x + (b * T + s - 1) * HW;
            REAL *v = V + b * HW, *ga = GA + b * HW, *o = out + (b * T + s) * HW;
            if (!feedback) {            /* no gain control (lam = 0, gA = 0): a low-pass of the input */
                for (int64_t p = 0; p < HW; p++) {
                    const REAL e_inf = amp * xin[p] / g0;
                    v[p] = e_inf + (v[p] - e_inf) * at0;
                    o[p] = v[p];
                }
                continue;
            }
            for (int64_t p = 0; p < HW; p++) {
                const REAL g = g0 + ga[p], w = lam * v[p] * v[p] / sat;
                at[p] = EXP(-dt * g);
                ei[p] = amp * xin[p] / g;
                q[p] = sat * w / (1 + w);
            }
            NAME(heat_step)(H, W, q, q, 0, 0, qb, B);
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
void NAME(convis_ganglion)(int64_t T, int64_t BC, int64_t P, const REAL *x, REAL *out, REAL *XP,
                           REAL *F, REAL *TR, double e_d, double w_d, double sign_d, double v0_d, double i0_d,
                           double lam_d, double sat_d) {
    const REAL e = (REAL)e_d, ge = (REAL)(1 - e_d), w = (REAL)w_d, sign = (REAL)sign_d;
    const REAL v0 = (REAL)v0_d, i0 = (REAL)i0_d, lam = (REAL)lam_d, g = (REAL)(sat_d - i0_d);
    const REAL i02 = i0 * i0;
    for (int64_t b = 0; b < BC; b++) {
        REAL *xp = XP + b * P, *fs = F + b * P, *tr = TR + b * P;
        for (int64_t s = 0; s < T; s++) {
            const REAL *xin = s == 0 ? xp : x + (b * T + s - 1) * P;
            REAL *o = out + (b * T + s) * P;
            for (int64_t p = 0; p < P; p++) {
                const REAL f = e * fs[p] + ge * xin[p], tn = xin[p] - w * f;
                const REAL d = (sign * tr[p] - v0) * lam;
                const REAL neg = d < 0 ? -d : 0, pos = d > 0 ? d : 0;
                o[p] = i02 / (i0 + neg) + pos * g / (pos + g);
                fs[p] = f;
                tr[p] = tn;
            }
        }
        if (T > 0)
            for (int64_t p = 0; p < P; p++) xp[p] = x[(b * T + T - 1) * P + p];
    }
}
