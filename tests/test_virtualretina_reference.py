"""The retina against every VirtualRetina 2.2.3 reference run, stage by stage and spike by spike.

Tolerances follow VirtualRetina's measured precision (``tests/data/virtualretina/README.md``): errors are
max |difference| over the stage's max |value|.  The float64 ``*_center`` traces have full precision (every step);
the stored maps are float32 (which alone adds up to 6e-8): full-map snapshots at 9 steps and a central crop at
every second step.
"""
import functools
import glob
import os

import numpy as np
import pytest
import torch

import convis
from helpers import reference_path, virtualretina_reference

NAMES = sorted(os.path.basename(p)[:-4] for p in glob.glob(reference_path('virtualretina', '*.npz')))
STORED_MAPS_TOL = 2e-7          # float32 storage of the maps (6e-8) plus our own rounding


def test_every_reference_file_is_covered():
    assert len(NAMES) == 10


@functools.lru_cache(maxsize=None)
def load(name):
    return virtualretina_reference(name)


def make_retina(d, dtype):
    r = convis.retina.Retina(seed=1)
    if dtype == torch.float64:
        r.double()
    r.parse_config(reference_path('virtualretina', 'configs', str(d['config_file'])))
    if 'primate' in str(d['config_file']):
        start = np.concatenate([[0], np.cumsum(d['n_cells_per_layer'])])
        for k in range(len(d['n_cells_per_layer'])):
            sl = slice(start[k], start[k + 1])
            getattr(r, 'gang_%d_spikes' % k).set_cells(np.stack([d['cell_x_deg'][sl], d['cell_y_deg'][sl]], 1))
    return r


FAST_STAGES = ('opl', 'bipolar', 'ganglion_0', 'ganglion_1', 'ganglion_2', 'ganglion_3')
"""Stages that can be recorded while the compiled whole-stage loops run (the inner maps need the stage by stage path)."""


@functools.lru_cache(maxsize=None)
def simulate(name, dtype, inner_maps=True):
    """Runs the reference configuration on the reference stimulus (map crop as VirtualRetina), recording all
    stages (``inner_maps``) or only those the compiled stage loops give (:data:`FAST_STAGES`)."""
    d = load(name)
    r = make_retina(d, dtype)
    r.record = tuple(str(s) for s in d['center_stages'] if inner_maps or str(s) in FAST_STAGES)
    for k, _ in r._ganglia:
        getattr(r, 'gang_%d_spikes' % k).record_spike_times = True
    (y0, x0), (h, w) = d['map_offset_yx'], d['map_shape']
    stim = d['stimulus'][:, y0:y0 + h, x0:x0 + w].astype(np.float64)
    o = r.run(stim, dt=64)
    maps = {s: o[s][0, 0].double().numpy() for s in r.record}
    spikes = [r.get_spike_times(k) for k, _ in r._ganglia]
    return maps, spikes, [o[k] for k in range(len(r._ganglia))]


def center_error(name, dtype, stage, inner_maps=True):
    d = load(name)
    maps, _, _ = simulate(name, dtype, inner_maps)
    cy, cx = d['center_pixel_yx']
    ref = d[stage + '_center']
    return np.abs(maps[stage][:, cy, cx] - ref).max() / np.abs(ref).max()


def map_errors(name, dtype, stage):
    """Errors on the stored crop (at the steps ``crop_steps``) and on the full-map snapshots."""
    d = load(name)
    maps, _, _ = simulate(name, dtype)
    y0, y1, x0, x1 = d['ganglion_crop_yx'] if stage.startswith('ganglion') else d['crop_yx']
    crop = d[stage]
    e_crop = np.abs(maps[stage][d['crop_steps'], y0:y1, x0:x1] - crop).max() / np.abs(crop).max()
    snap = d[stage + '_snapshots']
    e_snap = np.abs(maps[stage][d['snapshot_steps']] - snap).max() / np.abs(snap).max()
    return e_crop, e_snap


def center_cases():
    for name in NAMES:
        for stage in load(name)['center_stages']:
            yield name, str(stage)


@pytest.mark.parametrize('name,stage', list(center_cases()))
def test_center_traces_float64(name, stage):
    assert center_error(name, torch.float64, stage) <= 1e-9


@pytest.mark.parametrize('name,stage', list(center_cases()))
def test_center_traces_float32(name, stage):
    tol = 1e-3 if 'linear_cgc' in name else 2e-5
    assert center_error(name, torch.float32, stage) <= tol


