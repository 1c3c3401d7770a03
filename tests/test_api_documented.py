"""The documented API of the original toolbox, without surprises (global resolution, typos, fitting shapes)."""
import numpy as np
import pytest

import convis
from convis.retina import Retina, RetinaConfiguration


# ---------------------------------------------------------------------------------------------- global resolution
def test_global_resolution_reaches_a_retina_built_afterwards():
    assert Retina().resolution.steps_per_second == 100          # VirtualRetina's default step: 10 ms
    convis.set_steps_per_second(1000)
    convis.set_pixel_per_degree(20)
    retina = Retina()
    r = retina.resolution
    assert (r.steps_per_second, r.pixel_per_degree, r.input_luminosity_range) == (1000, 20, 255)
    # the configuration the retina carries says the same, so written files reproduce it
    assert retina.config.get('retina.temporal-step__sec') == pytest.approx(0.001)
    assert retina.config.get('retina.pixels-per-degree') == 20
    # every stage converts with it
    assert retina.opl.resolution is r and retina.gang_0_spikes.resolution is r
    assert convis.models.LN().resolution.steps_per_second == 1000


def test_a_steps_per_second_that_is_not_a_round_step_is_kept_exactly():
    convis.set_steps_per_second(49)
    assert Retina().resolution.steps_per_second == 49


def test_a_configuration_s_own_resolution_wins(tmp_path):
    conf = RetinaConfiguration()
    conf.set('retina.temporal-step__sec', 0.002)
    conf.set('retina.pixels-per-degree', 8.0)
    path = str(tmp_path / 'retina.xml')
    conf.write_xml(path)
    convis.set_steps_per_second(1000)
    convis.set_pixel_per_degree(20)
    for given in (path, conf):
        r = Retina(config=given).resolution
        assert (r.steps_per_second, r.pixel_per_degree) == (pytest.approx(500), 8)
    # a configuration read later wins too
    retina = Retina()
    retina.parse_config(path)
    assert retina.resolution.steps_per_second == pytest.approx(500)


def test_a_configuration_without_a_resolution_keeps_the_global_one():
    convis.set_pixel_per_degree(20)
    conf = RetinaConfiguration().retina_config
    del conf['retina']
    r = Retina(config=conf).resolution
    assert (r.pixel_per_degree, r.steps_per_second) == (20, 100)


def test_set_resolution_of_one_field_keeps_the_others():
    retina = Retina()
    retina.set_resolution(steps_per_second=1000)
    r = retina.resolution
    assert (r.steps_per_second, r.pixel_per_degree, r.input_luminosity_range) == (1000, 5, 255)
    assert retina.gang_1_spikes.resolution is r


# ---------------------------------------------------------------------------------------------- typos
def test_a_typo_in_a_retina_parameter_is_an_error():
    retina = Retina()
    with pytest.raises(AttributeError, match="'sigma_centre'.*did you mean 'sigma_center'"):
        retina.opl.sigma_centre = 0.1
    retina.opl.sigma_center = 0.1
    assert float(retina.opl.sigma_center) == pytest.approx(0.1)
    with pytest.raises(AttributeError, match="'g_leek'.*'g_leak'"):
        retina.bipolar.g_leek = 10


# ---------------------------------------------------------------------------------------------- fitting shapes
def test_the_fitting_quickstart_with_one_trace_against_an_image_target_says_how_to_fix_it():
    inp, out = convis.samples.generate_sample_data(input='random', size=(400, 20, 20))
    m = convis.models.LN(kernel_dim=(12, 10, 10), population=False)
    with pytest.raises(ValueError) as e:
        m.compute_loss(inp, out, dt=200)
    msg = str(e.value)
    assert '(1, 1, 200, 1, 1)' in msg and '(1, 1, 200, 20, 20)' in msg and 'population=True' in msg
    m = convis.models.LN(kernel_dim=(12, 10, 10), population=True)
    assert len(m.compute_loss(inp, out, dt=200)) == 2


def test_init_all_parameters_pushes_virtual_parameters_into_their_targets():
    layer = convis.Layer()
    layer.w = convis.Parameter(0.0)
    layer.sigma = convis.VirtualParameter(lambda v: 2 * v, var=layer.w, value=3.0)
    assert float(layer.w) == 0.0
    assert layer.init_all_parameters() is layer and float(layer.w) == 3.0
