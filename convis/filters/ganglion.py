"""The ganglion stages of the VirtualRetina model: input current (transient, rectifier, pooling) and spikes.

:class:`GanglionInput` turns the bipolar signal into a current (Hz); :class:`GanglionSpiking` integrates
it with exact, event-driven leaky integrate-and-fire cells.  Both read the previous step's output of
the stage before (see :mod:`convis.filters.retina`), and both are importable from there too.
"""
import numpy as np
import torch

from ..functional.ganglion import GanglionInputParameters, GanglionInputState, ganglion_input
from ..functional.ganglion import smooth_rectifier  # noqa: F401 (re-exported)
from ..functional.lif import LIFParameters, LIFState, ganglion_lif
from ..noise import Seeded, seed_key
from .cell_arrays import cell_positions, check_cell_array
from .stage import _Stage, _check_state, _decay, _p, _param

__all__ = ['GanglionInput', 'GanglionSpiking', 'smooth_rectifier', 'MAGNOCELLULAR']

MAGNOCELLULAR = {'transient-tau__sec': 0.03, 'transient-relative-weight': 1.0, 'value-at-linear-threshold__Hz': 80.0,
                 'bipolar-amplification__Hz': 400.0, 'sigma-pool__deg': 0.1, 'spiking-channel.sigma-V': 0.0,
                 'spiking-channel.random-init': 1.0}
"""Where VirtualRetina's magnocellular ganglion layers differ from the stages' (parvocellular) defaults, by
configuration key within a ``ganglion-layer`` (``spiking-channel.`` for :class:`GanglionSpiking`): a stronger,
more transient response pooled over 0.1 deg, without membrane noise, from a random start."""


