"""Parameter sweeps: one model run per parameter set, on a Dask cluster, as a labelled xarray Dataset.

>>> import convis, numpy as np
>>> retina = convis.retina.Retina()
>>> stim = convis.samples.moving_grating(200, 20, 20)
>>> ds = convis.sweep(retina, stim, {'opl.sigma_center': [0.05, 0.1], 'bipolar.lambda_amp': [50, 100]},
...                   dt=100)                                              # doctest: +SKIP
>>> ds.ganglion_spikes_ON.dims                                            # doctest: +SKIP
('opl.sigma_center', 'bipolar.lambda_amp', 'time', 'y', 'x')
"""
import copy
import difflib
import hashlib
import itertools
import os
import uuid
from collections import OrderedDict

import numpy as np
import torch

from ..utils import _short_repr
from . import cluster, store as zstore

__all__ = ['sweep', 'parameter_sets', 'run_one']

SET_DIM = 'set'
"""The dimension of a sweep given as a list (or dict) of explicit parameter sets."""


def _parameter_objects(model):
    """``dotted name -> Parameter or VirtualParameter`` of every parameter of ``model``."""
    slots = OrderedDict(model.named_parameters())
    slots.update(model.named_virtual_parameters())
    return slots


def _scalar(name, value):
    v = np.asarray(value)
    if v.ndim != 0 or v.dtype.kind not in 'biuf':
        raise ValueError('sweep: parameter %r takes numbers (one per set), not %s' % (name, _short_repr(value, 80)))
    return v.item()


def parameter_sets(model, parameters):
    """Checks a sweep's parameters against ``model`` and lists its sets, before any task runs.

    ``parameters`` is a dict ``dotted name -> list of values`` (a grid: every combination), a list of
    dicts (explicit sets) or a dict ``label -> dict`` (explicit sets with labels, e.g. ``{'A': {...},
    'B': {...}}``).  Values are in the parameters' own units (see ``model.p``; seconds, degrees, Hz).

    Returns ``(dims, coords, sets)``: the dimension names, ``name -> (dims, values, attrs)`` of the
    coordinates (with ``units`` and ``doc``), and one ``(index, {name: value})`` per set, the index a
    tuple into the dimensions.  An unknown name raises a ``KeyError`` naming the closest parameters;
    a value the parameter refuses (out of bounds, not finite, not one of its choices) a ``ValueError``.

    >>> dims, coords, sets = parameter_sets(retina, {'opl.sigma_center': [0.05, 0.1]})   # doctest: +SKIP
    >>> dims, sets[1]                                                                    # doctest: +SKIP
    (('opl.sigma_center',), ((1,), {'opl.sigma_center': 0.1}))
    """
    slots = _parameter_objects(model)
    if isinstance(parameters, dict) and parameters and all(isinstance(v, dict) for v in parameters.values()):
        labels, explicit = [str(k) for k in parameters], list(parameters.values())
    elif isinstance(parameters, (list, tuple)):
        labels, explicit = None, list(parameters)
        if not all(isinstance(p, dict) for p in explicit):
            raise TypeError('sweep: a list of parameter sets must hold dicts name -> value')
    elif isinstance(parameters, dict):
        labels, explicit = None, None
    else:
        raise TypeError('sweep: parameters must be a dict name -> list of values, a list of dicts or a dict '
                        'label -> dict, not %s' % type(parameters).__name__)
    names = list(OrderedDict.fromkeys(k for d in (explicit or [parameters]) for k in d))
    if not names:
        raise ValueError('sweep: no parameters to sweep (give at least one name and its values)')
    for name in names:
        if name not in slots:
            close = difflib.get_close_matches(str(name), list(slots), n=3, cutoff=0.5)
            raise KeyError('sweep: %s has no parameter %s; closest: %s' % (
                type(model).__name__, _short_repr(name, 80), ', '.join(close) if close else
                '(none; the parameters are %s)' % _short_repr(list(slots), 300)))

    def attrs(name):
        p = slots[name]
        return {'units': getattr(p, 'unit', '') or '', 'doc': getattr(p, 'doc', '') or ''}

    if explicit is None:
        values = OrderedDict()
        for name in names:
            vs = parameters[name]
            vs = [vs] if np.ndim(vs) == 0 else list(vs)
            if not vs:
                raise ValueError('sweep: parameter %r has no values' % name)
            values[name] = [_scalar(name, v) for v in vs]
        dims = tuple(names)
        coords = OrderedDict((n, ((n,), np.asarray(values[n]), attrs(n))) for n in names)
        sets = [(tuple(idx), {n: values[n][i] for n, i in zip(names, idx)})
                for idx in itertools.product(*[range(len(values[n])) for n in names])]
    else:
        if not explicit:
            raise ValueError('sweep: the list of parameter sets is empty')
        current = model.get_parameters()
        sets, columns = [], OrderedDict((n, []) for n in names)
        for i, d in enumerate(explicit):
            full = {}
            for n in names:
                v = _scalar(n, d[n]) if n in d else np.asarray(current[n]).reshape(-1)[0].item()
                full[n] = v
                columns[n].append(v)
            sets.append(((i,), {n: d[n] for n in d}))
        dims = (SET_DIM,)
        coords = OrderedDict([(SET_DIM, ((SET_DIM,), np.asarray(labels, dtype=object) if labels else np.arange(len(explicit)), {}))])
        for n in names:
            coords[n] = ((SET_DIM,), np.asarray(columns[n]), attrs(n))
    _check_values(model, sets)
    return dims, coords, sets


