"""convis.run_files on a real distributed.LocalCluster: one task per file, streamed chunk by chunk into
zarr, equal to sequential runs, reruns skip finished files, a corrupt file is reported and stops nothing."""
import copy
import os

import imageio
import numpy as np
import pytest

import convis

import distributed
import zarr


@pytest.fixture(scope='module')
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            distributed.Client(cl) as c:
        yield c


@pytest.fixture
def videos(tmp_path):
    """Two short videos of different lengths, a clip as .npy, and a corrupt .mp4."""
    folder = tmp_path / 'videos'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (('a.mp4', 70), ('b.mp4', 45)):
        frames = (rng.random((n, 16, 16)) * 255).astype(np.uint8)
        imageio.mimwrite(str(folder / name), [np.repeat(f[:, :, None], 3, axis=2) for f in frames], fps=25,
                         macro_block_size=1)
    np.save(str(folder / 'c.npy'), (rng.random((30, 16, 16)) * 255).astype(np.float32))
    (folder / 'd.mp4').write_bytes(b'\x00\x00\x00\x18ftypmp42' + bytes(rng.integers(0, 256, 2000, dtype=np.uint8)))
    return folder


def sequential(model, path, dt):
    """The user's own loop: a copy of the model run over the whole file."""
    m = copy.deepcopy(model)
    with convis.streams.open_input(path) as stream:
        frames = stream.get(len(stream))
    return m.run(frames, dt=dt, progress=False)


def convis_tasks(task_stream):
    return [t for t in task_stream.data if str(t['key']).startswith('convis-')]


def test_run_files_streams_each_file_into_the_store_and_reports_a_corrupt_one(client, videos, tmp_path):
    retina = convis.retina.Retina(seed=3)
    store = str(tmp_path / 'out.zarr')
    pattern = str(videos / '*')
    with distributed.get_task_stream(client) as ts:
        ds = convis.run_files(retina, pattern, store=store, dt=20, client=client, device='cpu')
    assert len(convis_tasks(ts)) == 4  # one task per file
    files = [str(videos / n) for n in ('a.mp4', 'b.mp4', 'c.npy', 'd.mp4')]
    assert list(ds['file'].values) == files
    assert list(ds['frames'].values[:3]) == [70, 45, 30] and ds['frames'].values[3] == -1
    assert list(ds['error'].values[:3]) == ['', '', '']
    assert 'd.mp4' in ds['error'].values[3] and 'ValueError' in ds['error'].values[3]
    assert ds['ganglion_spikes_ON'].dims == ('file', 'time', 'y', 'x')
    assert ds.sizes['time'] == 70 and ds['time'].attrs['units'] == 's'
    spikes = 0
    for path in files[:3]:
        o = sequential(retina, path, dt=20)
        for key in o.keys:
            got = ds[key].sel(file=path).values
            n = o[key].shape[2]
            np.testing.assert_array_equal(got[:n], o[key][0, 0].numpy())
            assert np.isnan(got[n:]).all()  # shorter files padded
        spikes += float(o[0].sum())
    assert spikes > 0
    assert np.isnan(ds['ganglion_spikes_ON'].sel(file=files[3]).values).all()
    # streamed: the store grew chunk by chunk (dt frames a chunk), never one whole-file write
    key = [k for k in zarr.open_group(store, path='files', mode='r').group_keys() if k.startswith('a.mp4')][0]
    arr = zarr.open_group(store, path='files/' + key, mode='r')['ganglion_spikes_ON']
    assert arr.shape == (70, 16, 16) and arr.chunks[0] == 20


def test_a_rerun_skips_finished_files_and_retries_failed_and_changed_ones(client, videos, tmp_path):
    retina = convis.retina.Retina(seed=3)
    store = str(tmp_path / 'out.zarr')
    files = [str(videos / n) for n in ('a.mp4', 'c.npy', 'd.mp4')]
    first = convis.run_files(retina, files, store=store, dt=25, client=client)
    with distributed.get_task_stream(client) as ts:
        again = convis.run_files(retina, files, store=store, dt=25, client=client)
    assert len(convis_tasks(ts)) == 1  # only the corrupt file is tried again
    assert again['error'].values[2] == first['error'].values[2] != ''
    np.testing.assert_array_equal(again['ganglion_spikes_OFF'].values, first['ganglion_spikes_OFF'].values)
    # a file that changed since (size, modification time) runs again
    np.save(files[1], np.full((12, 16, 16), 200.0, dtype=np.float32))
    with distributed.get_task_stream(client) as ts:
        third = convis.run_files(retina, files[:2], store=store, dt=25, client=client)
    assert len(convis_tasks(ts)) == 1
    assert int(third['frames'].sel(file=files[1])) == 12


def test_run_files_refuses_bad_arguments_before_any_task(client, tmp_path):
    retina = convis.retina.Retina()
    with pytest.raises(FileNotFoundError, match='no file matches'):
        convis.run_files(retina, str(tmp_path / 'none' / '*.mp4'), store=str(tmp_path / 's.zarr'), client=client)
    with pytest.raises(TypeError, match='zarr store'):
        convis.run_files(retina, [str(tmp_path / 'x.npy')], store=None, client=client)
    with pytest.raises(TypeError, match='convis.Layer'):
        convis.run_files(object(), [str(tmp_path / 'x.npy')], store=str(tmp_path / 's.zarr'), client=client)
    assert not os.path.exists(str(tmp_path / 's.zarr'))
