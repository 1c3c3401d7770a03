"""VirtualRetina configurations: read, validate, change and write retina description files.

A :class:`RetinaConfiguration` holds a VirtualRetina ``retina-description-file`` as a nested dict
of typed values (floats, ints, booleans, strings)::

    {'retina': {'temporal-step__sec': 0.01, 'input-luminosity-range': 255.0, 'pixels-per-degree': 5.0},
     'log-polar-scheme': {...},                       # optional
     'outer-plexiform-layers': [{'linear-version': {..., 'undershoot': {...}}}],
     'contrast-gain-control': {...},                  # optional
     'ganglion-layers': [{'sign': 1, ..., 'spiking-channel': {..., 'square-array': {...}}}, ...],
     'basic-microsaccade-generator': {...}}           # optional, not simulated

Values are read and set by dotted keys (``'retina.temporal-step__sec'``,
``'ganglion-layers.1.sign'``, ``'ganglion-layers.*.spiking-channel.sigma-V'`` for every layer).
Unknown elements or attributes and values of the wrong type raise errors that name them.
``name`` and ``enabled`` are convis additions (a disabled element is kept but not simulated).

>>> conf = RetinaConfiguration()
>>> conf.get('ganglion-layers.*.sign')
[1, -1, 1, -1]
>>> conf.set('ganglion-layers.*.spiking-channel.sigma-V', 0.0)
>>> conf.write_xml('my_retina.xml')
"""
import copy
import json
import math
import os
import xml.etree.ElementTree as ET

from .errors import ConfigurationError, ConfigurationKeyError, ConfigurationTypeError  # noqa: F401
from .filters.cell_arrays import MAX_CELLS, cell_positions, check_cell_array  # noqa: F401
from .filters.ganglion import MAGNOCELLULAR, GanglionInput, GanglionSpiking
from .filters.retina import OPL, Bipolar

__all__ = ['RetinaConfiguration', 'SCHEMA', 'default_config', 'default_configuration', 'default_value',
           'random_config', 'cell_positions',
           'valid_retina_tags', 'ConfigurationError', 'MAX_CELLS', 'check_cell_array']


_F, _I, _B, _S = float, int, bool, str

SCHEMA = {
    'retina': {'temporal-step__sec': _F, 'input-luminosity-range': _F, 'pixels-per-degree': _F},
    'log-polar-scheme': {'fovea-radius__deg': _F, 'scaling-factor-outside-fovea__inv-deg': _F, 'enabled': _B},
    'outer-plexiform-layer': {},
    'linear-version': {'center-sigma__deg': _F, 'surround-sigma__deg': _F, 'center-tau__sec': _F,
                       'center-n__uint': _I, 'surround-tau__sec': _F, 'opl-amplification': _F,
                       'opl-relative-weight': _F, 'leaky-heat-equation': _I},
    'undershoot': {'relative-weight': _F, 'tau__sec': _F, 'enabled': _B},
    'contrast-gain-control': {'opl-amplification__Hz': _F, 'bipolar-inert-leaks__Hz': _F,
                              'adaptation-sigma__deg': _F, 'adaptation-tau__sec': _F,
                              'adaptation-feedback-amplification__Hz': _F, 'enabled': _B},
    'ganglion-layer': {'name': _S, 'enabled': _B, 'sign': _I, 'transient-tau__sec': _F,
                       'transient-relative-weight': _F, 'bipolar-linear-threshold': _F,
                       'value-at-linear-threshold__Hz': _F, 'bipolar-amplification__Hz': _F,
                       'sigma-pool__deg': _F},
    'spiking-channel': {'g-leak__Hz': _F, 'sigma-V': _F, 'refr-mean__sec': _F, 'refr-stdev__sec': _F,
                        'random-init': _I},
    'square-array': {'size-x__deg': _F, 'size-y__deg': _F, 'uniform-density__inv-deg': _F},
    'circular-array': {'fovea-density__inv-deg': _F, 'diameter__deg': _F},
    'all-units': {},
    'unit': {'x-offset__deg': _F, 'y-offset__deg': _F, 'mvaspike-id': _I},
    'basic-microsaccade-generator': {'pixels-per-degree': _F, 'temporal-step__sec': _F,
                                     'angular-noise__pi-radians': _F, 'period-mean__sec': _F,
                                     'period-stdev__sec': _F, 'amplitude-mean__deg': _F,
                                     'amplitude-stdev__deg': _F, 'saccade-duration-mean__sec': _F,
                                     'saccade-duration-stdev__sec': _F, 'enabled': _B},
}
"""Every element of a retina description file and the type of each of its attributes."""