def _check_values(model, sets):
    """Sets every value on a copy of the model, so that a refused value fails before any task starts."""
    probe = copy.deepcopy(model)
    for index, values in sets:
        try:
            probe.set_parameters(values)
        except (ValueError, TypeError) as e:
            raise ValueError('sweep: the parameter set %s is refused: %s' % (_short_repr(values, 200), e)) from e


def _output_items(o, outputs):
    from ..base import Output
    if not isinstance(o, Output):
        o = Output([o])
    if outputs is None:
        return list(zip(o.keys, o))
    missing = [k for k in outputs if k not in o.keys]
    if missing:
        raise KeyError('sweep: the model has no output(s) %s; its outputs are %s' % (missing, o.keys))
    return [(k, o[k]) for k in outputs]


def _named(reduce):
    name = getattr(reduce, '__name__', '')
    return name if name.isidentifier() and name != '<lambda>' else 'result'


def _frames_dims(t):
    """Dims of a ``[batch, channel, time, x, y]`` output: batch and channel only when more than one."""
    dims = ['batch', 'channel', 'time', 'y', 'x']
    keep = [i for i in range(5) if i >= 2 or t.shape[i] != 1]
    return tuple(dims[i] for i in keep), t.reshape(tuple(t.shape[i] for i in keep))


class Variable(tuple):
    """One result variable of a set: the tuple ``(dims, array, coords)``, with its ``attrs`` (units, a
    description: what a reduce's ``xarray.DataArray`` carried) as an attribute, kept in the sweep's Dataset."""

    def __new__(cls, dims, array, coords, attrs=None):
        self = tuple.__new__(cls, (dims, array, coords))
        self.attrs = dict(attrs or {})
        return self

    def __getnewargs__(self):
        return tuple(self)


