"""The retina's default values have one source, the stage declarations (``DEFAULTS``, ``OPTIONAL`` of each
stage, ``MAGNOCELLULAR``): the configuration, ``default_value``, the optional attributes and a default ``Retina``
keep the values they had before, and follow the declarations."""
import ast
import pathlib
import re

import pytest

import convis
from convis.errors import ConfigurationKeyError
from convis.filters.ganglion import MAGNOCELLULAR, GanglionInput, GanglionSpiking
from convis.filters.retina import OPL, Bipolar
from convis.retina import _Defaults, Retina
from convis.retina_virtualretina import SCHEMA, RetinaConfiguration, default_configuration, default_value

_PARVO_SPIKES = {'g-leak__Hz': 50.0, 'sigma-V': 0.1, 'refr-mean__sec': 0.003, 'refr-stdev__sec': 0.0,
                 'random-init': 0}
_MAGNO_SPIKES = {'g-leak__Hz': 50.0, 'sigma-V': 0.0, 'refr-mean__sec': 0.003, 'refr-stdev__sec': 0.0,
                 'random-init': 1}


def _parvo(name, sign):
    return {'name': name, 'enabled': True, 'sign': sign, 'transient-tau__sec': 0.02,
            'transient-relative-weight': 0.7, 'bipolar-linear-threshold': 0.0,
            'value-at-linear-threshold__Hz': 37.0, 'bipolar-amplification__Hz': 100.0, 'sigma-pool__deg': 0.0,
            'spiking-channel': dict(_PARVO_SPIKES)}


def _magno(name, sign):
    return {'name': name, 'enabled': False, 'sign': sign, 'transient-tau__sec': 0.03,
            'transient-relative-weight': 1.0, 'bipolar-linear-threshold': 0.0,
            'value-at-linear-threshold__Hz': 80.0, 'bipolar-amplification__Hz': 400.0, 'sigma-pool__deg': 0.1,
            'spiking-channel': dict(_MAGNO_SPIKES)}


EXPECTED = {
    'retina': {'temporal-step__sec': 0.01, 'input-luminosity-range': 255.0, 'pixels-per-degree': 5.0},
    'log-polar-scheme': {'enabled': False, 'fovea-radius__deg': 1.0, 'scaling-factor-outside-fovea__inv-deg': 1.0},
    'outer-plexiform-layers': [{'linear-version': {
        'center-sigma__deg': 0.05, 'surround-sigma__deg': 0.15, 'center-tau__sec': 0.01, 'center-n__uint': 0,
        'surround-tau__sec': 0.004, 'opl-amplification': 10.0, 'opl-relative-weight': 1.0,
        'leaky-heat-equation': 1, 'undershoot': {'enabled': True, 'relative-weight': 0.8, 'tau__sec': 0.1}}}],
    'contrast-gain-control': {'opl-amplification__Hz': 50.0, 'bipolar-inert-leaks__Hz': 50.0,
                              'adaptation-sigma__deg': 0.2, 'adaptation-tau__sec': 0.005,
                              'adaptation-feedback-amplification__Hz': 0.0},
    'ganglion-layers': [_parvo('Parvocellular On', 1), _parvo('Parvocellular Off', -1),
                        _magno('Magnocellular On', 1), _magno('Magnocellular Off', -1)],
    'basic-microsaccade-generator': {'enabled': False, 'pixels-per-degree': 200.0, 'temporal-step__sec': 0.005,
                                     'angular-noise__pi-radians': 0.3, 'period-mean__sec': 0.2,
                                     'period-stdev__sec': 0.0, 'amplitude-mean__deg': 0.5,
                                     'amplitude-stdev__deg': 0.1, 'saccade-duration-mean__sec': 0.025,
                                     'saccade-duration-stdev__sec': 0.005},
}
"""The default configuration (VirtualRetina's human parvocellular retina), written out in full."""


def _leaves(d, path=''):
    """``[(dotted key, value)]`` of every leaf of a nested dict / list, in order."""
    if isinstance(d, dict):
        return [leaf for k, v in d.items() for leaf in _leaves(v, path + '.' + k if path else k)]
    if isinstance(d, list):
        return [leaf for i, v in enumerate(d) for leaf in _leaves(v, '%s.%d' % (path, i))]
    return [(path, d)]


def test_default_configuration_is_the_literal_one_with_its_types_and_order():
    c = RetinaConfiguration().retina_config
    assert c == EXPECTED
    got, want = _leaves(c), _leaves(EXPECTED)
    assert [k for k, _ in got] == [k for k, _ in want]  # the order XML and JSON files are written in
    assert [type(v) for _, v in got] == [type(v) for _, v in want]