_POSITIVE = {'temporal-step__sec', 'pixels-per-degree', 'input-luminosity-range', 'uniform-density__inv-deg',
             'fovea-density__inv-deg'}
"""Attributes that must be above 0 (steps and densities divide; a zero or negative one makes no retina)."""
_NON_NEGATIVE = {'size-x__deg', 'size-y__deg', 'diameter__deg', 'fovea-radius__deg',
                 'scaling-factor-outside-fovea__inv-deg'}
"""Attributes that must be 0 or above (0 means automatic for the sizes and diameters of cell arrays)."""

valid_retina_tags = {k: [a for a in v if a not in ('name', 'enabled')] for k, v in SCHEMA.items()}

# element -> (dict key in the parent, is a list, allowed child elements)
_CHILDREN = {
    'retina-description-file': ['retina', 'basic-microsaccade-generator'],
    'retina': ['log-polar-scheme', 'outer-plexiform-layer', 'contrast-gain-control', 'ganglion-layer',
               'basic-microsaccade-generator'],
    'outer-plexiform-layer': ['linear-version'],
    'linear-version': ['undershoot'],
    'ganglion-layer': ['spiking-channel'],
    'spiking-channel': ['square-array', 'circular-array', 'all-units'],
    'all-units': ['unit'],
}
_LISTS = {'outer-plexiform-layer': 'outer-plexiform-layers', 'ganglion-layer': 'ganglion-layers',
          'unit': 'all-units'}
_KEY_TO_ELEMENT = {'outer-plexiform-layers': 'outer-plexiform-layer', 'ganglion-layers': 'ganglion-layer',
                   'all-units': 'unit'}
# elements stored at the top level of the dict although they are children of <retina>
_TOP = ('retina', 'log-polar-scheme', 'outer-plexiform-layers', 'contrast-gain-control', 'ganglion-layers',
        'basic-microsaccade-generator')


_RETINA = {'temporal-step__sec': 0.01, 'input-luminosity-range': 255.0, 'pixels-per-degree': 5.0}
"""The default resolution (10 ms steps, luminosity range 255, 5 pixels per degree); :class:`convis.retina.Retina`
starts from it."""
_LOG_POLAR = {'enabled': False, 'fovea-radius__deg': 1.0, 'scaling-factor-outside-fovea__inv-deg': 1.0}
"""The default log-polar scheme (off; 1 deg fovea, scaling 1 per deg outside it)."""
_MICROSACCADES = {'enabled': False, 'pixels-per-degree': 200.0, 'temporal-step__sec': 0.005,
                  'angular-noise__pi-radians': 0.3, 'period-mean__sec': 0.2, 'period-stdev__sec': 0.0,
                  'amplitude-mean__deg': 0.5, 'amplitude-stdev__deg': 0.1, 'saccade-duration-mean__sec': 0.025,
                  'saccade-duration-stdev__sec': 0.005}
"""VirtualRetina's microsaccade generator (kept in configurations, not simulated: off)."""
_GANGLION_LAYERS = (('Parvocellular On', True, 1, {}), ('Parvocellular Off', True, -1, {}),
                    ('Magnocellular On', False, 1, MAGNOCELLULAR), ('Magnocellular Off', False, -1, MAGNOCELLULAR))
"""The default ganglion layers: (name, enabled, sign, values that differ from the stages' defaults)."""


