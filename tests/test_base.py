"""Tests of convis.base: Layer state, chunked runs, parameter persistence, fitting, errors."""
import gc
import tracemalloc
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import convis
from convis import Layer, Output, Parameter, State
from helpers import assert_chunking_exact


class Leaky(Layer):
    """y[s] = a*y[s-1] + w*x[s] with an FIR part over the last 3 frames: a generic stateful layer."""

    def __init__(self, a=0.9, w=0.5):
        super().__init__()
        self.a = Parameter(a, doc='decay per step', unit='', bounds=(0, 1))
        self.w = Parameter(w, doc='input weight', unit='')
        self.register_state('y', None)
        self.register_state('history', None)

    def forward(self, x):
        if self.y is None:
            self.y = torch.zeros_like(x[:, :, :1])
            self.history = torch.zeros_like(x[:, :, :1]).repeat(1, 1, 2, 1, 1)
        padded = torch.cat([self.history, x], dim=2)
        fir = padded[:, :, 2:] - 0.5 * padded[:, :, 1:-1] + 0.25 * padded[:, :, :-2]
        self.history = padded[:, :, -2:]
        out = []
        y = self.y
        for s in range(x.shape[2]):
            y = self.a * y + self.w * fir[:, :, s:s + 1]
            out.append(y)
        self.y = y
        return torch.cat(out, dim=2)


class Nested(Layer):
    def __init__(self):
        super().__init__()
        self.first = Leaky(0.8, 1.0)
        self.second = Leaky(0.5, 2.0)

    def forward(self, x):
        a = self.first(x)
        return Output([self.second(a), a], keys=['out', 'intermediate'])


def test_chunked_run_equals_whole_run_for_every_chunk_length():
    x = np.random.rand(120, 4, 3)
    assert_chunking_exact(Nested, x, dts=(1, 2, 5, 17, 119, 500))


@settings(max_examples=25, deadline=None)
@given(n_frames=st.integers(1, 60), dt=st.integers(1, 70), a=st.floats(0.0, 0.99), batch=st.integers(1, 3))
def test_property_chunked_equals_whole(n_frames, dt, a, batch):
    rng = np.random.RandomState(n_frames * 7 + dt)
    x = rng.randn(batch, 1, n_frames, 2, 3).astype(np.float32)
    m = Leaky(a=a)
    whole = m.run(x)[0].numpy()
    m.clear_state()
    chunked = m.run(x, dt=dt)[0].numpy()
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-5)


def test_run_returns_output_with_keys_and_attributes():
    m = Nested()
    o = m.run(np.ones((10, 2, 2)), dt=3)
    assert isinstance(o, Output)
    assert o[0] is o.out and o[1] is o.intermediate and o['out'] is o[0]
    assert o.keys == ['out', 'intermediate']
    assert o[0].shape == (1, 1, 10, 2, 2)
    assert np.asarray(o).shape == (2, 1, 1, 10, 2, 2)
    assert o.array(1).shape == (1, 1, 10, 2, 2)
    with pytest.raises(KeyError):
        o['nothing']


def test_run_with_t_and_max_t_selects_frames():
    m = Leaky(a=0.0, w=1.0)
    x = np.arange(20, dtype=float)
    o = m.run(x, dt=4, t=5, max_t=15)
    assert o[0].shape[2] == 10


def test_input_broadcasting_rules():
    m = Leaky(a=0.0, w=1.0)
    assert m(np.ones(7)).shape == (1, 1, 7, 1, 1)
    m.clear_state()
    assert m(np.ones((3, 4))).shape == (1, 1, 1, 3, 4)
    m.clear_state()
    assert m(np.ones((5, 3, 4))).shape == (1, 1, 5, 3, 4)
    m.clear_state()
    assert m(np.ones((2, 5, 3, 4))).shape == (1, 2, 5, 3, 4)
    m.clear_state()
    assert m(torch.ones(2, 1, 5, 3, 4, dtype=torch.float64)).dtype == torch.float32


