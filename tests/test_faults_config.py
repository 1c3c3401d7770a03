"""Loads validate everything, then apply all or nothing: configurations, parameter files, cell arrays.

Each test names the fault it covers (issue 17 items 7, 8, 11, 12, 13; issue 13 item 4).
"""
import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

import convis
from convis.parameter_io import ParameterFileError
from convis.retina_virtualretina import MAX_CELLS, ConfigurationError, RetinaConfiguration, cell_positions

LV = 'outer-plexiform-layers.0.linear-version.'
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _xml(tmp_path, name, changes=(), remove=()):
    """A configuration file: the default with ``changes`` (dotted key -> value) and attributes removed."""
    c = RetinaConfiguration()
    for k, v in changes:
        c.set(k, v)
    for k in remove:
        *path, attr = k.split('.')
        node = c.retina_config
        for p in path:
            node = node[int(p)] if isinstance(node, list) else node[p]
        del node[attr]
    return c.write_xml(str(tmp_path / name))


def _state_of(retina):
    """Everything a configuration sets: parameter values and defaults, resolution, outputs, cells."""
    r = retina.resolution
    return ({k: v.tolist() for k, v in retina.get_parameters().items()},
            {n: np.asarray(p.default).tolist() for n, p in retina.named_parameters()},
            (r.steps_per_second, r.pixel_per_degree, r.input_luminosity_range),
            list(retina._keys), sorted(n for n, _ in retina.named_children()),
            [getattr(retina, n).cells for n, _ in retina.named_children() if n.endswith('_spikes')])


# ---------------------------------------------------------------------------------------------- 17.7
@pytest.mark.parametrize('fmt', ['xml', 'json'])
def test_17_7_an_attribute_left_out_takes_its_default_not_the_previous_files_value(tmp_path, fmt):
    a = RetinaConfiguration()
    a.set(LV + 'center-sigma__deg', 0.2)
    a.set('retina.temporal-step__sec', 0.002)
    b = RetinaConfiguration()
    del b.retina_config['outer-plexiform-layers'][0]['linear-version']['center-sigma__deg']
    del b.retina_config['retina']['temporal-step__sec']
    if fmt == 'xml':
        pa, pb = a.write_xml(str(tmp_path / 'a.xml')), b.write_xml(str(tmp_path / 'b.xml'))
    else:
        pa, pb = a.write_json(str(tmp_path / 'a.json')), b.write_json(str(tmp_path / 'b.json'))
        pa, pb = RetinaConfiguration().read_json(pa), RetinaConfiguration().read_json(pb)
    retina = convis.retina.Retina()
    retina.parse_config(pa)
    assert float(retina.opl.sigma_center) == pytest.approx(0.2) and retina.resolution.steps_per_second == 500
    retina.parse_config(pb)
    fresh = convis.retina.Retina(config=pb)
    assert float(retina.opl.sigma_center) == pytest.approx(0.05)        # the default, not a's 0.2
    assert retina.opl.sigma_center.exact == 0.05                        # the float64 value too
    assert retina.resolution.steps_per_second == pytest.approx(100.0)    # 10 ms, not a's 2 ms
    assert _state_of(retina) == _state_of(fresh)                         # the history does not matter


def test_17_7_an_invalid_value_late_in_the_file_changes_nothing(tmp_path):
    retina = convis.retina.Retina()
    before = _state_of(retina)
    # valid changes early in the file (resolution, OPL, ganglion layer 0), invalid ones at the end
    early = [('retina.temporal-step__sec', 0.001), (LV + 'center-sigma__deg', 0.3),
             ('ganglion-layers.0.transient-tau__sec', 0.05)]
    for late in [('ganglion-layers.1.sign', 3),                                 # not a choice
                 ('ganglion-layers.1.spiking-channel.g-leak__Hz', -3.0),       # below the bound
                 ('ganglion-layers.1.spiking-channel.refr-mean__sec', -1.0)]:
        path = _xml(tmp_path, 'bad.xml', early + [late])
        with pytest.raises(ValueError, match=late[0].rsplit('.', 1)[-1]):
            retina.parse_config(path)
        assert _state_of(retina) == before, late


