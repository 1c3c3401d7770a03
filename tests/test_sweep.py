"""convis.sweep on a real distributed.LocalCluster: equal to sequential runs, survives a killed worker,
resumes from its zarr store, refuses bad names before any task; models pickle with a fresh lock.

The comparisons bit for bit run the tasks on the CPU (``device='cpu'``): a worker with a GPU would
otherwise take it, and GPU arithmetic differs from the CPU's in the last bits."""
import copy
import os
import pickle
import signal
import threading

import numpy as np
import pytest
import torch

import convis
from convis.locking import ModelLock

import distributed

GRID = {'opl.sigma_center': [0.05, 0.2], 'bipolar.lambda_amp': [50.0, 100.0]}


@pytest.fixture(scope='module')
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            distributed.Client(cl) as c:
        yield c


@pytest.fixture
def stim():
    return convis.samples.moving_grating(120, 12, 12)


def sequential(model, stim, values, dt):
    """What the user would write: a copy of the model, the parameters set, one run."""
    m = copy.deepcopy(model)
    m.set_parameters(values)
    return m.run(stim, dt=dt, progress=False)


def convis_tasks(task_stream):
    return [t for t in task_stream.data if str(t['key']).startswith('convis-')]


def test_a_retina_pickles_and_deepcopies_with_a_fresh_lock_even_while_locked():
    retina = convis.retina.Retina(seed=2)
    stim = convis.samples.moving_grating(50, 8, 8)
    held = threading.Event()
    release = threading.Event()

    def hold():
        with retina.lock:
            held.set()
            release.wait(10)
    t = threading.Thread(target=hold)
    t.start()
    held.wait(10)
    try:
        copies = [pickle.loads(pickle.dumps(retina)), copy.deepcopy(retina)]
    finally:
        release.set()
        t.join()
    expected = retina.run(stim, dt=25, progress=False)
    for c in copies:
        assert isinstance(c.lock, ModelLock) and c.lock is not retina.lock
        assert c.opl.lock is c.lock and c.gang_0_spikes.lock is c.lock
        assert c.lock.acquire(blocking=False)  # fresh: not held by the thread that held the original's
        c.lock.release()
        o = c.run(stim, dt=25, progress=False)
        for a, b in zip(o, expected):
            assert torch.equal(a, b)


def test_sweep_grid_equals_sequential_runs_bit_for_bit_seeded_spikes_included(client, stim):
    retina = convis.retina.Retina(seed=5)
    before = retina.get_parameters()
    ds = convis.sweep(retina, stim, GRID, dt=50, client=client, device='cpu')
    assert ds['ganglion_spikes_ON'].dims == ('opl.sigma_center', 'bipolar.lambda_amp', 'time', 'y', 'x')
    assert ds['opl.sigma_center'].attrs['units'] == 'deg'
    assert ds['bipolar.lambda_amp'].attrs['units'] == 'Hz'
    assert ds['time'].attrs['units'] == 's' and float(ds['time'][1]) == pytest.approx(1.0 / retina.resolution.steps_per_second)
    total_spikes = 0
    for s in GRID['opl.sigma_center']:
        for lam in GRID['bipolar.lambda_amp']:
            o = sequential(retina, stim, {'opl.sigma_center': s, 'bipolar.lambda_amp': lam}, dt=50)
            for key in o.keys:
                got = ds[key].sel({'opl.sigma_center': s, 'bipolar.lambda_amp': lam}).values
                np.testing.assert_array_equal(got, o[key][0, 0].numpy())
            total_spikes += float(o[0].sum())
    assert total_spikes > 0
    after = retina.get_parameters()
    assert all(np.array_equal(before[k], after[k]) for k in before)  # the model is never changed


def test_labelled_sets_and_reduce_give_one_variable_per_entry(client, stim):
    retina = convis.retina.Retina(seed=1)
    sets = {'A': {'bipolar.lambda_amp': 0.0}, 'B': {'bipolar.lambda_amp': 100.0, 'opl.sigma_center': 0.1}}

    def rates(o):
        return {'rate_on': o.ganglion_spikes_ON.float().mean((0, 1, 3, 4)), 'total_off': o.ganglion_spikes_OFF.sum()}
    ds = convis.sweep(retina, stim, sets, reduce=rates, dt=60, client=client, device='cpu')
    assert list(ds['set'].values) == ['A', 'B']
    assert ds['rate_on'].dims == ('set', 'rate_on_dim_0') and ds['total_off'].dims == ('set',)
    assert list(ds['bipolar.lambda_amp'].values) == [0.0, 100.0]
    # a set that does not name a parameter keeps the model's value
    assert float(ds['opl.sigma_center'].sel(set='A')) == pytest.approx(float(retina.opl.sigma_center))
    for label, values in sets.items():
        o = sequential(retina, stim, values, dt=60)
        np.testing.assert_array_equal(ds['rate_on'].sel(set=label).values, rates(o)['rate_on'].numpy())


