"""Outputs lose nothing: killed runs, full and read-only disks, existing files, inputs used as outputs.

Full disks are small tmpfs mounts when the tests run as root (they can mount); otherwise the same
script runs under ``RLIMIT_FSIZE`` (writes past the limit fail with EFBIG, as on a full disk).
Read-only disks are tmpfs mounts remounted read-only as root; otherwise a path under a regular
file (ENOTDIR) stands for a folder nothing can be written into.
"""
import contextlib
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import h5py
import numpy as np
import pytest

import convis
from convis.__main__ import main
from convis.streams import HDF5Writer, VideoReader, VideoWriter, open_output

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))


def can_mount():
    return hasattr(os, 'geteuid') and os.geteuid() == 0


@contextlib.contextmanager
def small_disk(folder, kib, read_only=False):
    """``folder`` as a tmpfs of ``kib`` KiB (root), yielding True; without root yields False (no mount)."""
    os.makedirs(folder, exist_ok=True)
    if not can_mount() or subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%dk' % kib, 'tmpfs', folder],
                                         capture_output=True).returncode != 0:
        yield False
        return
    try:
        if read_only:
            remount_read_only(folder)
        yield True
    finally:
        subprocess.run(['umount', '-l', folder], check=True)


def remount_read_only(folder):
    subprocess.run(['mount', '-o', 'remount,ro', folder], check=True)


def run_on_full_disk(tmp_path, script, kib, *args):
    """Runs python ``script`` with ``args`` in a folder that holds ``kib`` KiB; returns (process, folder)."""
    folder = str(tmp_path / 'disk')
    limit = None

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    with small_disk(folder, kib) as mounted:
        if not mounted:
            limit = kib * 1024
        r = subprocess.run([sys.executable, '-c', textwrap.dedent(script)] + [a.replace('DISK', folder) for a in args],
                           capture_output=True, text=True, env=ENV, timeout=300, cwd=str(tmp_path),
                           preexec_fn=None if mounted else limit_file_size)
        files = {}
        for name in os.listdir(folder):
            if name.endswith('.h5'):
                with h5py.File(os.path.join(folder, name), 'r') as f:
                    files[name] = {k: f[k][:] for k in f}
        return r, files


def ramp(n, shape=(12, 10), start=0):
    """Frames whose every pixel holds the frame's index (a chunk lost or corrupted shows)."""
    return (np.arange(start, start + n, dtype=np.float32)[:, None, None] * np.ones(shape, np.float32))


# ------------------------------------------------------------------ 1. output = input
@pytest.mark.parametrize('alias', ['same', 'hard link', 'symbolic link', 'relative'])
def test_the_command_line_refuses_to_write_its_input(tmp_path, capsys, alias):
    x = (255 * np.random.RandomState(0).rand(120, 10, 10)).astype(np.float32)
    inp = str(tmp_path / 'in.npy')
    np.save(inp, x)
    before = open(inp, 'rb').read()
    out = {'same': inp, 'hard link': str(tmp_path / 'hard.npy'), 'symbolic link': str(tmp_path / 'sym.npy'),
           'relative': os.path.join(str(tmp_path), '.', 'sub', '..', 'in.npy')}[alias]
    os.makedirs(str(tmp_path / 'sub'), exist_ok=True)
    if alias == 'hard link':
        os.link(inp, out)
    elif alias == 'symbolic link':
        os.symlink(inp, out)
    assert main(['run', inp, out, '--dt', '50', '-q']) == 2
    err = capsys.readouterr().err
    assert err.startswith('convis: error: the output') and 'is the input file' in err
    assert len(err.strip().splitlines()) == 1
    assert open(inp, 'rb').read() == before


def test_a_key_template_that_names_the_input_is_refused(tmp_path, capsys):
    inp = str(tmp_path / 'out_ganglion_spikes_ON.npy')
    np.save(inp, np.ones((20, 8, 8), np.float32))
    before = open(inp, 'rb').read()
    assert main(['run', inp, str(tmp_path / 'out_{key}.npy'), '-q']) == 2
    assert 'is the input file' in capsys.readouterr().err
    assert open(inp, 'rb').read() == before
    assert not os.path.exists(str(tmp_path / 'out_ganglion_spikes_OFF.npy'))


# ------------------------------------------------------------------ 2. killed runs
KILLED_WRITER = '''
import sys
import numpy as np
from convis.streams import HDF5Writer
w = HDF5Writer(sys.argv[1], 'x')
i = 0
while True:
    w.put(np.arange(25 * i, 25 * i + 25, dtype=np.float32)[:, None, None] * np.ones((1, 40, 40), np.float32))
    i += 1
    sys.stdout.write('%d\\n' % i)
    sys.stdout.flush()
'''