def test_17_7_a_failure_while_applying_puts_everything_back(tmp_path, monkeypatch):
    retina = convis.retina.Retina()
    retina.run(np.full((5, 8, 8), 128.0))
    before, state = _state_of(retina), retina.get_state()
    spikes = retina.gang_0_spikes
    path = _xml(tmp_path, 'sq.xml', [(LV + 'center-sigma__deg', 0.3),
                                     ('ganglion-layers.1.spiking-channel.square-array',
                                      {'size-x__deg': 1.0, 'size-y__deg': 1.0, 'uniform-density__inv-deg': 2.0})])
    calls = []

    def failing_set_cells(self, *a, **kw):   # the second spiking layer fails (as if out of memory)
        calls.append(self)
        if len(calls) == 2:
            raise MemoryError('simulated')
        return original(self, *a, **kw)
    original = convis.filters.retina.GanglionSpiking.set_cells
    monkeypatch.setattr(convis.filters.retina.GanglionSpiking, 'set_cells', failing_set_cells)
    with pytest.raises(MemoryError):
        retina.parse_config(path)
    assert _state_of(retina) == before and retina.gang_0_spikes is spikes
    after = retina.get_state()
    assert sorted(after) == sorted(state)
    monkeypatch.undo()
    retina.parse_config(path)                 # and it still works afterwards
    assert float(retina.opl.sigma_center) == pytest.approx(0.3)


# ---------------------------------------------------------------------------------------------- 17.8, 13.4
def test_17_8_load_parameters_checks_every_shape_and_bound_before_applying_any(tmp_path):
    retina = convis.retina.Retina()
    before = retina.get_parameters()
    names = list(before)
    assert len(names) == 40
    for bad_name, bad_value in [('gang_1_spikes.random_init', np.array([0.0, 1.0, 0.0])),  # 3 values, a scalar
                                ('gang_1_spikes.g_L', np.array([-5.0])),                    # below the bound
                                ('gang_1_spikes.refr_mu', np.array([np.inf]))]:             # not finite
        d = {k: v.copy() for k, v in before.items()}
        d[names[0]] = d[names[0]] * 2       # two changes early in the file ...
        d[names[1]] = d[names[1]] * 2
        d[bad_name] = bad_value             # ... and a bad value late
        path = str(tmp_path / 'p.npz')
        np.savez(path, **d)
        with pytest.raises(ValueError, match=bad_name.replace('.', r'\.')) as e:
            retina.load_parameters(path)
        assert 'p.npz' in str(e.value)
        for k, v in retina.get_parameters().items():
            np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_13_4_a_file_from_a_changed_model_loads_its_matching_names(tmp_path):
    old = convis.retina.Retina()
    old.opl.sigma_center.set(0.11)
    d = old.get_parameters()
    d.pop('bipolar.g_leak')                        # the new model has a parameter the file lacks
    d['bipolar.renamed_parameter'] = np.array([1.0])  # and the file one the model lacks
    path = str(tmp_path / 'old.npz')
    np.savez(path, **d)
    new = convis.retina.Retina()
    g_leak = float(new.bipolar.g_leak)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        new.load_parameters(path)                  # ignored, silently, as the original documents
    assert float(new.opl.sigma_center) == pytest.approx(0.11) and float(new.bipolar.g_leak) == g_leak
    with pytest.warns(UserWarning, match=r"ignored: \['bipolar.renamed_parameter'\].*not in the file.*bipolar.g_leak"):
        new.load_parameters(path, warn=True)
    new._debug = True
    with pytest.warns(UserWarning, match='renamed_parameter'):
        new.load_parameters(path)
    new._debug = False
    new.opl.sigma_center.set(0.2)
    with pytest.raises(KeyError, match='renamed_parameter'):
        new.load_parameters(path, strict=True)
    assert float(new.opl.sigma_center) == pytest.approx(0.2)   # strict: nothing was set