def test_numpy_input_becomes_tensor_of_layer_dtype():
    m = Leaky().double()
    out = m(np.ones((4, 2, 2), dtype=np.float32))
    assert out.dtype == torch.float64


@pytest.mark.parametrize('bad, error', [
    (np.array([1.0, np.nan, 2.0]), ValueError),
    (np.array([1.0, np.inf]), ValueError),
    (np.array(['a', 'b']), TypeError),
    (np.ones((2, 2, 2, 2, 2, 2)), ValueError),
])
def test_bad_input_raises_clear_errors(bad, error):
    with pytest.raises(error):
        Leaky()(bad)


def test_run_argument_errors():
    m = Leaky()
    with pytest.raises(ValueError, match='dt'):
        m.run(np.ones(10), dt=-5)
    with pytest.raises(ValueError, match='dt'):
        m.run(np.ones(10), dt=0)
    with pytest.raises(ValueError, match='whole number'):
        m.run(np.ones(10), dt=2.5)
    with pytest.raises(ValueError, match='no frames'):
        m.run(np.ones(10), t=10)


def test_run_builds_no_graph_and_detaches_state():
    m = Leaky()
    o = m.run(np.ones(20), dt=5)
    assert not o[0].requires_grad
    assert m.y is not None and not m.y.requires_grad


def test_run_with_detach_false_keeps_gradients():
    m = Leaky()
    o = m.run(np.ones(20), dt=5, detach=False)
    o[0].sum().backward()
    assert m.a.grad is not None and float(m.a.grad.abs()) > 0


def test_state_push_pop_clear_get_set():
    m = Nested()
    x = np.random.rand(30, 2, 2)
    m.run(x[:10])
    m.push_state()
    after_push = m.run(x[10:])[0].clone()
    m.pop_state()
    again = m.run(x[10:])[0]
    assert torch.equal(after_push, again)
    snapshot = m.get_state()
    assert set(snapshot) == {'first.y', 'first.history', 'second.y', 'second.history'}
    m.run(x)
    assert not torch.equal(snapshot['first.y'], m.first.y)  # snapshots are copies
    m.set_state(snapshot)
    assert torch.equal(snapshot['first.y'], m.first.y)
    m.clear_state()
    assert m.first.y is None
    with pytest.raises(KeyError):
        m.set_state({'nope': torch.zeros(1)})
    with pytest.raises(IndexError):
        m.pop_state()


def test_state_assigned_as_State_is_registered_and_default_restored():
    class Counter(Layer):
        def __init__(self):
            super().__init__()
            self.count = State(torch.zeros(1))

        def forward(self, x):
            self.count = self.count + x.shape[2]
            return x

    c = Counter()
    c.run(np.ones(10), dt=3)
    assert float(c.count) == 10
    assert 'count' in c.get_state()
    c.clear_state()
    assert float(c.count) == 0
    assert isinstance(c.s.count, torch.Tensor)


def test_parameter_trees_complete_and_settable():
    m = Nested()
    assert set(m.p._keys()) == {'first', 'second'}
    assert set(m.p.first._keys()) == {'a', 'w'}
    assert set(m.p._all._keys()) == {'first_a', 'first_w', 'second_a', 'second_w'}
    assert set(m.p._search.second._keys()) == {'second_a', 'second_w'}
    m.p.first.a = 0.25
    assert float(m.first.a) == pytest.approx(0.25)
    m.p.second.w = np.array([3.0])
    assert float(m.second.w) == 3.0
    m.p.second.w = torch.tensor(4.0)
    assert float(m.second.w) == 4.0
    assert 'first' in repr(m.p) and 'Choices' in repr(m.p)
    assert '_self' in m.m._keys() and m.m.first._self is m.first if hasattr(m.m.first, '_self') else True
    with pytest.raises(AttributeError):
        m.p.first.nonexistent = 1
    with pytest.raises(ValueError):
        m.p.first.a = 2.0  # above its bound of 1


