/* The body of lif.c, included once per precision (REAL, NAME: see there); no include guard. */
static void NAME(lif_again)(double vi, double e1, double *v, double *rf, REAL *cnt) {
    double p = *v, q = vi / (vi - 1.0), n = 1.0, ve;
    for (;;) {
        p = (p * q) * e1;
        n += 1.0;
        if (p >= 1.0) { ve = 0.0; *rf = p; break; }
        ve = vi * (1.0 - p);
        *rf = 1.0;
        if (!(ve >= 1.0)) break;
    }
    *v = ve; *cnt = (REAL)n;
}

static inline __attribute__((always_inline)) int64_t NAME(lif_first)(
        int64_t M, const REAL *restrict vi_s, const double *restrict er, double *restrict v,
        double *restrict rf, REAL *restrict cnt, double decay, double e_mu, const int small) {
    int64_t again = 0;
    for (int64_t i = 0; i < M; i++) {
        double vi = vi_s[i], v0 = v[i], w = rf[i] * decay;
        double r0 = w >= 1.0 ? w : 1.0;
        w = w >= 1.0 ? 1.0 : w;
        double ve = v0 - (v0 - vi) * (1.0 - w);
        if (small && w < 0.5) ve = vi + w * (v0 - vi);
        double p = (w * ((vi - v0) / (vi - 1.0))) * (er ? er[i] : e_mu);
        double vf = vi * (1.0 - p);
        int64_t fire = ve >= 1.0, past = p >= 1.0, more = fire & !past & (vf >= 1.0);
        v[i] = fire ? (more ? p : (past ? 0.0 : vf)) : ve;
        rf[i] = fire ? (past ? p : 1.0) : r0;
        cnt[i] = (REAL)(fire - 2 * more);
        again += more;
    }
    return again;
}

int64_t NAME(convis_lif2)(int64_t T, int64_t M, const REAL *restrict vinf, const double *restrict e_refr,
                          double *restrict v, double *restrict rf, REAL *restrict counts, double decay, double e_mu,
                          int64_t *log_step, int64_t *log_cell, double *log_pq, int64_t log_cap) {
    int64_t nlog = 0;
    if (log_cap == 0) {        /* cells are independent: threads share them for the whole chunk */
#pragma omp parallel if (T * M >= CONVIS_PARALLEL_TOTAL)
        {
            int64_t m0, m1;
            convis_share(M, &m0, &m1);
            const int64_t n = m1 - m0;
            for (int64_t s = 0; s < T; s++) {
                const REAL *restrict vi_s = vinf + s * M + m0;
                const double *restrict er = e_refr ? e_refr + s * 2 * M + m0 : 0;
                REAL *restrict cnt = counts + s * M + m0;
                double *vm = v + m0, *rm = rf + m0;
                int64_t again = decay < 0.5 ? (er ? NAME(lif_first)(n, vi_s, er, vm, rm, cnt, decay, 0.0, 1)
                                                  : NAME(lif_first)(n, vi_s, 0, vm, rm, cnt, decay, e_mu, 1))
                                            : (er ? NAME(lif_first)(n, vi_s, er, vm, rm, cnt, decay, 0.0, 0)
                                                  : NAME(lif_first)(n, vi_s, 0, vm, rm, cnt, decay, e_mu, 0));
                for (int64_t i = 0; again && i < n; i++)
                    if (cnt[i] < 0) {
                        NAME(lif_again)(vi_s[i], er ? er[M + i] : e_mu, vm + i, rm + i, cnt + i);
                        again--;
                    }
            }
        }
        return 0;
    }
    for (int64_t s = 0; s < T; s++) {            /* with the spike log, in the log's order: one thread */
        const REAL *restrict vi_s = vinf + s * M;
        const double *restrict er = e_refr ? e_refr + s * 2 * M : 0;
        REAL *restrict cnt = counts + s * M;
        for (int64_t i = 0; i < M; i++) {
            double vi = vi_s[i], v0 = v[i], w = rf[i] * decay, ve;
            if (w >= 1.0) { rf[i] = w; w = 1.0; } else rf[i] = 1.0;
            ve = w < 0.5 ? vi + w * (v0 - vi) : v0 - (v0 - vi) * (1.0 - w);
            if (ve >= 1.0) {
                double q = (vi - v0) / (vi - 1.0), p = w, n = 0.0;
                for (;;) {
                    double pq = p * q;
                    if (nlog < log_cap) { log_step[nlog] = s; log_cell[nlog] = i; log_pq[nlog] = pq; }
                    nlog++;
                    p = pq * (er ? er[(n < 1.0 ? 0 : M) + i] : e_mu);
                    n += 1.0;
                    if (p >= 1.0) { ve = 0.0; rf[i] = p; break; }
                    ve = vi * (1.0 - p);
                    rf[i] = 1.0;
                    if (!(ve >= 1.0)) break;
                    q = vi / (vi - 1.0);
                }
                cnt[i] = (REAL)n;
            }
            v[i] = ve;
        }
    }
    return nlog;
}
