/* The body of recursion.c, included once per precision (REAL, NAME: see there); no include guard. */
/* y[p, s, q] = e y[p, s-1, q] + g x[p, s, q] with y[p, -1, q] = y0[p, q]; x, y: [P, T, Q], y0: [P, Q].
   Threads share the q (convis_threads.h). */
void NAME(convis_recursion)(int64_t P, int64_t T, int64_t Q, const REAL *x, REAL *y, const REAL *y0,
                            double e_d, double g_d) {
    const REAL e = (REAL)e_d, g = (REAL)g_d;
#pragma omp parallel if (P * T * Q >= CONVIS_PARALLEL_TOTAL)
    {
        int64_t q0, q1;
        convis_share(Q, &q0, &q1);
        for (int64_t p = 0; p < P; p++) {
            const REAL *prev = y0 + p * Q;
            for (int64_t s = 0; s < T; s++) {
                const REAL *xs = x + (p * T + s) * Q;
                REAL *ys = y + (p * T + s) * Q;
                for (int64_t q = q0; q < q1; q++) ys[q] = e * prev[q] + g * xs[q];
                prev = ys;
            }
        }
    }
}
