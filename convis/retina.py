"""The retina model: VirtualRetina's OPL, contrast gain control and ganglion layers in PyTorch.

:class:`Retina` reproduces VirtualRetina 2.2.3 (Wohrer & Kornprobst 2009) step
for step: on its reference data it agrees with the C++ simulator to 1e-13
(float64) on every map and gives the same spike trains.  It is configured with
VirtualRetina XML files (:class:`RetinaConfiguration`), carries its own
resolution (time step, pixels per degree, input luminosity range) and runs in
chunks over inputs of any length, with the same results as one long run.

>>> import convis
>>> retina = convis.retina.Retina()
>>> retina.parse_config('path/to/config_file.xml')  # optional
>>> o = retina.run(np.random.randn(2000, 50, 50), dt=500)
>>> o[0] is o.ganglion_spikes_ON
True
"""
import math
import os
import time

import numpy as np
import torch

from .layer import Layer
from .noise import Seeded, check_seed
from .output import Output, _check_finite
from .filters.retina import OPL, Bipolar, GanglionInput, GanglionSpiking, compiled_loops_apply
from .variables import Resolution, user_default_resolution
from . import parameter_io
from .retina_virtualretina import (ConfigurationError, RetinaConfiguration, cell_positions,  # noqa: F401
                                  check_cell_array, default_value)

__all__ = ['Retina', 'RetinaConfiguration']

STAGES = ('center', 'receptor', 'horizontal', 'opl', 'bipolar', 'cgc_adaptation', 'cgc_attenuation')
"""Names of the maps :class:`Retina` can record besides ``'ganglion_<k>'`` (the input of ganglion layer k)."""

_RESOLUTION_KEYS = {'pixel_per_degree': 'retina.pixels-per-degree', 'steps_per_second': 'retina.temporal-step__sec',
                    'input_luminosity_range': 'retina.input-luminosity-range'}
_DEFAULT_RESOLUTION = {field: 1.0 / default_value(k) if field == 'steps_per_second' else default_value(k)
                       for field, k in _RESOLUTION_KEYS.items()}
"""The resolution of VirtualRetina's default configuration (10 ms steps, 5 px/deg, luminosity range 255)."""

_OPTIONAL_DEFAULTS = {key: value for stage in (OPL, Bipolar, GanglionInput, GanglionSpiking)
                      for key, value in stage.OPTIONAL.items()}
"""The values VirtualRetina gives attributes a file leaves out, by attribute (each stage's ``OPTIONAL``)."""


def _parse_stage(stage, config, prefix, key):
    """Sets a stage's parameters from the configuration and remembers the exact (double) values."""
    Layer.parse_config(stage, config, prefix, key)
    for p in stage.parameters():
        k = getattr(p, key, None)
        v = config.get(prefix + k) if k else None
        if v is not None and not isinstance(v, (dict, list, str)):
            p.exact = float(v)


class _Defaults(object):
    """A configuration view in which attributes left out take their defaults: VirtualRetina's for optional
    attributes, else the default configuration's (:func:`~convis.retina_virtualretina.default_value`), never
    what an earlier configuration set."""

    def __init__(self, config):
        self.config = config

    def get(self, key, default=None):
        v = self.config.get(key, None)
        if v is None:
            v = _OPTIONAL_DEFAULTS.get(key.rsplit('.', 1)[-1])
        if v is None:
            v = default_value(key)
        return default if v is None else v


def _as_configuration(config):
    """A :class:`RetinaConfiguration` from an XML path, a nested dict or a configuration (returned as it is)."""
    if isinstance(config, (str, os.PathLike)):
        return RetinaConfiguration().read_xml(os.fspath(config))
    if isinstance(config, dict):
        c = RetinaConfiguration()
        c.retina_config = c._validated(config)
        return c
    return config