class GanglionInput(_Stage):
    """Input current of a ganglion layer: transient high-pass, smooth rectifier and spatial pooling.

    .. math::

        F[s] &= e_G F[s-1] + (1-e_G) V[s-1], \\quad T[s] = V[s-1] - w_G F[s] \\\\
        I_G[s] &= B_{\\sigma_{pool}}\\big(N(\\text{sign}\\cdot T[s-1])\\big)

    with ``N`` the smooth rectifier (:func:`smooth_rectifier`); F and T start at 0, so the first
    output is ``i_0``.  Time-parallel over a chunk.

    Parameters: ``sign`` (+1 ON, -1 OFF), ``transient_tau_center`` (s), ``transient_relative_weight_center``,
    ``v_0``, ``i_0`` (Hz), ``lambda_G`` (Hz), ``sigma_pool`` (deg).  Recordable map: ``'ganglion'``.

    >>> g = GanglionInput(sign=-1)
    >>> rates = g.run(np.random.randn(100, 20, 20), dt=50)
    """

    DEFAULTS = {'transient-tau__sec': 0.02, 'transient-relative-weight': 0.7, 'bipolar-linear-threshold': 0.0,
                'value-at-linear-threshold__Hz': 37.0, 'bipolar-amplification__Hz': 100.0, 'sigma-pool__deg': 0.0}
    """The default of every parameter but ``sign`` by its configuration key (in a ``ganglion-layer``), as
    for VirtualRetina's parvocellular cells: the one declaration of these values, which the default
    configuration is built from (:data:`MAGNOCELLULAR` says where magnocellular layers differ)."""
    OPTIONAL = {'bipolar-linear-threshold': DEFAULTS['bipolar-linear-threshold'],
                'sigma-pool__deg': DEFAULTS['sigma-pool__deg']}
    """Keys a VirtualRetina file may leave out, and the value they then take."""

    def __init__(self, sign=1.0):
        super().__init__()
        d = self.DEFAULTS
        self.sign = _param(sign, 'sign of the layer: +1 for ON cells, -1 for OFF cells', '', 'sign', (-1, 1),
                           'linear', (-1, 1), grad=False, kind='choice', choices={'ON': 1, 'OFF': -1}, symbol='sign')
        self.transient_tau_center = _param(d['transient-tau__sec'], 'time constant tau_G of the transient high-pass',
                                           's', 'transient-tau__sec', (1e-6, None), 'log', (0.002, 1.0), symbol='τ_G')
        self.transient_relative_weight_center = _param(d['transient-relative-weight'], 'relative weight w_G of the '
                                                       'transient high-pass', '', 'transient-relative-weight',
                                                       (0, None), 'linear', (0.0, 1.0), symbol='w_G')
        self.v_0 = _param(d['bipolar-linear-threshold'], 'bipolar value v_0 at the linear threshold of the rectifier',
                          '', 'bipolar-linear-threshold', (None, None), 'linear', (-1.0, 1.0), symbol='v_0')
        self.i_0 = _param(d['value-at-linear-threshold__Hz'], 'rectifier output i_0 at the linear threshold', 'Hz',
                          'value-at-linear-threshold__Hz', (0, None), 'linear', (0.0, 200.0), symbol='i_0')
        self.lambda_G = _param(d['bipolar-amplification__Hz'], 'slope lambda_G of the rectifier above threshold',
                               'Hz', 'bipolar-amplification__Hz', (0, None), 'linear', (0.0, 1000.0), symbol='λ_G')
        self.sigma_pool = _param(d['sigma-pool__deg'], 'standard deviation of the spatial pooling', 'deg',
                                 'sigma-pool__deg', (0, None), 'linear', (0.0, 1.0), symbol='σ_pool')
        for name in ('input_prev', 'F', 'T'):
            self.register_state(name, None)

    def initial_output(self, x):
        """The ganglion input before the first step (0: no current during the first step)."""
        return torch.zeros_like(x[:, :, :1])

    def forward(self, x):
        _check_state('GanglionInput', self.F, x)
        if self.F is None:
            self.F = torch.zeros_like(x[:, :, :1])
            self.T = torch.zeros_like(x[:, :, :1])
        if self.input_prev is None:
            self.input_prev = torch.zeros_like(x[:, :, :1])
        out, state = ganglion_input(x, GanglionInputState(self.input_prev, self.F, self.T), self.kernel_parameters(x))
        self.input_prev, self.F, self.T = state
        self._keep(ganglion=out)
        return out

    def kernel_parameters(self, x):
        """The :class:`~convis.functional.ganglion.GanglionInputParameters` of
        :func:`convis.functional.ganglion.ganglion_input` for input like ``x``."""
        return GanglionInputParameters(
            e_transient=_decay(self.transient_tau_center, self.resolution.dt, x),
            w_transient=_p(self.transient_relative_weight_center, x), sign=_p(self.sign, x), v_0=_p(self.v_0, x),
            i_0=_p(self.i_0, x), lambda_G=_p(self.lambda_G, x), pool=self._blur(self.sigma_pool, x))