def _variables(o, outputs, reduce, steps_per_second, pixel_per_degree):
    """``name -> (dims, numpy array, coords)`` of one run's outputs (or of ``reduce(output)``)."""
    from ..base import Output
    items = _output_items(o, outputs)
    if reduce is not None:
        r = reduce(Output([v for _, v in items], keys=[k for k, _ in items]))
        r = r if isinstance(r, dict) else {_named(reduce): r}
        result = OrderedDict()
        for k, v in r.items():
            if hasattr(v, 'dims') and hasattr(v, 'coords'):  # an xarray.DataArray keeps its labels
                coords = {c: (v[c].dims, np.asarray(v[c].values), dict(v[c].attrs)) for c in v.coords}
                result[str(k)] = Variable(tuple(v.dims), np.asarray(v.values), coords, v.attrs)
            else:
                a = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
                result[str(k)] = (tuple('%s_dim_%d' % (k, i) for i in range(a.ndim)), a, {})
        return result
    result = OrderedDict()
    for k, v in items:
        a = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
        if a.ndim != 5:
            result[k] = (tuple('%s_dim_%d' % (k, i) for i in range(a.ndim)), a, {})
            continue
        dims, a = _frames_dims(a)
        coords = {'time': (('time',), np.arange(a.shape[-3]) / float(steps_per_second), {'units': 's'}),
                  'y': (('y',), np.arange(a.shape[-2]) / float(pixel_per_degree), {'units': 'deg'}),
                  'x': (('x',), np.arange(a.shape[-1]) / float(pixel_per_degree), {'units': 'deg'})}
        result[k] = (dims, a, coords)
    return result


def run_one(model, stimulus, values, dt=500, outputs=None, reduce=None):
    """What one sweep task computes, in this process: ``model`` (copied, never changed) with the
    parameters ``values`` (``dotted name -> value``) run on ``stimulus`` in chunks of ``dt`` frames.

    Returns ``name -> (dims, numpy array, coords)`` for each output kept (``outputs``: their names,
    None for all) or for what ``reduce(output)`` returns.  A sweep's results equal these, bit for bit.
    """
    m = copy.deepcopy(model)
    m.set_parameters(values)
    o = m.run(stimulus, dt=dt, progress=False)
    res = m.resolution
    return _variables(o, outputs, reduce, res.steps_per_second, res.pixel_per_degree)


def _task(data, token, stimulus, values, dt, outputs, reduce, device, torch_threads):
    model = cluster.build_model(data, device=device, torch_threads=torch_threads, token=token)
    model.set_parameters(values)
    o = model.run(stimulus, dt=dt, progress=False)
    res = model.resolution
    return _variables(o, outputs, reduce, res.steps_per_second, res.pixel_per_degree)


def _fingerprint(model, stimulus, sets, dt, outputs, reduce):
    h = hashlib.sha256()
    h.update(type(model).__qualname__.encode())
    for name, v in list(model.get_parameters().items()) + list(model.get_state().items()):
        h.update(name.encode())
        if v is not None:
            h.update(np.ascontiguousarray(v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v).tobytes())
    h.update(np.ascontiguousarray(stimulus).tobytes())
    h.update(repr((sets, dt, outputs, None if reduce is None else getattr(reduce, '__qualname__', repr(reduce))))
             .encode())
    return h.hexdigest()