def _nested(flat):
    """A nested dict from one with dotted keys: ``{'a.b': 1, 'c': 2}`` gives ``{'a': {'b': 1}, 'c': 2}``."""
    out = {}
    for key, value in flat.items():
        *path, last = key.split('.')
        node = out
        for p in path:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def default_configuration():
    """A fresh copy of the default configuration (VirtualRetina's human parvocellular retina) as a nested dict.

    Every value a stage parameter takes comes from that stage's declaration (``OPL.DEFAULTS``,
    ``Bipolar.DEFAULTS``, ``GanglionInput.DEFAULTS``, ``GanglionSpiking.DEFAULTS``; the magnocellular layers
    from :data:`convis.filters.ganglion.MAGNOCELLULAR`), converted to the types of :data:`SCHEMA`; the other
    values are this module's ``_RETINA``, ``_LOG_POLAR``, ``_MICROSACCADES`` and ``_GANGLION_LAYERS``.
    """
    ganglion = {**GanglionInput.DEFAULTS, **{'spiking-channel.' + k: v for k, v in GanglionSpiking.DEFAULTS.items()}}
    layers = []
    for name, enabled, sign, differences in _GANGLION_LAYERS:
        unknown = set(differences) - set(ganglion)
        if unknown:
            raise ConfigurationKeyError('default ganglion layer %r: no stage parameter has the keys %s'
                                        % (name, sorted(unknown)))
        layers.append({'name': name, 'enabled': enabled, 'sign': sign, **_nested({**ganglion, **differences})})
    return RetinaConfiguration._validated({
        'retina': _RETINA, 'log-polar-scheme': _LOG_POLAR,
        'outer-plexiform-layers': [{'linear-version': _nested(OPL.DEFAULTS)}],
        'contrast-gain-control': _nested(Bipolar.DEFAULTS), 'ganglion-layers': layers,
        'basic-microsaccade-generator': _MICROSACCADES}, where='default configuration')


def default_value(key):
    """The default configuration's value at a dotted key, or None (where the default configuration's
    list is shorter than the index, its first item stands in: ``ganglion-layers.7.sign`` is 1)."""
    node = default_configuration()
    for p in key.split('.'):
        if isinstance(node, list):
            try:
                i = int(p)
            except ValueError:
                return None
            node = node[i] if 0 <= i < len(node) else node[0]
        elif isinstance(node, dict):
            node = node.get(p)
        else:
            return None
    return None if isinstance(node, (dict, list)) else node


def default_config():
    """The default configuration: VirtualRetina's human parvocellular retina (every pixel a cell)."""
    return RetinaConfiguration()


random_config = default_config


def _short(v, n=200):
    r = repr(v)
    return r if len(r) <= n else r[:n] + '...(%d characters)' % len(r)


def _convert(element, attr, value, where=''):
    """Converts ``value`` to the type of ``element/attr`` and checks its range; raises naming both."""
    v = _convert_type(element, attr, value, where)
    if (attr in _POSITIVE and v <= 0) or (attr in _NON_NEGATIVE and v < 0):
        raise ConfigurationError('invalid value %s for attribute %r of <%s>%s: it must be %s'
                                 % (_short(value), attr, element, where, 'above 0' if attr in _POSITIVE else '0 or above'))
    return v


def _convert_type(element, attr, value, where=''):
    types = SCHEMA.get(element)
    if types is None:
        raise ConfigurationKeyError('unknown element <%s>%s' % (element, where))
    if attr not in types:
        raise ConfigurationKeyError('unknown attribute %r of <%s>%s; allowed: %s' % (attr, element, where, ', '.join(types)))
    typ = types[attr]
    try:
        if typ is _B:
            if isinstance(value, str):
                v = value.strip().lower()
                if v not in ('1', '0', 'true', 'false', 'yes', 'no'):
                    raise ValueError(value)
                return v in ('1', 'true', 'yes')
            return bool(value)
        if typ is _S:
            return str(value)
        if isinstance(value, bool):
            raise ValueError(value)
        if typ is _I:
            f = float(value.strip() if isinstance(value, str) else value)
            if not f.is_integer():
                raise ValueError(value)
            return int(f)
        f = float(value.strip() if isinstance(value, str) else value)
        if not math.isfinite(f):
            raise ValueError(value)
        return f
    except (TypeError, ValueError):
        raise ConfigurationError('invalid value %s for attribute %r of <%s>%s (expected %s)'
                                 % (_short(value), attr, element, where, typ.__name__)) from None


def _fmt(v):
    if isinstance(v, bool):
        return '1' if v else '0'
    if isinstance(v, float):
        return repr(v)
    return str(v)


