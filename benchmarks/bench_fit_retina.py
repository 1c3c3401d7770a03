"""Recovery of the retina's parameters from VirtualRetina's reference runs (tests/data/virtualretina), from a
start 30 % off (alternately x1.3 and x0.7), fitted on the grating runs only: the full linear_cgc recovery
(OPL and gain control, 11 parameters, full 64 x 64 maps) that is too slow for the tests, with the recovered
values, % errors and the time per epoch.  Run with ``python -m benchmarks fit_retina`` (float64, 1 thread).
"""
import os
import sys
import time

import numpy as np
import torch

import convis
import convis.fitting as fitting
import convis.losses as losses

TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests')
OPL = ['opl.sigma_center', 'opl.tau_center', 'opl.sigma_surround', 'opl.tau_surround', 'opl.lambda_opl',
       'opl.relative_weight']
CGC = ['bipolar.lambda_amp', 'bipolar.g_leak', 'bipolar.input_amp', 'bipolar.tau', 'bipolar.adaptation_sigma']


def _reference(name):
    sys.path.insert(0, TESTS)
    from helpers import reference_path, virtualretina_reference
    return virtualretina_reference(name), reference_path


def recover(stages=('opl', 'bipolar'), names=OPL + CGC, epochs=15):
    """Fits ``names`` of the linear_cgc retina to the recorded maps of ``stages`` (stored crops every second
    step and full snapshots); prints one line per epoch and the final errors."""
    d, path = _reference('grating__linear_cgc')
    r = convis.retina.Retina(config=path('virtualretina', 'configs', 'derived_linear_cgc.xml'), record=('opl',)).double()
    ps = dict(r.named_parameters())
    true = {n: float(ps[n]) for n in names}
    with torch.no_grad():
        for k, n in enumerate(names):
            ps[n].mul_(1.3 if k % 2 == 0 else 0.7)
    y = np.full((1, len(stages), 200, 64, 64), np.nan)
    y0, y1, x0, x1 = d['crop_yx']
    for c, k in enumerate(stages):
        y[0, c][d['crop_steps'], y0:y1, x0:x1] = d[k]
        y[0, c][d['snapshot_steps']] = d[k + '_snapshots']
    loss = losses.mse(output=list(stages), scale=[float(np.nanstd(y[0, c])) for c in range(len(stages))])
    r.fit_parameters(names)
    for rec in fitting.iter_fit(r, d['stimulus'], y, loss, epochs=epochs, tolerance=1e-12):
        print('epoch %d  loss %.3e  %d evaluations  %.1f s (%.2f s per evaluation)'
              % (rec['epoch'], rec['loss'], rec['evaluations'], rec['seconds'], rec['seconds'] / rec['evaluations']))
    for n in names:
        print('  %-26s true %-10.6g fitted %-12.6g error %+.4f %%' % (n, true[n], float(ps[n]), 100 * (float(ps[n]) / true[n] - 1)))


def recover_gauss_newton(names=OPL + CGC, stages=('opl', 'bipolar')):
    """All ``names`` from 30 % off by trust-region Gauss-Newton in log-parameters
    (:func:`convis.fitting.fit_least_squares`: scipy's least_squares, Jacobian by central differences of the
    compiled run) on the recorded maps of ``stages`` (crops every second step and full snapshots, each stage
    divided by its spread); prints the errors, the time and the condition number of the Gauss-Newton Hessian.
    LBFGS stalls on this problem (see :func:`recover`): the centre and surround act mostly through
    sigma^2 / tau, a valley with a Gauss-Newton condition number of 1e8 over the 11 parameters."""
    d, path = _reference('grating__linear_cgc')
    r = convis.retina.Retina(config=path('virtualretina', 'configs', 'derived_linear_cgc.xml'), record=('opl',)).double()
    ps = dict(r.named_parameters())
    true = {n: float(ps[n]) for n in names}
    with torch.no_grad():
        for k, n in enumerate(names):
            ps[n].mul_(1.3 if k % 2 == 0 else 0.7)
    y = np.full((1, len(stages), 200, 64, 64), np.nan)
    y0, y1, x0, x1 = d['crop_yx']
    for c, k in enumerate(stages):
        y[0, c][d['crop_steps'], y0:y1, x0:x1] = d[k]
        y[0, c][d['snapshot_steps']] = d[k + '_snapshots']
    spread = np.array([np.nanstd(y[0, c]) for c in range(len(stages))])[None, :, None, None, None]
    result = fitting.fit_least_squares(r, d['stimulus'], y, names, scale=spread, bounds=2.0,
                                       output=lambda o: torch.cat([o[k] for k in stages], 1))
    seconds = result['seconds']
    print('%d iterations (Jacobians), %d runs of the model, %.0f s (%.1f s per iteration), loss %.3e, '
          'condition number %.1e: %s' % (result['jacobians'], result['evaluations'], seconds,
                                         seconds / result['jacobians'], result['loss'],
                                         np.linalg.cond(result['gauss_newton_hessian']), result['message']))
    for n in names:
        v = result['parameters'][n]
        print('  %-26s true %-10.6g fitted %-12.8g error %+.2e %%' % (n, true[n], v, 100 * (v / true[n] - 1)))


def main():
    torch.set_num_threads(1)
    start = time.perf_counter()
    print('linear_cgc, gain control (OPL at its true values):')
    recover(stages=('bipolar',), names=CGC, epochs=6)
    print('linear_cgc, OPL and gain control together (LBFGS):')
    recover()
    print('linear_cgc, OPL and gain control together (trust-region Gauss-Newton):')
    recover_gauss_newton()
    print('total %.0f s' % (time.perf_counter() - start))


if __name__ == '__main__':
    main()
