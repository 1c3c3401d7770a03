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
    """All ``names`` from 30 % off by trust-region Gauss-Newton in log-parameters (scipy's least_squares,
    Jacobian by central differences of the compiled run) on the recorded maps of ``stages`` (crops every
    second step and full snapshots, each stage divided by its spread); prints the errors and the time.
    LBFGS stalls on this problem (see :func:`recover`): the centre and surround act mostly through
    sigma^2 / tau, a valley with a Gauss-Newton condition number of 1e8 over the 11 parameters."""
    from scipy.optimize import least_squares
    d, path = _reference('grating__linear_cgc')
    r = convis.retina.Retina(config=path('virtualretina', 'configs', 'derived_linear_cgc.xml'), record=('opl',)).double()
    ps = dict(r.named_parameters())
    true = {n: float(ps[n]) for n in names}
    y0, y1, x0, x1 = d['crop_yx']
    targets = [np.concatenate([d[k].ravel(), d[k + '_snapshots'].ravel()]).astype(np.float64) for k in stages]

    def residuals(z):
        with torch.no_grad():
            for n, v in zip(names, np.exp(z)):
                ps[n].fill_(float(v))
            r.clear_state()
            o = r.run(d['stimulus'])
        out = []
        for k, t in zip(stages, targets):
            m = o[k][0, 0].numpy()
            m = np.concatenate([m[d['crop_steps'], y0:y1, x0:x1].ravel(), m[d['snapshot_steps']].ravel()])
            out.append((m - t) / t.std())
        return np.concatenate(out)
    z0 = np.log([true[n] * (1.3 if k % 2 == 0 else 0.7) for k, n in enumerate(names)])
    t0 = time.perf_counter()
    fitted = least_squares(residuals, z0, bounds=(z0 - 0.7, z0 + 0.7), x_scale='jac', jac='3-point', diff_step=1e-3,
                           xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=100)
    seconds = time.perf_counter() - t0
    print('%d iterations (Jacobians), %d further evaluations, %.0f s (%.1f s per iteration), loss %.3e: %s'
          % (fitted.njev, fitted.nfev, seconds, seconds / fitted.njev, 2 * fitted.cost / fitted.fun.size, fitted.message))
    for n, z in zip(names, fitted.x):
        print('  %-26s true %-10.6g fitted %-12.8g error %+.2e %%' % (n, true[n], np.exp(z), 100 * (np.exp(z) / true[n] - 1)))


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
