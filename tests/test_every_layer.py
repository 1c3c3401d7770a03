"""Properties every layer of convis must have, checked on every concrete layer class.

Each public :class:`convis.Layer` subclass found in ``convis.filters`` (with ``spiking``, ``retina``,
``spatial``), ``convis.models`` and ``convis.retina`` has an entry in :data:`CASES`: a factory (default
arguments where they give a non-trivial layer, small explicit ones otherwise; weights random) and an
input range that makes it do something (retina inputs in 0..255, spiking inputs that fire).  Each
property is a test parametrized by layer name:

* running whole or in chunks of 1, 7 and 16 frames gives the same output (spikes exactly);
* NaN / inf input and a 6-d input that is not a singleton in front raise a ValueError;
* every floating scalar Parameter has a doc, a unit (agreeing with its VirtualRetina key), bounds
  and a slider scale;
* a batch of 2 gives what two runs of 1 give;
* ``clear_state()`` makes a used layer behave as a fresh one;
* ``get_state``/``set_state`` reproduce a continuation exactly, also on a fresh layer;
* ``save_parameters``/``load_parameters`` keep every parameter;
* a long run chunk by chunk keeps memory flat.
"""
import gc
import importlib
import inspect
import pkgutil
import re
import tracemalloc
import warnings
from collections import namedtuple

import numpy as np
import pytest
import torch

import convis
from convis import filters as F
from convis import models as M
from convis.filters import retina as R
from convis.filters import spiking as S
from helpers import assert_chunking_exact

T, X, Y = 40, 8, 8

Case = namedtuple('Case', 'factory lo hi exact')
"""``factory()`` builds the layer; inputs are uniform in ``[lo, hi)``; ``exact``: outputs are spikes/events."""