def test_deep_trees_lose_no_parameter():
    class Deep(Layer):
        def __init__(self):
            super().__init__()
            self.opl = Layer()
            self.opl.opl_filter = Layer()
            for name in ['center_G', 'center_E', 'surround_G', 'surround_E']:
                sub = Layer()
                sub.tau = Parameter(0.01, unit='s')
                sub.weight = Parameter(np.ones(3))
                setattr(self.opl.opl_filter, name, sub)
    d = Deep()
    names = [n for n, _ in d.named_parameters()]
    assert len(names) == 8
    assert len(d.p._all) == 8
    assert len(d.get_parameters()) == 8


def test_save_and_load_parameters_round_trip(tmp_path):
    m = Nested()
    m.first.a.set(0.3)
    m.second.w.set(7.0)
    path = str(tmp_path / 'params.npz')
    m.save_parameters(path)
    n = Nested()
    n.load_parameters(path)
    for (k1, v1), (k2, v2) in zip(m.get_parameters().items(), n.get_parameters().items()):
        assert k1 == k2
        np.testing.assert_array_equal(v1, v2)


def test_set_parameters_accepts_flat_names_and_ignores_unknown_ones_as_documented():
    m = Nested()
    m.set_parameters({'first_a': 0.1, 'second.w': 5.0})
    assert float(m.first.a) == pytest.approx(0.1) and float(m.second.w) == 5.0
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        m.set_parameters({'first_b': 1.0, 'first_a': 0.2})   # ignored, silently (the original's documented API)
    assert float(m.first.a) == pytest.approx(0.2)
    with pytest.warns(UserWarning, match=r"match no parameter and are ignored: \['first_b'\]"):
        m.set_parameters({'first_b': 1.0}, warn=True)
    m._debug = True
    with pytest.warns(UserWarning, match='first_b'):
        m.set_parameters({'first_b': 1.0})
    m._debug = False
    with pytest.raises(KeyError, match='first_b'):
        m.set_parameters({'first_b': 1.0, 'first_a': 0.5}, strict=True)
    assert float(m.first.a) == pytest.approx(0.2)   # strict: nothing was set


def test_set_parameters_checks_every_value_before_setting_any():
    m = Nested()
    before = {k: v.copy() for k, v in m.get_parameters().items()}
    for bad in ({'first.a': 0.3, 'second.w': [1.0, 2.0, 3.0]},       # 3 values for a scalar
                {'first.a': 0.3, 'second.w': float('nan')},           # not finite
                {'first.a': 0.3, 'first.w': 'abc'},                   # not a number
                {'second.w': 2.0, 'first.a': 5.0}):                   # above first.a's bound of 1
        with pytest.raises(ValueError) as e:
            m.set_parameters(bad)
        assert 'parameter' in str(e.value)
        for k, v in m.get_parameters().items():
            np.testing.assert_array_equal(v, before[k], err_msg='%s changed by %s' % (k, bad))


def test_push_pop_parameters_and_all():
    m = Nested()
    m.push_parameters()
    m.first.a.set(0.1)
    m.pop_parameters()
    assert float(m.first.a) == pytest.approx(0.8)
    m.set_optimizer.SGD(lr=0.1)
    m.store_all('start')
    m.first.w.set(9.0)
    m.run(np.ones(5))
    m.retrieve_all('start')
    assert float(m.first.w) == 1.0 and m.first.y is None
    m.push_all()
    m.second.a.set(0.0)
    m.pop_all()
    assert float(m.second.a) == 0.5


def test_requires_grad_switches_every_parameter():
    m = Nested()
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    m.requires_grad_(True)
    assert all(p.requires_grad for p in m.parameters())


def test_assigning_a_number_to_a_parameter_sets_it_in_place():
    m = Leaky()
    p = m.a
    m.a = 0.2
    assert m.a is p and float(p) == pytest.approx(0.2)


def test_memory_stays_flat_over_a_long_run():
    m = Leaky()
    x = np.random.rand(1000, 4, 4).astype(np.float32)
    m.run(x, dt=100)
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    for _ in range(100):  # 10^5 frames in chunks of 100, state carried
        for s in range(0, 1000, 100):
            m(x[s:s + 100])
            m.detach_state()
    gc.collect()
    now, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert now - base < 200_000


