"""Tests of convis.variables (Parameter, State, VirtualParameter, Resolution) and convis.o (trees)."""
import copy
import pickle

import numpy as np
import pytest
import torch

import convis
from convis.o import O, Ox, save_name
from convis.variables import Parameter, Resolution, State, VirtualParameter


def test_parameter_metadata_and_set():
    p = Parameter(0.01, doc='centre time constant', unit='s', bounds=(0, None), scale='log',
                  slider_range=(0.001, 1.0), retina_config_key='center-tau__sec')
    assert isinstance(p, torch.nn.Parameter) and p.shape == (1,) and p.requires_grad
    assert p.unit == 's' and p.scale == 'log' and p.config_key == 'center-tau__sec'
    assert p.slider_range == (0.001, 1.0)
    same = p
    p.set('0.02')
    assert same is p and float(p) == pytest.approx(0.02)
    p.set(np.array([0.5]))
    assert float(p) == 0.5
    np.testing.assert_allclose(p.default, [0.01])
    p.reset()
    assert float(p) == pytest.approx(0.01)
    with pytest.raises(ValueError, match='lower bound'):
        p.set(-1)
    with pytest.raises(ValueError, match='cannot interpret'):
        p.set('fast')
    with pytest.raises(ValueError):
        Parameter(1.0, scale='cubic')


def test_parameter_survives_copy_pickle_and_device_moves():
    p = Parameter(np.ones((2, 3)), doc='a kernel', unit='', bounds=(None, None))
    q = copy.deepcopy(p)
    assert isinstance(q, Parameter) and q.doc == 'a kernel' and torch.equal(q.data, p.data)
    r = pickle.loads(pickle.dumps(p))
    assert isinstance(r, Parameter) and r.doc == 'a kernel'
    assert np.asarray(p).shape == (2, 3)
    assert 'shape=(2, 3)' in repr(p)


def test_parameter_with_different_shape_replaces_data():
    p = Parameter(np.ones(3))
    p.set(np.zeros((2, 2)))
    assert p.shape == (2, 2)


def test_integer_values_become_floating_point_parameters():
    p = Parameter(np.array([1, 2, 3]))
    assert p.dtype == torch.float32 and p.requires_grad
    assert float(Parameter(2)) == 2.0


def test_state_is_a_plain_tensor_marker():
    s = State(torch.ones(3))
    assert isinstance(s, torch.Tensor)
    assert type(s + 1) is torch.Tensor


def test_virtual_parameter_dependencies():
    a = VirtualParameter(float, value=2.0)
    b = VirtualParameter(lambda x: 2 * x).set_callback_arguments(a)
    assert b.get() == 4.0
    a.set(3.0)
    assert b.get() == 6.0
    target = Parameter(0.0)
    c = VirtualParameter(lambda x: x + 1, var=target)
    c.set(1.0)
    assert c.get() == 2.0 and float(target) == 2.0


def test_virtual_parameter_in_layer_is_in_tree_not_in_optimizer():
    layer = convis.Layer()
    layer.sigma = VirtualParameter(float, value=0.5)
    layer.w = Parameter(1.0)
    assert 'sigma' in layer.p._keys()
    assert all(isinstance(p, torch.Tensor) for p in layer.parameters())
    layer.set_optimizer.Adam()
    layer.p.sigma = 0.7
    assert layer.sigma.get() == 0.7
    assert layer.get_parameters()['sigma'] == pytest.approx(0.7)


def test_resolution_conversions_and_fallback():
    r = Resolution(steps_per_second=200, pixel_per_degree=20)
    assert r.dt == pytest.approx(0.005)
    assert r.seconds_to_steps(0.01) == pytest.approx(2.0)
    assert r.degree_to_pixel(0.5) == 10
    follow = Resolution()
    convis.set_pixel_per_degree(5)
    assert follow.pixel_per_degree == 5
    with pytest.raises(ValueError):
        Resolution(pixel_per_degree=0)
    with pytest.raises(ValueError):
        convis.set_steps_per_second(float('nan'))


def test_save_name():
    assert save_name('0') == 'n0'
    assert save_name('a-b c') == 'a_b_c'
    assert save_name('x.y') == 'x_dot_y'


def test_ox_tree_from_dotted_names():
    tree = Ox.from_dotted([('opl.filter.a', 1), ('opl.filter.b', 2), ('opl.c', 3), ('d', 4)], doc='Things')
    assert tree.opl.filter.a == 1 and tree.opl.filter.b == 2 and tree.opl.c == 3
    assert set(tree._all._keys()) == {'opl_filter_a', 'opl_filter_b', 'opl_c', 'd'}
    assert set(tree._search.filter._keys()) == {'opl_filter_a', 'opl_filter_b'}
    assert 'filter' in dir(tree._search)
    assert tree['opl.filter.b'] == 2
    assert 'Things' in repr(tree) and 'opl' in repr(tree)
    assert set(dir(tree)) >= {'opl', 'd', '_all', '_search'}
    with pytest.raises(AttributeError, match='Choices'):
        tree.nothing


def test_o_bag():
    o = O(a=1)(b=2)
    assert o.a == 1 and o['b'] == 2 and len(o) == 2 and 'a' in o
    o['c'] = 3
    assert o.c == 3
