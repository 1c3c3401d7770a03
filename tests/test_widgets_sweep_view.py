"""SweepView (convis_widgets/sweep_view.py): small multiples of a sweep's Dataset, shared scales, titles, errors.

The Datasets are the ones convis.sweep returns, built here in this process from convis.scale.run_one and the
sweep's Collector (tests/test_sweep.py shows a sweep on Dask equals these runs bit for bit)."""
import numpy as np
import pytest
import torch

import convis
from convis.scale import parameter_sets, run_one
from convis.scale.store import Collector
from convis_widgets import SweepView, TensorView
from convis_widgets.frames import quantise
from helpers import low_pass

import xarray as xr
import bqplot


class Gain(convis.Layer):
    """``gain * low_pass(x) + offset``: a continuous output that every parameter changes."""

    def __init__(self):
        super().__init__()
        self.gain = convis.Parameter(1.0, doc='gain', unit='', bounds=(-10, 10))
        self.tau = convis.Parameter(0.01, doc='time constant', unit='s', bounds=(0, None))
        self.offset = convis.Parameter(0.0, doc='offset', unit='Hz', bounds=(-100, 100))
        self.register_state('y', None)

    def forward(self, x):
        return self.gain * low_pass(self, x) + self.offset


def local_sweep(model, stim, parameters, reduce=None):
    """What convis.sweep returns, computed set by set in this process."""
    dims, coords, sets = parameter_sets(model, parameters)
    c = Collector(dims, coords, len(sets))
    for index, values in sets:
        c.add(index, run_one(model, stim, values, dt=20, reduce=reduce))
    return c.dataset()


@pytest.fixture(scope='module')
def stim():
    rng = np.random.RandomState(0)
    return rng.rand(20, 6, 5).astype(np.float32)


@pytest.fixture(scope='module')
def grid(stim):
    return local_sweep(Gain(), stim, {'gain': [0.5, 1.0, 3.0], 'offset': [-2.0, 5.0]})


def test_a_two_parameter_grid_lays_out_rows_by_cols_with_one_colour_scale_for_all_panels(grid):
    v = SweepView(grid, var='output', rows='gain', cols='offset')
    assert v.kind == 'frames' and (v.rows, v.cols) == ('gain', 'offset')
    assert [len(r) for r in v.panels] == [2, 2, 2]
    assert v.grid.layout.grid_template_columns == 'repeat(2, max-content)'
    values = grid['output'].values
    assert (v.vmin, v.vmax) == (float(values.min()), float(values.max()))
    for i, g in enumerate([0.5, 1.0, 3.0]):
        for j, o in enumerate([-2.0, 5.0]):
            panel = v.panels[i][j]
            assert isinstance(panel, TensorView)
            assert (panel.vmin, panel.vmax) == (v.vmin, v.vmax)
            cell = grid['output'].sel(gain=g, offset=o).values          # (time, y, x)
            assert np.array_equal(panel.frames(), quantise(cell, v.vmin, v.vmax))
    # the panel of the largest values reaches the top colour, the smallest the bottom one
    assert v.panels[2][1].frames().max() == 255 and v.panels[2][0].frames().min() == 0
    v.close()


def test_titles_carry_each_panels_parameter_values_with_units(grid):
    v = SweepView(grid, var='output', rows='offset', cols='gain')
    assert v.titles == [['offset = -2 Hz, gain = 0.5', 'offset = -2 Hz, gain = 1', 'offset = -2 Hz, gain = 3'],
                        ['offset = 5 Hz, gain = 0.5', 'offset = 5 Hz, gain = 1', 'offset = 5 Hz, gain = 3']]
    assert [[p.title for p in row] for row in v.panels] == v.titles
    assert 'colour scale: output from' in v.header.value
    v.close()


def test_a_one_parameter_sweep_lays_out_in_a_row(stim):
    ds = local_sweep(Gain(), stim, {'tau': [0.005, 0.01, 0.02, 0.04]})
    v = SweepView(ds)                    # the only variable, the only swept dimension
    assert (v.rows, v.cols) == (None, 'tau')
    assert len(v.panels) == 1 and len(v.panels[0]) == 4
    assert v.titles[0] == ['tau = 0.005 s', 'tau = 0.01 s', 'tau = 0.02 s', 'tau = 0.04 s']
    assert v.grid.layout.grid_template_columns == 'repeat(4, max-content)'
    v.close()


