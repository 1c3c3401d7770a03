"""convis.fitting.fit_least_squares: trust-region Gauss-Newton on a single retina stage (the OPL of
derived_linear_cgc on 30 frames of 10 x 10 pixels of noise, float64, a few milliseconds a run): recovery,
the choice of parameters and outputs, missing target entries, the callback, bounds, the lock and the state."""
import threading

import numpy as np
import pytest
import torch

import convis
import convis.fitting as fitting
from helpers import reference_path

NAMES = ['sigma_surround', 'relative_weight']


pytestmark = pytest.mark.usefixtures('one_torch_thread')


def opl():
    """The OPL of the linear_cgc retina (sigma_surround 0.3 deg, relative_weight 1) at 20 steps/s, 10 px/deg."""
    r = convis.retina.Retina(config=reference_path('virtualretina', 'configs', 'derived_linear_cgc.xml')).double()
    return r.opl


def stimulus(seed=0):
    return 255 * np.random.RandomState(seed).rand(30, 10, 10)


def recording(layer, x):
    with layer.fresh_state(), torch.no_grad():
        return layer.run(x)[0].clone()


def start_off(layer, names=NAMES):
    """Sets the parameters 20 % off (x1.2, x0.8, ...); returns their true values."""
    true = {n: float(getattr(layer, n)) for n in names}
    for k, n in enumerate(names):
        getattr(layer, n).set(true[n] * (1.2 if k % 2 == 0 else 0.8))
    return true


def errors(layer, true):
    return {n: abs(float(getattr(layer, n)) / v - 1) for n, v in true.items()}


def test_recovers_two_parameters_from_20_percent_off():
    layer = opl()
    x = stimulus()
    y = recording(layer, x)
    true = start_off(layer)
    result = fitting.fit_least_squares(layer, x, y, NAMES)
    assert max(errors(layer, true).values()) < 1e-4, (errors(layer, true), result['message'])
    assert result['success'] and result['loss'] < 1e-12 < 1e-3 < result['initial_loss']
    assert result['parameters'] == {n: float(getattr(layer, n)) for n in NAMES}
    assert result['coordinates'] == NAMES and result['gauss_newton_hessian'].shape == (2, 2)
    # a run per step (the first one included) and 2 per parameter for each Jacobian
    assert result['evaluations'] == result['steps'] + 4 * result['jacobians']
    assert set(result) == {'parameters', 'loss', 'initial_loss', 'evaluations', 'steps', 'jacobians', 'seconds',
                           'message', 'status', 'success', 'coordinates', 'gauss_newton_hessian'}


def test_linear_parameters_and_outputs_by_key_index_or_callable():
    layer = opl()
    x = stimulus(1)
    y = recording(layer, x)
    for output in ('output', 0, lambda o: o[0] * 2.0):
        true = start_off(layer)
        target = y * 2.0 if callable(output) else y
        fitting.fit_least_squares(layer, x, target, NAMES, output=output, log_parameters=False)
        assert max(errors(layer, true).values()) < 1e-4, output
        for n, v in true.items():
            getattr(layer, n).set(v)


def test_the_default_names_are_those_that_require_a_gradient():
    layer = opl()
    x = stimulus(2)
    y = recording(layer, x)
    true = start_off(layer)
    layer.fit_parameters(NAMES)
    before = {n: p.requires_grad for n, p in layer.named_parameters()}
    result = fitting.fit_least_squares(layer, x, y)
    assert sorted(result['parameters']) == sorted(NAMES)
    assert max(errors(layer, true).values()) < 1e-4
    assert {n: p.requires_grad for n, p in layer.named_parameters()} == before


def test_names_are_checked():
    layer = opl()
    x = stimulus()
    y = recording(layer, x)
    with pytest.raises(ValueError, match='did you mean sigma_surround'):
        fitting.fit_least_squares(layer, x, y, ['sigma_surrond'])
    with pytest.raises(ValueError, match='no parameter of the OPL requires a gradient'):
        fitting.fit_least_squares(layer.requires_grad_(False), x, y)
    with pytest.raises(ValueError, match='name at least one'):
        fitting.fit_least_squares(layer, x, y, [])
    with pytest.raises(ValueError, match=r"undershoot_enabled is not a continuous value \(kind 'bool'\)"):
        fitting.fit_least_squares(layer, x, y, ['undershoot_enabled'])
    with pytest.raises(ValueError, match='named twice'):
        fitting.fit_least_squares(layer, x, y, ['lambda_opl', layer.lambda_opl])
    with pytest.raises(ValueError, match='log_parameters names tau_center, which are not fitted'):
        fitting.fit_least_squares(layer, x, y, NAMES, log_parameters=['tau_center'])