def test_long_run_with_grad_enabled_globally_still_builds_no_graph():
    m = Leaky()
    with torch.enable_grad():
        o = m.run(np.random.rand(200, 2, 2), dt=10)
    assert o[0].grad_fn is None and m.y.grad_fn is None


def test_optimize_recovers_parameters_and_restores_state():
    torch.manual_seed(1)
    goal = Leaky(a=0.7, w=2.0)
    x = np.random.randn(300, 3, 3).astype(np.float32)
    y = goal.run(x, dt=100)[0]
    m = Leaky(a=0.5, w=1.0)
    m.run(x[:50])
    state_before = m.get_state()
    first = m.compute_loss(x, y, dt=100)
    assert len(first) == 3
    assert m.compute_loss(x, y, dt=100) == first  # no state leaks from one call into the next
    m.set_optimizer.LBFGS()
    for _ in range(3):
        losses = m.optimize(x, y, dt=100)
    assert sum(losses) < 1e-3 * sum(first)
    assert float(m.a) == pytest.approx(0.7, abs=1e-3) and float(m.w) == pytest.approx(2.0, abs=1e-3)
    for k, v in m.get_state().items():
        assert torch.equal(v, state_before[k])


def test_compute_loss_does_not_touch_gradients():
    m = Leaky()
    x = np.random.randn(50, 2, 2)
    m.compute_loss(x, x, dt=10)
    assert all(p.grad is None for p in m.parameters())


def test_optimize_with_adam_reduces_loss_and_t_skip_warms_up():
    goal = Leaky(a=0.6, w=1.5)
    x = np.random.randn(200, 2, 2).astype(np.float32)
    y = goal.run(x)[0]
    m = Leaky(a=0.3, w=0.5)
    m.set_optimizer.Adam(lr=0.05)
    before = sum(m.compute_loss(x, y, dt=50))
    for _ in range(30):
        losses = m.optimize(x, y, dt=50, t_skip=50)
    assert len(losses) == 3
    assert sum(m.compute_loss(x, y, dt=50)) < 0.2 * before


def test_optimizer_selector():
    m = Leaky()
    assert {'SGD', 'Adam', 'LBFGS'} <= set(dir(m.set_optimizer))
    opt = m.set_optimizer.SGD(lr=0.01)
    assert isinstance(opt, torch.optim.SGD) and m._optimizer is opt
    assert m.set_optimizer.LBFGS().defaults['line_search_fn'] == 'strong_wolfe'
    custom = torch.optim.Adam(m.parameters())
    assert m.set_optimizer(custom) is custom
    assert isinstance(m.set_optimizer('Adagrad'), torch.optim.Adagrad)
    assert 'Adam' in (m.set_optimizer.Adam.__doc__ or '')
    with pytest.raises(AttributeError):
        m.set_optimizer.NoSuchOptimizer
    with pytest.raises(RuntimeError, match='no optimizer'):
        Leaky().optimize(np.ones(5), np.ones(5))


def test_optimize_rejects_mismatched_lengths():
    m = Leaky()
    m.set_optimizer.SGD(lr=0.01)
    with pytest.raises(ValueError, match='frames'):
        m.optimize(np.ones(10), np.ones(12))


def test_cuda_absent_gives_clear_error():
    if torch.cuda.is_available():
        m = Leaky().cuda()
        assert m.device.type == 'cuda'
        assert m(np.ones(3)).device.type == 'cuda'
        m.cpu()
    else:
        with pytest.raises(RuntimeError, match='CUDA'):
            Leaky().cuda()
        with pytest.raises(RuntimeError, match='CUDA'):
            Leaky().to('cuda')
        with pytest.raises(RuntimeError, match='CUDA'):
            convis.prepare_input(np.ones(3), cuda=True)


