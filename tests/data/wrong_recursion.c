/* A library with the recursion's functions that computes something else (as a planted library would):
   tests/test_native.py compiles it into the cache and checks that convis refuses it. */
#include <stdint.h>

void convis_recursion_f64(int64_t P, int64_t T, int64_t Q, const double *x, double *y, const double *y0,
                          double e, double g) {
    for (int64_t i = 0; i < P * T * Q; i++) y[i] = 42;
}

void convis_recursion_f32(int64_t P, int64_t T, int64_t Q, const float *x, float *y, const float *y0,
                          double e, double g) {
    for (int64_t i = 0; i < P * T * Q; i++) y[i] = 42;
}
