"""Tests of convis.retina_virtualretina: reading, validating, changing and writing VirtualRetina configurations."""
import glob
import os

import pytest

from convis.retina_virtualretina import RetinaConfiguration, SCHEMA, default_config
from helpers import reference_path

CONFIGS = sorted(glob.glob(reference_path('virtualretina', 'configs', '*.xml')))


def test_all_reference_configurations_are_found():
    assert len(CONFIGS) == 5


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_xml_round_trip(path, tmp_path):
    c = RetinaConfiguration().read_xml(path)
    out = c.write_xml(str(tmp_path / 'out.xml'))
    again = RetinaConfiguration().read_xml(out)
    assert again == c
    js = c.write_json(str(tmp_path / 'out.json'))
    assert RetinaConfiguration().read_json(js) == c


def test_values_are_typed_and_only_the_file_is_kept():
    c = RetinaConfiguration().read_xml(reference_path('virtualretina', 'configs', 'EXAMPLE_primate_ParvoMagno.xml'))
    assert c.get('retina.temporal-step__sec') == 0.005 and isinstance(c.get('retina.temporal-step__sec'), float)
    assert c.get('pixels-per-degree') == 20.0
    assert c.get('ganglion-layers.*.sign') == [1, -1, 1, -1]
    assert c.get('ganglion-layers.2.sigma-pool__deg') == 0.1
    assert c.get('ganglion-layers.0.spiking-channel.random-init') == 1
    assert c.get('log-polar-scheme.fovea-radius__deg') == 1.0
    assert c.get('ganglion-layers.0.spiking-channel.circular-array.fovea-density__inv-deg') == 20.0
    assert c.get('basic-microsaccade-generator') is None
    assert c.get('ganglion-layers.7.sign', 'missing') == 'missing'
    lin = RetinaConfiguration().read_xml(reference_path('virtualretina', 'configs', 'EXAMPLE_linear_noSpikes.xml'))
    assert lin.get('ganglion-layers') is None and lin.get('contrast-gain-control') is None
    cat = RetinaConfiguration().read_xml(reference_path('virtualretina', 'configs', 'EXAMPLE_cat_X_cell.xml'))
    assert cat.get('outer-plexiform-layers.0.linear-version.undershoot.tau__sec') == 0.2


def test_default_configuration():
    c = default_config()
    assert c.get('retina.temporal-step__sec') == 0.01
    assert c.get('retina.pixels-per-degree') == 5.0
    assert c.get('retina.input-luminosity-range') == 255.0
    assert c.get('ganglion-layers.*.enabled') == [True, True, False, False]
    assert c.get('outer-plexiform-layers.0.linear-version.undershoot.relative-weight') == 0.8
    assert c.get('contrast-gain-control.adaptation-feedback-amplification__Hz') == 0.0
    c.set('retina.pixels-per-degree', 12)
    assert c.default().get('retina.pixels-per-degree') == 5.0


def test_set_with_wildcards_conversion_and_appending():
    c = RetinaConfiguration()
    c.set('ganglion-layers.*.spiking-channel.sigma-V', '0.25')
    assert c.get('ganglion-layers.*.spiking-channel.sigma-V') == [0.25] * 4
    c.set('ganglion-layers.1.sign', 1)
    assert c.get('ganglion-layers.1.sign') == 1
    c.set('pixels-per-degree', 7)
    assert c.get('retina.pixels-per-degree') == 7.0
    c.set('ganglion-layers.+', {'sign': -1, 'transient-tau__sec': 0.05})
    assert len(c.get('ganglion-layers')) == 5 and c.get('ganglion-layers.4.transient-tau__sec') == 0.05
    c.set('ganglion-layers.0.spiking-channel.square-array.uniform-density__inv-deg', 3)
    assert c.get('ganglion-layers.0.spiking-channel.square-array') == {'uniform-density__inv-deg': 3.0}
    c.set('log-polar-scheme', {'fovea-radius__deg': 2})
    assert c.get('log-polar-scheme') == {'fovea-radius__deg': 2.0}