def random_weights(layer, scale=0.3, seed=1):
    """Fills every ``weight`` parameter with normal random numbers (convolutions start at zero)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in layer.named_parameters():
        if name.split('.')[-1] == 'weight' and p.is_floating_point():
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
    return layer


def conv(ks=(3, 3, 3)):
    return random_weights(F.Conv3d(1, 1, ks))


CASES = {
    # filters.conv, filters.simple
    'filters.Conv1d': Case(lambda: random_weights(F.Conv1d(1, 1, 5)), -1, 1, False),
    'filters.Conv2d': Case(lambda: random_weights(F.Conv2d(1, 1, (3, 3))), -1, 1, False),
    'filters.Conv3d': Case(lambda: conv((5, 3, 3)), -1, 1, False),
    'filters.RF': Case(lambda: random_weights(F.RF(1, 1, (5, X, Y))), -1, 1, False),
    'filters.L': Case(lambda: random_weights(F.L((5, 3, 3))), -1, 1, False),
    'filters.LN': Case(lambda: random_weights(F.LN((5, 3, 3))), -1, 1, False),
    'filters.SmoothConv': Case(lambda: F.SmoothConv(n=2, tau=0.01, spatial_filter=(3, 3)), -1, 1, False),
    # filters.nonlinear
    'filters.NL': Case(lambda: F.NL(lambda x, a, b: a * torch.tanh(b * x), a=2.0, b=1.5), -1, 1, False),
    'filters.NLRectify': Case(F.NLRectify, -1, 1, False),
    'filters.NLRectifyScale': Case(F.NLRectifyScale, -1, 1, False),
    'filters.NLRectifySquare': Case(F.NLRectifySquare, -1, 1, False),
    'filters.NLSigmoid': Case(F.NLSigmoid, -1, 1, False),
    'filters.NLSquare': Case(F.NLSquare, -1, 1, False),
    'filters.Sum': Case(F.Sum, -1, 1, False),
    'filters.Diff': Case(F.Diff, -1, 1, False),
    # filters.spatial, filters.temporal
    'filters.SpatialRecursiveFilter': Case(F.spatial.SpatialRecursiveFilter, -1, 1, False),
    'filters.TimePadding': Case(lambda: F.TimePadding(5), -1, 1, False),
    'filters.Delay': Case(lambda: F.Delay(5), -1, 1, False),
    'filters.VariableDelay': Case(lambda: F.VariableDelay(np.arange(X * Y).reshape(X, Y) % 9), -1, 1, False),
    'filters.TemporalLowPassFilterRecursive': Case(F.TemporalLowPassFilterRecursive, -1, 1, False),
    'filters.TemporalHighPassFilterRecursive': Case(F.TemporalHighPassFilterRecursive, -1, 1, False),
    'filters.TemporalLowPassCascade': Case(lambda: F.TemporalLowPassCascade(n=2), -1, 1, False),
    # filters.spiking
    'spiking.LeakyIntegrateAndFireNeuron': Case(S.LeakyIntegrateAndFireNeuron, 0, 3, True),
    'spiking.RefractoryLeakyIntegrateAndFireNeuron': Case(S.RefractoryLeakyIntegrateAndFireNeuron, 0, 3, True),
    'spiking.IzhikevichNeuron': Case(S.IzhikevichNeuron, 0, 20, True),
    'spiking.RefractoryIzhikevichNeuron': Case(S.RefractoryIzhikevichNeuron, 0, 20, True),
    'spiking.AdaptiveIzhikevichNeuron': Case(S.AdaptiveIzhikevichNeuron, 0, 20, True),
    'spiking.FitzHughNagumo': Case(S.FitzHughNagumo, 0, 1, True),
    'spiking.HodgkinHuxley': Case(S.HodgkinHuxley, 0, 20, True),
    'spiking.Poisson': Case(S.Poisson, 0, 200, True),
    'spiking.IntegrativeMotionSensor': Case(S.IntegrativeMotionSensor, -1, 1, True),
    # filters.retina
    'retina.OPL': Case(R.OPL, 0, 255, False),
    'retina.Bipolar': Case(R.Bipolar, -50, 50, False),
    'retina.GanglionInput': Case(R.GanglionInput, -5, 5, False),
    'retina.GanglionSpiking': Case(R.GanglionSpiking, 0, 200, True),
    # models
    'models.List': Case(lambda: M.List(conv(), F.NLRectify()), -1, 1, False),
    'models.Dict': Case(lambda: M.Dict(conv=conv(), nl=F.NLSquare()), -1, 1, False),
    'models.Sequential': Case(lambda: M.Sequential(conv(), F.NLRectify()), -1, 1, False),
    'models.Parallel': Case(lambda: M.Parallel(conv(), F.Delay(2), sum='cat_1'), -1, 1, False),
    'models.L': Case(lambda: random_weights(M.L((5, 3, 3))), -1, 1, False),
    'models.RF': Case(lambda: random_weights(M.RF((5, 3, 3))), -1, 1, False),
    'models.LN': Case(lambda: random_weights(M.LN((5, 3, 3))), -1, 1, False),
    'models.RFN': Case(lambda: random_weights(M.RFN((5, 3, 3))), -1, 1, False),
    'models.LNLN': Case(lambda: random_weights(M.LNLN((5, 3, 3))), -1, 1, False),
    'models.LNLNLN': Case(lambda: random_weights(M.LNLNLN((5, 3, 3))), -1, 1, False),
    'models.LNLNLNLN': Case(lambda: random_weights(M.LNLNLNLN((5, 3, 3))), -1, 1, False),
    'models.LNCascade': Case(lambda: random_weights(M.LNCascade(n=2, kernel_dim=(5, 3, 3))), -1, 1, False),
    'models.LNFDLNF': Case(lambda: random_weights(M.LNFDLNF((5, 3, 3), feedback_length=10)), -1, 1, False),
    'models.McIntosh': Case(lambda: M.McIntosh(filter_size=(5, 3, 3), layer1_channels=4, layer2_channels=4), -1, 1,
                            False),
    'retina.Retina': Case(convis.retina.Retina, 0, 255, True),
}
NAMES = sorted(CASES)

NOISE_PARAMETERS = ('noise_sigma', 'random_init', 'refr_sigma')
"""Parameters that add randomness; set to 0 they make a neuron deterministic."""


def make(name, seed=0):
    """A fresh layer of case ``name``, built after seeding (layers with noise draw their seed then)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    return CASES[name].factory()