def test_to_moves_parameters_and_states():
    m = Leaky()
    m.run(np.ones(4))
    m.to(torch.float64)
    assert m.a.dtype == torch.float64 and m.y.dtype == torch.float64
    assert isinstance(m.a, Parameter) and m.a.unit == ''
    m.clear_state()
    m.push_state()
    m.pop_state()


def test_prepare_input():
    from convis.base import prepare_input
    assert prepare_input(np.zeros((10, 3, 3))).shape == (1, 1, 10, 3, 3)
    assert prepare_input(np.zeros(10)).shape == (1, 1, 10, 1, 1)
    assert prepare_input(np.zeros((1, 1, 10, 3, 3)), dims=3).shape == (10, 3, 3)
    assert prepare_input([1, 2, 3], cuda=None).dtype == torch.float32
    assert prepare_input(np.zeros(3), dtype='float64').dtype == torch.float64
    assert prepare_input(np.zeros(3), requires_grad=True).requires_grad


def test_impulse_response_preserves_state():
    m = Leaky(a=0.5, w=1.0)
    m.run(np.random.rand(10, 5, 5))
    before = m.get_state()
    o = m.impulse_response((20, 5, 5), dt=7)
    r = o[0][0, 0, :, 2, 2].numpy()
    fir = [1.0, -0.5, 0.25]
    expected = np.zeros(20)
    for s in range(20):
        drive = fir[s] if s < 3 else 0.0
        expected[s] = (0.5 * expected[s - 1] if s else 0.0) + drive
    np.testing.assert_allclose(r, expected, rtol=1e-6, atol=1e-7)
    for k, v in m.get_state().items():
        assert torch.equal(v, before[k])


def test_resolution_is_read_at_forward_time():
    class StepsPerSecond(Layer):
        def forward(self, x):
            return x * 0 + self.resolution.steps_per_second

    m = StepsPerSecond()
    assert float(m(np.ones(2))[0, 0, 0]) == 1000
    convis.set_steps_per_second(200)
    assert float(m(np.ones(2))[0, 0, 0]) == 200
    own = convis.Resolution(steps_per_second=50)
    m.set_resolution(own)
    assert float(m(np.ones(2))[0, 0, 0]) == 50
    own.steps_per_second = 20
    assert float(m(np.ones(2))[0, 0, 0]) == 20
    with pytest.raises(ValueError):
        own.steps_per_second = -1


def test_seed_doc_layer_subclass_example_runs():
    import torch.nn.functional as F

    class Model(convis.Layer):
        def __init__(self):
            super(Model, self).__init__()
            self.conv1 = torch.nn.Conv3d(1, 1, (5, 1, 1))
            self.conv2 = torch.nn.Conv3d(1, 1, (1, 3, 3))

        def forward(self, x):
            x = F.relu(self.conv1(x))
            return F.relu(self.conv2(x))
    m = Model()
    assert m.run(np.random.rand(20, 8, 8), dt=20)[0].shape == (1, 1, 16, 6, 6)
    assert 'conv1' in m.p._keys()


def test_optimize_keeps_parameters_within_their_bounds():
    goal = Leaky(a=0.999, w=1.0)
    x = np.random.randn(100, 2, 2).astype(np.float32)
    y = 3 * goal.run(x)[0]
    m = Leaky(a=0.99, w=1.0)
    m.set_optimizer.SGD(lr=1.0)
    m.optimize(x, y, dt=50)
    assert 0.0 <= float(m.a) <= 1.0


def test_optimize_reports_a_parameter_that_became_nan():
    m = Leaky()
    m.set_optimizer.SGD(lr=1.0)
    with pytest.raises(RuntimeError, match='NaN'):
        m.optimize(np.random.randn(20), np.random.randn(20), loss_fn=lambda y, o: (o.sum() * float('nan')))


# ---------------------------------------------------------------------------------------------- typos are errors
def test_assigning_an_unknown_name_to_a_built_layer_raises_with_the_closest_names():
    m = Leaky()
    with pytest.raises(AttributeError, match=r"'w_'.*did you mean 'w'"):
        m.w_ = 0.3
    with pytest.raises(AttributeError, match="Leaky has no parameter, state, sublayer or attribute 'histroy'.*'history'"):
        m.histroy = torch.zeros(1)
    assert 'w_' not in m.__dict__ and float(m.w) == 0.5
    n = Nested()
    with pytest.raises(AttributeError, match="'frist'.*'first'"):
        n.frist = 1


