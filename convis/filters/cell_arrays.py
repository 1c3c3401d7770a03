"""Ganglion cell arrays: where the cells of a VirtualRetina ``square-array``, ``circular-array`` or ``all-units``
element sit on the map (:func:`cell_positions`), and the check that bounds their number (:func:`check_cell_array`).

Used by :class:`convis.filters.ganglion.GanglionSpiking` and :class:`convis.retina.Retina`; re-exported by
:mod:`convis.retina_virtualretina`.
"""
import math

import torch

from ..errors import ConfigurationError

__all__ = ['MAX_CELLS', 'check_cell_array', 'cell_positions']

MAX_CELLS = 1000000
"""The most cells a ganglion cell array (square, circular or listed units) may hold: a larger array (a
negative or enormous density, a 1e4-degree square) raises a :class:`ConfigurationError` instead of filling
the memory.  One million cells are a 1000 x 1000 grid, far more than a retina model samples usefully."""


def _short(v, n=200):
    r = repr(v)
    return r if len(r) <= n else r[:n] + '...(%d characters)' % len(r)


def _floor(v):
    return int(math.floor(v + 1e-9))


def _number(spec, key, where, positive=False):
    """``spec[key]`` as a finite float (above 0 with ``positive``, else 0 or above), or a ConfigurationError."""
    v = spec.get(key) or 0.0
    try:
        f = float(v)
    except (TypeError, ValueError):
        f = float('nan')
    if not math.isfinite(f) or f < 0 or (positive and f == 0):
        raise ConfigurationError('%s: %s %s must be a finite number %s' % (where, key, _short(v, 80),
                                                                         'above 0' if positive else '0 or above'))
    return f


def _too_many(where, count, what):
    return ConfigurationError('%s: %s would hold %.4g cells, more than MAX_CELLS = %d (convis.retina_virtualretina.'
                              'MAX_CELLS); use a smaller size or density' % (where, what, count, MAX_CELLS))


def check_cell_array(spec, map_shape=None, pixel_per_degree=None, where='cell array'):
    """Checks a cell array (as :func:`cell_positions` takes it) and returns it; raises a
    :class:`ConfigurationError` for a density that is not above 0, a negative or non-finite size, or
    more than :data:`MAX_CELLS` cells.  Automatic sizes (0) are counted only when ``map_shape`` (pixels)
    and ``pixel_per_degree`` are given."""
    if spec is None:
        return spec
    kind = spec.get('kind')
    auto = None
    if map_shape is not None and pixel_per_degree:
        h, w = map_shape
        border = spec.get('border_px', 1)
        auto = (max(w - (border - 1), 0) / pixel_per_degree, max(h - (border - 1), 0) / pixel_per_degree)
    if kind == 'units':
        if len(spec.get('x', ())) != len(spec.get('y', ())):
            raise ConfigurationError('%s: %d x offsets but %d y offsets' % (where, len(spec['x']), len(spec['y'])))
        if len(spec['x']) > MAX_CELLS:
            raise _too_many(where, len(spec['x']), 'the list of units')
    elif kind == 'square':
        density = _number(spec, 'density', where, positive=True)
        sx, sy = _number(spec, 'size_x', where), _number(spec, 'size_y', where)
        if auto is not None:
            sx, sy = sx or auto[0], sy or auto[1]
        count = max(math.floor(sx * density), 1) * max(math.floor(sy * density), 1)
        if count > MAX_CELLS:
            raise _too_many(where, count, 'the square array of %g x %g deg at %g cells/deg' % (sx, sy, density))
    elif kind == 'circular':
        d0 = _number(spec, 'fovea_density', where, positive=True)
        diameter = _number(spec, 'diameter', where)
        if spec.get('fovea_radius') is not None:
            _number(spec, 'fovea_radius', where)
        if spec.get('scaling') is not None:
            _number(spec, 'scaling', where)
        if auto is not None:
            diameter = diameter or min(auto)
        # rings sit 1/d0 apart (further beyond a log-polar fovea); without log-polar a disc of d0^2 cells/deg^2
        rings = d0 * diameter / 2.0
        count = rings if spec.get('scaling') else math.pi * rings * rings
        if count > MAX_CELLS:
            raise _too_many(where, count, 'the circular array of %g deg at %g cells/deg' % (diameter, d0))
    else:
        raise ConfigurationError('%s: unknown cell array kind %s (square, circular or units)' % (where, _short(kind, 80)))
    return spec