def test_default_configuration_is_a_fresh_copy_each_time():
    a = RetinaConfiguration()
    a.set('outer-plexiform-layers.0.linear-version.center-sigma__deg', 0.3)
    a.retina_config['ganglion-layers'][0]['spiking-channel']['sigma-V'] = 0.9
    assert RetinaConfiguration().retina_config == EXPECTED
    assert default_value('ganglion-layers.0.spiking-channel.sigma-V') == 0.1


@pytest.mark.parametrize('key, value', [
    ('retina.temporal-step__sec', 0.01),
    ('retina.pixels-per-degree', 5.0),
    ('log-polar-scheme.enabled', False),
    ('outer-plexiform-layers.0.linear-version.center-sigma__deg', 0.05),
    ('outer-plexiform-layers.3.linear-version.surround-tau__sec', 0.004),   # index past the list: item 0
    ('outer-plexiform-layers.0.linear-version.undershoot.tau__sec', 0.1),
    ('contrast-gain-control.adaptation-sigma__deg', 0.2),
    ('ganglion-layers.1.sign', -1),
    ('ganglion-layers.2.sigma-pool__deg', 0.1),
    ('ganglion-layers.3.spiking-channel.random-init', 1),
    ('ganglion-layers.7.sign', 1),                                           # index past the list: item 0
    ('ganglion-layers.7.spiking-channel.sigma-V', 0.1),
    ('basic-microsaccade-generator.amplitude-mean__deg', 0.5),
    ('ganglion-layers.x.sign', None),
    ('ganglion-layers.0', None),
    ('ganglion-layers.0.spiking-channel', None),
    ('no-such-element.value', None),
    ('retina.pixels-per-degree.more', None),
])
def test_default_value(key, value):
    got = default_value(key)
    assert got == value and type(got) is type(value)


def test_attributes_a_file_leaves_out_take_virtualretinas_values_else_the_default_configurations():
    view = _Defaults(RetinaConfiguration({'ganglion-layers': [{'sign': -1, 'spiking-channel': {}}],
                                          'outer-plexiform-layers': [{'linear-version': {}}]}))
    assert view.get('ganglion-layers.0.sign') == -1
    assert view.get('ganglion-layers.0.spiking-channel.sigma-V') == 0.0       # optional: VirtualRetina's 0
    assert view.get('ganglion-layers.0.spiking-channel.refr-stdev__sec') == 0.0
    assert view.get('ganglion-layers.0.spiking-channel.random-init') == 0
    assert view.get('ganglion-layers.0.sigma-pool__deg') == 0.0
    assert view.get('ganglion-layers.0.bipolar-linear-threshold') == 0.0
    assert view.get('outer-plexiform-layers.0.linear-version.center-n__uint') == 0
    assert view.get('outer-plexiform-layers.0.linear-version.leaky-heat-equation') == 1
    assert view.get('ganglion-layers.0.spiking-channel.g-leak__Hz') == 50.0  # not optional: the default's
    assert view.get('ganglion-layers.0.value-at-linear-threshold__Hz') == 37.0
    assert view.get('outer-plexiform-layers.0.linear-version.center-sigma__deg') == 0.05
    assert view.get('no-such-element.value', 'fallback') == 'fallback'
    assert convis.retina._OPTIONAL_DEFAULTS == {
        'center-n__uint': 0, 'sigma-pool__deg': 0.0, 'bipolar-linear-threshold': 0.0, 'random-init': 0,
        'sigma-V': 0.0, 'refr-stdev__sec': 0.0, 'leaky-heat-equation': 1}


_RETINA_PARAMETERS = {
    'opl.sigma_center': 0.05, 'opl.tau_center': 0.01, 'opl.n_center': 0.0, 'opl.undershoot_enabled': 1.0,
    'opl.undershoot_relative_weight_center': 0.8, 'opl.undershoot_tau_center': 0.1, 'opl.sigma_surround': 0.15,
    'opl.tau_surround': 0.004, 'opl.relative_weight': 1.0, 'opl.lambda_opl': 10.0, 'opl.leaky_heat_equation': 1.0,
    'bipolar.lambda_amp': 0.0, 'bipolar.g_leak': 50.0, 'bipolar.input_amp': 50.0, 'bipolar.tau': 0.005,
    'bipolar.adaptation_sigma': 0.2,
    'gang_0_input.sign': 1.0, 'gang_0_input.transient_tau_center': 0.02,
    'gang_0_input.transient_relative_weight_center': 0.7, 'gang_0_input.v_0': 0.0, 'gang_0_input.i_0': 37.0,
    'gang_0_input.lambda_G': 100.0, 'gang_0_input.sigma_pool': 0.0,
    'gang_0_spikes.g_L': 50.0, 'gang_0_spikes.noise_sigma': 0.1, 'gang_0_spikes.refr_mu': 0.003,
    'gang_0_spikes.refr_sigma': 0.0, 'gang_0_spikes.random_init': 0.0,
    'gang_1_input.sign': -1.0, 'gang_1_input.transient_tau_center': 0.02,
    'gang_1_input.transient_relative_weight_center': 0.7, 'gang_1_input.v_0': 0.0, 'gang_1_input.i_0': 37.0,
    'gang_1_input.lambda_G': 100.0, 'gang_1_input.sigma_pool': 0.0,
    'gang_1_spikes.g_L': 50.0, 'gang_1_spikes.noise_sigma': 0.1, 'gang_1_spikes.refr_mu': 0.003,
    'gang_1_spikes.refr_sigma': 0.0, 'gang_1_spikes.random_init': 0.0,
}


