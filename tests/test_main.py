"""The command line: python -m convis run / info."""
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

import convis
from convis.__main__ import main
from convis.streams import InrImageStreamReader, NumpyReader, VideoReader, VideoWriter
from helpers import reference_path

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
CONFIGS = reference_path('virtualretina', 'configs')


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, '-m', 'convis'] + list(args), capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.fixture
def ln_parameters(tmp_path):
    m = convis.models.LN((3, 3, 3))
    m.conv.set_weight(np.random.RandomState(1).rand(3, 3, 3) - 0.3)
    path = str(tmp_path / 'fitted.npz')
    m.save_parameters(path)
    return path


def loaded_ln(path):
    m = convis.models.LN()
    m.load_parameters(path)
    return m


def test_help_documents_the_commands():
    r = run_cli('--help')
    assert r.returncode == 0 and 'run' in r.stdout and 'info' in r.stdout and 'Traceback' not in r.stderr
    with pytest.raises(SystemExit) as e:
        main(['run', '--help'])
    assert e.value.code == 0


def test_ln_model_over_an_mp4_into_hdf5(tmp_path, ln_parameters, capsys):
    video = str(tmp_path / 'movie.mp4')
    with VideoWriter(video, value_range=(0, 1)) as w:
        w.put(np.random.RandomState(0).rand(33, 16, 20))
    out = str(tmp_path / 'response.h5')
    assert main(['run', '--model', 'ln', '--parameters', ln_parameters, video, out, '--dt', '7',
                 '--no-progress', '--compression', 'lzf']) == 0
    expected = loaded_ln(ln_parameters).run(VideoReader(video), dt=33)[0][0, 0].numpy()
    with h5py.File(out, 'r') as f:
        assert f['output'].compression == 'lzf'
        got = f['output'][:]
    assert got.shape == (33, 16, 20)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    assert 'wrote 33 frames of output' in capsys.readouterr().err