def test_a_built_layer_still_takes_known_names_new_parameters_states_sublayers_and_private_names():
    m = Leaky()
    m.w = 0.25                                        # a parameter: set in place
    m.y = torch.ones(1, 1, 1, 1, 1)                   # a state
    m.dims = 5                                        # a class attribute
    m.b = Parameter(2.0)                              # a new Parameter is explicit
    m.z = State(torch.zeros(1))                       # a new State too
    m.extra = Leaky()                                 # and a new sublayer
    m._scratch = [1, 2]                               # private names are free
    assert float(m.w) == 0.25 and float(m.b) == 2.0 and 'z' in dict(m.named_states())
    assert 'extra' in dict(m.named_children()) and m._scratch == [1, 2]


def test_subclass_init_assignments_stay_free_until_the_outermost_init_returns():
    class Base(Layer):
        def __init__(self):
            super().__init__()
            self.gain = 2.0

    class Child(Base):
        def __init__(self):
            super().__init__()            # Base.__init__ has returned, but Child is still being built
            self.offset = 1.0
            self.gain = 3.0

        def forward(self, x):
            return self.gain * x + self.offset

    c = Child()
    assert c.gain == 3.0 and c.offset == 1.0
    c.offset = 0.5                        # an existing attribute
    assert float(c(np.ones(1))[0, 0, 0]) == 3.5
    with pytest.raises(AttributeError, match="'ofset'.*'offset'"):
        c.ofset = 2
    b = Base()
    with pytest.raises(AttributeError):
        b.offset = 1.0


def test_the_documented_memory_conv_example_assigns_in_init_and_forward():
    """The seed docs' custom layer: attributes set before super().__init__(), in __init__ and (known) in forward."""
    class MyMemoryConv(convis.Layer):
        def __init__(self, kernel_dim=(3, 1, 1)):
            self.dim = 5
            self.autopad = True
            super(MyMemoryConv, self).__init__()
            self.conv = torch.nn.Conv3d(1, 1, kernel_dim, bias=False)
            self.input_state = None

        def forward(self, x):
            if self.input_state is None:
                self.input_state = torch.zeros_like(x[:, :, :2])
            x_pad = torch.cat([self.input_state, x], dim=2)
            self.input_state = x_pad[:, :, -2:]
            return self.conv(x_pad)

    m = MyMemoryConv()
    assert m.run(np.random.rand(30, 4, 4), dt=10)[0].shape == (1, 1, 30, 4, 4)
    with pytest.raises(AttributeError, match="'input_sate'.*'input_state'"):
        m.input_sate = None


def test_frozen_layers_survive_copy_and_pickle():
    import copy
    import pickle
    for m in (copy.deepcopy(Leaky()), pickle.loads(pickle.dumps(Leaky()))):
        m.w = 0.1
        with pytest.raises(AttributeError):
            m.ww = 0.1


def test_assigning_a_value_to_a_virtual_parameter_sets_it():
    layer = convis.Layer()
    layer.sigma = convis.VirtualParameter(float, value=0.5)
    layer.sigma = 0.7
    assert isinstance(layer.sigma, convis.VirtualParameter) and layer.sigma.get() == 0.7


# ---------------------------------------------------------------------------------------------- Output keys
def test_output_with_repeated_keys_gives_the_last_one_by_key_and_attribute():
    a, b, c = torch.zeros(1), torch.ones(1), torch.full((1,), 2.0)
    o = Output([a, b, c], keys=['a', 'b', 'a'])
    assert o['a'] is c and o.a is c and o[0] is a and o['b'] is b
    o = Output([a, b], keys=['x y', 'x_y'])           # the same attribute name after save_name
    assert o.x_y is b and o['x_y'] is b and o['x y'] is a