def test_a_retina_without_configuration_has_the_default_values():
    retina = Retina(seed=1)
    assert {n: p.exact for n, p in retina.named_parameters()} == _RETINA_PARAMETERS
    double = Retina(seed=1).double()
    assert {n: float(p) for n, p in double.named_parameters()} == _RETINA_PARAMETERS
    assert retina._keys == ['ganglion_spikes_ON', 'ganglion_spikes_OFF']
    r = retina.resolution
    assert (r.steps_per_second, r.pixel_per_degree, r.input_luminosity_range) == (100.0, 5.0, 255.0)
    assert retina.log_polar is None and retina._has_cgc and retina._has_opl


def test_the_magnocellular_layers_when_enabled():
    config = RetinaConfiguration()
    config.set('ganglion-layers.*.enabled', True)
    retina = Retina(config=config, seed=1).double()
    values = {n: float(p) for n, p in retina.named_parameters()}
    for k in (2, 3):
        assert values['gang_%d_input.sign' % k] == (1.0 if k == 2 else -1.0)
        assert values['gang_%d_input.transient_tau_center' % k] == 0.03
        assert values['gang_%d_input.transient_relative_weight_center' % k] == 1.0
        assert values['gang_%d_input.i_0' % k] == 80.0
        assert values['gang_%d_input.lambda_G' % k] == 400.0
        assert values['gang_%d_input.sigma_pool' % k] == 0.1
        assert values['gang_%d_spikes.noise_sigma' % k] == 0.0
        assert values['gang_%d_spikes.random_init' % k] == 1.0
        assert values['gang_%d_spikes.g_L' % k] == 50.0
    assert retina._keys == ['ganglion_spikes_ON', 'ganglion_spikes_OFF', 'ganglion_spikes_ON_2',
                            'ganglion_spikes_OFF_3']


@pytest.mark.parametrize('stage, values', [
    ('OPL', {'sigma_center': 0.05, 'tau_center': 0.01, 'n_center': 0.0, 'undershoot_enabled': 1.0,
             'undershoot_relative_weight_center': 0.8, 'undershoot_tau_center': 0.1, 'sigma_surround': 0.15,
             'tau_surround': 0.004, 'relative_weight': 1.0, 'lambda_opl': 10.0, 'leaky_heat_equation': 1.0}),
    ('Bipolar', {'lambda_amp': 0.0, 'g_leak': 50.0, 'input_amp': 50.0, 'tau': 0.005, 'adaptation_sigma': 0.2}),
    ('GanglionInput', {'sign': 1.0, 'transient_tau_center': 0.02, 'transient_relative_weight_center': 0.7,
                       'v_0': 0.0, 'i_0': 37.0, 'lambda_G': 100.0, 'sigma_pool': 0.0}),
    ('GanglionSpiking', {'g_L': 50.0, 'noise_sigma': 0.1, 'refr_mu': 0.003, 'refr_sigma': 0.0,
                         'random_init': 0.0}),
])
def test_each_stage_built_alone_has_the_default_values(stage, values):
    cls = getattr(convis.filters.retina, stage)
    layer = cls(seed=1) if stage == 'GanglionSpiking' else cls()
    assert {n: p.exact for n, p in layer.named_parameters()} == values
    assert all(p.dtype == layer.dtype for p in layer.parameters())


# ---------------------------------------------------------------------------------------------- one source
STAGES = {OPL: 'linear-version', Bipolar: 'contrast-gain-control', GanglionInput: 'ganglion-layer',
          GanglionSpiking: 'spiking-channel'}
SOURCE = pathlib.Path(convis.__file__).parent


def _build(cls):
    return cls(seed=1) if cls is GanglionSpiking else cls()