# ---------------------------------------------------------------------------------------------- 17.11
BAD_ARRAYS = {
    'negative fovea density': {'circular-array': {'fovea-density__inv-deg': -1.0, 'diameter__deg': 2.0}},
    'zero fovea density': {'circular-array': {'fovea-density__inv-deg': 0.0, 'diameter__deg': 2.0}},
    'huge diameter': {'circular-array': {'fovea-density__inv-deg': 5.0, 'diameter__deg': 1e6}},
    'huge circular density': {'circular-array': {'fovea-density__inv-deg': 1e7, 'diameter__deg': 2.0}},
    'huge square density': {'square-array': {'size-x__deg': 2.0, 'size-y__deg': 2.0, 'uniform-density__inv-deg': 1e8}},
    '1e4-degree square array': {'square-array': {'size-x__deg': 1e4, 'size-y__deg': 1e4,
                                                 'uniform-density__inv-deg': 5.0}},
    'negative square density': {'square-array': {'size-x__deg': 2.0, 'size-y__deg': 2.0,
                                                 'uniform-density__inv-deg': -5.0}},
}


@pytest.mark.parametrize('case', sorted(BAD_ARRAYS))
def test_17_11_a_cell_array_that_cannot_be_built_is_refused_before_anything_changes(tmp_path, case):
    channel = dict(RetinaConfiguration().get('ganglion-layers.0.spiking-channel'), **BAD_ARRAYS[case])
    c = RetinaConfiguration()
    c.retina_config['ganglion-layers'][0]['spiking-channel'] = channel
    path = str(tmp_path / 'cells.xml')
    with open(path, 'w') as f:   # written by hand: write_xml would refuse to write nothing wrong
        f.write(_raw_xml(c.retina_config))
    retina = convis.retina.Retina()
    before = _state_of(retina)
    with pytest.raises(ValueError, match='MAX_CELLS|above 0') as e:
        retina.parse_config(path)
    assert len(str(e.value)) < 400
    assert _state_of(retina) == before


def _raw_xml(config):
    """The XML of a configuration dict, without any checks."""
    def attrs(d):
        return ' '.join('%s="%s"' % (k, int(v) if isinstance(v, bool) else v)
                        for k, v in d.items() if not isinstance(v, (dict, list)))
    opl = config['outer-plexiform-layers'][0]['linear-version']
    gangs = ''.join('<ganglion-layer %s><spiking-channel %s>%s</spiking-channel></ganglion-layer>' % (
        attrs(g), attrs(g['spiking-channel']),
        ''.join('<%s %s/>' % (k, attrs(v)) for k, v in g['spiking-channel'].items() if isinstance(v, dict)))
        for g in config['ganglion-layers'])
    return ('<retina-description-file><retina %s><outer-plexiform-layer><linear-version %s><undershoot %s/>'
            '</linear-version></outer-plexiform-layer><contrast-gain-control %s/>%s</retina>'
            '</retina-description-file>' % (attrs(config['retina']), attrs(opl), attrs(opl['undershoot']),
                                             attrs(config['contrast-gain-control']), gangs))


