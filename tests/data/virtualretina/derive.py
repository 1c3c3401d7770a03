"""Writes the trimmed test copies of the VirtualRetina 2.2.3 reference runs (see README.md beside this file).

Usage: ``python tests/data/virtualretina/derive.py SOURCE_FOLDER`` where ``SOURCE_FOLDER`` holds the full
reference files ``<stimulus>__<config>.npz``; the trimmed files are written beside this script.

What each output file keeps, and how the tests read it back, is in README.md; the encoding of the float32
maps is undone by ``helpers.virtualretina_reference``.
"""
import glob
import hashlib
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CROP_STEP = 2
"""The cropped maps are kept at every ``CROP_STEP``-th step (0, 2, ..., 198)."""
KEPT = ('vr_version', 'config_file', 'command', 'stimulus_name', 'dt', 'pixels_per_degree', 'n_steps', 'map_shape',
        'map_offset_yx', 'center_pixel_yx', 'stages', 'center_stages', 'crop_yx', 'ganglion_crop_yx',
        'snapshot_steps', 'cell_id', 'cell_layer', 'cell_x_deg', 'cell_y_deg', 'n_cells_per_layer', 'n_trials',
        'trial_spike_trial', 'trial_spike_time_s')


def byte_planes(a):
    """A float32 array as its four little-endian byte planes, uint8 of shape ``(4,) + a.shape`` (compresses
    better than the interleaved bytes; the values are unchanged)."""
    a = np.ascontiguousarray(a, dtype='<f4')
    return np.ascontiguousarray(np.moveaxis(a.view(np.uint8).reshape(a.shape + (4,)), -1, 0))


def derive(source, target):
    with np.load(source) as d:
        out = {k: d[k] for k in KEPT if k in d.files}
        out['stimulus_sha256'] = np.array(hashlib.sha256(np.ascontiguousarray(d['stimulus'], '<f4')).hexdigest())
        for stage in d['stages']:
            stage = str(stage)
            out[stage + '_snapshots__planes'] = byte_planes(d[stage + '_snapshots'])
            out[stage + '__planes'] = byte_planes(d[stage][::CROP_STEP])
        out['crop_steps'] = np.arange(0, int(d['n_steps']), CROP_STEP, dtype=np.int32)
        for stage in d['center_stages']:
            out[str(stage) + '_center'] = d[str(stage) + '_center']
        if 'primate' in str(d['config_file']):
            layer_of_spike = d['cell_layer'][d['spike_cell']]
            out['n_spikes_per_layer'] = np.bincount(layer_of_spike, minlength=len(d['n_cells_per_layer']))
        elif 'noiseless' in str(d['config_file']):
            out['spike_cell'], out['spike_time_s'] = d['spike_cell'], d['spike_time_s']
    np.savez_compressed(target, **out)


if __name__ == '__main__':
    for path in sorted(glob.glob(os.path.join(sys.argv[1], '*__*.npz'))):
        derive(path, os.path.join(HERE, os.path.basename(path)))