def test_bad_input_is_refused_before_the_model_changes():
    layer = opl()
    x = stimulus()
    y = recording(layer, x)
    values = {n: float(p) for n, p in layer.named_parameters()}
    with pytest.raises(ValueError, match=r'shape \(1, 1, 30, 10, 10\) but the target has shape \(1, 1, 29, 10, 10\)'):
        fitting.fit_least_squares(layer, x, y[:, :, :29], NAMES)
    with pytest.raises(ValueError, match='no recorded'):
        fitting.fit_least_squares(layer, x, torch.full_like(y, float('nan')), NAMES)
    with pytest.raises(ValueError, match='no recorded .* at or after t_skip=20'):
        nan_late = y.clone()
        nan_late[:, :, 20:] = float('nan')
        fitting.fit_least_squares(layer, x, nan_late, NAMES, t_skip=20)
    with pytest.raises(ValueError, match='infinite'):
        fitting.fit_least_squares(layer, x, y + float('inf'), NAMES)
    with pytest.raises(KeyError, match="no output 'bipolar'; outputs are output"):
        fitting.fit_least_squares(layer, x, y, NAMES, output='bipolar')
    with pytest.raises(TypeError, match='output must be'):
        fitting.fit_least_squares(layer, x, y, NAMES, output=1.5)
    with pytest.raises(ValueError, match='bounds must be a factor above 1'):
        fitting.fit_least_squares(layer, x, y, NAMES, bounds=0.5)
    with pytest.raises(ValueError, match='scale must be positive'):
        fitting.fit_least_squares(layer, x, y, NAMES, scale=0.0)
    assert {n: float(p) for n, p in layer.named_parameters()} == values
    with torch.no_grad():
        layer.lambda_opl.fill_(-1.0)    # allowed by its bounds only through the raw tensor
    with pytest.raises(ValueError, match='lambda_opl is -1 <= 0: it cannot be fitted in log space'):
        fitting.fit_least_squares(layer, x, y, ['lambda_opl'])


def test_nan_entries_of_the_target_are_left_out():
    """Garbage where the target is NaN-marked does not matter: with those entries (and the first frames,
    t_skip) replaced by NaN, the fit recovers the parameters as from the clean recording."""
    layer = opl()
    x = stimulus(3)
    y = recording(layer, x)
    spoilt = y.clone()
    spoilt[:, :, 10:20, 2:5] = 1e3
    spoilt[:, :, :5] = -1e3
    true = start_off(layer)
    fitting.fit_least_squares(layer, x, spoilt, NAMES, bounds=2.0)
    assert max(errors(layer, true).values()) > 1e-2           # the garbage misleads the fit
    for n, v in true.items():
        getattr(layer, n).set(v)
    true = start_off(layer)
    spoilt[:, :, 10:20, 2:5] = float('nan')
    result = fitting.fit_least_squares(layer, x, spoilt, NAMES, t_skip=5)
    assert max(errors(layer, true).values()) < 1e-4
    assert result['loss'] < 1e-12


def test_the_callback_sees_every_run_and_can_stop_the_fit():
    layer = opl()
    x = stimulus(4)
    y = recording(layer, x)
    start_off(layer)
    records = []
    result = fitting.fit_least_squares(layer, x, y, NAMES, callback=records.append)
    assert [r['evaluations'] for r in records] == list(range(1, result['evaluations'] + 1))
    assert set(records[0]) == {'evaluations', 'loss', 'parameters', 'seconds'}
    assert records[0]['loss'] == result['initial_loss'] and min(r['loss'] for r in records) <= result['loss']
    assert sorted(records[-1]['parameters']) == sorted(NAMES)

    class Stop(Exception):
        pass

    def stop(record):
        if record['evaluations'] == 8:
            raise Stop()
    start_off(layer)
    with pytest.raises(Stop):
        fitting.fit_least_squares(layer, x, y, NAMES, callback=stop)


def test_a_stopped_fit_leaves_the_parameters_of_the_lowest_loss_seen():
    layer = opl()
    x = stimulus(4)
    y = recording(layer, x)
    start_off(layer)
    records = []

    def stop(record):
        records.append(record)
        if record['evaluations'] == 12:
            raise KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        fitting.fit_least_squares(layer, x, y, NAMES, callback=stop)
    best = min(records, key=lambda r: r['loss'])
    assert best['loss'] < records[0]['loss']
    assert {n: float(getattr(layer, n)) for n in NAMES} == best['parameters']


def test_the_model_keeps_the_final_values_not_the_last_difference_step():
    layer = opl()
    x = stimulus(5)
    y = recording(layer, x)
    start_off(layer)
    records = []
    result = fitting.fit_least_squares(layer, x, y, NAMES, callback=records.append, max_evaluations=3)
    assert result['status'] == 0    # stopped by max_evaluations: the last run was a difference step
    assert records[-1]['parameters'] != result['parameters']
    assert {n: float(getattr(layer, n)) for n in NAMES} == result['parameters']
    assert result['loss'] == pytest.approx(float(((recording(layer, x) - y) ** 2).mean() / y.var(unbiased=False)),
                                           rel=1e-9)