def test_a_bad_parameter_name_fails_before_any_task_naming_the_closest(client, stim, monkeypatch):
    retina = convis.retina.Retina()

    def no_tasks(*args, **kwargs):
        raise AssertionError('a task was submitted')
    monkeypatch.setattr(client, 'submit', no_tasks)
    monkeypatch.setattr(client, 'scatter', no_tasks)
    with pytest.raises(KeyError, match='opl.sigma_center'):
        convis.sweep(retina, stim, {'opl.sigma_centre': [0.1, 0.2]}, client=client)
    with pytest.raises(KeyError, match='bipolar.lambda_amp'):
        convis.sweep(retina, stim, [{'bipolar.lambda_ampp': 1.0}], client=client)
    with pytest.raises(ValueError, match='refused'):  # a value out of the parameter's bounds
        convis.sweep(retina, stim, {'opl.sigma_center': [0.1, -1.0]}, client=client)
    with pytest.raises(TypeError, match='distributed.Client'):
        convis.sweep(retina, stim, GRID, client='tcp://localhost:1')


def test_a_worker_killed_in_the_middle_leaves_the_sweep_complete_and_correct(client, stim):
    retina = convis.retina.Retina(seed=9)
    grid = {'opl.sigma_center': [0.05, 0.1, 0.15, 0.2], 'bipolar.lambda_amp': [50.0, 100.0]}
    pids = client.run(os.getpid)
    killed = []

    def kill_a_busy_worker(done, total):
        if done == 1 and not killed:
            busy = [addr for addr, tasks in client.processing().items() if tasks]
            addr = busy[0] if busy else sorted(pids)[0]
            os.kill(pids[addr], signal.SIGKILL)
            killed.append(addr)
    ds = convis.sweep(retina, stim, grid, dt=40, client=client, progress=kill_a_busy_worker, device='cpu')
    assert killed
    for s in grid['opl.sigma_center']:
        for lam in grid['bipolar.lambda_amp']:
            o = sequential(retina, stim, {'opl.sigma_center': s, 'bipolar.lambda_amp': lam}, dt=40)
            got = ds['ganglion_spikes_ON'].sel({'opl.sigma_center': s, 'bipolar.lambda_amp': lam}).values
            np.testing.assert_array_equal(got, o[0][0, 0].numpy())
    client.wait_for_workers(2, timeout=60)


class Interrupted(Exception):
    pass


def test_a_restarted_sweep_with_a_store_recomputes_nothing_finished(client, stim, tmp_path):
    retina = convis.retina.Retina(seed=4)
    store = str(tmp_path / 'sweep.zarr')
    grid = {'opl.sigma_center': [0.05, 0.1, 0.15], 'bipolar.lambda_amp': [50.0, 100.0]}

    def interrupt(done, total):
        if done == 2:
            raise Interrupted()
    with pytest.raises(Interrupted):
        convis.sweep(retina, stim, grid, dt=60, client=client, store=store, progress=interrupt)
    started = []
    with distributed.get_task_stream(client) as ts:
        ds = convis.sweep(retina, stim, grid, dt=60, client=client, store=store,
                          progress=lambda done, total: started.append(done) if not started else None)
    finished_before = started[0]
    assert finished_before >= 2
    assert len(convis_tasks(ts)) == 6 - finished_before
    expected = convis.sweep(retina, stim, grid, dt=60, client=client)
    for k in expected.data_vars:
        np.testing.assert_array_equal(ds[k].values, expected[k].values)
    # complete: a third run computes nothing at all
    with distributed.get_task_stream(client) as ts:
        again = convis.sweep(retina, stim, grid, dt=60, client=client, store=store)
    assert convis_tasks(ts) == []
    np.testing.assert_array_equal(again['ganglion_spikes_OFF'].values, expected['ganglion_spikes_OFF'].values)
    # another sweep never resumes this store
    with pytest.raises(ValueError, match='another sweep'):
        convis.sweep(retina, stim, {'opl.sigma_center': [0.3]}, dt=60, client=client, store=store)