def sweep(model, stimulus, parameters, outputs=None, reduce=None, dt=500, client=None, store=None,
          progress=None, device=None):
    """Runs ``model`` on ``stimulus`` once per parameter set, in parallel on Dask, as an xarray Dataset.

    Parameters
    ----------
    model : convis.Layer
        the model (sent once; each worker process unpickles it once and runs a deep copy of it for every
        set: this one is never changed, and every run starts from its current state)
    stimulus : array or tensor
        the input, ``[time, x, y]`` or any shape the model's ``run`` takes (frames of 1/steps_per_second s)
    parameters : dict or list
        ``{'opl.sigma_center': [0.05, 0.1, 0.2], 'bipolar.lambda_amp': [50, 100]}`` is a grid (every
        combination, one dimension per parameter); a list of dicts gives explicit sets (dimension
        ``set``), a dict ``label -> dict`` labelled sets (``{'A': {...}, 'B': {...}}``).  Values in the
        parameters' units (seconds, degrees, Hz: see ``model.p``)
    outputs : list of str or None
        the outputs to keep (default: all), e.g. ``['ganglion_spikes_ON']``
    reduce : callable or None
        ``reduce(output) -> array or dict name -> array`` (a :class:`convis.Output` in, numpy arrays,
        tensors or xarray.DataArrays out) keeps only what it returns, e.g. a firing rate; it runs on
        the workers
    dt : int
        chunk length in frames
    client : distributed.Client or None
        None starts a ``distributed.LocalCluster`` with one worker process per core (torch with one
        thread each) for this call; a client of any cluster is used as it is.  Worker processes keep
        freed memory for reuse from their first convis task on (see :mod:`convis.scale.cluster`)
    store : str or None
        a zarr store (folder): results are written as each task finishes; a sweep restarted with the
        same store computes only what is missing (a store of another sweep raises a ``ValueError``)
    progress : bool, callable or None
        a progress bar (tqdm.auto: a widget in a notebook); a callable gets ``(done, total)``; None
        follows ``convis.base.show_progress``
    device : str or None
        where the tasks run: None takes the worker's GPU when it has one, else its CPU

    Returns
    -------
    xarray.Dataset
        one dimension per swept parameter (or ``set``), coordinates with ``units`` and ``doc``
        attributes; one variable per output (``[param dims..., time, y, x]``; ``time`` in s, ``y``
        (rows) and ``x`` (columns) in degrees) or per entry of what ``reduce`` returns.  With a store,
        it is read lazily from the store.

    A bad parameter name fails before any task starts (a ``KeyError`` naming the closest names).

    >>> ds = convis.sweep(retina, stim, {'opl.sigma_center': [0.05, 0.1, 0.2]},
    ...                   reduce=lambda o: o.ganglion_spikes_ON.float().mean())      # doctest: +SKIP
    >>> ds.result.plot()                                                            # doctest: +SKIP
    """
    from ..base import Layer
    if not isinstance(model, Layer):
        raise TypeError('sweep: model must be a convis.Layer, not %s' % type(model).__name__)
    if outputs is not None:
        outputs = [outputs] if isinstance(outputs, str) else [str(k) for k in outputs]
    if reduce is not None and not callable(reduce):
        raise TypeError('sweep: reduce must be a function of the output, not %s' % _short_repr(reduce, 80))
    dt = int(dt)
    if dt < 1:
        raise ValueError('sweep: dt must be at least 1 frame, not %d' % dt)
    dims, coords, sets = parameter_sets(model, parameters)
    stimulus = stimulus.detach().cpu().numpy() if isinstance(stimulus, torch.Tensor) else np.asarray(stimulus)
    if stimulus.dtype.kind in 'biuf' and model.dtype.is_floating_point:
        # the model runs in its own dtype anyway: casting once here ships half the bytes of a float64 array
        stimulus = stimulus.astype(str(model.dtype).replace('torch.', ''), copy=False)
    data = cluster.model_bytes(model)
    collector = zstore.Collector(dims, coords, len(sets), attrs={'model': type(model).__name__, 'dt': dt})
    if store is not None:
        collector = zstore.StoreCollector(os.fspath(store), collector,
                                          _fingerprint(model, stimulus, sets, dt, outputs, reduce))
    todo = [(index, values) for index, values in sets if not collector.done(index)]
    bar = cluster.progress_bar(progress, len(sets), len(sets) - len(todo), 'sweep')
    if todo:
        with cluster.open_client(client) as (c, threads):
            data_f = c.scatter(data, broadcast=True, hash=False)
            stim_f = c.scatter(stimulus, broadcast=True, hash=False)
            token, model_token = uuid.uuid4().hex[:12], cluster.model_token(data)
            subs = [('%s-%d' % (token, i), _task,
                     (data_f, model_token, stim_f, values, dt, outputs, reduce, device, threads))
                    for i, (index, values) in enumerate(todo)]
            by_key = {'%s-%d' % (token, i): index for i, (index, _) in enumerate(todo)}
            cluster.run_tasks(c, subs, lambda key, result: collector.add(by_key[key], result), bar=bar)
    elif bar is not None:
        bar.close()
    return collector.dataset()