def test_17_11_cell_positions_and_set_cells_refuse_too_many_cells_in_bounded_memory():
    """In a process limited to 3 GB of address space and 60 s of processor time (the faulty version grew
    without bound), every oversized array raises at once, however it is given."""
    code = textwrap.dedent('''
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
        resource.setrlimit(resource.RLIMIT_CPU, (60, 60))
        from convis.retina_virtualretina import cell_positions
        from convis.filters.retina import GanglionSpiking
        specs = [{'kind': 'circular', 'fovea_density': -1.0, 'diameter': 2.0},
                 {'kind': 'circular', 'fovea_density': 5.0, 'diameter': 1e6},
                 {'kind': 'circular', 'fovea_density': 5.0, 'diameter': 0.0},           # automatic: the map
                 {'kind': 'circular', 'fovea_density': 100.0, 'diameter': 1e6, 'fovea_radius': 1e5, 'scaling': 0.1},
                 {'kind': 'square', 'size_x': 1e4, 'size_y': 1e4, 'density': 5.0},
                 {'kind': 'square', 'size_x': 0.0, 'size_y': 0.0, 'density': 1e5}]      # automatic: the map
        for spec in specs:
            try:
                cell_positions(spec, (4000, 4000), 5.0)
            except ValueError as e:
                print('refused:', str(e)[:60])
        try:
            GanglionSpiking(seed=0).set_cells(array={'kind': 'square', 'size_x': 1e4, 'size_y': 1e4, 'density': 5.0})
        except ValueError as e:
            print('refused:', str(e)[:60])
    ''')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count('refused:') == 7, r.stdout


def test_17_11_the_cell_limit_is_a_documented_constant_and_arrays_below_it_work():
    xs, ys, grid = cell_positions({'kind': 'square', 'size_x': 2.0, 'size_y': 1.0, 'density': 5.0}, (20, 20), 5.0)
    assert grid == (5, 10) and len(xs) == 50
    xs, ys, _ = cell_positions({'kind': 'circular', 'fovea_density': 2.0, 'diameter': 3.0}, (20, 20), 5.0)
    assert len(xs) == 1 + sum(int(np.floor(2 * np.pi * n + 1e-9)) for n in (1, 2, 3))
    assert MAX_CELLS == 1000000 and 'MAX_CELLS' in convis.retina_virtualretina.__doc__ + \
        convis.retina_virtualretina.check_cell_array.__doc__


# ---------------------------------------------------------------------------------------------- 17.12
def _bomb(path, member, megabytes, declared=None):
    """An npz whose member unpacks into ``megabytes`` of zeros (a few hundred bytes a megabyte packed)."""
    n = megabytes << 17   # float64 values
    header = {'descr': '<f8', 'fortran_order': False, 'shape': (n,) if declared is None else declared}
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as zf:
        with zf.open(member + '.npy', 'w', force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, header)
            chunk = bytes(1 << 20)
            for _ in range(megabytes):
                f.write(chunk)
    return path


@pytest.mark.parametrize('member,declared', [('opl.sigma_center', None),     # a parameter, declared huge
                                             ('opl.sigma_center', (1,)),     # declared small, unpacks huge
                                             ('not_a_parameter', None)])     # not a parameter: never read
def test_17_12_a_zip_bomb_is_refused_before_it_is_unpacked(tmp_path, member, declared):
    path = _bomb(str(tmp_path / 'bomb.npz'), member, 300, declared)
    assert os.path.getsize(path) < 1 << 20
    retina = convis.retina.Retina()
    before = retina.get_parameters()
    tracemalloc.start()
    try:
        try:
            retina.load_parameters(path)
            refused = None
        except ParameterFileError as e:
            refused = str(e)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 << 20, 'peak %.0f MB while loading a 300 MB bomb' % (peak / 2 ** 20)
    if member == 'not_a_parameter':
        assert refused is None     # the unknown name is ignored (not read)
    else:
        assert 'bomb.npz' in refused and 'opl.sigma_center' in refused
    for k, v in retina.get_parameters().items():
        np.testing.assert_array_equal(v, before[k])