def cell_positions(spec, map_shape, pixel_per_degree, generator=None):
    """Positions ``(x_deg, y_deg, grid)`` of the cells of a VirtualRetina cell array on a map.

    ``spec['kind']`` is

    * ``'square'``: keys ``size_x``, ``size_y`` (deg; 0 = automatic: the map minus ``border_px - 1``
      pixels), ``density`` (cells/deg).  Cells ``i = 1..n`` sit at ``(i - (n+1)/2)/density`` in
      x-major order (``id = ix*ny + iy``); ``grid = (ny, nx)``.
    * ``'circular'``: keys ``diameter`` (deg; 0 = automatic), ``fovea_density`` d0 (cells/deg) and
      optionally ``fovea_radius`` R0, ``scaling`` K of a log-polar scheme.  Ring n has radius ``n/d0``
      (``R0 + (exp(K(n/d0 - R0)) - 1)/K`` beyond the fovea) and ``floor(2 pi d0 density(r) r)`` cells
      at a random angular offset (from ``generator``); ring 0 is one cell at the centre.  ``grid`` None.
    * ``'units'``: explicit ``x``, ``y`` lists (deg), optional ``grid``.

    Arrays are checked first (:func:`check_cell_array`): more than :data:`MAX_CELLS` cells raise.
    """
    kind = spec.get('kind')
    h, w = map_shape
    border = spec.get('border_px', 1)
    check_cell_array(spec, map_shape, pixel_per_degree)
    if kind == 'units':
        return list(spec['x']), list(spec['y']), spec.get('grid')
    if kind == 'square':
        density = float(spec['density'])
        sx = spec.get('size_x') or (w - (border - 1)) / pixel_per_degree
        sy = spec.get('size_y') or (h - (border - 1)) / pixel_per_degree
        nx, ny = max(_floor(sx * density), 1), max(_floor(sy * density), 1)
        xs, ys = [], []
        for ix in range(1, nx + 1):
            for iy in range(1, ny + 1):
                xs.append((ix - (nx + 1) / 2.0) / density)
                ys.append((iy - (ny + 1) / 2.0) / density)
        return xs, ys, (ny, nx)
    if kind == 'circular':
        d0 = float(spec['fovea_density'])
        diameter = spec.get('diameter') or (min(h, w) - (border - 1)) / pixel_per_degree
        r0, k = spec.get('fovea_radius'), spec.get('scaling')
        xs, ys = [0.0], [0.0]
        n = 1
        while True:
            u = n / d0
            if r0 is None or u <= r0 or not k:
                radius, dens = u, 1.0
            else:
                radius = r0 + math.expm1(k * (u - r0)) / k
                dens = 1.0 / (1 + k * (radius - r0))
            if radius > diameter / 2.0 + 1e-9:
                break
            count = _floor(2 * math.pi * d0 * dens * radius)
            if len(xs) + count > MAX_CELLS:
                raise _too_many('cell array', len(xs) + count, 'the circular array of %g deg at %g cells/deg'
                                % (diameter, d0))
            if count > 0:
                offset = float(torch.rand((), generator=generator, dtype=torch.float64)) * 2 * math.pi / count
                for j in range(count):
                    a = offset + 2 * math.pi * j / count
                    xs.append(radius * math.cos(a))
                    ys.append(radius * math.sin(a))
            n += 1
        return xs, ys, None
    raise ValueError('unknown cell array kind %r (square, circular or units)' % (kind,))
