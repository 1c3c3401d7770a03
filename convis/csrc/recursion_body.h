/* The body of recursion.c, included once per precision (REAL, NAME: see there); no include guard. */
/* y[p, s, q] = e y[p, s-1, q] + g x[p, s, q] with y[p, -1, q] = y0[p, q]; x, y: [P, T, Q], y0: [P, Q]. */
void NAME(convis_recursion)(int64_t P, int64_t T, int64_t Q, const REAL *x, REAL *y, const REAL *y0,
                            double e_d, double g_d) {
    const REAL e = (REAL)e_d, g = (REAL)g_d;
    for (int64_t p = 0; p < P; p++) {
        const REAL *prev = y0 + p * Q;
        for (int64_t s = 0; s < T; s++) {
            const REAL *xs = x + (p * T + s) * Q;
            REAL *ys = y + (p * T + s) * Q;
            for (int64_t q = 0; q < Q; q++) ys[q] = e * prev[q] + g * xs[q];
            prev = ys;
        }
    }
}