def test_npy_input_npz_output_and_max_frames(tmp_path, ln_parameters):
    x = np.random.rand(50, 8, 8).astype(np.float32)
    np.save(str(tmp_path / 'in.npy'), x)
    out = str(tmp_path / 'out.npz')
    assert main(['run', '--model', 'ln', '--parameters', ln_parameters, str(tmp_path / 'in.npy'), out,
                 '--max-frames', '30', '-q']) == 0
    got = np.load(out)['output']
    expected = loaded_ln(ln_parameters).run(x[:30])[0][0, 0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_image_glob_into_inr_and_video(tmp_path, ln_parameters):
    frames = (np.random.RandomState(2).rand(12, 10, 14) * 255).astype(np.uint8)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(str(tmp_path / ('frame_%03d.png' % i)))
    inr = str(tmp_path / 'out.inr')
    assert main(['run', '--model', 'ln', '--parameters', ln_parameters, str(tmp_path / 'frame_*.png'), inr,
                 '--size', '8', '8', '-q']) == 0
    got = InrImageStreamReader(inr).get(100)
    expected = loaded_ln(ln_parameters).run(frames[:, 1:9, 3:11].astype(np.float32))[0][0, 0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    mp4 = str(tmp_path / 'out.mp4')
    assert main(['run', '--model', 'ln', '--parameters', ln_parameters, str(tmp_path / 'frame_*.png'), mp4,
                 '--fps', '10', '--value-range', '0', '2000', '-q']) == 0
    r = VideoReader(mp4)
    assert len(r) == 12 and r.fps == 10 and r.size == (10, 14)


@pytest.mark.parametrize('name', ['EXAMPLE_linear_noSpikes', 'derived_linear_cgc', 'derived_cat_X_square_noiseless'])
def test_retina_from_a_virtualretina_config(tmp_path, name):
    config = os.path.join(CONFIGS, name + '.xml')
    x = (255 * np.random.RandomState(3).rand(40, 20, 20)).astype(np.float32)
    np.save(str(tmp_path / 'stimulus.npy'), x)
    out = str(tmp_path / 'out_{key}.h5')
    assert main(['run', config, str(tmp_path / 'stimulus.npy'), out, '--dt', '15', '--seed', '3', '-q']) == 0
    retina = convis.retina.Retina()
    retina.parse_config(config)
    retina.seed(3)
    expected = retina.run(x, dt=40)
    for k in expected.keys:
        with convis.streams.HDF5Reader(out.replace('{key}', k)) as r:
            assert r.data_set_name == k and len(r) == 40
            np.testing.assert_allclose(r.get(40), expected[k][0, 0].numpy(), rtol=1e-4, atol=1e-4)


def test_retina_writes_every_output_with_key_in_the_name(tmp_path):
    x = (255 * np.random.RandomState(4).rand(30, 12, 12)).astype(np.float32)
    np.save(str(tmp_path / 'stimulus.npy'), x)
    assert main(['run', str(tmp_path / 'stimulus.npy'), str(tmp_path / 'spikes_{key}.npy'), '--seed', '7',
                 '--dt', '8', '-q']) == 0
    on = NumpyReader(str(tmp_path / 'spikes_ganglion_spikes_ON.npy'))
    off = NumpyReader(str(tmp_path / 'spikes_ganglion_spikes_OFF.npy'))
    assert len(on) == 30 and len(off) == 30
    expected = convis.retina.Retina().seed(7).run(x)
    assert expected.ganglion_spikes_ON.sum() > 0
    np.testing.assert_array_equal(on.get(30), expected.ganglion_spikes_ON[0, 0].numpy())
    np.testing.assert_array_equal(off.get(30), expected.ganglion_spikes_OFF[0, 0].numpy())
    assert main(['run', str(tmp_path / 'stimulus.npy'), str(tmp_path / 'only_{key}.npy'), '--output-key',
                 'ganglion_spikes_OFF', '-q']) == 0
    assert os.path.exists(str(tmp_path / 'only_ganglion_spikes_OFF.npy'))
    assert not os.path.exists(str(tmp_path / 'only_ganglion_spikes_ON.npy'))


def test_info_describes_a_file(tmp_path, capsys):
    np.save(str(tmp_path / 'x.npy'), np.zeros((17, 5, 6)))
    assert main(['info', str(tmp_path / 'x.npy')]) == 0
    text = capsys.readouterr().out
    assert 'frames: 17' in text and '(5, 6)' in text and 'NumpyReader' in text


@pytest.mark.parametrize('make_args, message', [
    (lambda d, p: ['run', '--model', 'ln', '--parameters', p, d + '/missing.mp4', d + '/o.h5'], 'does not exist'),
    (lambda d, p: ['run', '--model', 'ln', '--parameters', p, d + '/in.npy', d + '/o.xyz'], 'unknown output format'),
    (lambda d, p: ['run', '--model', 'ln', '--parameters', p, d + '/in.abc', d + '/o.h5'], 'unknown input format'),
    (lambda d, p: ['run', '--model', 'ln', '--parameters', p, d + '/corrupt.mp4', d + '/o.h5'], 'cannot read video'),
    (lambda d, p: ['run', '--model', 'ln', '--parameters', p, d + '/corrupt.npy', d + '/o.h5'], 'cannot read numpy'),
    (lambda d, p: ['run', '--model', 'ln', '--parameters', p, d + '/in.npy', d + '/no/o.h5'], 'folder'),
    (lambda d, p: ['run', '--model', 'ln', d + '/in.npy', d + '/o.h5'], 'needs --parameters'),
    (lambda d, p: ['run', '--model', 'ln', '--parameters', d + '/none.npz', d + '/in.npy', d + '/o.h5'],
     'does not exist'),
    (lambda d, p: ['run', '--model', 'ln', '--parameters', d + '/in.npy', d + '/in.npy', d + '/o.h5'],
     'cannot load parameters'),
    (lambda d, p: ['run', d + '/bad.xml', d + '/in.npy', d + '/o.h5'], 'invalid configuration'),
    (lambda d, p: ['run', d + '/missing.xml', d + '/in.npy', d + '/o.h5'], 'does not exist'),
    (lambda d, p: ['run', '--model', 'ln', '--parameters', p, d + '/in.xml', d + '/in.npy', d + '/o.h5'],
     'retina model only'),
    (lambda d, p: ['run', d + '/in.npy'], 'INPUT OUTPUT'),
    (lambda d, p: ['run', d + '/in.npy', d + '/o.h5', '--output-key', 'nothing'], 'has no output'),
    (lambda d, p: ['run', d + '/in.npy', d + '/o.h5', '--dt', '0'], '--dt'),
])
def test_errors_are_one_line_with_status_2(tmp_path, ln_parameters, capsys, make_args, message):
    d = str(tmp_path)
    np.save(d + '/in.npy', np.random.rand(10, 6, 6))
    (tmp_path / 'in.abc').write_text('?')
    (tmp_path / 'in.xml').write_text('<retina-description-file/>')
    (tmp_path / 'corrupt.mp4').write_bytes(os.urandom(3000))
    (tmp_path / 'corrupt.npy').write_bytes(b'\x93NUMPY garbage' * 10)
    (tmp_path / 'bad.xml').write_text('<retina-description-file><outer')
    assert main(make_args(d, ln_parameters)) == 2
    err = capsys.readouterr().err
    assert err.startswith('convis: error: ') and message in err and 'Traceback' not in err
    assert len(err.strip().splitlines()) == 1


def test_unavailable_cuda_is_reported(tmp_path, ln_parameters, capsys, monkeypatch):
    np.save(str(tmp_path / 'in.npy'), np.random.rand(10, 6, 6))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert main(['run', '--model', 'ln', '--parameters', ln_parameters, str(tmp_path / 'in.npy'),
                 str(tmp_path / 'o.h5'), '--device', 'cuda']) == 2
    assert 'no CUDA device' in capsys.readouterr().err


def test_the_installed_command_reports_errors_without_traceback(tmp_path):
    r = run_cli('run', str(tmp_path / 'missing.mp4'), str(tmp_path / 'out.h5'))
    assert r.returncode == 2 and 'does not exist' in r.stderr and 'Traceback' not in r.stderr
    with pytest.raises(SystemExit) as e:
        main(['run', '--device', 'gpu', 'a', 'b'])
    assert e.value.code == 2