@pytest.mark.parametrize('name,stage', [c for c in center_cases() if c[1] in FAST_STAGES])
def test_center_traces_of_the_compiled_stage_loops(name, stage):
    """Without inner maps recorded, the OPL, the gain control and the ganglion inputs run as compiled loops
    (on the CPU): the same agreement with VirtualRetina."""
    assert center_error(name, torch.float64, stage, inner_maps=False) <= 1e-9
    tol = 1e-3 if 'linear_cgc' in name else 2e-5
    assert center_error(name, torch.float32, stage, inner_maps=False) <= tol


def map_cases():
    for name in NAMES:
        for stage in load(name)['stages']:
            yield name, str(stage)


@pytest.mark.parametrize('name,stage', list(map_cases()))
def test_stored_maps(name, stage):
    e_crop, e_snap = map_errors(name, torch.float64, stage)
    assert e_crop <= STORED_MAPS_TOL and e_snap <= STORED_MAPS_TOL
    tol = 1e-3 if 'linear_cgc' in name else 2e-5
    e_crop32, e_snap32 = map_errors(name, torch.float32, stage)
    assert e_crop32 <= tol and e_snap32 <= tol


@pytest.mark.parametrize('stimulus', ['grating', 'flash'])
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('inner_maps', [True, False])
def test_noiseless_square_array_spikes_are_identical(stimulus, dtype, inner_maps):
    name = stimulus + '__cat_square_noiseless'
    d = load(name)
    _, spikes, outs = simulate(name, dtype, inner_maps)
    _, _, cell, t = spikes[0]
    n = len(d['cell_id'])
    assert outs[0].shape == (1, 1, 200, 15, 15)
    assert np.array_equal(np.bincount(cell, minlength=n), np.bincount(d['spike_cell'], minlength=n))
    worst = 0.0
    for i in range(n):
        ours = np.sort(t[cell == i])
        ref = np.sort(d['spike_time_s'][d['spike_cell'] == i].astype(np.float64))
        if len(ref):
            worst = max(worst, np.abs(ours - ref).max())
    assert worst <= 1e-6
    # the grid output holds the same counts: grid [iy, ix] is cell ix * ny + iy
    grid_counts = outs[0][0, 0].sum(0).numpy()
    per_cell = np.bincount(d['spike_cell'], minlength=n).reshape(15, 15).T
    assert np.array_equal(grid_counts, per_cell)


@pytest.mark.parametrize('stimulus,expected', [('grating', 48.2), ('flash', 44.0)])
def test_noisy_single_cat_cell_statistics(stimulus, expected):
    """The mean spike count over 40 noisy trials is within 3 standard errors of VirtualRetina's 32 runs."""
    d = load(stimulus + '__cat')
    r = convis.retina.Retina(seed=2, spikes=False)
    r.parse_config(reference_path('virtualretina', 'configs', 'EXAMPLE_cat_X_cell.xml'))
    (y0, x0), (h, w) = d['map_offset_yx'], d['map_shape']
    rates = r.run(d['stimulus'][:, y0:y0 + h, x0:x0 + w], dt=100)[0]
    spk = r.gang_0_spikes
    assert spk.cells['kind'] == 'circular'
    spk.clear_state()
    trials = 40
    counts = spk.run(rates.repeat(trials, 1, 1, 1, 1), dt=100)[0]
    assert counts.shape == (trials, 1, 200, 1, 1)
    per_trial = counts.sum(dim=(1, 2, 3, 4)).numpy()
    ref_trials = np.bincount(d['trial_spike_trial'], minlength=int(d['n_trials']))
    se = max(ref_trials.std(), 1.0) / np.sqrt(trials)
    assert abs(per_trial.mean() - expected) <= 3 * se
    assert abs(ref_trials.mean() - expected) <= 0.5
    # the 10 ms PSTH follows VirtualRetina's
    bins = np.arange(0, 1.0001, 0.01)
    ref_psth = np.histogram(d['trial_spike_time_s'], bins)[0] / float(d['n_trials'])
    ours = counts[:, 0, :, 0, 0].numpy().reshape(trials, 100, 2).sum(2).mean(0)
    assert np.corrcoef(ours, ref_psth)[0, 1] > 0.8
    assert np.abs(ours - ref_psth).mean() < 0.1


@pytest.mark.parametrize('stimulus', ['grating', 'flash'])
def test_primate_per_layer_rates(stimulus):
    """Four layers on circular arrays (stored positions), random initial potentials: rates within 0.2 %."""
    name = stimulus + '__primate'
    d = load(name)
    _, spikes, outs = simulate(name, torch.float64)
    for k in range(4):
        ours = float(outs[k].sum())
        ref = float(d['n_spikes_per_layer'][k])
        assert outs[k].shape == (1, 1, 200, 1, d['n_cells_per_layer'][k])
        assert abs(ours - ref) <= 0.002 * ref
