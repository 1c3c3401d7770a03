"""ParameterPanel (convis_widgets/parameters.py): controls built from the parameter tree, two-way."""
import math

import ipywidgets as widgets
import numpy as np
import pytest
import torch

import convis
from convis_widgets import ParameterPanel, control_range


class Stage(convis.Layer):
    """A scaled first-order low-pass: y' = (x - y) / tau, output gain * y."""

    def __init__(self, tau=0.01, gain=2.0):
        super().__init__()
        self.tau = convis.Parameter(tau, doc='time constant of the low-pass', unit='s', bounds=(0, None),
                                    scale='log', slider_range=(0.001, 1.0), retina_config_key='stage-tau__sec')
        self.gain = convis.Parameter(gain, doc='gain', unit='Hz', bounds=(-100, 100), slider_range=(-10, 10))

    def forward(self, x):
        return self.gain * x


class Model(convis.Layer):
    def __init__(self):
        super().__init__()
        self.centre = Stage()
        self.surround = Stage(0.1, -1.0)
        self.plain = torch.nn.Parameter(torch.tensor([0.5]))
        self.kernel = convis.Parameter(np.ones((3, 3)), doc='not a scalar')
        self.steps = torch.nn.Parameter(torch.tensor([4]), requires_grad=False)
        self.offset = convis.VirtualParameter(float, value=0.25, doc='a virtual value')

    def forward(self, x):
        return self.surround(self.centre(x)) + self.plain


@pytest.fixture
def model():
    return Model()


@pytest.fixture
def panel(model):
    p = ParameterPanel(model)
    yield p
    p.close()


def test_one_control_per_scalar_parameter_grouped_by_sublayer(panel):
    assert list(panel.controls) == ['plain', 'steps', 'centre.tau', 'centre.gain', 'surround.tau', 'surround.gain',
                                    'offset']
    assert list(panel.groups) == ['Model', 'centre', 'surround']
    assert panel.groups['centre'] == ['centre.tau', 'centre.gain']
    assert isinstance(panel.body, widgets.Accordion)
    assert panel.body.titles == ('Model', 'centre', 'surround')


def test_ranges_scales_and_units_from_the_metadata(panel):
    tau = panel.controls['centre.tau']
    assert (tau.low, tau.high, tau.scale) == (0.001, 1.0, 'log')
    assert isinstance(tau.slider, widgets.FloatLogSlider)
    assert tau.slider.min == pytest.approx(-3) and tau.slider.max == pytest.approx(0)
    gain = panel.controls['surround.gain']
    assert (gain.low, gain.high, gain.scale) == (-10.0, 10.0, 'linear')
    assert isinstance(gain.slider, widgets.FloatSlider)
    assert '<b>tau</b> [s]' in tau.label.value and '[Hz]' in gain.label.value
    assert 'time constant of the low-pass' in tau.label.tooltip
    assert 'VirtualRetina: stage-tau__sec' in tau.label.tooltip
    assert 'bounds: [0, inf]' in tau.label.tooltip
    steps = panel.controls['steps']
    assert steps.is_int and isinstance(steps.slider, widgets.IntSlider)
    assert (steps.slider.min, steps.slider.max) == (0, 8)
    steps.slider.value = 6
    assert int(panel.model.steps) == 6


def test_ranges_around_the_value_without_metadata():
    assert control_range(torch.nn.Parameter(torch.tensor([0.5]))) == (0.0, 1.0, 'linear')
    assert control_range(torch.nn.Parameter(torch.tensor([-2.0]))) == (-4.0, 0.0, 'linear')
    assert control_range(torch.nn.Parameter(torch.tensor([0.0]))) == (-1.0, 1.0, 'linear')
    log = convis.Parameter(0.02, scale='log')
    lo, hi, scale = control_range(log)
    assert (lo, hi, scale) == (pytest.approx(0.002), pytest.approx(0.2), 'log')
    assert control_range(convis.Parameter(3.0, bounds=(1, 5))) == (1.0, 5.0, 'linear')
    assert control_range(convis.Parameter(0.0, bounds=(0, None))) == (0.0, 1.0, 'linear')
    # a log scale that reaches 0 starts a thousandth of the value instead; a zero value falls back to linear
    assert control_range(convis.Parameter(0.5, scale='log', slider_range=(0, 2))) == (0.0005, 2.0, 'log')
    assert control_range(convis.Parameter(0.0, scale='log', slider_range=(0, 2)))[2] == 'linear'
    # the value is always inside the range
    lo, hi, _ = control_range(convis.Parameter(50.0, slider_range=(0, 10)))
    assert lo <= 50.0 <= hi


