/* Counter-based normal numbers (convis.noise): out[s, i] = (REAL)(scale * z) for the steps k0 .. k0+T-1 of
   stream j and the indices 0 .. M-1, each z a function of (base, step, stream, index) alone:
     row = mix(base + (4 k + j) G1),  h = mix(row + (i + 1) G2)   (64-bit arithmetic, mix: SplitMix64's finaliser)
     z = sign sqrt(-2 log u1) cos(pi f / 2)   (Box-Muller; u1 in (0, 1], f in [0, 1) and the sign from bits of h)
   with the logarithm (atanh series) and the cosine (Taylor series) as fixed polynomials in the precision of
   the result, the same operations in the same order as convis.noise's torch version.  normals_body.h is
   included once per precision with REAL the type, NAME(f) the name f with the precision's suffix, and the
   constants of its bit layout (u1 from the bits of h above U1_SHIFT, f from those of F_MASK above the lowest,
   the exponent and mantissa fields of REAL in BITS) and its polynomials. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "convis_loops.h"
#include "convis_threads.h"

#define G1 0x9e3779b97f4a7c15ULL
#define G2 0xd1b54a32d192ed03ULL

static inline uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* double: u1 from 32 bits, f from 31; log series 1/3 .. 1/21 in t2, cos series (-1)^n/(2n)! for n = 1 .. 11 in x2 */
#define REAL double
#define NAME(f) f##_f64
#define ONE 1.0
#define TWO 2.0
#define U1_SHIFT 32
#define U1_SCALE 0x1p-32
#define F_MASK 0x7fffffffULL
#define F_SCALE 0x1p-31
#define BITS uint64_t
#define EBITS int64_t
#define E_SHIFT 52
#define E_MASK 0x7ffULL
#define E_BIAS 1022
#define KEEP 0x800fffffffffffffULL
#define HALF_EXP 0x3fe0000000000000ULL
#define SQRT sqrt
#define SQRT_HALF 0.7071067811865476
#define LN2 0.6931471805599453
#define HALF_PI 1.5707963267948966
#define LOG_POLY(v) (((((((((0.047619047619047616 * v + 0.05263157894736842) * v + 0.058823529411764705) * v \
    + 0.06666666666666667) * v + 0.07692307692307693) * v + 0.09090909090909091) * v + 0.1111111111111111) * v \
    + 0.14285714285714285) * v + 0.2) * v + 0.3333333333333333)
#define COS_POLY(v) ((((((((((-8.896791392450574e-22 * v + 4.110317623312165e-19) * v + -1.5619206968586225e-16) \
    * v + 4.779477332387385e-14) * v + -1.1470745597729725e-11) * v + 2.08767569878681e-09) * v \
    + -2.755731922398589e-07) * v + 2.48015873015873e-05) * v + -0.001388888888888889) * v + 0.041666666666666664) \
    * v + -0.5)
#include "normals_body.h"
#undef REAL
#undef NAME
#undef ONE
#undef TWO
#undef U1_SHIFT
#undef U1_SCALE
#undef F_MASK
#undef F_SCALE
#undef BITS
#undef EBITS
#undef E_SHIFT
#undef E_MASK
#undef E_BIAS
#undef KEEP
#undef HALF_EXP
#undef SQRT
#undef SQRT_HALF
#undef LN2
#undef HALF_PI
#undef LOG_POLY
#undef COS_POLY

/* float: u1 from 24 bits, f from 24; log series 1/3 .. 1/11, cos series to n = 7, every constant
   rounded to float (so that the literal is exact) */
#define REAL float
#define NAME(f) f##_f32
#define ONE 1.0f
#define TWO 2.0f
#define U1_SHIFT 40
#define U1_SCALE 0x1p-24f
#define F_MASK 0xffffffULL
#define F_SCALE 0x1p-24f
#define BITS uint32_t
#define EBITS int32_t
#define E_SHIFT 23
#define E_MASK 0xffu
#define E_BIAS 126
#define KEEP 0x807fffffu
#define HALF_EXP 0x3f000000u
#define SQRT sqrtf
#define SQRT_HALF 0.7071067690849304f
#define LN2 0.6931471824645996f
#define HALF_PI 1.5707963705062866f
#define LOG_POLY(v) ((((0.09090909361839294f * v + 0.1111111119389534f) * v + 0.1428571492433548f) * v \
    + 0.20000000298023224f) * v + 0.3333333432674408f)
#define COS_POLY(v) ((((((-1.147074536050896e-11f * v + 2.0876755879584152e-09f) * v + -2.755731998149713e-07f) \
    * v + 2.4801587642286904e-05f) * v + -0.0013888889225199819f) * v + 0.0416666679084301f) * v + -0.5f)
#include "normals_body.h"
