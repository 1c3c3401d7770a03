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


def test_kinds_and_choices_are_checked_on_every_set():
    sign = Parameter(1.0, kind='choice', choices={'ON': 1, 'OFF': -1})
    assert sign.kind == 'choice' and sign.choices == {'ON': 1.0, 'OFF': -1.0}
    sign.set(-1)
    with pytest.raises(ValueError, match='0.37 is not one of the choices ON \\(1\\), OFF \\(-1\\)'):
        sign.set(0.37)
    assert float(sign) == -1.0
    switch = Parameter(0.0, kind='bool')
    assert switch.choices == {'off': 0.0, 'on': 1.0}
    with pytest.raises(ValueError, match='0.5 is not one of the choices'):
        switch.set(0.5)
    only_on = Parameter(1.0, kind='bool', choices={'on': 1})
    with pytest.raises(ValueError, match='0 is not one of the choices on'):
        only_on.set(0)
    n = Parameter(2.0, kind='int', bounds=(0, 20))
    n.set(3)
    with pytest.raises(ValueError, match='2.5 is not a whole number'):
        n.set(2.5)
    assert Parameter(np.array([3])).kind == 'float' and Parameter(0.5).kind == 'float'
    assert Parameter(0.5, choices=(0.5, 0.25)).choices == {'0.5': 0.5, '0.25': 0.25}
    with pytest.raises(ValueError, match='kind must be one of'):
        Parameter(1.0, kind='switch')
    with pytest.raises(ValueError, match='needs choices'):
        Parameter(1.0, kind='choice')
    with pytest.raises(ValueError, match='0 or 1'):
        Parameter(1.0, kind='bool', choices={'half': 0.5})
    with pytest.raises(ValueError, match='not one of the choices'):
        Parameter(0.3, kind='choice', choices=(1, -1))
    kept = pickle.loads(pickle.dumps(sign))
    assert kept.choices == sign.choices and copy.deepcopy(sign).kind == 'choice'
    with pytest.raises(ValueError, match='not one of the choices'):
        kept.set(0.37)


def test_the_retina_declares_its_switches_and_choices():
    retina = convis.retina.Retina()
    assert retina.gang_0_input.sign.choices == {'ON': 1.0, 'OFF': -1.0}
    assert retina.opl.undershoot_enabled.kind == 'bool' and retina.gang_0_spikes.random_init.kind == 'bool'
    assert retina.opl.leaky_heat_equation.choices == {'on': 1.0}      # the linear version is not implemented
    assert retina.opl.n_center.kind == 'int'
    with pytest.raises(ValueError, match='sign: 0.37 is not one of the choices'):
        retina.gang_1_input.sign.set(0.37)
    with pytest.raises(ValueError, match='not one of the choices'):
        retina.opl.leaky_heat_equation.set(0)
    with pytest.raises(ValueError, match='whole number'):
        retina.opl.n_center.set(1.5)
    assert retina.opl.sigma_center.symbol == 'σ_C' and retina.gang_0_input.lambda_G.symbol == 'λ_G'


def test_bounds_slider_ranges_and_values_are_finite():
    inf = float('inf')
    with pytest.raises(ValueError, match='bounds must be finite numbers \\(None for no bound\\), not inf'):
        Parameter(1.0, bounds=(0, inf))
    with pytest.raises(ValueError, match='slider_range must be finite'):
        Parameter(1.0, slider_range=(-inf, 2))
    with pytest.raises(ValueError, match='low end 2 is above the high end 1'):
        Parameter(1.0, bounds=(2, 1))
    with pytest.raises(ValueError, match='not finite'):
        Parameter(inf)
    p = Parameter(1.0, bounds=(0, None))
    for bad in (inf, np.array([1.0, inf]), torch.tensor([-inf])):
        with pytest.raises(ValueError, match='inf is not finite'):
            p.set(bad)
    with pytest.raises(ValueError, match="cannot interpret 'inf'"):
        p.set('inf')
    assert float(p) == 1.0


def test_configured_values_become_the_defaults():
    p = Parameter(1.0)
    p.configure(-1).set(1).reset()
    assert float(p) == -1.0
    retina = convis.retina.Retina()
    assert float(retina.gang_1_input.sign) == -1.0
    np.testing.assert_array_equal(retina.gang_1_input.sign.default, [-1.0])   # configured, not the constructor's 1
    retina.gang_1_input.sign.set(1)
    retina.gang_1_input.sign.reset()
    assert float(retina.gang_1_input.sign) == -1.0
    config = convis.retina.RetinaConfiguration()
    config.set('contrast-gain-control.bipolar-inert-leaks__Hz', 20.0)
    config.set('outer-plexiform-layers.0.linear-version.undershoot.enabled', False)
    retina.parse_config(config)
    for p in (retina.bipolar.g_leak, retina.opl.undershoot_enabled):
        p.set(float(p.get()[0]) + 1 if p is retina.bipolar.g_leak else 1.0)
        p.reset()
    assert float(retina.bipolar.g_leak) == 20.0 and float(retina.opl.undershoot_enabled) == 0.0


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