def test_moving_a_control_sets_the_parameter_once(model, panel):
    seen = []
    panel.on_change(lambda name, value: seen.append((name, value)))
    panel.controls['centre.gain'].slider.value = 3.5
    assert float(model.centre.gain) == 3.5
    assert panel.controls['centre.gain'].text.value == '3.5'
    assert seen == [('centre.gain', 3.5)]
    panel.controls['centre.tau'].text.value = '0.0123'
    assert float(model.centre.tau) == pytest.approx(0.0123)
    assert panel.controls['centre.tau'].slider.value == pytest.approx(0.0123)
    assert len(seen) == 2 and panel.version == 2


def test_exact_value_beyond_the_slider_widens_it(model, panel):
    c = panel.controls['centre.gain']
    c.text.value = '50'
    assert float(model.centre.gain) == 50.0
    assert c.slider.max == 50.0 and c.slider.value == 50.0


def test_values_outside_the_hard_bounds_are_refused_and_shown(model, panel, caplog):
    c = panel.controls['centre.gain']
    c.text.value = 500.0                      # a number assigned is shown as text
    assert float(model.centre.gain) == 2.0
    assert c.text.value == '2' and c.slider.value == 2.0
    assert 'above the upper bound 100' in panel.message.value
    assert 'centre.gain' in caplog.text
    c.text.value = '5'
    assert panel.message.value == ''


def test_setting_in_python_moves_the_slider(model, panel):
    seen = []
    panel.on_change(lambda name, value: seen.append(name))
    model.p.surround.tau = 0.5
    assert panel.controls['surround.tau'].slider.value == pytest.approx(0.5)
    model.centre.gain = 7.0
    assert panel.controls['centre.gain'].text.value == '7'
    assert seen == ['surround.tau', 'centre.gain']


def test_refresh_catches_changes_that_bypass_set(model, panel):
    with torch.no_grad():
        model.plain.fill_(0.75)
        model.centre.gain.data.fill_(-3.0)
    seen = []
    panel.on_change(lambda name, value: seen.append(name))
    assert panel.refresh() == ['plain', 'centre.gain']
    assert panel.controls['plain'].slider.value == 0.75
    assert seen == ['plain', 'centre.gain']
    assert panel.refresh() == []


def test_reset_one_and_all(model, panel):
    panel.set_value('centre.tau', 0.2)
    panel.set_value('surround.gain', 4.0)
    panel.set_value('offset', 1.0)
    assert model.offset.get() == 1.0
    panel.controls['centre.tau'].reset()
    assert float(model.centre.tau) == pytest.approx(0.01)
    panel.reset_all()
    assert float(model.surround.gain) == -1.0
    assert model.offset.get() == 0.25
    assert panel.values()['steps'] == 4
    with pytest.raises(KeyError, match='no control'):
        panel.set_value('nope', 1.0)


def test_close_stops_following_the_model(model):
    hooks = list(convis.variables.parameter_set_hooks)
    p = ParameterPanel(model)
    assert len(convis.variables.parameter_set_hooks) == len(hooks) + 1
    p.close()
    assert convis.variables.parameter_set_hooks == hooks
    model.centre.gain = 9.0  # no error from a closed panel


def test_tabs_include_and_exclude(model):
    p = ParameterPanel(model, group_by='tabs', include=['centre', 'surround'], exclude=['gain'])
    assert list(p.controls) == ['centre.tau', 'surround.tau']
    assert isinstance(p.body, widgets.Tab)
    p.close()
    with pytest.raises(ValueError, match='group_by'):
        ParameterPanel(model, group_by='menu')


def test_works_for_the_library_models():
    m = convis.models.LN((5, 3, 3))
    p = ParameterPanel(m)
    scalars = [n for n, q in m.named_parameters() if q.numel() == 1]
    assert [n for n in p.controls if n in dict(m.named_parameters())] == scalars
    for c in p.controls.values():
        assert c.low <= c.value <= c.high and not math.isnan(c.value)
    p.close()