def test_17_12_a_kernel_takes_another_size_but_not_a_bomb(tmp_path):
    """A fitted kernel loads into a default model (its size is part of what was fitted), up to
    MAX_RESHAPED_VALUES values; numbers and vectors keep their shape."""
    fitted = convis.models.LN((3, 4, 4))
    fitted.conv.set_weight(np.random.RandomState(0).rand(3, 4, 4))
    fitted.save_parameters(str(tmp_path / 'fitted.npz'))
    m = convis.models.LN()
    m.load_parameters(str(tmp_path / 'fitted.npz'))
    np.testing.assert_array_equal(m.conv.weight.detach().numpy(), fitted.conv.weight.detach().numpy())
    path = _bomb(str(tmp_path / 'bomb.npz'), 'conv.weight', 300, declared=(1, 1, 300 << 17, 1, 1))
    tracemalloc.start()
    try:
        with pytest.raises(ParameterFileError, match='conv.weight'):
            m.load_parameters(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 << 20
    assert m.conv.weight.shape == (1, 1, 3, 4, 4)


def test_17_12_pickled_and_non_numeric_members_are_refused(tmp_path):
    path = str(tmp_path / 'objects.npz')
    np.savez(path, **{'opl.sigma_center': np.array([{'a': 1}], dtype=object)})
    with pytest.raises(ParameterFileError, match='objects.npz.*dtype object'):
        convis.retina.Retina().load_parameters(path)
    np.savez(path, **{'opl.sigma_center': np.array(['0.1'])})
    with pytest.raises(ParameterFileError, match='dtype <U3'):
        convis.retina.Retina().load_parameters(path)


# ---------------------------------------------------------------------------------------------- 17.13
@pytest.mark.parametrize('key,value', [('retina.temporal-step__sec', 0.0), ('retina.pixels-per-degree', 0.0),
                                       ('retina.input-luminosity-range', -1.0)])
def test_17_13_a_zero_step_is_a_clear_error_naming_the_file(tmp_path, key, value):
    c = RetinaConfiguration()
    c.retina_config['retina'][key.split('.')[1]] = value
    path = str(tmp_path / 'zero.xml')
    with open(path, 'w') as f:
        f.write(_raw_xml(c.retina_config))
    with pytest.raises(ConfigurationError, match=r'zero\.xml.*above 0|above 0.*zero\.xml'):
        convis.retina.Retina().parse_config(path)
    with pytest.raises(ConfigurationError, match='above 0'):
        RetinaConfiguration().set(key, value)


@pytest.mark.parametrize('content,why', [
    (b'', 'the file is empty'),
    (os.urandom(3000), 'not a zip archive'),
    (b'PK\x03\x04' + bytes(100), 'truncated or damaged'),
    (None, 'truncated or damaged'),            # a real npz cut in half
    ('npy', 'single .npy array'),
])
def test_17_13_damaged_parameter_files_give_clear_errors(tmp_path, content, why):
    path = str(tmp_path / 'params.npz')
    if content is None or content == 'npy':
        m = convis.retina.Retina()
        if content == 'npy':
            np.save(str(tmp_path / 'params.npy'), np.ones(3))
            os.replace(str(tmp_path / 'params.npy'), path)
        else:
            m.save_parameters(path)
            data = open(path, 'rb').read()
            open(path, 'wb').write(data[:len(data) // 2])
    else:
        open(path, 'wb').write(content)
    with pytest.raises(ParameterFileError, match='params.npz') as e:
        convis.retina.Retina().load_parameters(path)
    assert why in str(e.value) and isinstance(e.value, ValueError) and len(str(e.value)) < 400


def test_17_13_damaged_configuration_files_give_clear_errors(tmp_path):
    for name, content in [('random.xml', os.urandom(2000)), ('empty.xml', b''), ('cut.xml', b'<retina-descr')]:
        path = str(tmp_path / name)
        open(path, 'wb').write(content)
        with pytest.raises(ConfigurationError, match=name):
            convis.retina.Retina().parse_config(path)
    path = str(tmp_path / 'garbage.json')
    open(path, 'wb').write(os.urandom(500))
    with pytest.raises(ConfigurationError, match='garbage.json'):
        RetinaConfiguration().read_json(path)
    path = str(tmp_path / 'wrong.json')
    json.dump({'retina': {'pixels-per-degree': 'x' * 5000}}, open(path, 'w'))
    with pytest.raises(ConfigurationError, match='wrong.json') as e:
        RetinaConfiguration().read_json(path)
    assert len(str(e.value)) < 400          # the 5000-character value is cut