# ---------------------------------------------------------------------------------------------- Variable
def test_variable_is_a_tensor_with_attributes_and_every_convis_variable_is_one():
    from convis.variables import Variable, is_variable
    v = Variable([1.0, 2.0], doc='gain', unit='Hz', retina_config_key='x')
    assert isinstance(v, torch.Tensor) and v.doc == 'gain' and v.unit == 'Hz' and v.retina_config_key == 'x'
    assert v.set([3, 4]) is v and v.get().tolist() == [3.0, 4.0]
    assert np.asarray(v).tolist() == [3.0, 4.0] and type(v * 2) is torch.Tensor
    assert v.set(np.ones(3)).shape == (3,)
    assert 'gain' in repr(v) and not v.requires_grad and Variable(1.0, requires_grad=True).requires_grad
    for x in (Parameter(1.0), State(torch.zeros(2)), VirtualParameter(float, value=1.0), v):
        assert isinstance(x, Variable) and is_variable(x)
    assert issubclass(Parameter, Variable) and issubclass(State, Variable)
    assert not isinstance(torch.zeros(1), Variable) and not is_variable(torch.zeros(1)) and not is_variable(1.0)


def test_create_hierarchical_dicts_of_pairs_and_layers():
    from convis.variables import (create_hierarchical_Ox, create_hierarchical_dict,
                                  create_hierarchical_dict_with_nodes)
    d = create_hierarchical_dict([('opl.tau', 1), ('opl.sigma', 2), ('bipolar.g_leak', 3), ('gain', 4)])
    assert d == {'opl': {'tau': 1, 'sigma': 2}, 'bipolar': {'g_leak': 3}, 'gain': 4}
    assert create_hierarchical_dict({'a.b': 1, 'a': 2}) == {'a': {'b': 1, '_self': 2}}
    with pytest.raises(ValueError, match='twice'):
        create_hierarchical_dict([('a.b', 1), ('a.b', 2)])
    retina = convis.retina.Retina()
    d = create_hierarchical_dict(retina)               # lossless: every parameter of the retina
    flat = []

    def walk(node):
        for v in node.values():
            walk(v) if isinstance(v, dict) else flat.append(v)
    walk(d)
    assert len(flat) == len(dict(retina.named_parameters())) + len(list(retina.named_virtual_parameters()))
    assert d['opl']['sigma_center'] is retina.opl.sigma_center
    n = create_hierarchical_dict_with_nodes(retina)
    assert n['_self'] is retina and n['opl']['_self'] is retina.opl
    assert n['opl']['sigma_center'] is retina.opl.sigma_center
    assert set(n) >= {'opl', 'bipolar', 'gang_0_input', 'gang_0_spikes'}
    assert create_hierarchical_dict_with_nodes([('a.b', 1)]) == {'a': {'b': 1}}
    assert create_hierarchical_Ox(retina).opl.sigma_center is retina.opl.sigma_center


# ---------------------------------------------------------------------------------------------- global resolution
def test_the_global_resolution_remembers_what_was_set_and_resets():
    from convis.variables import reset_default_resolution, user_default_resolution
    assert user_default_resolution() == {}
    convis.set_steps_per_second(500)
    convis.default_resolution.input_luminosity_range = 255
    assert user_default_resolution() == {'steps_per_second': 500.0, 'input_luminosity_range': 255.0}
    assert Resolution().steps_per_second == 500
    reset_default_resolution()
    assert user_default_resolution() == {}
    r = convis.default_resolution
    assert (r.pixel_per_degree, r.steps_per_second, r.input_luminosity_range) == (10, 1000, 1)


def test_resolution_copy_changes_named_fields_only():
    r = Resolution(pixel_per_degree=5, steps_per_second=100, input_luminosity_range=255)
    c = r.copy(steps_per_second=1000)
    assert (c.pixel_per_degree, c.steps_per_second, c.input_luminosity_range) == (5, 1000, 255)
    assert r.steps_per_second == 100
    with pytest.raises(TypeError, match='dt'):
        r.copy(dt=0.1)