class RetinaConfiguration(object):
    """A VirtualRetina retina description: typed, validated, readable and writable as XML or JSON.

    ``RetinaConfiguration(updates=None)`` starts from the default (human parvocellular retina,
    see :func:`default_configuration`) and merges ``updates`` (a nested dict) into it.

    >>> c = RetinaConfiguration({'retina': {'pixels-per-degree': 20.0}})
    >>> c.get('retina.pixels-per-degree')
    20.0
    """

    def __init__(self, updates=None):
        self.default()
        if updates:
            self.update(updates)

    # ------------------------------------------------------------------ whole configurations
    def default(self):
        """Resets to the default configuration."""
        self.retina_config = default_configuration()
        return self

    def copy(self):
        """An independent copy."""
        new = RetinaConfiguration.__new__(RetinaConfiguration)
        new.retina_config = copy.deepcopy(self.retina_config)
        return new

    def update(self, updates):
        """Merges a nested dict into the configuration (lists are replaced), validating every value."""
        def merge(d, u):
            for k, v in u.items():
                if isinstance(v, dict) and isinstance(d.get(k), dict):
                    merge(d[k], v)
                else:
                    d[k] = copy.deepcopy(v)
        merged = copy.deepcopy(self.retina_config)
        merge(merged, updates)
        self.retina_config = self._validated(merged)
        return self

    def __eq__(self, other):
        return isinstance(other, RetinaConfiguration) and self.retina_config == other.retina_config

    def __repr__(self):
        return 'RetinaConfiguration(%s)' % json.dumps(self.retina_config, indent=1)

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _validated(d, where='configuration'):
        """Checks and converts a nested dict (as :attr:`retina_config` holds) against the schema."""
        def element(name, values, path):
            if not isinstance(values, dict):
                raise ConfigurationTypeError('%s: <%s> must be a dict, not %r' % (path, name, type(values).__name__))
            out = {}
            children = _CHILDREN.get(name, [])
            for k, v in values.items():
                if k in SCHEMA.get(name, {}):
                    out[k] = _convert(name, k, v, ' (%s)' % path)
                    continue
                child = _KEY_TO_ELEMENT.get(k, k)
                if child not in children:
                    raise ConfigurationKeyError('unknown key %r in <%s> (%s); allowed: %s'
                                   % (k, name, path, ', '.join(list(SCHEMA.get(name, {})) + children)))
                if child in _LISTS:
                    if not isinstance(v, list):
                        raise ConfigurationTypeError('%s.%s must be a list' % (path, k))
                    out[k] = [element(child, item, '%s.%s.%d' % (path, k, i)) for i, item in enumerate(v)]
                else:
                    out[k] = element(child, v, '%s.%s' % (path, k))
            return out
        if not isinstance(d, dict):
            raise ConfigurationTypeError('a retina configuration must be a dict, not %r' % type(d).__name__)
        out = {}
        for k, v in d.items():
            if k not in _TOP:
                raise ConfigurationKeyError('unknown top-level key %r in the %s; allowed: %s' % (k, where, ', '.join(_TOP)))
            el = _KEY_TO_ELEMENT.get(k, k)
            if el in _LISTS:
                if not isinstance(v, list):
                    raise ConfigurationTypeError('%s must be a list' % k)
                out[k] = [element(el, item, '%s.%d' % (k, i)) for i, item in enumerate(v)]
            else:
                out[k] = element(el, v, k)
        return out

    # ------------------------------------------------------------------ dotted access
    def _element_of(self, parts):
        """The schema element a (non-wildcard) list of key parts points into, or None."""
        el = None
        for p in parts:
            if p.isdigit() or p in ('*', '+', '='):
                continue
            el = _KEY_TO_ELEMENT.get(p, p) if (p in _KEY_TO_ELEMENT or p in SCHEMA) else el
        return el

    def get(self, key, default=None):
        """The value at a dotted key (``'retina.pixels-per-degree'``, ``'ganglion-layers.0.sign'``).

        Integers index lists, ``*`` returns a list over all list items (or dict values).  Missing
        keys give ``default``.  ``'pixels-per-degree'`` alone means ``'retina.pixels-per-degree'``.
        """
        if key in ('pixels-per-degree', 'temporal-step__sec', 'input-luminosity-range'):
            key = 'retina.' + key
        if key == '':
            return self.retina_config

        def walk(node, parts):
            if not parts:
                return node
            p, rest = parts[0], parts[1:]
            if p == '*':
                items = node if isinstance(node, list) else (list(node.values()) if isinstance(node, dict) else None)
                if items is None:
                    return default
                return [walk(item, rest) for item in items]
            if isinstance(node, list):
                try:
                    return walk(node[int(p)], rest)
                except (ValueError, IndexError):
                    return default
            if isinstance(node, dict) and p in node:
                return walk(node[p], rest)
            return default
        return walk(self.retina_config, key.split('.'))

    def set(self, key, value):
        """Sets the value at a dotted key, converted to the attribute's type (unknown attributes raise).

        ``*`` sets every item of a list, ``+`` appends a new item (a copy of the last one, or an empty
        element), missing elements are created.
        """
        if key in ('pixels-per-degree', 'temporal-step__sec', 'input-luminosity-range'):
            key = 'retina.' + key
        parts = key.split('.')
        if parts[0] not in _TOP:
            raise ConfigurationKeyError('unknown configuration key %r: it must start with one of %s' % (key, ', '.join(_TOP)))

        def walk(node, i, element):
            p = parts[i]
            last = i == len(parts) - 1
            if isinstance(node, list):
                if p == '*':
                    for item in node:
                        walk(item, i + 1, element)
                    return
                if p == '+':
                    node.append(copy.deepcopy(node[-1]) if node else {})
                    idx = len(node) - 1
                else:
                    try:
                        idx = int(p)
                        node[idx]
                    except (ValueError, IndexError):
                        raise ConfigurationKeyError('%r: no list item %r (the list has %d)' % (key, p, len(node))) from None
                if last:
                    node[idx] = self._validated_element(element, value, key)
                else:
                    walk(node[idx], i + 1, element)
                return
            if last:
                if p in SCHEMA.get(element, {}):
                    node[p] = _convert(element, p, value, ' (key %r)' % key)
                else:
                    child = _KEY_TO_ELEMENT.get(p, p)
                    if child not in _CHILDREN.get(element, []) and element is not None:
                        raise ConfigurationKeyError('unknown attribute %r of <%s> (key %r); allowed: %s'
                                       % (p, element, key, ', '.join(SCHEMA.get(element, {}))))
                    node[p] = self._validated_element(child, value, key)
                return
            child = _KEY_TO_ELEMENT.get(p, p)
            if element is not None and child not in _CHILDREN.get(element, []) and p not in _TOP:
                raise ConfigurationKeyError('<%s> has no child %r (key %r)' % (element, p, key))
            if p not in node:
                node[p] = [] if child in _LISTS else {}
            walk(node[p], i + 1, child)
        root_el = _KEY_TO_ELEMENT.get(parts[0], parts[0])
        if len(parts) == 1:
            self.retina_config[parts[0]] = (self._validated({parts[0]: value})[parts[0]])
            return
        if parts[0] not in self.retina_config:
            self.retina_config[parts[0]] = [] if root_el in _LISTS else {}
        walk(self.retina_config[parts[0]], 1, root_el)

    def _validated_element(self, element, value, key):
        if element in _LISTS and isinstance(value, list):
            return [self._validated_element(element, v, key) for v in value]
        wrapper = {'retina': {}}
        top = {v: k for k, v in _KEY_TO_ELEMENT.items()}.get(element, element)
        if top in _TOP:
            wrapper = {top: [value] if element in _LISTS else value}
            out = self._validated(wrapper)[top]
            return out[0] if element in _LISTS else out
        checked = {}
        for k, v in (value or {}).items():
            if k in SCHEMA.get(element, {}):
                checked[k] = _convert(element, k, v, ' (key %r)' % key)
            else:
                sub = _KEY_TO_ELEMENT.get(k, k)
                if sub not in _CHILDREN.get(element, []):
                    raise ConfigurationKeyError('unknown key %r in <%s> (key %r)' % (k, element, key))
                checked[k] = self._validated_element(sub, v, key)
        return checked

    # ------------------------------------------------------------------ XML
    def read_xml(self, filename):
        """Replaces the configuration with a VirtualRetina XML file (typed and validated).

        Afterwards the configuration holds only what the file contains.
        """
        if not os.path.exists(filename):
            raise FileNotFoundError('retina configuration file %r does not exist' % (filename,))
        try:
            root = ET.parse(filename).getroot()
        except ET.ParseError as e:
            raise ConfigurationError('%s is not valid XML: %s' % (filename, e)) from None
        where = ' in %s' % filename
        if root.tag != 'retina-description-file':
            raise ConfigurationError('the root element of %s is <%s>, expected <retina-description-file>' % (filename, root.tag))
        config = {}

        def attrs(el):
            return {k: _convert(el.tag, k.strip(), v, where) for k, v in el.attrib.items()}

        def parse(el, parent_tag, target):
            for child in el:
                if not isinstance(child.tag, str):
                    continue
                if child.tag not in _CHILDREN.get(parent_tag, []):
                    raise ConfigurationError('unknown element <%s> inside <%s>%s; allowed: %s'
                                     % (child.tag, parent_tag, where, ', '.join(_CHILDREN.get(parent_tag, [])) or 'none'))
                values = attrs(child)
                parse(child, child.tag, values)
                if child.tag in _LISTS:
                    target.setdefault(_LISTS[child.tag], []).append(values)
                elif child.tag == 'all-units':
                    target['all-units'] = values.get('all-units', [])
                else:
                    if child.tag in target:
                        raise ConfigurationError('element <%s> appears twice inside <%s>%s' % (child.tag, parent_tag, where))
                    target[child.tag] = values
        if root.attrib:
            raise ConfigurationError('unexpected attributes %s of <retina-description-file>%s' % (list(root.attrib), where))
        top = {}
        parse(root, 'retina-description-file', top)
        if 'retina' not in top:
            raise ConfigurationError('%s has no <retina> element' % filename)
        retina = top.pop('retina')
        for k in list(retina):
            if k in _TOP:
                config[k] = retina.pop(k)
        config['retina'] = retina
        config.update(top)
        self.retina_config = config
        return self

    def write_xml(self, filename):
        """Writes the configuration as a VirtualRetina XML file (read back by :meth:`read_xml`)."""
        c = self.retina_config
        root = ET.Element('retina-description-file')

        def fill(el, name, values):
            for k, v in values.items():
                if k in SCHEMA.get(name, {}):
                    el.set(k, _fmt(v))
            for child in _CHILDREN.get(name, []):
                key = _LISTS.get(child, child)
                if child == 'unit':
                    continue
                if key not in values:
                    continue
                if child in _LISTS:
                    for item in values[key]:
                        fill(ET.SubElement(el, child), child, item)
                elif child == 'all-units':
                    units = ET.SubElement(el, 'all-units')
                    for u in values['all-units']:
                        fill(ET.SubElement(units, 'unit'), 'unit', u)
                else:
                    fill(ET.SubElement(el, child), child, values[key])
        retina_values = dict(c.get('retina', {}))
        for k in _TOP[1:]:
            if k in c:
                retina_values[k] = c[k]
        fill(ET.SubElement(root, 'retina'), 'retina', retina_values)
        tree = ET.ElementTree(root)
        ET.indent(tree, space='  ')
        tree.write(filename, encoding='utf-8', xml_declaration=True)
        return filename

    # ------------------------------------------------------------------ JSON
    def write_json(self, filename):
        """Writes the configuration as JSON."""
        with open(filename, 'w') as f:
            json.dump(self.retina_config, f, indent=2)
        return filename

    def read_json(self, filename):
        """Replaces the configuration with a JSON file written by :meth:`write_json` (validated)."""
        try:
            with open(filename, encoding='utf-8') as f:
                d = json.load(f)
        except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
            raise ConfigurationError('%s is not a JSON retina configuration: %s' % (filename, _short(str(e)))) from None
        try:
            self.retina_config = self._validated(d, where='JSON file %s' % filename)
        except ConfigurationError as e:
            raise type(e)('%s: %s' % (filename, e)) from None
        return self
