/* The first-order recursion (the exponential low-pass) of convis.native.recursion_loop, in float and double:
   recursion_body.h is included once per precision with REAL the element type and NAME(f) the function name
   f with the precision's suffix (f_f64, f_f32). */
#include <stdint.h>
#include "convis_loops.h"
#include "convis_threads.h"

#define REAL double
#define NAME(f) f##_f64
#include "recursion_body.h"
#undef REAL
#undef NAME

#define REAL float
#define NAME(f) f##_f32
#include "recursion_body.h"
#undef REAL
#undef NAME
