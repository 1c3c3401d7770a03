/* How the compiled loops share their work between OpenMP threads (nothing here is read by cffi).

   Built with OpenMP (convis.native.OPENMP) a loop runs on the threads of the process's OpenMP runtime, as
   many as omp_get_max_threads() of the calling thread allows (torch.set_num_threads sets it); built without,
   the pragmas are ignored and every loop runs on one thread.  Work is split by cells, or by rows of a map,
   never inside the arithmetic of one value: each value is computed by the same operations in the same order
   whatever the number of threads, so the results are bit for bit the same. */
#ifndef CONVIS_THREADS_H
#define CONVIS_THREADS_H
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Values per step from which a loop with a barrier per step (the leaky heat equations, OPL, gain control)
   uses several threads: below, one step is too short to pay for the threads' meeting. */
#define CONVIS_PARALLEL_STEP 1024
/* Values per call from which a loop without barriers (cells independent through the whole chunk: ganglion
   input, LIF, noise, first-order recursion) uses several threads. */
#define CONVIS_PARALLEL_TOTAL 32768

/* The calling thread's share [*lo, *hi) of n items split into contiguous ranges (all of them outside a
   parallel region). */
static inline void convis_share(int64_t n, int64_t *lo, int64_t *hi) {
#ifdef _OPENMP
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
    const int64_t t = 0, nt = 1;
#endif
    *lo = n * t / nt;
    *hi = n * (t + 1) / nt;
}

#endif