def test_the_retina_panel_has_the_ranges_and_units_of_virtual_retina():
    retina = convis.retina.Retina()
    p = ParameterPanel(retina)
    assert {'opl', 'bipolar', 'gang_0_input', 'gang_1_spikes'} <= set(p.groups)
    sigma = p.controls['opl.sigma_center']
    assert (sigma.low, sigma.high, sigma.scale) == (0.005, 2.0, 'log')
    assert '[deg]' in sigma.label.value and 'VirtualRetina: center-sigma__deg' in sigma.label.tooltip
    leak = p.controls['bipolar.g_leak']
    assert '[Hz]' in leak.label.value and leak.scale == 'log'
    for c in p.controls.values():
        assert c.low <= c.value <= c.high
    retina.p.bipolar.g_leak = 20.0
    assert leak.text.value == '20'
    p.close()


def _flash_response(retina, luminance):
    """Change of the input current (Hz) of the ON and OFF ganglion cells in a spot flashed on grey (first 100 ms)."""
    x = np.full((40, 12, 12), 127.5, dtype=np.float32)
    x[20:, 3:9, 3:9] = luminance
    retina.clear_state()
    o = retina.run(x)
    return [float(o[k][0, 0, 20:30, 6, 6].mean() - o[k][0, 0, 10:20, 6, 6].mean())
            for k in ('ganglion_0', 'ganglion_1')]


def test_reset_all_gives_back_the_retina_as_constructed_and_off_still_answers_dark():
    retina = convis.retina.Retina(seed=0)
    retina.record = ('ganglion_0', 'ganglion_1')
    constructed = {n: float(p.detach()) for n, p in retina.named_parameters()}
    p = ParameterPanel(retina)
    p.controls['gang_1_input.sign'].choice.value = 1.0          # OFF made ON
    p.controls['opl.sigma_center'].slider.value = 0.3
    p.controls['bipolar.g_leak'].text.value = '20'
    p.controls['opl.undershoot_enabled'].choice.value = False
    p.controls['opl.n_center'].slider.value = 3
    p.controls['gang_0_spikes.random_init'].choice.value = True
    assert float(retina.gang_1_input.sign) == 1.0 and float(retina.opl.undershoot_enabled) == 0.0
    p.reset_all()
    assert {n: float(q.detach()) for n, q in retina.named_parameters()} == constructed
    assert p.values()['gang_1_input.sign'] == -1.0 and p.controls['gang_1_input.sign'].choice.label == 'OFF'
    on_dark, off_dark = _flash_response(retina, 27.5)
    on_bright, off_bright = _flash_response(retina, 227.5)
    assert off_dark > 10.0 and off_bright < -5.0, (off_dark, off_bright)     # OFF cells answer to dark
    assert on_bright > 10.0 and on_dark < -5.0, (on_bright, on_dark)
    p.controls['gang_1_input.sign'].reset()
    assert float(retina.gang_1_input.sign) == -1.0
    p.close()


def test_a_configured_value_is_what_reset_returns_to():
    retina = convis.retina.Retina()
    config = convis.retina.RetinaConfiguration()
    config.set('contrast-gain-control.bipolar-inert-leaks__Hz', 20.0)
    retina.parse_config(config)
    p = ParameterPanel(retina)
    leak = p.controls['bipolar.g_leak']
    assert leak.default == 20.0 and 'default: 20' in leak.label.tooltip
    leak.text.value = '70'
    leak.reset()
    assert float(retina.bipolar.g_leak) == 20.0
    p.close()


def test_switches_are_checkboxes_choices_dropdowns_and_integers_integer_sliders():
    retina = convis.retina.Retina()
    p = ParameterPanel(retina)
    sign = p.controls['gang_0_input.sign']
    assert isinstance(sign.choice, widgets.Dropdown) and sign.slider is None and sign.text is None
    assert sign.choice.options == (('ON', 1.0), ('OFF', -1.0)) and sign.choice.label == 'ON'
    for name in ('opl.undershoot_enabled', 'gang_0_spikes.random_init', 'opl.leaky_heat_equation'):
        assert isinstance(p.controls[name].choice, widgets.Checkbox), name
    assert p.controls['opl.undershoot_enabled'].choice.value is True
    assert not p.controls['opl.undershoot_enabled'].choice.disabled
    heat = p.controls['opl.leaky_heat_equation'].choice
    assert heat.value is True and heat.disabled          # the linear version (0) is not implemented: not offered
    assert isinstance(p.controls['opl.n_center'].slider, widgets.IntSlider)
    # what a control cannot offer is refused when asked for, too (the core checks it as well)
    assert not p.set_value('gang_0_input.sign', 0.37)
    assert float(retina.gang_0_input.sign) == 1.0 and 'not one of the choices' in p.message.value
    assert not p.set_value('opl.leaky_heat_equation', 0)
    assert not p.set_value('opl.n_center', 2.5) and 'whole number' in p.message.value
    assert float(retina.opl.n_center) == 0.0
    assert p.set_value('opl.n_center', 2) and float(retina.opl.n_center) == 2.0
    p.close()