@pytest.mark.parametrize('chunks', [1, 3, 8, 17])
def test_hdf5_killed_with_sigkill_keeps_every_chunk(tmp_path, chunks):
    path = str(tmp_path / 'killed.h5')
    p = subprocess.Popen([sys.executable, '-c', KILLED_WRITER, path], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        done = 0
        while done < chunks:
            done = int(p.stdout.readline())
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
    with h5py.File(path, 'r') as f:
        got = f['x'][:]
    assert got.shape[0] >= 25 * done and got.shape[0] % 25 == 0
    np.testing.assert_array_equal(got[:, 0, 0], np.arange(got.shape[0]))


def start_cli(tmp_path, out, frames=4000):
    inp = str(tmp_path / 'long.npy')
    np.save(inp, (255 * np.random.RandomState(1).rand(frames, 40, 40)).astype(np.float32))
    return subprocess.Popen([sys.executable, '-m', 'convis', 'run', inp, out, '--dt', '2', '--no-progress'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def _frames_flushed(out, key):
    """Frames of dataset ``key`` that a reader sees in the HDF5 file ``out`` now (0 while there is none yet:
    the file's size alone says nothing, as space for a chunk is reserved before the chunk is written)."""
    try:
        with h5py.File(out, 'r', locking=False) as f:
            return int(f[key].shape[0]) if key in f else 0
    except Exception:  # noqa: BLE001 - a file caught in the middle of a write is read again
        return 0


def wait_for_chunks(p, out, key='ganglion_spikes_ON', frames=4):
    """Waits until the running command line has flushed ``frames`` frames of ``key`` (several chunks)."""
    while p.poll() is None and not (os.path.exists(out) and _frames_flushed(out, key) >= frames):
        try:
            p.wait(0.05)
        except subprocess.TimeoutExpired:
            pass
    assert p.poll() is None, 'the run ended before it could be stopped: %s' % p.stderr.read()


def test_the_command_line_killed_with_sigkill_leaves_a_readable_hdf5_file(tmp_path):
    out = str(tmp_path / 'out.h5')
    p = start_cli(tmp_path, out)
    wait_for_chunks(p, out)
    p.kill()
    p.communicate()
    with h5py.File(out, 'r') as f:
        spikes = f['ganglion_spikes_ON']
        assert spikes.shape[0] >= 2 and spikes.shape[0] % 2 == 0
        assert np.isfinite(spikes[:]).all()


def test_sigterm_finishes_the_files_like_ctrl_c(tmp_path):
    out = str(tmp_path / 'out_{key}.h5')
    on = out.replace('{key}', 'ganglion_spikes_ON')
    p = start_cli(tmp_path, out)
    wait_for_chunks(p, on)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    assert 'terminated after' in err and 'Traceback' not in err
    written = int(err.split('terminated after ')[1].split()[0])
    for key in ('ganglion_spikes_ON', 'ganglion_spikes_OFF'):
        with h5py.File(out.replace('{key}', key), 'r') as f:
            assert f[key].shape[0] == written


def test_ctrl_c_during_the_writes_of_a_chunk_stops_after_every_output_has_it():
    """A signal that comes while one chunk is written to several outputs is held until all have it."""
    import convis
    from convis.streams import SequenceStream

    class Recorder(object):
        def __init__(self, kill):
            self.frames, self.kill = 0, kill

        def put(self, x):
            if self.kill:
                os.kill(os.getpid(), signal.SIGINT)   # arrives between this put and the next output's
                time.sleep(0.05)
            self.frames += np.asarray(x).shape[-3]

    model = convis.retina.Retina()
    outs = {'ganglion_spikes_ON': Recorder(kill=True), 'ganglion_spikes_OFF': Recorder(kill=False)}
    runner = convis.Runner(model, SequenceStream(128 * np.ones((40, 8, 8), np.float32)), outs, chunk_size=10)
    with pytest.raises(KeyboardInterrupt):
        runner.run(40, progress=False)
    assert outs['ganglion_spikes_ON'].frames == outs['ganglion_spikes_OFF'].frames == 10


# ------------------------------------------------------------------ 3. full disk
FULL_DISK_WRITER = '''
import sys
import numpy as np
from convis.streams import HDF5Writer
w = HDF5Writer(sys.argv[1], 'x', compression=None)
try:
    for i in range(1000):
        w.put(np.arange(20 * i, 20 * i + 20, dtype=np.float32)[:, None, None] * np.ones((1, 30, 30), np.float32))
except OSError as e:
    print('OSError %d frames: %s' % (w.frames_written, e))
w.close()
'''


def test_hdf5_on_a_full_disk_raises_and_keeps_the_frames_written(tmp_path):
    r, files = run_on_full_disk(tmp_path, FULL_DISK_WRITER, 400, 'DISK/out.h5')
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('OSError') and 'the file keeps the' in r.stdout
    written = int(r.stdout.split()[1])
    assert written > 0
    np.testing.assert_array_equal(files['out.h5']['x'][:, 0, 0], np.arange(written))


def test_the_command_line_on_a_full_disk_gives_one_line_and_a_readable_file(tmp_path):
    inp = str(tmp_path / 'in.npy')
    np.save(inp, (255 * np.random.RandomState(2).rand(400, 30, 30)).astype(np.float32))
    r, files = run_on_full_disk(tmp_path, 'import sys, convis.__main__ as m; sys.exit(m.main())', 300,
                                'run', inp, 'DISK/out.h5', '--dt', '20', '--compression', 'none', '-q')
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith('convis: error: ') and len(r.stderr.strip().splitlines()) == 1
    assert 'Traceback' not in r.stderr
    assert 0 < files['out.h5']['ganglion_spikes_ON'].shape[0] < 400


def test_npy_on_a_full_disk_keeps_the_frames_written(tmp_path):
    script = FULL_DISK_WRITER.replace('HDF5Writer', 'NumpyWriter').replace(", 'x', compression=None", '')
    script += 'a = np.load(sys.argv[1])\nprint(a.shape[0], bool((a[:, 0, 0] == np.arange(len(a))).all()))\n'
    r, _ = run_on_full_disk(tmp_path, script, 300, 'DISK/out.npy')
    assert r.returncode == 0, r.stderr
    first, last = r.stdout.strip().splitlines()
    written = int(first.split()[1])
    assert first.startswith('OSError') and 0 < written and last == '%d True' % written


# ------------------------------------------------------------------ 4. existing HDF5 files
def test_open_output_keeps_the_other_datasets_and_overwrites_only_when_told(tmp_path):
    path = str(tmp_path / 'results.h5')
    with h5py.File(path, 'w') as f:
        f['stimulus'] = np.ones((5, 4, 4))
        f['notes'] = np.arange(3)
    with open_output(path, key='response') as w:
        w.put(ramp(7, (4, 4)))
    with pytest.raises(FileExistsError, match="already has a dataset 'response' of 7 frames.*overwrite=True"):
        open_output(path, key='response')
    with open_output(path, key='response', overwrite=True) as w:
        w.put(ramp(3, (4, 4), start=10))
    with HDF5Writer(path, 'response', mode='a') as w:
        w.put(ramp(2, (4, 4), start=13))
    with h5py.File(path, 'r') as f:
        assert sorted(f) == ['notes', 'response', 'stimulus']
        np.testing.assert_array_equal(f['stimulus'][:], np.ones((5, 4, 4)))
        np.testing.assert_array_equal(f['response'][:, 0, 0], np.arange(10, 15))
    not_hdf5 = tmp_path / 'text.h5'
    not_hdf5.write_text('not an HDF5 file')
    with pytest.raises(FileExistsError, match='not an HDF5 file'):
        open_output(str(not_hdf5))
    assert not_hdf5.read_text() == 'not an HDF5 file'


def test_the_command_line_keeps_other_datasets_and_needs_overwrite(tmp_path, capsys):
    inp = str(tmp_path / 'in.npy')
    np.save(inp, (255 * np.random.RandomState(3).rand(20, 8, 8)).astype(np.float32))
    out = str(tmp_path / 'all.h5')
    with h5py.File(out, 'w') as f:
        f['stimulus'] = np.ones((20, 8, 8))
    assert main(['run', inp, out, '-q']) == 0
    assert main(['run', inp, out, '-q']) == 2
    err = capsys.readouterr().err
    assert "already has a dataset 'ganglion_spikes_ON'" in err and '--overwrite' in err
    assert len(err.strip().splitlines()) == 1
    assert main(['run', inp, out, '-q', '--overwrite']) == 0
    assert main(['run', inp, out, '-q', '--output-key', 'ganglion_spikes_OFF']) == 0
    with h5py.File(out, 'r') as f:
        assert sorted(f) == ['ganglion_spikes_OFF', 'ganglion_spikes_ON', 'stimulus']
        assert f['ganglion_spikes_ON'].shape == (20, 8, 8)


# ------------------------------------------------------------------ 5. videos
def test_a_short_video_on_a_read_only_disk_raises(tmp_path):
    folder = str(tmp_path / 'ro')
    with small_disk(folder, 1024, read_only=True) as mounted:
        target = os.path.join(folder, 'v.mp4') if mounted else str(tmp_path / 'a_file' / 'v.mp4')
        if not mounted:
            (tmp_path / 'a_file').write_text('a file, not a folder')
        with pytest.raises(OSError):
            VideoWriter(target, value_range=(0, 1))
    with small_disk(folder, 1024) as mounted:
        if mounted:
            w = VideoWriter(os.path.join(folder, 'v.mp4'), value_range=(0, 1))
            remount_read_only(folder)
            w.put(np.random.rand(5, 16, 16))
            with pytest.raises(OSError, match='ffmpeg.*Read-only'):
                w.close()


def test_a_short_video_on_a_full_disk_raises(tmp_path):
    script = '''
    import sys
    import numpy as np
    from convis.streams import VideoWriter
    w = VideoWriter(sys.argv[1], value_range=(0, 1))
    w.put(np.random.rand(5, 64, 64))
    try:
        w.close()
    except OSError as e:
        print('OSError', e)
    '''
    r, _ = run_on_full_disk(tmp_path, script, 8, 'DISK/v.mp4')
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('OSError') and 'ffmpeg' in r.stdout


def test_video_values_must_give_a_finite_range(tmp_path):
    frames = np.random.rand(6, 8, 8)
    frames[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match='NaN'):
        VideoWriter(str(tmp_path / 'nan.mp4')).put(frames)
    with pytest.raises(ValueError, match='NaN'):
        with VideoWriter(str(tmp_path / 'later.mp4'), value_range=(0, 1)) as w:
            w.put(np.random.rand(3, 8, 8))
            w.put(frames)
    assert len(VideoReader(str(tmp_path / 'later.mp4'))) == 3
    with pytest.raises(ValueError, match='finite'):
        VideoWriter(str(tmp_path / 'inf.mp4')).put(np.array([[[0.0, np.inf]]]))
    for bad in [(np.nan, 1), (0, np.inf)]:
        with pytest.raises(ValueError, match='finite'):
            VideoWriter(str(tmp_path / 'range.mp4'), value_range=bad)


# ------------------------------------------------------------------ corrupt files on the command line
@pytest.mark.parametrize('content', [b'', os.urandom(700), b'PK\x03\x04' + os.urandom(100), b'\x93NUMPY\x01\x00'])
@pytest.mark.parametrize('kind', ['parameters', 'config'])
def test_corrupt_parameter_and_configuration_files_give_one_line(tmp_path, capsys, content, kind):
    inp = str(tmp_path / 'in.npy')
    np.save(inp, np.random.rand(10, 6, 6))
    bad = tmp_path / ('bad.npz' if kind == 'parameters' else 'bad.xml')
    bad.write_bytes(content)
    args = (['run', '--model', 'ln', '--parameters', str(bad)] if kind == 'parameters' else ['run', str(bad)])
    assert main(args + [inp, str(tmp_path / 'o.h5'), '-q']) == 2
    err = capsys.readouterr().err
    assert err.startswith('convis: error: ') and len(err.strip().splitlines()) == 1 and 'Traceback' not in err
    assert not os.path.exists(str(tmp_path / 'o.h5'))


@pytest.mark.parametrize('error', [zipfile.BadZipFile('File is not a zip file'), AttributeError(), RecursionError()])
def test_any_loader_failure_is_one_line(tmp_path, capsys, monkeypatch, error):
    originals = {'load_parameters': convis.models.LN.load_parameters, 'parse_config': convis.retina.Retina.parse_config}

    def failing(name):
        def load(self, path, *args, **kwargs):
            if str(path).startswith(str(tmp_path)):
                raise error
            return originals[name](self, path, *args, **kwargs)
        return load
    inp = str(tmp_path / 'in.npy')
    np.save(inp, np.random.rand(10, 6, 6))
    (tmp_path / 'p.npz').write_bytes(b'?')
    (tmp_path / 'c.xml').write_bytes(b'?')
    monkeypatch.setattr(convis.models.LN, 'load_parameters', failing('load_parameters'))
    monkeypatch.setattr(convis.retina.Retina, 'parse_config', failing('parse_config'))
    for args in (['--model', 'ln', '--parameters', str(tmp_path / 'p.npz')], [str(tmp_path / 'c.xml')]):
        assert main(['run'] + args + [inp, str(tmp_path / 'o.h5'), '-q']) == 2
        err = capsys.readouterr().err
        assert err.startswith('convis: error: ') and len(err.strip().splitlines()) == 1
        assert (str(error) or type(error).__name__) in err