def test_bounds_the_factor_and_the_parameters_own():
    layer = opl()
    x = stimulus(6)
    y = recording(layer, x)
    layer.sigma_surround.set(0.1)             # the truth, 0.3, is 3 times the start
    fitting.fit_least_squares(layer, x, y, ['sigma_surround'], bounds=2.0)
    assert 0.2 * (1 - 1e-6) < float(layer.sigma_surround) <= 0.2      # scipy's trf stays inside the bounds
    layer.sigma_surround.set(0.1)
    fitting.fit_least_squares(layer, x, y, ['sigma_surround'], bounds={'sigma_surround': (None, 0.25)})
    assert 0.25 * (1 - 1e-6) < float(layer.sigma_surround) <= 0.25
    layer.sigma_surround.set(0.1)
    layer.sigma_surround.bounds = (0.0, 0.15)  # the parameter's own hard bound
    fitting.fit_least_squares(layer, x, y, ['sigma_surround'], log_parameters=False)
    assert 0.15 * (1 - 1e-6) < float(layer.sigma_surround) <= 0.15
    layer.sigma_surround.set(0.1)
    with pytest.raises(ValueError, match=r'sigma_surround: the start \[0.1\] is outside the bounds'):
        fitting.fit_least_squares(layer, x, y, ['sigma_surround'], bounds={'sigma_surround': (0.12, None)})
    with pytest.raises(ValueError, match='bounds names lambda_opl, which are not fitted'):
        fitting.fit_least_squares(layer, x, y, ['sigma_surround'], bounds={'lambda_opl': (1, 2)})


def test_every_run_holds_the_lock_which_is_free_between_runs():
    layer = opl()
    x = stimulus(7)
    y = recording(layer, x)
    start_off(layer)
    records, free_between = [], []

    def callback(record):
        records.append(record)
        got = []
        other = threading.Thread(target=lambda: got.append(layer.lock.acquire(timeout=30) and layer.lock.release()))
        other.start()
        other.join()
        free_between.append(bool(got) and got[0] is None)   # acquired (release() returns None)

    fit_done = threading.Event()
    result = {}

    def fit():
        result.update(fitting.fit_least_squares(layer, x, y, NAMES, callback=callback))
        fit_done.set()
    with layer.lock:
        worker = threading.Thread(target=fit)
        worker.start()
        fit_done.wait(0.5)                 # long enough for many runs of 2 ms if the lock were not needed
        assert not records and not fit_done.is_set()
    worker.join(300)
    assert fit_done.is_set() and result['success']
    assert len(free_between) == result['evaluations'] and all(free_between)


def test_the_state_after_the_fit_is_the_state_before():
    layer = opl()
    x = stimulus(8)
    y = recording(layer, x)
    true = start_off(layer)
    with torch.no_grad():
        layer.run(255 * np.random.RandomState(9).rand(7, 10, 10))      # some state, not the cleared one
    before = {k: v.clone() for k, v in layer.get_state().items() if v is not None}
    assert before
    fitting.fit_least_squares(layer, x, y, NAMES)
    after = {k: v for k, v in layer.get_state().items() if v is not None}
    assert sorted(after) == sorted(before)
    assert all(torch.equal(after[k], before[k]) for k in before)
    # each run started from the cleared state (as the recording did), else the fit would be off
    assert max(errors(layer, true).values()) < 1e-4


def test_every_element_of_an_array_parameter_is_fitted():
    """The 12 weights of a linear filter (an LN model without nonlinearity, population=True) from a shifted
    start, in linear coordinates (weights change sign); the values come back in the parameter's shape."""
    ln = convis.models.LN((3, 2, 2), population=True).double()
    x = np.random.RandomState(10).randn(40, 6, 6)
    ln.conv.set_weight(np.random.RandomState(11).randn(3, 2, 2))
    true = ln.conv.weight.detach().clone()
    y = recording(ln, x)
    with torch.no_grad():
        ln.conv.weight.mul_(0.8).add_(0.1)
    result = fitting.fit_least_squares(ln, x, y, ['conv.weight'], log_parameters=False)
    assert len(result['coordinates']) == 12 and result['coordinates'][3] == 'conv.weight[3]'
    assert np.shape(result['parameters']['conv.weight']) == tuple(true.shape)
    assert torch.allclose(ln.conv.weight, true, rtol=0, atol=1e-9)
    assert np.allclose(result['parameters']['conv.weight'], true.numpy(), rtol=0, atol=1e-9)