def stimulus(name, batch=1, t=T, seed=0):
    c = CASES[name]
    return c.lo + (c.hi - c.lo) * np.random.RandomState(seed).rand(batch, 1, t, X, Y)


def outputs(o):
    return [convis.utils.to_numpy(t).astype(np.float64) for t in o]


def assert_same(a, b, exact, what):
    a, b = outputs(a), outputs(b)
    assert len(a) == len(b), what
    for k, (u, v) in enumerate(zip(a, b)):
        assert u.shape == v.shape, '%s, output %d: shape %s != %s' % (what, k, u.shape, v.shape)
        if exact:
            assert np.array_equal(u, v), '%s, output %d: %d of %d values differ' % (what, k, (u != v).sum(), u.size)
        else:
            scale = max(np.abs(u).max(), 1e-12)
            err = np.abs(u - v).max()
            assert err <= max(1e-5 * scale, 1e-6), '%s, output %d: max |diff| %g (scale %g)' % (what, k, err, scale)


def silence(layer):
    """Sets every noise parameter to 0 (for properties that only hold without noise)."""
    for name, p in layer.named_parameters():
        if name.split('.')[-1] in NOISE_PARAMETERS:
            p.set(0.0)
    return layer


# ---------------------------------------------------------------------------------------------- coverage
def concrete_layer_classes():
    """Every public, concrete Layer class defined in convis.filters (all submodules), convis.models, convis.retina."""
    modules = [convis.filters, convis.models, convis.retina]
    for pkg in (convis.filters,):
        modules += [importlib.import_module(m.name) for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.')]
    found = set()
    for module in modules:
        for name, cls in vars(module).items():
            if (inspect.isclass(cls) and issubclass(cls, convis.Layer) and cls.__module__.startswith('convis.')
                    and not cls.__name__.startswith('_') and cls.forward is not convis.Layer.forward):
                found.add(cls)
    return found


def test_every_concrete_layer_class_has_a_case():
    covered = {type(make(name)) for name in NAMES}
    missing = sorted('%s.%s' % (c.__module__, c.__name__) for c in concrete_layer_classes() - covered)
    assert missing == [], 'layers without an entry in CASES: %s' % missing
    assert len(covered) == len(NAMES)


@pytest.mark.parametrize('name', NAMES)
def test_the_case_does_something(name):
    """The chosen input drives the layer: outputs are finite, not constant, and spiking layers spike."""
    out = outputs(make(name).run(stimulus(name)))
    for o in out:
        assert np.isfinite(o).all() and o.std() > 0
    if CASES[name].exact:
        assert all(np.array_equal(o, np.round(o)) for o in out) and out[0].sum() > 0


# ---------------------------------------------------------------------------------------------- chunking
@pytest.mark.parametrize('name', NAMES)
def test_chunked_runs_equal_a_whole_run(name):
    x = stimulus(name)
    if name == 'filters.TimePadding':
        # TimePadding returns each chunk with the history in front (T + length frames), by design: every
        # chunk's output must be the window of the whole padded input that ends at the chunk
        for dt in (1, 7, 16):
            whole = make(name).run(x)[0].numpy()
            layer = make(name)
            for s in range(0, T, dt):
                chunk = layer(x[:, :, s:s + dt])
                np.testing.assert_array_equal(chunk.numpy(), whole[:, :, s:s + chunk.shape[2]])
        return
    exact = CASES[name].exact
    assert_chunking_exact(lambda: make(name), x, dts=(1, 7, 16), rtol=0 if exact else 1e-5, atol=0 if exact else 1e-6)


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize('name', NAMES)
def test_nan_inf_and_wrong_rank_raise_value_errors(name):
    layer = make(name)
    for bad in (np.nan, np.inf, -np.inf):
        x = stimulus(name)
        x[0, 0, 3, 2, 2] = bad
        with pytest.raises(ValueError, match='NaN or infinite'):
            layer(x)
        with pytest.raises(ValueError, match='NaN or infinite'):
            layer.run(x, dt=7)
    x6 = np.stack([stimulus(name)] * 2)
    with pytest.raises(ValueError, match='6 dimensions'):
        layer(x6)
    with pytest.raises(ValueError, match='6 dimensions'):
        layer.run(x6, dt=7)
    # a singleton in front is read as 5-d
    assert_same(layer.run(stimulus(name)[None]), make(name).run(stimulus(name)), CASES[name].exact, '6-d singleton')


# ---------------------------------------------------------------------------------------------- parameters
UNIT_OF_KEY = {'__sec': 's', '__deg': 'deg', '__Hz': 'Hz'}


def scalar_parameters(layer):
    return [(n, p) for n, p in layer.named_parameters() if p.is_floating_point() and p.numel() == 1]


@pytest.mark.parametrize('name', NAMES)
def test_scalar_parameters_are_described(name):
    problems = []
    for n, p in scalar_parameters(make(name)):
        if not isinstance(p, convis.Parameter):
            problems.append('%s: a plain torch Parameter (no doc, unit, bounds)' % n)
            continue
        if not (isinstance(p.doc, str) and p.doc.strip()):
            problems.append('%s: no doc' % n)
        if not isinstance(p.unit, str):
            problems.append('%s: unit %r is not a string' % (n, p.unit))
        key = p.retina_config_key or ''
        for suffix, unit in UNIT_OF_KEY.items():
            if key.endswith(suffix) and p.unit != unit:
                problems.append('%s: the configuration key %r is in %s but the unit is %r' % (n, key, unit, p.unit))
        if re.search(r'(^|_)tau(_|$)', n.split('.')[-1]) and p.unit != 's':
            problems.append('%s: a time constant with unit %r' % (n, p.unit))
        lo_hi = p.bounds
        if not (isinstance(lo_hi, tuple) and len(lo_hi) == 2):
            problems.append('%s: bounds %r is not a (min, max) tuple' % (n, lo_hi))
        elif lo_hi[0] is not None and lo_hi[1] is not None and not lo_hi[0] <= lo_hi[1]:
            problems.append('%s: bounds %r are empty' % (n, lo_hi))
        else:
            v = float(p)
            if (lo_hi[0] is not None and v < lo_hi[0]) or (lo_hi[1] is not None and v > lo_hi[1]):
                problems.append('%s: the value %g is outside its bounds %r' % (n, v, lo_hi))
        if p.scale not in ('linear', 'log'):
            problems.append('%s: scale %r' % (n, p.scale))
        if p.scale == 'log' and p.slider_range is not None and not p.slider_range[0] > 0:
            problems.append('%s: a log slider from %r' % (n, p.slider_range[0]))
    assert problems == []


def test_report_scalar_parameters_without_a_slider_range(capsys):
    """Lists the scalar parameters that leave the slider range to the widgets (not a failure); those must be on
    a linear scale, where a range around the value can be made up."""
    missing = {}
    for name in NAMES:
        for m in make(name).modules():
            for n, p in m.named_parameters(recurse=False):
                if p.is_floating_point() and p.numel() == 1 and getattr(p, 'slider_range', None) is None:
                    missing['%s.%s' % (type(m).__name__, n)] = p
    with capsys.disabled():
        print('\nscalar parameters without slider_range (%d): %s' % (len(missing), ', '.join(sorted(missing))))
    assert [n for n, p in missing.items() if p.scale != 'linear'] == []


# ---------------------------------------------------------------------------------------------- batches
@pytest.mark.parametrize('name', NAMES)
def test_a_batch_of_two_equals_two_single_runs(name):
    x = stimulus(name, batch=2)
    if name == 'filters.Sum':
        # Sum adds its inputs stacked along dim 0, the batch axis by default: a batch of 2 becomes 1
        np.testing.assert_allclose(make(name)(x).numpy(), x.sum(axis=0, keepdims=True), rtol=1e-6, atol=1e-6)
        x1 = stimulus(name, batch=2, seed=1)
        assert_same(convis.filters.Sum(dim=1).run(x1), convis.Output([torch.as_tensor(x1, dtype=torch.float32)]),
                    False, 'Sum(dim=1) of one channel')
        return
    if name == 'spiking.Poisson':
        # the spikes are random draws (one generator for the whole batch): the batch elements differ from
        # single runs, but fire at the given rate: 100 Hz on average over 2 x 40 x 8 x 8 steps at 1 kHz
        o = make(name).run(np.full((2, 1, 400, X, Y), 100.0))[0].numpy()
        assert np.all(np.abs(o.mean(axis=(1, 2, 3, 4)) - 0.1) < 0.01)
        return
    exact = CASES[name].exact
    both = silence(make(name)).run(x, dt=16)
    singles = [silence(make(name)).run(x[k:k + 1], dt=16) for k in range(2)]
    joined = convis.Output([torch.cat([s[i] for s in singles], dim=0) for i in range(len(singles[0]))])
    assert_same(both, joined, exact, 'batch of 2 against two batches of 1')


# ---------------------------------------------------------------------------------------------- state
@pytest.mark.parametrize('name', NAMES)
def test_clear_state_makes_a_used_layer_fresh(name):
    x = stimulus(name)
    layer = make(name)
    layer.run(stimulus(name, seed=5), dt=16)
    layer.clear_state()
    assert_same(layer.run(x, dt=16), make(name).run(x, dt=16), CASES[name].exact, 'cleared layer against a fresh one')


@pytest.mark.parametrize('name', NAMES)
def test_get_and_set_state_reproduce_the_continuation(name):
    x = stimulus(name)
    a = make(name)
    a.run(x[:, :, :T // 2], dt=7)
    saved = a.get_state()
    first = a.run(x[:, :, T // 2:], dt=7)
    a.set_state(saved)
    again = a.run(x[:, :, T // 2:], dt=7)
    assert_same(again, first, True, 'continuation after set_state')
    fresh = make(name)
    fresh.set_state(saved)
    assert_same(fresh.run(x[:, :, T // 2:], dt=7), first, True, 'continuation on a fresh layer after set_state')


@pytest.mark.parametrize('name', NAMES)
def test_save_and_load_parameters_lose_nothing(name, tmp_path):
    a = make(name)
    out = a.run(stimulus(name))
    a.save_parameters(str(tmp_path / 'p.npz'))
    with np.load(str(tmp_path / 'p.npz')) as f:
        saved = {k: f[k] for k in f.files}
    names = [n for n, _ in a.named_parameters()]
    assert sorted(saved) == sorted(names)
    b = make(name, seed=3)
    with torch.no_grad():
        for _, p in b.named_parameters():
            if p.is_floating_point():
                p.add_(0.01 * p.abs() + 0.01)
    b.load_parameters(str(tmp_path / 'p.npz'))
    for n, p in b.named_parameters():
        np.testing.assert_array_equal(p.detach().numpy(), saved[n], err_msg=n)
    # the states (with the position of the noise generators) of a continue on b: same output
    a.run(stimulus(name, t=10, seed=7))
    state = a.get_state()
    out = a.run(stimulus(name))
    b.set_state(state)
    assert_same(b.run(stimulus(name)), out, CASES[name].exact, 'loaded parameters')


# ---------------------------------------------------------------------------------------------- memory
def live_tensors():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        ts = [o for o in gc.get_objects() if isinstance(o, torch.Tensor)]
    return len(ts), sum(t.untyped_storage().nbytes() for t in ts)


@pytest.mark.parametrize('make_layer, lo, hi, n_chunks', [
    (lambda: convis.retina.Retina(seed=0), 0, 255, 8),
    (lambda: random_weights(M.LN((10, 5, 5))), -1, 1, 20),
], ids=['Retina', 'LN'])
def test_memory_stays_flat_over_a_long_run(make_layer, lo, hi, n_chunks):
    """Chunks of 500 frames of 8 x 8, the output dropped: no tensor and (almost) no Python memory accumulates."""
    layer = make_layer()
    chunk = lo + (hi - lo) * np.random.RandomState(0).rand(500, X, Y)
    gc.collect()
    tracemalloc.start()
    try:
        with torch.no_grad():
            for k in range(n_chunks):
                layer(chunk)
                if k == 1:
                    gc.collect()
                    traced, tensors = tracemalloc.get_traced_memory()[0], live_tensors()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - traced
    finally:
        tracemalloc.stop()
    assert live_tensors() == tensors
    assert grown < 64 * 1024, 'Python memory grew by %d bytes over %d chunks' % (grown, n_chunks - 2)
