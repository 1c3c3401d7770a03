/* The body of normals.c, included once per precision (see there); no include guard. */
void NAME(convis_normals)(int64_t T, int64_t M, uint64_t base, int64_t k0, int64_t j, double scale_d,
                          REAL *out) {
    const REAL scale = (REAL)scale_d;
#pragma omp parallel if (T * M >= CONVIS_PARALLEL_TOTAL)
    {
        int64_t i0, i1;
        convis_share(M, &i0, &i1);       /* threads share the indices (each number is a function of its own) */
        for (int64_t s = 0; s < T; s++) {
            const uint64_t row = mix(base + (uint64_t)(4 * (k0 + s) + j) * G1);
            REAL *o = out + s * M;
            for (int64_t i = i0; i < i1; i++) {
                const uint64_t h = mix(row + (uint64_t)(i + 1) * G2);
                const REAL u1 = (REAL)((h >> U1_SHIFT) + 1) * U1_SCALE;
                const REAL f = (REAL)((h >> 1) & F_MASK) * F_SCALE;
                const REAL sign = ONE - TWO * (REAL)(h & 1ULL);
                BITS bits; memcpy(&bits, &u1, sizeof bits);
                REAL e = (REAL)((EBITS)((bits >> E_SHIFT) & E_MASK) - E_BIAS), m;
                bits = (bits & KEEP) | HALF_EXP; memcpy(&m, &bits, sizeof bits);
                const int small = m < SQRT_HALF;
                m = small ? m * TWO : m;
                e = small ? e - ONE : e;
                const REAL t = (m - ONE) / (m + ONE), t2 = t * t;
                const REAL lg = e * LN2 + (TWO * t + TWO * t * t2 * LOG_POLY(t2));
                const REAL x = f * HALF_PI, x2 = x * x;
                const REAL c = x2 * COS_POLY(x2) + ONE;
                o[i] = scale * (sign * (SQRT(-TWO * lg) * c));
            }
        }
    }
}