# ---------------------------------------------------------------------------------------------- fitting shapes
def test_fitting_a_model_whose_output_shape_differs_from_the_target_raises():
    m = convis.models.LN((3, 3, 3), population=False)
    x = np.random.rand(40, 6, 6).astype(np.float32)
    y = np.random.rand(40, 6, 6).astype(np.float32)
    with pytest.raises(ValueError, match=r'\(1, 1, 20, 1, 1\).*\(1, 1, 20, 6, 6\).*population=True'):
        m.compute_loss(x, y, dt=20)
    m.set_optimizer.Adam()
    before = m.conv.weight.detach().clone()
    with pytest.raises(ValueError, match=r'\(1, 1, 20, 1, 1\).*\(1, 1, 20, 6, 6\)'):
        m.optimize(x, y, dt=20)
    assert torch.equal(m.conv.weight, before)
    p = convis.models.LN((3, 3, 3), population=True)
    with pytest.raises(ValueError, match='population=False'):
        p.compute_loss(x, y[:, :1, :1], dt=20)
    with pytest.raises(ValueError, match='spatial sizes differ'):
        p.compute_loss(x, y[:, :4, :5], dt=20)
    # a custom loss may compare what it likes
    assert len(m.compute_loss(x, y, dt=20, loss_fn=lambda t, o: ((t.mean((3, 4), keepdim=True) - o) ** 2).sum())) == 2


# ---------------------------------------------------------------------------------------------- resolution fields
def test_set_resolution_with_fields_changes_only_those_fields():
    m = Leaky()
    m.set_resolution(convis.Resolution(pixel_per_degree=5, steps_per_second=100, input_luminosity_range=255))
    m.set_resolution(steps_per_second=1000)
    r = m.resolution
    assert (r.steps_per_second, r.pixel_per_degree, r.input_luminosity_range) == (1000, 5, 255)
    n = Nested()
    n.set_resolution(pixel_per_degree=20)          # without its own: the other fields follow the global default
    convis.set_steps_per_second(250)
    assert n.second.resolution.pixel_per_degree == 20 and n.second.resolution.steps_per_second == 250
    n.set_resolution()
    assert n.resolution.pixel_per_degree == convis.default_resolution.pixel_per_degree
    with pytest.raises(TypeError, match='frames_per_second'):
        m.set_resolution(frames_per_second=10)
    with pytest.raises(TypeError, match='not both'):
        m.set_resolution(convis.Resolution(), steps_per_second=10)


def test_impulse_response_is_relative_to_the_adapting_grey():
    # the retina's OPL starts adapted to half the luminosity range: an impulse on black made every pixel
    # dip to -2.92 and the centre peak read 2.72; on the adapting grey, minus the grey's response, it is 5.64
    opl = convis.retina.Retina().opl
    assert opl.adapting_luminance() == 127.5 and Leaky(a=0.5, w=1.0).adapting_luminance() == 0.0
    o = opl.impulse_response((30, 21, 21), dt=11, amplitude=255.0)[0][0, 0].numpy()
    grey = np.full((30, 21, 21), 127.5, np.float32)
    flash = grey.copy()
    flash[0, 10, 10] += 255.0
    opl.clear_state()
    expected = (opl.run(flash, dt=30)[0] - (opl.clear_state() or opl.run(grey, dt=30)[0]))[0, 0].numpy()
    np.testing.assert_allclose(o, expected, atol=1e-5)
    assert abs(o[:, 10, 10].max() - 5.638) < 0.01 and int(np.argmax(o[:, 10, 10])) == 1
    assert np.abs(o[:, 0, 0]).max() < 1e-4
    dark = opl.impulse_response((30, 21, 21), dt=30, amplitude=255.0, background=0.0)[0][0, 0].numpy()
    np.testing.assert_allclose(dark, o, atol=1e-4)  # the OPL is linear: any background, the same difference
    with pytest.raises(ValueError, match='finite'):
        opl.impulse_response((3, 3, 3), background=float('nan'))