@pytest.mark.parametrize('cls', list(STAGES), ids=lambda c: c.__name__)
def test_each_stage_declares_the_default_of_each_configured_parameter_once(cls):
    layer = _build(cls)
    declared = {p.retina_config_key: p.exact for p in layer.parameters() if p.retina_config_key != 'sign'}
    assert declared == cls.DEFAULTS
    assert set(cls.OPTIONAL) <= set(cls.DEFAULTS)
    for key in cls.DEFAULTS:  # every key is an attribute of the stage's element (or of a child element)
        *child, attribute = key.split('.')
        assert attribute in SCHEMA[child[0] if child else STAGES[cls]]
    spiking = {'spiking-channel.' + k for k in GanglionSpiking.DEFAULTS}
    assert set(MAGNOCELLULAR) <= set(GanglionInput.DEFAULTS) | spiking


def test_the_configuration_follows_the_stage_declarations(monkeypatch):
    monkeypatch.setitem(OPL.DEFAULTS, 'center-sigma__deg', 0.07)
    monkeypatch.setitem(Bipolar.DEFAULTS, 'adaptation-tau__sec', 0.02)
    monkeypatch.setitem(GanglionSpiking.DEFAULTS, 'g-leak__Hz', 40.0)
    monkeypatch.setitem(GanglionSpiking.DEFAULTS, 'sigma-V', 0.3)
    monkeypatch.setitem(MAGNOCELLULAR, 'bipolar-amplification__Hz', 300.0)
    c = default_configuration()
    assert c['outer-plexiform-layers'][0]['linear-version']['center-sigma__deg'] == 0.07
    assert c['contrast-gain-control']['adaptation-tau__sec'] == 0.02
    assert [g['spiking-channel']['g-leak__Hz'] for g in c['ganglion-layers']] == [40.0] * 4
    assert [g['spiking-channel']['sigma-V'] for g in c['ganglion-layers']] == [0.3, 0.3, 0.0, 0.0]  # magno: 0
    assert [g['bipolar-amplification__Hz'] for g in c['ganglion-layers']] == [100.0, 100.0, 300.0, 300.0]
    assert RetinaConfiguration().get('outer-plexiform-layers.0.linear-version.center-sigma__deg') == 0.07
    assert default_value('ganglion-layers.9.spiking-channel.g-leak__Hz') == 40.0
    assert OPL().sigma_center.exact == 0.07
    retina = Retina(seed=1)
    assert retina.opl.sigma_center.exact == 0.07 and retina.gang_1_spikes.noise_sigma.exact == 0.3


def test_the_optional_values_are_the_stage_declarations():
    merged = {}
    for cls in STAGES:
        merged.update(cls.OPTIONAL)
    assert convis.retina._OPTIONAL_DEFAULTS == merged
    for cls in STAGES:  # a value VirtualRetina uses for a left-out attribute is the default, but for sigma-V
        for key, value in cls.OPTIONAL.items():
            assert value == (0.0 if key == 'sigma-V' else cls.DEFAULTS[key])


def test_a_declared_difference_of_the_magnocellular_layers_must_name_a_stage_parameter(monkeypatch):
    monkeypatch.setitem(MAGNOCELLULAR, 'spiking-channel.no-such-key', 1.0)
    with pytest.raises(ConfigurationKeyError, match='no-such-key'):
        default_configuration()


def test_default_configuration_returns_a_fresh_copy():
    a = default_configuration()
    a['ganglion-layers'][0]['spiking-channel']['sigma-V'] = 0.9
    a['retina']['pixels-per-degree'] = 50.0
    assert default_configuration() == EXPECTED


def _numeric_entries(tree):
    """``[(string key, number)]`` of every dict literal entry in ``tree`` whose value is a number."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and isinstance(k.value, str) and isinstance(v, ast.Constant) \
                        and isinstance(v.value, (int, float)) and not isinstance(v.value, bool):
                    out.append((k.value, v.value))
    return out


def test_each_stage_default_is_written_once_in_the_package():
    files = sorted(SOURCE.rglob('*.py'))
    text = {f: f.read_text(encoding='utf-8') for f in files}
    entries = [e for f in files for e in _numeric_entries(ast.parse(text[f]))]
    for cls in STAGES:
        for key, value in cls.DEFAULTS.items():
            assert entries.count((key, value)) == 1, (cls.__name__, key, value)
    hits = [(f.name, m.group(0)) for f in files for m in re.finditer(r"center-sigma__deg['\"]\s*:\s*0\.05\b", text[f])]
    assert hits == [('retina.py', "center-sigma__deg': 0.05")]
    stage_modules = [SOURCE / 'filters' / 'retina.py', SOURCE / 'filters' / 'ganglion.py']
    assert sum(len(re.findall(r'(?<![\w.])0\.05(?![\d])', text[f])) for f in stage_modules) == 1
    for f in stage_modules:  # the constructors take every value from DEFAULTS, none as a number
        for node in ast.walk(ast.parse(text[f])):
            if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == '_param':
                assert not isinstance(node.args[0], ast.Constant), (f.name, node.lineno)