def test_numbers_show_about_four_significant_figures():
    retina = convis.retina.Retina()
    p = ParameterPanel(retina)
    sigma = p.controls['opl.sigma_center']          # a log slider
    sigma.slider.value = 0.29934842564390796
    assert float(retina.opl.sigma_center) == pytest.approx(0.2993) and sigma.text.value == '0.2993'
    g = p.controls['gang_0_input.lambda_G']         # a linear slider of 1000 steps
    g.slider.value = 599.0000000000001
    assert g.text.value == '599' and float(retina.gang_0_input.lambda_G) == 599.0
    assert p.controls['opl.undershoot_relative_weight_center'].text.value == '0.8'   # float32 0.800000011
    g.text.value = '123.456'                        # a typed value keeps its digits
    assert g.text.value == '123.456' and float(retina.gang_0_input.lambda_G) == pytest.approx(123.456)
    assert [c.text.value for c in p.controls.values() if c.text is not None and len(c.text.value) > 8] == []
    p.close()


def test_labels_for_people():
    retina = convis.retina.Retina()
    p = ParameterPanel(retina)
    assert p.body.titles == ('Outer plexiform layer (opl)', 'Gain control (bipolar)',
                             'ON ganglion cells: input current (gang_0_input)',
                             'ON ganglion cells: spikes (gang_0_spikes)',
                             'OFF ganglion cells: input current (gang_1_input)',
                             'OFF ganglion cells: spikes (gang_1_spikes)')
    shown = {'opl.sigma_center': 'σ<sub>C</sub>', 'opl.tau_surround': 'τ<sub>S</sub>',
             'opl.lambda_opl': 'λ<sub>OPL</sub>',
             'opl.relative_weight': 'w<sub>OPL</sub>', 'bipolar.g_leak': 'g<sub>0</sub>',
             'gang_0_spikes.refr_mu': 'μ<sub>refr</sub>'}
    for name, symbol in shown.items():
        c = p.controls[name]
        assert '<b>%s</b>' % symbol in c.label.value and c.label.tooltip.startswith(name + '\n'), name
        assert 'white-space:nowrap' in c.label.value                    # the unit stays on the symbol's line
        assert c.label.layout.flex == '0 0 150px' and c.label.layout.overflow == 'hidden'   # never over the slider
    assert '<b>σ<sub>C</sub></b> [deg]' in p.controls['opl.sigma_center'].label.value
    # each ganglion section says which output and recorded map it makes
    notes = [box.children[0].value for box in p.body.children]
    assert 'output: ganglion_spikes_OFF' in notes[4] and "record: 'ganglion_1'" in notes[4]
    assert "'opl'" in notes[0]
    p.controls['gang_1_input.sign'].choice.value = 1.0
    assert p.body.titles[4] == 'ON ganglion cells: input current (gang_1_input)'
    p.close()


def test_non_finite_values_never_reach_the_model_and_reset_repairs_the_slider(model, panel):
    gain = panel.controls['centre.gain']
    for bad in ('inf', '-inf', 'nan', float('inf'), 'fast'):
        gain.text.value = bad
        assert float(model.centre.gain) == 2.0, bad
        assert math.isfinite(gain.slider.max) and math.isfinite(gain.slider.min)
    assert 'not a number' in panel.message.value
    assert not panel.set_value('offset', float('inf')) and model.offset.get() == 0.25   # no core check there
    assert not panel.set_value('plain', float('-inf')) and model.plain.item() == 0.5
    with torch.no_grad():
        model.plain.fill_(float('inf'))               # a change that bypasses every check
    panel.refresh()
    plain = panel.controls['plain']
    assert plain.text.value == 'inf' and math.isfinite(plain.slider.max)
    plain.reset()
    assert model.plain.item() == 0.5 and plain.text.value == '0.5'
    gain.text.value = '50'                            # a value beyond the slider widens it ...
    assert gain.slider.max == 50.0
    gain.reset()                                      # ... and reset gives its range back
    assert (gain.slider.min, gain.slider.max, gain.slider.value) == (-10.0, 10.0, 2.0)
    assert control_range(torch.nn.Parameter(torch.tensor([float('inf')])))[:2] == (-1.0, 1.0)
