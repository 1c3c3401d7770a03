/* The one signature table of convis' compiled loops.

   Every .c file in this folder includes this header, so a definition that differs from its declaration here
   does not compile; convis.native hands the same text (without its preprocessor lines) to cffi's ffi.cdef,
   so the Python bindings read these declarations and nothing else.  Keep to what cffi's parser reads: plain
   declarations, no macros, no attributes, no restrict (it is written on the definitions).

   Arrays are contiguous, in the order of the dimensions given, float or double as the suffix says (f32, f64).
   What each loop computes is described at its definition and at the Python function that calls it. */
#ifndef CONVIS_LOOPS_H
#define CONVIS_LOOPS_H
#include <stdint.h>

/* A blur operator of the leaky heat loops (heat.c).
   mode 0, separable: RG [HP / ROWS, H, ROWS] the rows matrix by groups of ROWS rows, group g using the
     columns [glo[g], ghi[g]); D [2K+1, WP] the columns matrix by diagonals; scratch t [H, WP] and
     t2 [HP, WP + 2K] (WP = W rounded up to LANES, HP = H rounded up to ROWS).
   mode 1, one matrix per line (VirtualRetina's log-polar scheme): DX [H, 2KX+1, WP] the x matrices by
     diagonals, row i using diagonals [xlo[i], xhi[i]); EY [H, 2KY+1, WP] the y matrices by diagonals per
     output row, using [ylo[i], yhi[i]); scratch t [H, WP + 2KX] and t2 [H + 2KY, WP].
   mode 2, separable as the recursive Deriche filter: along y with the coefficients cr when use_rows, then
     along x with cc when use_cols (c0, c1, c2, c3, b1, b2, (c0 + c1)/(1 - b1 - b2), (c2 + c3)/(1 - b1 - b2));
     scratch t, t2, t3, t4 of H*W doubles.
   mode 3, one recursive filter per line (VirtualRetina's log-polar scheme itself, for wide blurs): along x then
     along y, with each pixel's own coefficients LC [6, H, W] (c0, c1, c2, c3, b1, b2) and the identity where
     LK [H, W] is not 0 (sigma below 0.1 pixel), then times e; in double precision; scratch t, t2, t3 of H*W
     doubles.
   Scratch is zero-filled by the caller and belongs to one operator. */
typedef struct {
    int64_t mode;
    const void *RG; const int64_t *glo, *ghi; const void *D; int64_t K;
    const void *DX; int64_t KX; const int64_t *xlo, *xhi; const void *EY; int64_t KY; const int64_t *ylo, *yhi;
    void *t, *t2;
    int64_t use_rows, use_cols; double cr[8], cc[8]; void *t3, *t4;
    const double *LC, *LK; double e;
} convis_blur;

/* recursion.c: y[p, s, q] = e y[p, s-1, q] + g x[p, s, q]; x, y [P, T, Q], y0 [P, Q]. */
void convis_recursion_f64(int64_t P, int64_t T, int64_t Q, const double *x, double *y, const double *y0,
                          double e, double g);
void convis_recursion_f32(int64_t P, int64_t T, int64_t Q, const float *x, float *y, const float *y0,
                          double e, double g);

/* heat.c: the leaky heat equation; u, out [BC, T, H, W], y0 [BC, H, W]. */
void convis_heat_f64(int64_t T, int64_t BC, int64_t H, int64_t W, const double *u, double *out,
                     const double *y0, double ratio, const convis_blur *B);
void convis_heat_f32(int64_t T, int64_t BC, int64_t H, int64_t W, const float *u, float *out,
                     const float *y0, double ratio, const convis_blur *B);

/* heat.c: the outer plexiform layer; x, out [BC, T, H, W]; states C, U, R, S [BC, H, W]; cn, sn [H, W]. */
void convis_opl_f64(int64_t T, int64_t BC, int64_t H, int64_t W, const double *x, double *out,
                    double *C, double *U, double *R, double *S, double a_c, double c_c, double a_s,
                    int64_t undershoot, double e_u, double w_u, double offset,
                    const convis_blur *Bc, const convis_blur *Bs, double *cn, double *sn);
void convis_opl_f32(int64_t T, int64_t BC, int64_t H, int64_t W, const float *x, float *out,
                    float *C, float *U, float *R, float *S, double a_c, double c_c, double a_s,
                    int64_t undershoot, double e_u, double w_u, double offset,
                    const convis_blur *Bc, const convis_blur *Bs, float *cn, float *sn);

/* heat.c: the contrast gain control; x, out [BC, T, H, W]; states XP, V, GA [BC, H, W]; ei, at, q, qb [H, W]. */
void convis_cgc_f64(int64_t T, int64_t BC, int64_t H, int64_t W, const double *x, double *out,
                    double *XP, double *V, double *GA, double amp, double g0, double lam, double dt,
                    double ea, double sat, int64_t feedback, const convis_blur *B, double *ei, double *at,
                    double *q, double *qb);
void convis_cgc_f32(int64_t T, int64_t BC, int64_t H, int64_t W, const float *x, float *out,
                    float *XP, float *V, float *GA, double amp, double g0, double lam, double dt,
                    double ea, double sat, int64_t feedback, const convis_blur *B, float *ei, float *at,
                    float *q, float *qb);

/* heat.c: a ganglion layer's input current; x, out [BC, T, P]; states XP, F, TR [BC, P]. */
void convis_ganglion_f64(int64_t T, int64_t BC, int64_t P, const double *x, double *out, double *XP,
                         double *F, double *TR, double e, double w, double sign, double v0, double i0,
                         double lam, double sat);
void convis_ganglion_f32(int64_t T, int64_t BC, int64_t P, const float *x, float *out, float *XP,
                         float *F, float *TR, double e, double w, double sign, double v0, double i0,
                         double lam, double sat);

/* lif.c: the ganglion cells' leaky integrate-and-fire step; vinf, counts [T, M]; e_refr [T, 2, M] or NULL;
   v, rf [M]; the spike log (step, cell, P Q) up to log_cap entries; returns the number of spikes. */
int64_t convis_lif2_f64(int64_t T, int64_t M, const double *vinf, const double *e_refr, double *v, double *rf,
                        double *counts, double decay, double e_mu, int64_t *log_step, int64_t *log_cell,
                        double *log_pq, int64_t log_cap);
int64_t convis_lif2_f32(int64_t T, int64_t M, const float *vinf, const double *e_refr, double *v, double *rf,
                        float *counts, double decay, double e_mu, int64_t *log_step, int64_t *log_cell,
                        double *log_pq, int64_t log_cap);

/* normals.c: counter-based normal numbers; out [T, M]. */
void convis_normals_f64(int64_t T, int64_t M, uint64_t base, int64_t k0, int64_t j, double scale, double *out);
void convis_normals_f32(int64_t T, int64_t M, uint64_t base, int64_t k0, int64_t j, double scale, float *out);

#endif