class _TreeSnapshot(object):
    """Everything :meth:`Retina.parse_config` changes on a model (sublayers, their attributes, parameter
    values and defaults, states, the resolution), to put back when applying a checked configuration still
    fails half-way: a configuration is applied whole or not at all."""

    def __init__(self, layer):
        self.resolution = (layer.resolution, dict(layer.resolution.__dict__))
        self.modules = [(m, dict(m.__dict__), {k: dict(m.__dict__[k]) for k in _CONTAINERS if k in m.__dict__})
                        for m in layer.modules()]
        self.parameters = [(p, parameter_io._snapshot(p)) for p in layer.parameters()]

    def restore(self):
        res, fields = self.resolution
        res.__dict__.update(fields)
        for m, attributes, containers in self.modules:
            m.__dict__.clear()
            m.__dict__.update(attributes)
            for k, items in containers.items():
                m.__dict__[k].clear()
                m.__dict__[k].update(items)
        for p, snap in self.parameters:
            parameter_io._restore(p, snap)


_CONTAINERS = ('_parameters', '_buffers', '_modules', '_virtual_parameters', '_state_defaults')


class Retina(Seeded, Layer):
    """A VirtualRetina model: OPL, contrast gain control (bipolar) and ganglion layers (input + spikes).

    .. math::

        L \\xrightarrow{OPL} I_{OPL} \\xrightarrow{\\text{gain control}} V_{Bip}
        \\xrightarrow{\\text{transient, rectifier, pooling}} I_{G,k}
        \\xrightarrow{\\text{LIF}} \\text{spikes}_k

    Each stage reads the previous step's output of the stage before it (as VirtualRetina does).
    The equations are in :class:`~convis.filters.retina.OPL`, :class:`~convis.filters.retina.Bipolar`,
    :class:`~convis.filters.retina.GanglionInput` and :class:`~convis.filters.retina.GanglionSpiking`.

    Parameters
    ----------
    opl, bipolar : bool or Layer
        False leaves the stage out, a Layer replaces it; True uses it when the configuration has it
    gang : bool
        False leaves out the ganglion layers (the output is then the last stage's map)
    spikes : bool
        True: spike counts per step; False: the ganglion input currents (Hz)
    config : str, dict or RetinaConfiguration
        an XML file or configuration to start from (default: the human parvocellular retina, ON and OFF
        layers, every pixel a cell, 10 ms steps, 5 px/deg, luminosity range 255)
    record : tuple of str
        intermediate maps to add to the output: any of ``'center', 'receptor', 'horizontal', 'opl',
        'bipolar', 'cgc_adaptation', 'cgc_attenuation', 'ganglion_0', 'ganglion_1', ...``
    seed : int or None
        seed of the spiking noise: ganglion layer k gets ``seed + 7919 k``; None draws one from torch's global
        generator (the seed API of :class:`convis.noise.Seeded`: ``seed(n)``, ``set_seed(n)``, ``seed_value``)

    Outputs (an :class:`~convis.base.Output`): one entry per enabled ganglion layer, keyed
    ``ganglion_spikes_ON`` / ``ganglion_spikes_OFF`` by sign (``_<k>`` appended when a sign repeats; the
    keys stay the same with ``spikes=False``), then the recorded maps by name.  Spike counts are
    ``[batch, channel, time, rows, columns]`` when every pixel is a cell (the default).

    The input axes are ``[batch, channel, time, rows, columns]`` (a numpy video ``(t, rows, columns)``
    works as it is); columns are VirtualRetina's x.  Inputs are in luminance units of
    ``input_luminosity_range`` (255 by default); the filters start adapted to ``init_luminance``
    (default: half the range).  An input with NaN, infinite values or values of magnitude above
    :attr:`INPUT_BOUND` (1e6) times the range raises a ``ValueError`` (naming the largest value and the
    bound) and changes no state; up to the bound every output and state stays finite.  ``.double()`` gives
    float64 simulations with the configured values exactly (not their float32 roundings).  Cells: every
    pixel by default; a ``square-array``, ``circular-array`` or ``all-units`` in the configuration samples
    the ganglion map at the cells
    (see :meth:`~convis.filters.retina.GanglionSpiking.set_cells`), and ``gang_<k>_spikes.record_spike_times``
    keeps exact spike times (:meth:`get_spike_times`).  A ``log-polar-scheme`` is simulated as in
    VirtualRetina (per-pixel blurs, without gradients with respect to the sigmas).

    >>> retina = Retina(record=('opl',))
    >>> o = retina.run(255 * np.random.rand(300, 20, 20), dt=100)
    >>> o.ganglion_spikes_ON.shape, o.opl.shape
    """

    def __init__(self, opl=True, bipolar=True, gang=True, spikes=True, config=None, record=(), seed=None,
                 init_luminance=None):
        super().__init__()
        self._use = {'opl': opl is not False, 'bipolar': bipolar is not False, 'gang': bool(gang),
                     'spikes': bool(spikes)}
        self.opl = opl if isinstance(opl, Layer) else OPL(init_luminance=init_luminance)
        self.bipolar = bipolar if isinstance(bipolar, Layer) else Bipolar()
        self._custom = {'opl': isinstance(opl, Layer), 'bipolar': isinstance(bipolar, Layer)}
        self._ganglia = []
        self.record = tuple(record)
        self._timing = []
        self._seed = check_seed(seed)
        # the global settings (convis.set_steps_per_second, set_pixel_per_degree) made before the retina
        # is built replace the default configuration's; a configuration given here keeps its own values
        user = user_default_resolution()
        self.set_resolution(Resolution(**dict(_DEFAULT_RESOLUTION, **user)))
        if config is None:
            config = RetinaConfiguration()
            for field, value in user.items():
                config.set(_RESOLUTION_KEYS[field], 1.0 / value if field == 'steps_per_second' else value)
            self.parse_config(config)
            for field, value in user.items():  # exactly, not through the rounding of 1 / step
                setattr(self.resolution, field, value)
        else:
            self.parse_config(config)

    # ------------------------------------------------------------------ configuration
    @property
    def init_luminance(self):
        """Luminance of the screen the OPL starts adapted to (None: half the input luminosity range)."""
        return getattr(self.opl, 'init_luminance', None)

    @init_luminance.setter
    def init_luminance(self, value):
        self.opl.init_luminance = value

    def parse_config(self, config, prefix='', key='retina_config_key'):
        """Applies a VirtualRetina configuration (XML path, dict or :class:`RetinaConfiguration`), whole or not at all.

        Sets the time step, pixels per degree and luminosity range, every stage's parameters, whether
        the OPL has an undershoot and whether there is contrast gain control, and builds one ganglion
        layer per enabled ``ganglion-layer`` (with its cell array, if any).  The state is cleared.

        Attributes the configuration leaves out take their defaults (VirtualRetina's for optional ones,
        else the default configuration's), not the values of a configuration applied before.  Everything
        is checked before anything changes: an invalid value (a ValueError naming its key), a time step or
        density that is not above 0 or a cell array of more than
        :data:`~convis.retina_virtualretina.MAX_CELLS` cells leaves the retina as it was.
        """
        config = _as_configuration(config)
        if prefix:
            return Layer.parse_config(self, config, prefix, key)
        view = _Defaults(config)
        resolution = self._check_config(config, view, key)
        snapshot = _TreeSnapshot(self)
        try:
            self._apply_config(config, view, resolution, key)
        except BaseException:
            snapshot.restore()
            raise
        return self

    @staticmethod
    def _log_polar(config):
        lp = config.get('log-polar-scheme')
        if lp is None or not lp.get('enabled', True):
            return None
        return tuple(float(lp.get(k, default_value('log-polar-scheme.' + k)))
                     for k in ('fovea-radius__deg', 'scaling-factor-outside-fovea__inv-deg'))

    def _check_config(self, config, view, key):
        """Checks every value ``config`` would set (raising a ValueError naming its key); returns the resolution."""
        resolution = {}
        user = user_default_resolution()  # left out of the configuration: the global setting, when one was made
        for attr, k in (('steps_per_second', 'temporal-step__sec'), ('pixel_per_degree', 'pixels-per-degree'),
                        ('input_luminosity_range', 'input-luminosity-range')):
            v = view.get('retina.' + k)
            if config.get('retina.' + k) is None and attr in user:
                v = 1.0 / user[attr] if attr == 'steps_per_second' else user[attr]
            try:
                v = float(v)
            except (TypeError, ValueError):
                v = float('nan')
            if not (math.isfinite(v) and v > 0):
                raise ConfigurationError('configuration key %r: %.80r is not a finite number above 0'
                                         % ('retina.' + k, view.get('retina.' + k)))
            resolution[attr] = 1.0 / v if attr == 'steps_per_second' else v
        stages = []
        lv = 'outer-plexiform-layers.0.linear-version.'
        if config.get('outer-plexiform-layers.0.linear-version') is not None and not self._custom['opl']:
            stages.append((self.opl, lv))
        cgc = config.get('contrast-gain-control')
        if cgc is not None and cgc.get('enabled', True) and not self._custom['bipolar']:
            stages.append((self.bipolar, 'contrast-gain-control.'))
        log_polar = self._log_polar(config)
        enabled = [(i, g) for i, g in enumerate(config.get('ganglion-layers') or []) if g.get('enabled', True)]
        for k, (i, g) in enumerate(enabled):
            inp = getattr(self, 'gang_%d_input' % k, None) or GanglionInput()
            stages.append((inp, 'ganglion-layers.%d.' % i))
            channel = g.get('spiking-channel')
            if channel is not None:
                spk = getattr(self, 'gang_%d_spikes' % k, None) or GanglionSpiking(seed=0)
                stages.append((spk, 'ganglion-layers.%d.spiking-channel.' % i))
                check_cell_array(self._cell_array(channel, 1, log_polar),
                                 where='configuration ganglion-layers.%d.spiking-channel' % i)
        for stage, prefix in stages:
            parameter_io.checked_config_items(stage, view, prefix, key)
        return resolution

    def _apply_config(self, config, view, resolution, key):
        self.config = config
        res = self.resolution
        for attr, v in resolution.items():
            setattr(res, attr, v)
        log_polar = self._log_polar(config)
        self.log_polar = log_polar
        lv = 'outer-plexiform-layers.0.linear-version.'
        self._has_opl = config.get('outer-plexiform-layers.0.linear-version') is not None
        if self._has_opl and not self._custom['opl']:
            _parse_stage(self.opl, view, lv, key)
            und = config.get(lv + 'undershoot')
            self.opl.undershoot_enabled.configure(1.0 if und is not None and und.get('enabled', True) else 0.0)
            self.opl.undershoot_enabled.exact = float(self.opl.undershoot_enabled)
        cgc = config.get('contrast-gain-control')
        self._has_cgc = cgc is not None and cgc.get('enabled', True)
        if self._has_cgc and not self._custom['bipolar']:
            _parse_stage(self.bipolar, view, 'contrast-gain-control.', key)
        self._build_ganglia(config, view, key)
        for m in self.modules():
            if hasattr(m, 'log_polar'):
                m.log_polar = log_polar
        self.set_resolution(res)
        self.clear_state()

    def _build_ganglia(self, config, view, key):
        layers = config.get('ganglion-layers') or []
        enabled = [(i, g) for i, g in enumerate(layers) if g.get('enabled', True)]
        old = {name: getattr(self, name) for name in self._ganglion_module_names()}
        device, dtype = self.opl.device, self.opl.dtype
        for name in old:
            delattr(self, name)
        self._ganglia = []
        keys = []
        border = self._border_px(config)
        for k, (i, g) in enumerate(enabled):
            inp = old.get('gang_%d_input' % k) or GanglionInput().to(device=device, dtype=dtype)
            _parse_stage(inp, view, 'ganglion-layers.%d.' % i, key)
            setattr(self, 'gang_%d_input' % k, inp)
            channel = g.get('spiking-channel')
            has_spikes = channel is not None
            if has_spikes:
                spk = old.get('gang_%d_spikes' % k) or GanglionSpiking(
                    seed=self._layer_seed(k)).to(device=device, dtype=dtype)
                _parse_stage(spk, view, 'ganglion-layers.%d.spiking-channel.' % i, key)
                spk.set_cells(array=self._cell_array(channel, border, self.log_polar))
                setattr(self, 'gang_%d_spikes' % k, spk)
            suffix = 'ON' if float(inp.sign) > 0 else 'OFF'
            name = 'ganglion_spikes_' + suffix
            if name in keys:
                name = '%s_%d' % (name, k)
            keys.append(name)
            self._ganglia.append((k, has_spikes))
        self._keys = keys

    @staticmethod
    def _cell_array(channel, border, lp):
        if 'all-units' in channel:
            units = channel['all-units']
            return {'kind': 'units', 'x': [u.get('x-offset__deg', 0.0) for u in units],
                    'y': [u.get('y-offset__deg', 0.0) for u in units]}
        if 'square-array' in channel:
            sq = channel['square-array']
            return {'kind': 'square', 'size_x': sq.get('size-x__deg', 0.0), 'size_y': sq.get('size-y__deg', 0.0),
                    'density': sq.get('uniform-density__inv-deg'), 'border_px': border}
        if 'circular-array' in channel:
            ci = channel['circular-array']
            return {'kind': 'circular', 'diameter': ci.get('diameter__deg', 0.0),
                    'fovea_density': ci.get('fovea-density__inv-deg'), 'border_px': border,
                    'fovea_radius': lp[0] if lp else None, 'scaling': lp[1] if lp else None}
        return None

    def _border_px(self, config):
        """VirtualRetina's border ``ceil(7 sqrt(sC^2 + sS^2 + sA^2 + max sPool^2) ppd)`` in pixels."""
        g = lambda k: float(config.get(k) or 0.0)  # noqa: E731
        lv = 'outer-plexiform-layers.0.linear-version.'
        pools = [float(x or 0.0) for x in (config.get('ganglion-layers.*.sigma-pool__deg') or [])]
        s2 = (g(lv + 'center-sigma__deg') ** 2 + g(lv + 'surround-sigma__deg') ** 2
              + g('contrast-gain-control.adaptation-sigma__deg') ** 2 + max(pools + [0.0]) ** 2)
        return int(math.ceil(7 * math.sqrt(s2) * self.resolution.pixel_per_degree))

    def _ganglion_module_names(self):
        return [n for n, _ in self.named_children() if n.startswith('gang_')]

    def extra_repr(self):
        r = self.resolution
        return ('%g steps/s, %g px/deg, luminosity range %g, outputs %s%s'
                % (r.steps_per_second, r.pixel_per_degree, r.input_luminosity_range, ', '.join(self._keys) or 'none',
                   ', log-polar %s' % (self.log_polar,) if self.log_polar else ''))

    def _layer_seed(self, k):
        """The seed of ganglion layer k: ``seed + 7919 k`` (modulo 2**63)."""
        return (self._seed + 7919 * k) % (2 ** 63)

    def _restart_noise(self):
        """Seeds the noise of every spiking layer: ganglion layer k gets ``seed + 7919 k``."""
        for k, _ in self._ganglia:
            spk = getattr(self, 'gang_%d_spikes' % k, None)
            if spk is not None:
                spk.seed(self._layer_seed(k))

    # ------------------------------------------------------------------ running
    INPUT_BOUND = 1e6
    """Inputs of magnitude above this many times ``input_luminosity_range`` are refused (a ValueError naming
    the largest value): no screen is that bright, and far above it the arithmetic overflows."""

    def forward(self, x):
        lum = self.resolution.input_luminosity_range
        _check_finite(x, 'the retina input', self.INPUT_BOUND * lum,
                      ' (Retina.INPUT_BOUND %g times input_luminosity_range %g; inputs are luminances in units of '
                      'that range)' % (self.INPUT_BOUND, lum))
        piece = self._piece_length(x)
        if piece >= x.shape[2]:
            return self._forward_piece(x)
        # Without autograd, long chunks run in pieces whose intermediate maps stay in the processor's
        # cache (and whose memory is reused rather than freshly zeroed by the system); every stage
        # carries its state exactly from piece to piece, so the result is the same.
        # Each piece is copied into the chunk's outputs at once, while it is still in the processor's cache.
        outs, keys, timing = None, None, {}
        for start in range(0, x.shape[2], piece):
            part = self._forward_piece(x[:, :, start:start + piece])
            if outs is None:
                keys = part.keys
                outs = [p.new_empty(p.shape[:2] + (x.shape[2],) + p.shape[3:]) for p in part]
            for out, p in zip(outs, part):
                out[:, :, start:start + p.shape[2]].copy_(p)
            for name, seconds in self._timing:
                timing[name] = timing.get(name, 0.0) + seconds
        self._timing = list(timing.items())
        return Output(outs, keys=keys)

    PIECE_ELEMENTS = 1 << 20
    """Without autograd on the CPU, chunks are computed in pieces of about this many values per map (see forward)."""

    def _piece_length(self, x):
        if not compiled_loops_apply(self, x):
            return x.shape[2]
        per_frame = max(1, x.shape[0] * x.shape[1] * x.shape[3] * x.shape[4])
        return max(16, self.PIECE_ELEMENTS // per_frame)

    def _forward_piece(self, x):
        timing = []
        t0 = time.perf_counter()
        recorded = {}
        for m in (self.opl, self.bipolar):
            if hasattr(m, 'record'):
                m.record = self.record
        y = x
        if self._use['opl'] and (self._has_opl or self._custom['opl']):
            y = self.opl(y)
            recorded.update(getattr(self.opl, 'recorded', {}))
            recorded['opl'] = y
            t0 = self._lap(timing, 'opl', t0)
        if self._use['bipolar'] and (self._has_cgc or self._custom['bipolar']):
            if getattr(self.bipolar, 'input_prev', 0) is None and hasattr(self.opl, 'initial_output'):
                self.bipolar.input_prev = self.opl.initial_output(y) if self._use['opl'] else torch.zeros_like(y[:, :, :1])
            y = self.bipolar(y)
            recorded.update(getattr(self.bipolar, 'recorded', {}))
            recorded['bipolar'] = y
            t0 = self._lap(timing, 'bipolar', t0)
        outs = []
        if self._use['gang'] and self._ganglia:
            spiking = []
            for k, has_spikes in self._ganglia:
                inp = getattr(self, 'gang_%d_input' % k)
                if getattr(inp, 'input_prev', 0) is None and 'bipolar' not in recorded and 'opl' in recorded:
                    inp.input_prev = self.opl.initial_output(y)
                g = inp(y)
                recorded['ganglion_%d' % k] = g
                t0 = self._lap(timing, 'gang_%d_input' % k, t0)
                if self._use['spikes'] and has_spikes:
                    spiking.append(len(outs))
                outs.append(g)
            if spiking:
                layers = [getattr(self, 'gang_%d_spikes' % self._ganglia[i][0]) for i in spiking]
                for i, counts in zip(spiking, GanglionSpiking.forward_group(layers, [outs[i] for i in spiking])):
                    outs[i] = counts
                t0 = self._lap(timing, 'spikes', t0)
            keys = list(self._keys)
        else:
            outs, keys = [y], ['bipolar' if 'bipolar' in recorded else ('opl' if 'opl' in recorded else 'output')]
        self._timing = timing
        for name in self.record:
            if name not in recorded or recorded[name] is None:
                raise ValueError('cannot record %r: this retina has %s' % (name, sorted(k for k, v in recorded.items() if v is not None)))
            if name not in keys:
                outs.append(recorded[name])
                keys.append(name)
        return Output(outs, keys=keys)

    @staticmethod
    def _lap(timing, name, t0):
        t1 = time.perf_counter()
        timing.append((name, t1 - t0))
        return t1

    def get_spike_times(self, k=0):
        """Spikes of ganglion layer k recorded with ``gang_k_spikes.record_spike_times = True``."""
        return getattr(self, 'gang_%d_spikes' % k).get_spike_times()