class GanglionSpiking(Seeded, _Stage):
    """Leaky integrate-and-fire ganglion cells, integrated exactly (event driven) with a refractory period.

    .. math::

        \\frac{dV}{dt} = I + \\sigma_V\\sqrt{2 g_L/dt}\\,\\xi - g_L V, \\qquad
        V \\geq 1 \\Rightarrow \\text{spike}, V \\leftarrow 0 \\text{ for } \\max(0, \\mathcal{N}(\\mu_r, \\sigma_r))

    The current of a cell is held constant over each step: on step k it is the input map of step
    k-1 (0 on the first step), sampled at the cell; the noise ``xi ~ N(0,1)`` is drawn per cell and step.
    Spike times are exact within the step.  ``V`` starts at 0, or uniform in [0, 1) with
    ``random_init = 1``.  The noise and the refractory draws are counter-based normal numbers of the
    layer's seed (:meth:`seed`), the step and the cell (:mod:`convis.noise`): the same for any chunking and
    on any device, made without copies; the initial potentials and random cell positions come from
    the layer's own generator.

    By default every pixel is a cell and the output is the number of spikes per step, shaped like the
    input.  :meth:`set_cells` places cells at positions in degrees (bilinear sampling of the map at
    ``(W/2 + ppd x, H/2 + ppd y)`` with edge clamping), or describes a VirtualRetina square or
    circular array; the output is then ``[batch, channel, time, ny, nx]`` for a square grid and
    ``[batch, channel, time, 1, n_cells]`` otherwise.  With ``record_spike_times = True`` each call
    appends ``(batch, channel, cell, time_s)`` tensors to ``spike_times`` (cells in VirtualRetina order).

    Parameters: ``g_L`` (Hz), ``noise_sigma`` (sigma_V), ``refr_mu`` (s), ``refr_sigma`` (s),
    ``random_init`` (0 or 1).

    On the CPU the loop over steps runs as a small C function, compiled once with the system compiler
    and cached (``~/.cache/convis``); without a compiler, on GPUs, or with ``CONVIS_NO_COMPILE=1`` the
    same computation runs as torch operations (bit for bit the same on the CPU; on GPUs without a host
    synchronisation per step).  The spiking output is not differentiable.

    >>> spk = GanglionSpiking(seed=1)
    >>> counts = spk.run(80 * np.ones((200, 5, 5)), dt=50)
    """

    DEFAULTS = {'g-leak__Hz': 50.0, 'sigma-V': 0.1, 'refr-mean__sec': 0.003, 'refr-stdev__sec': 0.0,
                'random-init': 0.0}
    """The default of every parameter by its configuration key (in a ``ganglion-layer``'s ``spiking-channel``),
    as for VirtualRetina's parvocellular cells: the one declaration of these values, which the default
    configuration is built from (:data:`MAGNOCELLULAR` says where magnocellular layers differ)."""
    OPTIONAL = {'sigma-V': 0.0, 'refr-stdev__sec': DEFAULTS['refr-stdev__sec'], 'random-init': DEFAULTS['random-init']}
    """Keys a VirtualRetina file may leave out, and the value they then take (without ``sigma-V``, no noise)."""

    def __init__(self, seed=None):
        super().__init__()
        d = self.DEFAULTS
        self.g_L = _param(d['g-leak__Hz'], 'leak conductance g_L of the membrane', 'Hz', 'g-leak__Hz', (1e-6, None),
                          'log', (1.0, 500.0), grad=False, symbol='g_L')
        self.noise_sigma = _param(d['sigma-V'], 'standard deviation sigma_V of the membrane noise (stationary)', '',
                                  'sigma-V', (0, None), 'linear', (0.0, 1.0), grad=False, symbol='σ_V')
        self.refr_mu = _param(d['refr-mean__sec'], 'mean refractory period', 's', 'refr-mean__sec', (0, None),
                              'linear', (0.0, 0.02), grad=False, symbol='μ_refr')
        self.refr_sigma = _param(d['refr-stdev__sec'], 'standard deviation of the refractory period', 's',
                                 'refr-stdev__sec', (0, None), 'linear', (0.0, 0.01), grad=False, symbol='σ_refr')
        self.random_init = _param(d['random-init'], '1: the membrane potential starts uniform in [0, 1); 0: at 0', '',
                                  'random-init', (0, 1), 'linear', (0, 1), grad=False, kind='bool',
                                  symbol='random start')
        self.cells = None
        self._grid = None
        self.record_spike_times = False
        self.spike_times = []
        for name in ('V', 'refr_factor', 'current', 'steps', 'cell_positions'):
            self.register_state(name, None)
        self.seed(seed)

    def _restart_noise(self):
        self.register_state('rng', torch.Generator().manual_seed(self._seed).get_state())
        # a state: get_state/set_state carry the noise over to another layer, clear_state keeps the seed
        self.register_state('noise_seed', torch.tensor(self._seed, dtype=torch.int64))

    def set_cells(self, positions_deg=None, grid=None, array=None):
        """Chooses the cells: every pixel (no argument), positions in degrees, or a VirtualRetina array.

        positions_deg : array [N, 2]
            ``(x, y)`` offsets in degrees from the map centre (x: columns, y: rows, downwards)
        grid : (ny, nx)
            reshape the output to a grid (positions in VirtualRetina's x-major order ``ix*ny + iy``)
        array : dict
            a cell array as :func:`convis.retina_virtualretina.cell_positions` describes (``'square'``,
            ``'circular'``), resolved for the map size at the next call; checked at once: a density not
            above 0 or more than :data:`convis.retina_virtualretina.MAX_CELLS` cells raise a ValueError
        """
        if positions_deg is not None:
            pos = np.asarray(positions_deg, dtype=np.float64)
            if pos.ndim != 2 or pos.shape[1] != 2 or len(pos) == 0:
                raise ValueError('positions_deg must be an array of shape [N, 2] (x, y), not %s' % (pos.shape,))
            if grid is not None and grid[0] * grid[1] != len(pos):
                raise ValueError('grid %s does not hold %d cells' % (grid, len(pos)))
            self.cells = {'kind': 'units', 'x': pos[:, 0].tolist(), 'y': pos[:, 1].tolist(),
                          'grid': tuple(grid) if grid is not None else None}
        else:
            self.cells = dict(check_cell_array(array, where='%s cell array' % type(self).__name__)) \
                if array is not None else None
        self.cell_positions = None
        self._grid = None
        return self

    def _positions(self, x, gen):
        if self.cell_positions is None:
            xs, ys, grid = cell_positions(self.cells, tuple(x.shape[-2:]), self.resolution.pixel_per_degree, gen)
            self.cell_positions = torch.tensor([xs, ys], dtype=torch.float64).T.contiguous()
            self._grid = grid
        return self.cell_positions.to(torch.float64).cpu()

    def _sampler(self, x, gen):
        """Indices [N, 4] into the flattened map and bilinear weights [N, 4] of every cell."""
        h, w = x.shape[-2:]
        pos = self._positions(x, gen)
        ppd = self.resolution.pixel_per_degree
        cx, cy = w / 2.0 + ppd * pos[:, 0], h / 2.0 + ppd * pos[:, 1]
        x0, y0 = torch.floor(cx), torch.floor(cy)
        fx, fy = cx - x0, cy - y0
        xi = [torch.clamp(x0 + d, 0, w - 1).long() for d in (0, 1)]
        yi = [torch.clamp(y0 + d, 0, h - 1).long() for d in (0, 1)]
        idx = torch.stack([yi[0] * w + xi[0], yi[0] * w + xi[1], yi[1] * w + xi[0], yi[1] * w + xi[1]], 1)
        wts = torch.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], 1)
        return idx.to(x.device), wts.to(dtype=x.dtype, device=x.device)

    def forward(self, x):
        return GanglionSpiking.forward_group([self], [x])[0]

    @staticmethod
    def forward_group(layers, inputs):
        """Runs several spiking layers on their inputs; layers with equal neuron parameters share one loop.

        The result is the same as calling each layer on its input (each keeps its own state and random
        generator); sharing the loop only saves time.
        """
        prepared = [layer._prepare(x) for layer, x in zip(layers, inputs)]
        groups = {}
        for i, layer in enumerate(layers):
            groups.setdefault(layer._group_key(prepared[i][0]), []).append(i)
        counts = [None] * len(layers)
        for members in groups.values():
            results = GanglionSpiking._integrate([layers[i] for i in members], [prepared[i][0] for i in members])
            for i, c in zip(members, results):
                counts[i] = c
        return [layer._finish(c, prep) for layer, c, prep in zip(layers, counts, prepared)]

    def _group_key(self, current):
        return (float(self.g_L), float(self.noise_sigma), float(self.refr_mu), float(self.refr_sigma),
                self.resolution.dt, self.record_spike_times, current.dtype, str(current.device),
                tuple(current.shape[:3]), float(self.steps))

    def _prepare(self, x):
        """Samples the input at the cells and creates the state; returns (current [B, C, T, N], gen, shape)."""
        b, c, n_t, h, w = x.shape
        gen = torch.Generator().set_state(self.rng.cpu())
        flat = x.reshape(b, c, n_t, h * w)
        if self.cells is None:
            current_in, out_shape = flat, (h, w)
        else:
            idx, wts = self._sampler(x, gen)
            current_in = (flat[..., idx] * wts).sum(-1)
            out_shape = self._grid if self._grid is not None else (1, idx.shape[0])
        n = current_in.shape[-1]
        if self.V is not None and tuple(self.V.shape) != (b, c, n):
            raise ValueError('the input %s does not match the %s cells kept from the previous chunk: call '
                             'clear_state() before changing the input size' % (tuple(x.shape), tuple(self.V.shape)))
        if self.V is None:
            if float(self.random_init) >= 0.5:
                self.V = torch.rand((b, c, n), generator=gen, dtype=torch.float64).to(dtype=x.dtype, device=x.device)
            else:
                self.V = x.new_zeros((b, c, n))
            self.refr_factor = torch.ones((b, c, n), dtype=torch.float64, device=x.device)
            self.current = x.new_zeros((b, c, n))
            self.steps = torch.zeros((), dtype=torch.float64)
        if float(self.g_L) <= 0:
            raise ValueError('g_L must be positive, not %g' % float(self.g_L))
        return current_in.detach(), gen, out_shape

    def _finish(self, counts, prepared):
        b, c, n_t = counts.shape[:3]
        self.rng = prepared[1].get_state()
        if self.cells is not None and self._grid is not None:
            ny, nx = self._grid          # x-major cell order: cell ix * ny + iy is grid [iy, ix]
            return counts.reshape(b, c, n_t, nx, ny).transpose(-1, -2)
        return counts.reshape(b, c, n_t, *prepared[2])

    def kernel_parameters(self):
        """The :class:`~convis.functional.lif.LIFParameters` of :func:`convis.functional.lif.ganglion_lif`."""
        return LIFParameters(float(self.g_L), float(self.noise_sigma), float(self.refr_mu), float(self.refr_sigma))

    def _noise_key(self):
        return seed_key(int(self.noise_seed) if self.noise_seed is not None else self._seed)

    @staticmethod
    def _integrate(layers, currents):
        """The exact LIF over the chunk for layers with equal parameters (one call of
        :func:`convis.functional.lif.ganglion_lif`, each layer's cells with the noise of its own seed); returns
        their spike counts.  The state ``refr_factor`` holds ``exp(g_L t_r)`` of the remaining refractory time
        ``t_r`` (1 for a free cell), ``V`` the potential, both in double precision.
        """
        first = layers[0]
        dt = first.resolution.dt
        record = first.record_spike_times
        sizes = [x.shape[-1] for x in currents]
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        slices = [slice(int(offsets[j]), int(offsets[j + 1])) for j in range(len(layers))]
        join = (lambda ts: torch.cat(ts, -1)) if len(layers) > 1 else (lambda ts: ts[0])  # noqa: E731
        state = LIFState(join([l.V for l in layers]), join([l.refr_factor for l in layers]),
                         join([l.current for l in layers]), int(round(float(first.steps))))
        counts, state, spikes = ganglion_lif(join(currents), state, first.kernel_parameters(), dt,
                                             [(l._noise_key(), n) for l, n in zip(layers, sizes)], record=record)
        results = []
        for j, layer in enumerate(layers):
            sl = slices[j]
            layer.V, layer.refr_factor = state.V[..., sl].clone(), state.refr_factor[..., sl].clone()
            layer.current = state.current[..., sl].clone()
            layer.steps = torch.tensor(float(state.step), dtype=torch.float64)
            if record:
                keep = (spikes[2] >= offsets[j]) & (spikes[2] < offsets[j + 1])
                mine = [col[keep] for col in spikes]
                mine[2] = mine[2] - int(offsets[j])
                order = torch.argsort(mine[3], stable=True)
                layer.spike_times.append(tuple(col[order] for col in mine))
            results.append(counts[..., sl])
        return results

    def get_spike_times(self):
        """All recorded spikes as numpy arrays ``(batch, channel, cell, time_s)``, sorted by time."""
        if not self.spike_times:
            return tuple(np.zeros(0, dtype=t) for t in (np.int64, np.int64, np.int64, np.float64))
        cols = [torch.cat([e[k] for e in self.spike_times]).cpu().numpy() for k in range(4)]
        order = np.argsort(cols[3], kind='stable')
        return tuple(col[order] for col in cols)
