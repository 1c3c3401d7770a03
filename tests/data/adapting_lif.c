/* An adapting leaky integrate-and-fire neuron, stepped in time (tests/test_user_compiled.py loads it with
   convis.compiled.load and holds it against the torch loop of the same equations).

       tau_m dv/dt = -(v - v_rest) - a + I        v, v_rest, a, I in mV (I: input current times membrane resistance)
       tau_a da/dt = -a                           tau_m, tau_a in seconds
       v >= v_th:  a spike;  v -> v_reset,  a -> a + b

   Exponential Euler over a step of dt seconds: the input I and the adaptation a are held at their values from
   the start of the step, so that v relaxes exactly towards v_inf = v_rest - a + I,
       v <- v_inf + (v - v_inf) em,   em = exp(-dt / tau_m),
   and a decays exactly, a <- a ea, ea = exp(-dt / tau_a); then the threshold is checked.

   P groups of Q neurons over T steps: input[p, t, q] (contiguous), the states v[p, q] and a[p, q] (read as the
   state before the first step and overwritten with the state after the last one) and spikes[p, t, q] (0 or 1).
   The operations and their order are those of the torch loop, so that with strict IEEE arithmetic (no fused
   multiply-adds) both give the same numbers. */
#include <stdint.h>

void adapting_lif_f64(int64_t P, int64_t T, int64_t Q, const double *input, double *v, double *a,
                      double *spikes, double em, double ea, double v_rest, double v_th, double v_reset, double b)
{
    for (int64_t p = 0; p < P; p++) {
        double *vp = v + p * Q, *ap = a + p * Q;
        for (int64_t t = 0; t < T; t++) {
            const double *in = input + (p * T + t) * Q;
            double *out = spikes + (p * T + t) * Q;
            for (int64_t q = 0; q < Q; q++) {
                double v_inf = (v_rest - ap[q]) + in[q];
                double vq = v_inf + (vp[q] - v_inf) * em;
                double aq = ap[q] * ea;
                int spike = vq >= v_th;
                vp[q] = spike ? v_reset : vq;
                ap[q] = spike ? aq + b : aq;
                out[q] = spike ? 1.0 : 0.0;
            }
        }
    }
}
