/* The body of heat.c, included once per precision (REAL, EXP, NAME: see there); no include guard.

   One step of a blur operator B on a map, o = B (y + a (x + c)), runs in phases so that threads can share it
   (see convis_threads.h): prepare(i) for every row i (the rows of t, and in mode 1 the pass along x), then, once
   every row is prepared, part(g) for every part g of the output (modes 0 and 2: a group of ROWS rows, mode 1: one
   row); mode 2 (the recursive filter) first runs its pass along y by bands of columns, heat_mid(g), between the
   two.  heat_par runs the phases as OpenMP work-sharing loops: called by every thread of a parallel region, or by
   one thread outside any. */

/* Row i of the operator's input: t[i] = y[i] + a (x[i] + c); in mode 1 also the pass along x of that row. */
static void NAME(prepare)(int64_t i, int64_t H, int64_t W, const REAL *y, const REAL *x, REAL a, REAL c,
                          const convis_blur *B) {
    typedef REAL vec __attribute__((vector_size(LANES * sizeof(REAL))));
    typedef REAL uvec __attribute__((vector_size(LANES * sizeof(REAL)), aligned(sizeof(REAL))));
    const int64_t WP = (W + LANES - 1) / LANES * LANES;
    const REAL *yi = y + i * W, *xi = x + i * W;
    if (B->mode >= 2) {
        double *t = (double *)B->t + i * W;
        for (int64_t j = 0; j < W; j++) t[j] = (double)(yi[j] + a * (xi[j] + c));
        if (B->mode == 3) log_polar_row(i, H, W, B);
        return;
    }
    if (B->mode == 0) {
        REAL *t = (REAL *)B->t + i * WP;
        for (int64_t j = 0; j < W; j++) t[j] = yi[j] + a * (xi[j] + c);
        return;
    }
    const int64_t KX = B->KX, KY = B->KY, WT = WP + 2 * KX;
    REAL *src = (REAL *)B->t + i * WT;
    for (int64_t j = 0; j < W; j++) src[KX + j] = yi[j] + a * (xi[j] + c);
    const REAL *dx = (const REAL *)B->DX + i * (2 * KX + 1) * WP;
    REAL *dst = (REAL *)B->t2 + (i + KY) * WP;
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

/* Part g of the output o (rows heat_part_rows(g)), from the prepared rows. */
static void NAME(part)(int64_t g, int64_t H, int64_t W, REAL *o, const convis_blur *B) {
    typedef REAL vec __attribute__((vector_size(LANES * sizeof(REAL))));
    typedef REAL uvec __attribute__((vector_size(LANES * sizeof(REAL)), aligned(sizeof(REAL))));
    const int64_t WP = (W + LANES - 1) / LANES * LANES;
    if (B->mode == 3) {           /* columns of band g: the pass along y, times e */
        const int64_t l0 = g * MID_COLUMNS, l1 = l0 + MID_COLUMNS < W ? l0 + MID_COLUMNS : W;
        const double *res = (const double *)B->t;
        log_polar_columns(l0, l1, H, W, B);
        for (int64_t i = 0; i < H; i++)
            for (int64_t l = l0; l < l1; l++) o[i * W + l] = (REAL)(B->e * res[i * W + l]);
        return;
    }
    if (B->mode == 2) {           /* rows of group g: the pass along x of the recursive filter (double) */
        int64_t r0, r1;
        heat_part_rows(g, H, B, &r0, &r1);
        const double *src = (const double *)(B->use_rows ? B->t2 : B->t) + r0 * W;
        REAL *og = o + r0 * W;
        const int64_t n = (r1 - r0) * W;
        if (!B->use_cols) { for (int64_t p = 0; p < n; p++) og[p] = (REAL)src[p]; return; }
        double *y = (double *)B->t4 + r0 * W;
        deriche_rows(r1 - r0, W, src, y, B->cc);
        for (int64_t p = 0; p < n; p++) og[p] = (REAL)y[p];
        return;
    }
    if (B->mode == 1) {           /* row g: the pass along y, column j by its own matrix */
        const int64_t KY = B->KY;
        const REAL *ey = (const REAL *)B->EY + g * (2 * KY + 1) * WP, *src = (const REAL *)B->t2 + g * WP;
        for (int64_t j0 = 0; j0 < WP; j0 += LANES) {
            vec a0 = {0}, a1 = {0};
            int64_t d = B->ylo[g];
            for (; d + 1 < B->yhi[g]; d += 2) {
                a0 += *(const uvec *)(ey + d * WP + j0) * *(const uvec *)(src + d * WP + j0);
                a1 += *(const uvec *)(ey + (d + 1) * WP + j0) * *(const uvec *)(src + (d + 1) * WP + j0);
            }
            if (d < B->yhi[g]) a0 += *(const uvec *)(ey + d * WP + j0) * *(const uvec *)(src + d * WP + j0);
            a0 += a1;
            const int64_t n = W - j0 < LANES ? W - j0 : LANES;
            if (n == LANES) *(uvec *)(o + g * W + j0) = a0;
            else for (int64_t jj = 0; jj < n; jj++) o[g * W + j0 + jj] = a0[jj];
        }
        return;
    }
    /* mode 0, group g of ROWS rows: the rows matrix (its band), then the columns matrix by diagonals */
    const REAL *RG = (const REAL *)B->RG, *D = (const REAL *)B->D, *t = (const REAL *)B->t;
    const int64_t K = B->K, W2 = WP + 2 * K, i0 = g * ROWS;
    const REAL *rg = RG + g * H * ROWS;
    REAL *t2 = (REAL *)B->t2 + i0 * W2 + K;
    for (int64_t j0 = 0; j0 < WP; j0 += LANES) {
        vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (int64_t k = B->glo[g]; k < B->ghi[g]; k++) {
            const vec v = *(const uvec *)(t + k * WP + j0);
            const REAL *r = rg + k * ROWS;
            a0 += r[0] * v; a1 += r[1] * v; a2 += r[2] * v; a3 += r[3] * v;
        }
        *(uvec *)(t2 + j0) = a0; *(uvec *)(t2 + W2 + j0) = a1;
        *(uvec *)(t2 + 2 * W2 + j0) = a2; *(uvec *)(t2 + 3 * W2 + j0) = a3;
    }
    for (int64_t j0 = 0; j0 < WP; j0 += LANES) {
        vec acc[ROWS];
        vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (int64_t dd = 0; dd <= 2 * K; dd++) {
            const vec dv = *(const uvec *)(D + dd * WP + j0);
            const REAL *sv = t2 + j0 + dd - K;
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

/* o = B (y + a (x + c)) for one map: the phases as work-sharing loops (each ends with the threads' barrier). */
static void NAME(heat_par)(int64_t H, int64_t W, const REAL *y, const REAL *x, REAL a, REAL c, REAL *o,
                           const convis_blur *B) {
    const int64_t n = heat_parts(H, W, B), nm = heat_mid_parts(W, B);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < H; i++) NAME(prepare)(i, H, W, y, x, a, c, B);
    if (nm) {
#pragma omp for schedule(static)
        for (int64_t g = 0; g < nm; g++) heat_mid(g, H, W, B);
    }
#pragma omp for schedule(static)
    for (int64_t g = 0; g < n; g++) NAME(part)(g, H, W, o, B);
}

void NAME(convis_heat)(int64_t T, int64_t BC, int64_t H, int64_t W, const REAL *u, REAL *out,
                       const REAL *y0, double ratio, const convis_blur *B) {
    const int64_t HW = H * W;
#pragma omp parallel if (HW >= CONVIS_PARALLEL_STEP)
    for (int64_t s = 0; s < T; s++)
        for (int64_t b = 0; b < BC; b++)
            NAME(heat_par)(H, W, s == 0 ? y0 + b * HW : out + (b * T + s - 1) * HW, u + (b * T + s) * HW,
                           (REAL)ratio, 0, out + (b * T + s) * HW, B);
}

/* The OPL's update of values [p0, p1) of one map once both blurs of the step are done (see convis_opl). */
static inline void NAME(opl_update)(int64_t p0, int64_t p1, int64_t undershoot, REAL eu, REAL gu, REAL wu,
                                    REAL off, REAL *c, REAL *u, REAL *r, REAL *sr, REAL *o, const REAL *cn,
                                    const REAL *sn) {
    if (undershoot) {
        for (int64_t p = p0; p < p1; p++) {
            const REAL un = eu * u[p] + gu * c[p], rec = c[p] - wu * un;
            u[p] = un; r[p] = rec; o[p] = rec - sn[p] + off; c[p] = cn[p]; sr[p] = sn[p];
        }
    } else {
        for (int64_t p = p0; p < p1; p++) {
            r[p] = cn[p]; o[p] = cn[p] - sn[p] + off; c[p] = cn[p]; sr[p] = sn[p];
        }
    }
}

/* VirtualRetina's OPL for T steps of BC images x [BC, T, H, W] (see convis.functional.outer_plexiform):
     C[s] = heat_C(C[s-1], a_c (x[s] + c_c))
     with undershoot:  U[s] = e_u U[s-1] + (1 - e_u) C[s-1],  R[s] = C[s-1] - w_u U[s];  without: R[s] = C[s]
     S[s] = heat_S(S[s-1], a_s R[s-1]),  out[s] = R[s] - S[s] + offset
   The states C, U, R, S [BC, H, W] are read and updated in place; cn, sn [H, W] scratch; the two blur
   operators (with their own scratch) Bc and Bs.  Threads share each step by rows: both operators' rows are
   prepared, then their parts computed and (where both operators split the map alike) the rows of each part
   updated at once; two barriers per step. */
void NAME(convis_opl)(int64_t T, int64_t BC, int64_t H, int64_t W, const REAL *x, REAL *out,
                      REAL *C, REAL *U, REAL *R, REAL *S, double a_c, double c_c, double a_s,
                      int64_t undershoot, double e_u, double w_u, double offset,
                      const convis_blur *Bc, const convis_blur *Bs, REAL *cn, REAL *sn) {
    const int64_t HW = H * W;
    const REAL eu = (REAL)e_u, gu = (REAL)(1 - e_u), wu = (REAL)w_u, off = (REAL)offset;
    const int64_t nc = heat_parts(H, W, Bc), ns = heat_parts(H, W, Bs);
    const int64_t nm = heat_mid_parts(W, Bc) > heat_mid_parts(W, Bs) ? heat_mid_parts(W, Bc) : heat_mid_parts(W, Bs);
    const int fused = heat_split(Bc) == heat_split(Bs) && heat_split(Bc) != 2;   /* both split the rows alike */
#pragma omp parallel if (HW >= CONVIS_PARALLEL_STEP)
    for (int64_t s = 0; s < T; s++) {
        for (int64_t b = 0; b < BC; b++) {
            REAL *c = C + b * HW, *u = U + b * HW, *r = R + b * HW, *sr = S + b * HW;
            REAL *o = out + (b * T + s) * HW;
            const REAL *xs = x + (b * T + s) * HW;
#pragma omp for schedule(static)
            for (int64_t i = 0; i < H; i++) {
                NAME(prepare)(i, H, W, c, xs, (REAL)a_c, (REAL)c_c, Bc);
                NAME(prepare)(i, H, W, sr, r, (REAL)a_s, 0, Bs);
            }
            if (nm) {
#pragma omp for schedule(static)
                for (int64_t g = 0; g < nm; g++) {
                    if (g < heat_mid_parts(W, Bc)) heat_mid(g, H, W, Bc);
                    if (g < heat_mid_parts(W, Bs)) heat_mid(g, H, W, Bs);
                }
            }
            if (fused) {
#pragma omp for schedule(static)
                for (int64_t g = 0; g < nc; g++) {
                    int64_t r0, r1;
                    NAME(part)(g, H, W, cn, Bc);
                    NAME(part)(g, H, W, sn, Bs);
                    heat_part_rows(g, H, Bc, &r0, &r1);
                    NAME(opl_update)(r0 * W, r1 * W, undershoot, eu, gu, wu, off, c, u, r, sr, o, cn, sn);
                }
            } else {
#pragma omp for schedule(static, 1)
                for (int64_t q = 0; q < nc + ns; q++) {
                    if (q < nc) NAME(part)(q, H, W, cn, Bc);
                    else NAME(part)(q - nc, H, W, sn, Bs);
                }
#pragma omp for schedule(static)
                for (int64_t i = 0; i < H; i++)
                    NAME(opl_update)(i * W, (i + 1) * W, undershoot, eu, gu, wu, off, c, u, r, sr, o, cn, sn);
            }
        }
    }
}

/* The gain control's update of the values [p0, p1) once the step's blur is done (see convis_cgc). */
static inline void NAME(cgc_update)(int64_t p0, int64_t p1, REAL ea, const REAL *ei, const REAL *at, const REAL *qb,
                                    REAL *v, REAL *ga, REAL *o) {
    for (int64_t p = p0; p < p1; p++) {
        v[p] = ei[p] + (v[p] - ei[p]) * at[p];
        ga[p] = ea * ga[p] + (1 - ea) * qb[p];
        o[p] = v[p];
    }
}

/* VirtualRetina's contrast gain control (convis.functional.gain_control) for T steps of BC images;
   x [BC, T, H, W] is the OPL output, read one step late (xp [BC, H, W] before the chunk):
     g = g0 + gA,  Einf = amp x[s-1] / g,  q = G w / (1 + w) with w = lam V^2 / G,
     V <- Einf + (V - Einf) exp(-dt g),  gA <- eA gA + (1 - eA) blur(q)
   States xp, V, gA [BC, H, W] updated in place; out [BC, T, H, W] gets V; ei, at, q, qb [H, W] scratch.
   Without feedback (lam = 0 and gA = 0 everywhere) only V is updated, with the constant exp(-dt g0): every value
   is then independent of the others, and threads share the values for the whole chunk. */
void NAME(convis_cgc)(int64_t T, int64_t BC, int64_t H, int64_t W, const REAL *x, REAL *out,
                      REAL *XP, REAL *V, REAL *GA, double amp_d, double g0_d, double lam_d, double dt_d,
                      double ea_d, double sat_d, int64_t feedback, const convis_blur *B, REAL *ei, REAL *at,
                      REAL *q, REAL *qb) {
    const int64_t HW = H * W;
    const REAL amp = (REAL)amp_d, g0 = (REAL)g0_d, lam = (REAL)lam_d, ea = (REAL)ea_d, sat = (REAL)sat_d;
    const REAL dt = (REAL)dt_d, at0 = EXP(-dt * g0);
    if (!feedback) {              /* no gain control (lam = 0, gA = 0): a low-pass of the input */
#pragma omp parallel if (T * BC * HW >= CONVIS_PARALLEL_TOTAL)
        {
            int64_t p0, p1;
            convis_share(HW, &p0, &p1);
            for (int64_t s = 0; s < T; s++)
                for (int64_t b = 0; b < BC; b++) {
                    const REAL *xin = s == 0 ? XP + b * HW : x + (b * T + s - 1) * HW;
                    REAL *v = V + b * HW, *o = out + (b * T + s) * HW;
                    for (int64_t p = p0; p < p1; p++) {
                        const REAL e_inf = amp * xin[p] / g0;
                        v[p] = e_inf + (v[p] - e_inf) * at0;
                        o[p] = v[p];
                    }
                }
        }
    } else {
        const int64_t n = heat_parts(H, W, B), nm = heat_mid_parts(W, B);
        const int by_columns = heat_split(B) == 2;
#pragma omp parallel if (HW >= CONVIS_PARALLEL_STEP)
        for (int64_t s = 0; s < T; s++) {
            for (int64_t b = 0; b < BC; b++) {
                const REAL *xin = s == 0 ? XP + b * HW : x + (b * T + s - 1) * HW;
                REAL *v = V + b * HW, *ga = GA + b * HW, *o = out + (b * T + s) * HW;
#pragma omp for schedule(static)
                for (int64_t i = 0; i < H; i++) {
                    for (int64_t p = i * W; p < (i + 1) * W; p++) {
                        const REAL g = g0 + ga[p], w = lam * v[p] * v[p] / sat;
                        at[p] = EXP(-dt * g);
                        ei[p] = amp * xin[p] / g;
                        q[p] = sat * w / (1 + w);
                    }
                    NAME(prepare)(i, H, W, q, q, 0, 0, B);
                }
                if (nm) {
#pragma omp for schedule(static)
                    for (int64_t g = 0; g < nm; g++) heat_mid(g, H, W, B);
                }
#pragma omp for schedule(static)
                for (int64_t g = 0; g < n; g++) {
                    int64_t r0, r1;
                    NAME(part)(g, H, W, qb, B);
                    heat_part_rows(g, H, B, &r0, &r1);
                    if (!by_columns) NAME(cgc_update)(r0 * W, r1 * W, ea, ei, at, qb, v, ga, o);
                }
                if (by_columns) {
#pragma omp for schedule(static)
                    for (int64_t i = 0; i < H; i++) NAME(cgc_update)(i * W, (i + 1) * W, ea, ei, at, qb, v, ga, o);
                }
            }
        }
    }
    for (int64_t b = 0; b < BC && T > 0; b++)
        for (int64_t p = 0; p < HW; p++) XP[b * HW + p] = x[(b * T + T - 1) * HW + p];
}

/* Input current of a ganglion layer (convis.functional.ganglion, before pooling) for T steps of BC maps of P
   values, x [BC, T, P] (the bipolar signal, read one step late: xp [BC, P] before the chunk):
     F <- e F + (1 - e) x[s-1],  Tn = x[s-1] - w F,  out[s] = N(sign T_old),  T_old <- Tn
   with VirtualRetina's smooth rectifier N (i0, v0, lam, saturation G).  States xp, F, Tr [BC, P] in place.
   Every value is independent of the others: threads share the values for the whole chunk. */
void NAME(convis_ganglion)(int64_t T, int64_t BC, int64_t P, const REAL *x, REAL *out, REAL *XP,
                           REAL *F, REAL *TR, double e_d, double w_d, double sign_d, double v0_d, double i0_d,
                           double lam_d, double sat_d) {
    const REAL e = (REAL)e_d, ge = (REAL)(1 - e_d), w = (REAL)w_d, sign = (REAL)sign_d;
    const REAL v0 = (REAL)v0_d, i0 = (REAL)i0_d, lam = (REAL)lam_d, g = (REAL)(sat_d - i0_d);
    const REAL i02 = i0 * i0;
#pragma omp parallel if (T * BC * P >= CONVIS_PARALLEL_TOTAL)
    {
        int64_t p0, p1;
        convis_share(P, &p0, &p1);
        for (int64_t b = 0; b < BC; b++) {
            REAL *xp = XP + b * P, *fs = F + b * P, *tr = TR + b * P;
            for (int64_t s = 0; s < T; s++) {
                const REAL *xin = s == 0 ? xp : x + (b * T + s - 1) * P;
                REAL *o = out + (b * T + s) * P;
                for (int64_t p = p0; p < p1; p++) {
                    const REAL f = e * fs[p] + ge * xin[p], tn = xin[p] - w * f;
                    const REAL d = (sign * tr[p] - v0) * lam;
                    const REAL neg = d < 0 ? -d : 0, pos = d > 0 ? d : 0;
                    o[p] = i02 / (i0 + neg) + pos * g / (pos + g);
                    fs[p] = f;
                    tr[p] = tn;
                }
            }
            if (T > 0)
                for (int64_t p = p0; p < p1; p++) xp[p] = x[(b * T + T - 1) * P + p];
        }
    }
}