def test_parameter_sets_lists_a_grid_without_running(stim):
    retina = convis.retina.Retina()
    dims, coords, sets = convis.scale.parameter_sets(retina, GRID)
    assert dims == ('opl.sigma_center', 'bipolar.lambda_amp')
    assert len(sets) == 4 and sets[1] == ((0, 1), {'opl.sigma_center': 0.05, 'bipolar.lambda_amp': 100.0})
    assert coords['opl.sigma_center'][2]['units'] == 'deg'


def _refaulted_pages(nbytes=2 << 20):
    """Page faults of touching ``nbytes`` freshly allocated a second time, after the same block was freed
    (0: the memory was reused; ``nbytes / 4096``: it went back to the system and was faulted in again)."""
    import resource

    def touch():
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        a = np.ones(nbytes // 8)
        del a
        return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before
    touch()
    return touch()


def test_a_worker_that_ran_a_sweep_task_reuses_freed_memory_instead_of_faulting_it_back_in(client, stim):
    # Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536: freed blocks go back to the system
    # and every task faulted its maps back in page by page (113,000 faults, +70 % CPU on 64x64x2000)
    retina = convis.retina.Retina(seed=3)
    with distributed.get_task_stream(client) as ts:
        convis.sweep(retina, stim[:20], {'opl.sigma_center': [0.05, 0.1, 0.15, 0.2]}, dt=20, client=client,
                     device='cpu', progress=False)
    ran = sorted({t['worker'] for t in convis_tasks(ts)})
    assert ran
    pages = (2 << 20) // 4096
    for worker, faults in client.run(_refaulted_pages, workers=ran).items():
        assert faults < pages // 8, (worker, faults, pages)


def test_tasks_start_from_the_model_sent_each_worker_unpickling_it_once(client, stim):
    retina = convis.retina.Retina(seed=6)
    grid = {'opl.sigma_center': [0.05, 0.1, 0.15], 'bipolar.lambda_amp': [50.0, 100.0]}
    first = convis.sweep(retina, stim, grid, dt=60, client=client, device='cpu', progress=False)
    again = convis.sweep(retina, stim, grid, dt=60, client=client, device='cpu', progress=False)
    for k in first.data_vars:  # a task that changed the cached model (its state) would change the next sweep
        np.testing.assert_array_equal(again[k].values, first[k].values)
    o = sequential(retina, stim, {'opl.sigma_center': 0.15, 'bipolar.lambda_amp': 100.0}, dt=60)
    np.testing.assert_array_equal(again['ganglion_spikes_OFF'].sel({'opl.sigma_center': 0.15,
                                                                   'bipolar.lambda_amp': 100.0}).values,
                                  o['ganglion_spikes_OFF'][0, 0].numpy())
    token = convis.scale.cluster.model_token(convis.scale.cluster.model_bytes(retina))

    def cached():
        from convis.scale import cluster
        return [key for key in cluster._PROCESS['models'] if key[0] == token]
    assert all(len(keys) <= 1 for keys in client.run(cached).values())
    assert any(client.run(cached).values())


def test_the_attrs_of_a_reduce_dataarray_are_kept_in_memory_and_in_a_store(client, stim, tmp_path):
    """A reduce that returns an xarray.DataArray with units keeps them in the sweep's Dataset, with a store too."""
    import xarray as xr
    retina = convis.retina.Retina(seed=2)

    def rate(o):
        r = o.ganglion_spikes_ON.float().mean((0, 1, 3, 4)).numpy() * retina.resolution.steps_per_second
        return {'rate': xr.DataArray(r, dims=('time',), attrs={'units': 'Hz', 'long_name': 'mean ON rate'})}
    grid = {'opl.sigma_center': [0.05, 0.1]}
    for store in (None, str(tmp_path / 'rates.zarr')):
        ds = convis.sweep(retina, stim, grid, reduce=rate, dt=60, client=client, store=store, device='cpu')
        assert ds['rate'].attrs['units'] == 'Hz' and ds['rate'].attrs['long_name'] == 'mean ON rate', store
        assert ds['rate'].dims == ('opl.sigma_center', 'time')
    reopened = xr.open_zarr(str(tmp_path / 'rates.zarr'), consolidated=False)
    assert reopened['rate'].attrs['units'] == 'Hz'