def test_curves_share_one_value_scale_and_label_their_axes_with_units(grid):
    rates = grid.mean(('y', 'x'))
    rates['output'].attrs['units'] = 'Hz'
    v = SweepView(rates, var='output', rows='gain', cols='offset')
    assert v.kind == 'curves' and v.x == 'time'
    figures = [f for row in v.panels for f in row]
    assert len(figures) == 6 and all(isinstance(f, bqplot.Figure) for f in figures)
    values = rates['output'].values
    assert (v.y_scale.min, v.y_scale.max) == (float(values.min()), float(values.max()))
    for f in figures:
        assert f.axes[1].scale is v.y_scale and f.marks[0].scales['y'] is v.y_scale
        assert [a.label for a in f.axes] == ['time (s)', 'output (Hz)']
    line = v.panels[2][0].marks[0]
    assert np.array_equal(line.x, rates['time'].values)
    assert np.allclose(line.y, rates['output'].sel(gain=3.0, offset=-2.0).values)
    assert v.titles[2][0] == 'gain = 3, offset = -2 Hz' and 'gain = 3, offset = -2 Hz</div>' in v.labels[2][0].value
    v.close()


def test_a_second_dimension_left_gives_one_line_per_value_with_a_legend(grid):
    ds = grid.mean('x')                                   # time, y left
    v = SweepView(ds, var='output', rows='gain', cols='offset', x='time')
    marks = v.panels[0][0].marks
    assert len(marks) == grid.sizes['y'] and all(m.display_legend for m in marks)
    assert [m.labels for m in marks[:2]] == [['y = 0 deg'], ['y = %.4g deg' % grid['y'].values[1]]]
    v.close()


def test_labelled_sets_title_with_their_label_and_parameters(stim):
    ds = local_sweep(Gain(), stim, {'A': {'gain': 1.0}, 'B': {'gain': 2.0, 'offset': 1.0}})
    v = SweepView(ds, var='output')
    assert v.cols == 'set'
    assert v.titles == [['A (gain = 1, offset = 0 Hz)', 'B (gain = 2, offset = 1 Hz)']]
    v.close()


def test_a_three_parameter_sweep_needs_sel_and_sel_fixes_the_others(stim):
    ds = local_sweep(Gain(), stim, {'gain': [1.0, 2.0], 'offset': [0.0, 1.0], 'tau': [0.01, 0.02]})
    with pytest.raises(ValueError, match=r'swept over 3 dimensions.*sel='):
        SweepView(ds, var='output')
    with pytest.raises(ValueError, match=r"\['tau'\] are neither rows nor cols.*sel="):
        SweepView(ds, var='output', rows='gain', cols='offset')
    v = SweepView(ds, var='output', rows='gain', cols='offset', sel={'tau': 0.02})
    assert [len(r) for r in v.panels] == [2, 2]
    values = ds['output'].sel(tau=0.02).values
    assert (v.vmin, v.vmax) == (float(values.min()), float(values.max()))
    assert np.array_equal(v.panels[1][0].frames(), quantise(ds['output'].sel(gain=2.0, offset=0.0, tau=0.02).values,
                                                            v.vmin, v.vmax))
    assert 'tau = 0.02 s' in v.header.value
    v.close()
    v = SweepView(ds, var='output', sel={'tau': 0.01, 'gain': 2.0})
    assert (v.rows, v.cols) == (None, 'offset') and v.titles == [['offset = 0 Hz', 'offset = 1 Hz']]
    v.close()


def test_clear_errors_for_unknown_variables_dimensions_and_values(grid):
    with pytest.raises(KeyError, match=r"no variable 'rate'; its variables are \['output'\]"):
        SweepView(grid, var='rate')
    with pytest.raises(KeyError, match=r"rows='sigma' is not a dimension of 'output'"):
        SweepView(grid, var='output', rows='sigma', cols='gain')
    with pytest.raises(KeyError, match=r"sel names 'tau', which is not a dimension"):
        SweepView(grid, var='output', sel={'tau': 0.01})
    with pytest.raises(KeyError, match=r"cols='gain' is not a dimension of 'output' \(it is fixed by sel\)"):
        SweepView(grid, var='output', cols='gain', sel={'gain': 1.0})
    with pytest.raises(ValueError, match='rows and cols are both'):
        SweepView(grid, var='output', rows='gain', cols='gain')
    with pytest.raises(ValueError, match='frames need the dimensions time, y, x'):
        SweepView(grid.mean('x'), var='output', kind='frames')
    with pytest.raises(ValueError, match='colormap must be one of'):
        SweepView(grid, var='output', colormap='jet')
    with pytest.raises(KeyError, match=r"x='z' is not a dimension left"):
        SweepView(grid.mean(('y', 'x')), var='output', x='z')


def test_a_dataset_of_several_variables_needs_var(stim):
    ds = local_sweep(Gain(), stim, {'gain': [1.0, 2.0]},
                     reduce=lambda o: {'mean': o[0].mean((0, 1, 3, 4)), 'peak': o[0].amax((0, 1, 3, 4))})
    with pytest.raises(ValueError, match=r"give var=, one of \['mean', 'peak'\]"):
        SweepView(ds)
    v = SweepView(ds, var='peak')
    assert v.kind == 'curves' and v.x == 'peak_dim_0' and v.titles == [['gain = 1', 'gain = 2']]
    v.close()
