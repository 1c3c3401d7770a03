/* The leaky integrate-and-fire step of the ganglion cells (convis.functional.lif), with the
   membrane input Vinf and the counts in float or double: lif_body.h is included once per precision with
   REAL that type and NAME(f) the name f with the precision's suffix (f_f64, f_f32).

   The LIF step of convis.filters.ganglion over T steps for M cells, the same operations in the same
   order as the torch loops, in double precision (inputs in float or double).  rf holds
   exp(g_L * remaining refractory time); e_refr (or the constant e_mu) exp(g_L * refractory period).
   Without a log (log_cap = 0) each step is a branch-free pass (vectorised by the compiler) up to the
   first spike, with the cells firing again marked (count -1, P in v) for a second, scalar pass.
   Returns the number of spikes and logs (step, cell, P Q) up to log_cap entries.  Without a log, threads
   share the cells for the whole chunk (convis_threads.h); with one, the loop runs on one thread. */
#include <stdint.h>
#include "convis_loops.h"
#include "convis_threads.h"

#define REAL double
#define NAME(f) f##_f64
#include "lif_body.h"
#undef REAL
#undef NAME

#define REAL float
#define NAME(f) f##_f32
#include "lif_body.h"
#undef REAL
#undef NAME