def test_set_rejects_unknown_keys_and_bad_values():
    c = RetinaConfiguration()
    with pytest.raises(KeyError, match='center-sigma'):
        c.set('outer-plexiform-layers.0.linear-version.center-sigma', 0.1)
    with pytest.raises(ValueError, match='sign'):
        c.set('ganglion-layers.0.sign', 'plus')
    with pytest.raises(ValueError, match='center-n__uint'):
        c.set('outer-plexiform-layers.0.linear-version.center-n__uint', 1.5)
    with pytest.raises(KeyError, match='no list item'):
        c.set('ganglion-layers.9.sign', 1)
    with pytest.raises(KeyError, match='must start with'):
        c.set('retinaa.pixels-per-degree', 1)
    with pytest.raises(KeyError, match='unknown'):
        RetinaConfiguration({'retina': {'pixel-per-degree': 3}})


def test_updates_copy_and_equality():
    c = RetinaConfiguration({'retina': {'pixels-per-degree': 20.0}, 'contrast-gain-control': {'adaptation-tau__sec': '0.02'}})
    assert c.get('retina.pixels-per-degree') == 20.0 and c.get('retina.temporal-step__sec') == 0.01
    assert c.get('contrast-gain-control.adaptation-tau__sec') == 0.02
    d = c.copy()
    assert d == c
    d.set('retina.pixels-per-degree', 1)
    assert c.get('retina.pixels-per-degree') == 20.0 and d != c
    assert 'pixels-per-degree' in repr(c)


def write(tmp_path, text):
    p = tmp_path / 'bad.xml'
    p.write_text(text)
    return str(p)


def test_invalid_xml_gives_errors_that_name_the_element_and_attribute(tmp_path):
    ok_head = '<retina-description-file><retina temporal-step__sec="0.005" pixels-per-degree="5">'
    tail = '</retina></retina-description-file>'
    with pytest.raises(ValueError, match='<outer-plexifrom-layer>'):
        RetinaConfiguration().read_xml(write(tmp_path, ok_head + '<outer-plexifrom-layer/>' + tail))
    with pytest.raises(KeyError, match="'center-sigma' of <linear-version>"):
        RetinaConfiguration().read_xml(write(tmp_path, ok_head + '<outer-plexiform-layer><linear-version '
                                             'center-sigma="0.1"/></outer-plexiform-layer>' + tail))
    with pytest.raises(ValueError, match="'g-leak__Hz' of <spiking-channel>"):
        RetinaConfiguration().read_xml(write(tmp_path, ok_head + '<ganglion-layer sign="1"><spiking-channel '
                                             'g-leak__Hz="fifty"/></ganglion-layer>' + tail))
    with pytest.raises(ValueError, match='root element'):
        RetinaConfiguration().read_xml(write(tmp_path, '<retina/>'))
    with pytest.raises(ValueError, match='not valid XML'):
        RetinaConfiguration().read_xml(write(tmp_path, ok_head))
    with pytest.raises(ValueError, match='no <retina>'):
        RetinaConfiguration().read_xml(write(tmp_path, '<retina-description-file/>'))
    with pytest.raises(FileNotFoundError):
        RetinaConfiguration().read_xml(str(tmp_path / 'nothing.xml'))


def test_default_round_trip_keeps_names_and_disabled_layers(tmp_path):
    c = RetinaConfiguration()
    again = RetinaConfiguration().read_xml(c.write_xml(str(tmp_path / 'd.xml')))
    assert again == c
    assert again.get('ganglion-layers.2.name') == 'Magnocellular On'
    assert again.get('ganglion-layers.2.enabled') is False


def test_units_are_read_and_written(tmp_path):
    text = ('<retina-description-file><retina temporal-step__sec="0.005" pixels-per-degree="5">'
            '<ganglion-layer sign="1"><spiking-channel g-leak__Hz="50"><all-units>'
            '<unit x-offset__deg="0.1" y-offset__deg="-0.2" mvaspike-id="0"/>'
            '<unit x-offset__deg="0.3" y-offset__deg="0.4" mvaspike-id="1"/>'
            '</all-units></spiking-channel></ganglion-layer></retina></retina-description-file>')
    c = RetinaConfiguration().read_xml(write(tmp_path, text))
    assert c.get('ganglion-layers.0.spiking-channel.all-units.*.x-offset__deg') == [0.1, 0.3]
    again = RetinaConfiguration().read_xml(c.write_xml(str(tmp_path / 'u.xml')))
    assert again == c


def test_schema_names_every_attribute_of_the_reference_files():
    assert 'center-n__uint' in SCHEMA['linear-version'] and 'sigma-pool__deg' in SCHEMA['ganglion-layer']
