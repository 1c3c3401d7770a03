"""File streams: real files written and read back (jpg/png, mp4, INR, npy, npz, HDF5), and their errors."""
import os
import struct

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

import convis
from convis.streams import (HDF5Reader, HDF5Writer, ImageSequence, InrImageFileStreamer, InrImageStreamer,
                            InrImageStreamReader, InrImageStreamWriter, NumpyReader, NumpyWriter, VideoReader,
                            VideoWriter, open_input, open_output)


def smooth_frames(n=30, shape=(32, 48), lo=0.0, hi=1.0):
    """Slowly varying frames that survive video compression."""
    t = np.arange(n)[:, None, None]
    x = np.arange(shape[0])[None, :, None] / shape[0]
    y = np.arange(shape[1])[None, None, :] / shape[1]
    v = 0.5 + 0.25 * np.sin(2 * np.pi * (x + 0.5 * y + 0.02 * t)) + 0.2 * (y - 0.5)
    return (lo + (hi - lo) * v).astype(np.float32)


# ------------------------------------------------------------------ image sequences
def write_images(folder, frames, ext='png', name='input_%02d'):
    for i, f in enumerate(frames):
        Image.fromarray(np.asarray(f, dtype=np.uint8)).save(os.path.join(folder, (name % i) + '.' + ext))


def test_image_sequence_reads_a_sorted_glob_of_png_exactly(tmp_path):
    frames = (np.random.rand(12, 20, 30) * 255).astype(np.uint8)
    write_images(str(tmp_path), frames)
    s = ImageSequence(str(tmp_path / 'input_*.png'))
    assert len(s) == 12 and s.size == (20, 30)
    a = s.get(100)
    assert a.dtype == np.float32 and a.shape == (12, 20, 30)
    np.testing.assert_array_equal(a, frames)
    folder = ImageSequence(str(tmp_path), repeat=3)
    assert len(folder) == 36
    np.testing.assert_array_equal(folder.get(7), frames[[0, 0, 0, 1, 1, 1, 2]])


def test_image_sequence_of_jpgs_as_in_the_docs(tmp_path, monkeypatch):
    frames = smooth_frames(5, (40, 40), 0, 255)
    write_images(str(tmp_path), frames, ext='jpg')
    monkeypatch.chdir(tmp_path)
    inp = convis.streams.ImageSequence('input_*.jpg')
    a = inp.get(10)
    assert a.shape == (5, 40, 40)
    assert np.abs(a - frames).max() < 6
    o = _Gain().run(convis.streams.ImageSequence('input_*.jpg'), dt=2)
    assert o[0].shape == (1, 1, 5, 40, 40)
    torch.testing.assert_close(o[0][0, 0], torch.as_tensor(2 * a))


class _Gain(convis.Layer):
    def forward(self, x):
        return 2 * x


def test_image_sequence_grey_colour_crop_and_resize(tmp_path):
    rgb = np.zeros((2, 10, 12, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 30, 60, 120
    rgb[1, 2:5, 3:7] = 255
    for i, f in enumerate(rgb):
        Image.fromarray(f).save(str(tmp_path / ('c%d.png' % i)))
    grey = ImageSequence(str(tmp_path / 'c*.png'))
    np.testing.assert_allclose(grey.get(1)[0], 70.0)
    colour = ImageSequence(str(tmp_path / 'c*.png'), is_color=True)
    a = colour.get(2)
    assert a.shape == (3, 2, 10, 12) and colour.channels == 3
    assert a[:, 0, 0, 0].tolist() == [30, 60, 120]
    crop = ImageSequence(str(tmp_path / 'c*.png'), size=(3, 4), offset=(2, 3))
    assert np.all(crop.get(2)[1] == 255)
    centred = ImageSequence(str(tmp_path / 'c*.png'), size=(4, 4))
    assert centred.size == (4, 4)
    resized = ImageSequence(str(tmp_path / 'c*.png'), size=(5, 6), resize=True)
    assert resized.get(2).shape == (2, 5, 6)
    np.testing.assert_allclose(resized.get_image()[0, 0], 70.0, atol=1e-4)
    with pytest.raises(ValueError, match='cannot crop'):
        ImageSequence(str(tmp_path / 'c*.png'), size=(20, 20))
    with pytest.raises(ValueError, match='does not fit'):
        ImageSequence(str(tmp_path / 'c*.png'), size=(4, 4), offset=(8, 0))


def test_image_sequence_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='no image files match'):
        ImageSequence(str(tmp_path / 'nothing_*.jpg'))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        ImageSequence([str(tmp_path / 'missing.png')])
    (tmp_path / 'broken_0.jpg').write_bytes(b'this is not a jpeg')
    with pytest.raises(ValueError, match='cannot read image file'):
        ImageSequence(str(tmp_path / 'broken_*.jpg'))
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(str(tmp_path / 'm0.png'))
    Image.fromarray(np.zeros((6, 5), np.uint8)).save(str(tmp_path / 'm1.png'))
    s = ImageSequence(str(tmp_path / 'm*.png'))
    with pytest.raises(ValueError, match='has .* pixels'):
        s.get(2)


# ------------------------------------------------------------------ video
def test_mp4_round_trip_with_value_scaling(tmp_path):
    frames = smooth_frames(40, (32, 48), lo=-2.0, hi=3.0)
    path = str(tmp_path / 'a_video.mp4')
    with VideoWriter(path, fps=20, value_range=(-2.0, 3.0)) as w:
        w.put(frames[:15])
        w.put(torch.as_tensor(frames[15:])[None, None])
    assert os.path.getsize(path) > 1000
    r = VideoReader(path)
    assert len(r) == 40 and r.size == (32, 48) and r.fps == 20
    back = r.get(100)
    assert back.shape == (40, 32, 48) and back.min() >= 0 and back.max() <= 255
    restored = -2.0 + back / 255.0 * 5.0
    err = np.abs(restored - frames)
    assert err.mean() < 0.02 and err.max() < 0.1
    r.rewind()
    np.testing.assert_array_equal(r.get(3), back[:3])
    assert r.get(100).shape[0] == 37 and r.get(5).shape[0] == 0
    o = _Gain().run(VideoReader(path), dt=16)
    assert o[0].shape == (1, 1, 40, 32, 48)


def test_video_writer_clips_auto_ranges_and_pads_odd_sizes(tmp_path):
    path = str(tmp_path / 'clip.mp4')
    frames = np.concatenate([np.zeros((5, 9, 11)), np.ones((5, 9, 11))]).astype(np.float32)
    with VideoWriter(path, value_range=(0.25, 0.75)) as w:
        w.put(frames)
    a = VideoReader(path).get(20)
    assert a.shape == (10, 10, 12)
    assert a[:5].max() < 8 and a[5:].min() > 247
    auto = str(tmp_path / 'auto.mp4')
    with VideoWriter(auto) as w:
        w.put(frames * 10 + 5)
    assert w.value_range == (5.0, 15.0)
    b = VideoReader(auto, size=(4, 4)).get(20)
    assert b.shape == (10, 4, 4) and b[:5].max() < 8 and b[5:].min() > 247
    with pytest.raises(ValueError, match='finished'):
        w2 = VideoWriter(str(tmp_path / 'x.mp4'))
        w2.put(frames)
        w2.flush()
        w2._write(frames)


def test_video_colour_modes(tmp_path):
    path = str(tmp_path / 'colour.mp4')
    rgb = np.zeros((3, 6, 16, 16), dtype=np.float32)
    rgb[0], rgb[1], rgb[2] = 200, 100, 20
    with VideoWriter(path, value_range=(0, 255)) as w:
        w.put(rgb)
    a = VideoReader(path, mode='rgb').get(6)
    assert a.shape == (3, 6, 16, 16)
    np.testing.assert_allclose(a.mean(axis=(1, 2, 3)), [200, 100, 20], atol=6)
    assert abs(VideoReader(path, mode='r').get(1).mean() - 200) < 6
    assert abs(VideoReader(path).get(1).mean() - 320 / 3) < 6
    assert abs(VideoReader(path, mode='gray').get(1).mean() - (0.299 * 200 + 0.587 * 100 + 0.114 * 20)) < 6
    with pytest.raises(ValueError, match='mode'):
        VideoReader(path, mode='hsv')


def test_video_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        VideoReader(str(tmp_path / 'a_video.mp4'))
    bad = tmp_path / 'corrupt.mp4'
    bad.write_bytes(os.urandom(2000))
    with pytest.raises(ValueError, match='cannot read video file'):
        VideoReader(str(bad))
    with pytest.raises(FileNotFoundError, match='folder'):
        VideoWriter(str(tmp_path / 'no' / 'where.mp4'))
    with pytest.raises(ValueError, match='value_range'):
        VideoWriter(str(tmp_path / 'v.mp4'), value_range=(1, 1))


# ------------------------------------------------------------------ INR (VirtualRetina's format)
def inr_by_the_spec(path, xdim, ydim, zdim, value, pixsize=64, cpu='decm', vdim=1):
    """An INRIMAGE-4 file written by hand: a 256-byte header, then samples with x fastest."""
    text = ('#INRIMAGE-4#{\nXDIM=%d\nYDIM=%d\nZDIM=%d\nVDIM=%d\nTYPE=float\nPIXSIZE=%d bits\nCPU=%s\n'
            % (xdim, ydim, zdim, vdim, pixsize, cpu)).encode()
    header = text + b'\n' * (252 - len(text)) + b'##}\n'
    assert len(header) == 256
    fmt = ('<' if cpu == 'decm' else '>') + ('d' if pixsize == 64 else 'f')
    with open(path, 'wb') as f:
        f.write(header)
        for z in range(zdim):
            for y in range(ydim):
                for x in range(xdim):
                    for v in range(vdim):
                        f.write(struct.pack(fmt, value(z, y, x, v)))


def test_inr_file_written_by_the_spec_is_read_as_t_y_x(tmp_path):
    path = str(tmp_path / 'stimulus.inr')
    inr_by_the_spec(path, xdim=5, ydim=4, zdim=3, value=lambda z, y, x, v: 100 * z + 10 * y + x)
    s = InrImageStreamReader(path)
    assert len(s) == 3 and s.size == (4, 5)
    a = s.get(10)
    assert a.dtype == np.float64 and a.shape == (3, 4, 5)
    t, y, x = np.meshgrid(np.arange(3), np.arange(4), np.arange(5), indexing='ij')
    np.testing.assert_array_equal(a, 100 * t + 10 * y + x)
    assert InrImageStreamer is InrImageStreamReader


def test_inr_float32_big_endian_and_time_along_v(tmp_path):
    p32 = str(tmp_path / 'f32.inr')
    inr_by_the_spec(p32, 3, 2, 4, lambda z, y, x, v: z + 0.5, pixsize=32, cpu='sun')
    a = InrImageStreamReader(p32).get(4)
    assert a.shape == (4, 2, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a[:, 0, 0], [0.5, 1.5, 2.5, 3.5])
    pv = str(tmp_path / 'v.inr')
    inr_by_the_spec(pv, 3, 2, 1, lambda z, y, x, v: 10 * v + x, vdim=6)
    s = InrImageStreamReader(pv)
    assert s.time_dimension == 'VDIM' and len(s) == 6
    np.testing.assert_array_equal(s.get(6)[:, 1, :], [[10 * v + x for x in range(3)] for v in range(6)])


def test_inr_writer_round_trip_and_header_counts_frames(tmp_path):
    path = str(tmp_path / 'output.inr')
    frames = np.random.rand(25, 7, 9)
    w = InrImageStreamWriter(path)
    w.put(frames[:10])
    mid = InrImageStreamReader(path)
    assert len(mid) == 10
    np.testing.assert_array_equal(mid.get(10), frames[:10])
    w.put(frames[10:])
    w.close()
    with open(path, 'rb') as f:
        header = f.read(256).decode()
    assert header.startswith('#INRIMAGE-4#{\n') and header.endswith('##}\n')
    for line in ('XDIM=9', 'YDIM=7', 'ZDIM=25', 'VDIM=1', 'TYPE=float', 'PIXSIZE=64 bits', 'CPU=decm'):
        assert line in header.splitlines()
    assert os.path.getsize(path) == 256 + 25 * 7 * 9 * 8
    r = InrImageStreamReader(path)
    np.testing.assert_array_equal(r.get(100), frames)
    single = str(tmp_path / 'f32.inr')
    with InrImageStreamWriter(single, pixsize=32) as w32:
        w32.put(frames[0])
    np.testing.assert_allclose(InrImageStreamReader(single).get(1)[0], frames[0], rtol=1e-7)
    w3 = InrImageStreamWriter(str(tmp_path / 'y.inr'))
    w3.put(frames)
    with pytest.raises(ValueError, match='frames of'):
        w3.put(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match='grey frames'):
        w3.put(np.zeros((3, 2, 7, 9)))
    empty = str(tmp_path / 'empty.inr')
    InrImageStreamWriter(empty).close()
    assert len(InrImageStreamReader(empty)) == 0


def test_inr_file_streamer_concatenates_savemap_files(tmp_path):
    for step in range(4):
        inr_by_the_spec(str(tmp_path / ('bipolar_signal_%06d.inr' % step)), 3, 2, 1, lambda z, y, x, v, s=step: s + x)
    s = InrImageFileStreamer(str(tmp_path / 'bipolar_signal_*.inr'))
    assert len(s) == 4
    a = s.get(3)
    np.testing.assert_array_equal(a[:, 0, :], [[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    assert s.get(3)[:, 0, 0].tolist() == [3]


def test_inr_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        InrImageStreamReader(str(tmp_path / 'nope.inr'))
    bad = tmp_path / 'bad.inr'
    bad.write_bytes(b'P5\n3 2\n255\n' + bytes(300))
    with pytest.raises(ValueError, match='not an INRIMAGE-4 file'):
        InrImageStreamReader(str(bad))
    short = str(tmp_path / 'short.inr')
    inr_by_the_spec(short, 4, 4, 3, lambda z, y, x, v: 0.0)
    with open(short, 'r+b') as f:
        f.truncate(256 + 8 * 20)
    with pytest.raises(ValueError, match='truncated'):
        InrImageStreamReader(short)
    noend = tmp_path / 'noend.inr'
    noend.write_bytes(b'#INRIMAGE-4#{\nXDIM=2\n' + b'\n' * 300)
    with pytest.raises(ValueError, match='no end'):
        InrImageStreamReader(str(noend))


# ------------------------------------------------------------------ numpy and HDF5
def test_npy_writer_appends_and_reader_memory_maps(tmp_path):
    path = str(tmp_path / 'frames.npy')
    frames = np.random.rand(30, 6, 5).astype(np.float32)
    w = NumpyWriter(path)
    w.put(frames[:12])
    np.testing.assert_array_equal(np.load(path), frames[:12])
    w.put(frames[12:])
    w.close()
    loaded = np.load(path)
    assert loaded.shape == (30, 6, 5) and loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, frames)
    r = NumpyReader(path)
    assert isinstance(r._data, np.memmap) and len(r) == 30
    np.testing.assert_array_equal(r.get(7), frames[:7])
    np.testing.assert_array_equal(r.get(100), frames[7:])


def test_npz_round_trip_and_keys(tmp_path):
    path = str(tmp_path / 'frames.npz')
    frames = np.random.rand(9, 4, 4)
    with NumpyWriter(path, dtype=np.float64) as w:
        w.put(frames[:4])
        w.flush()
        assert np.load(path)['frames'].shape == (4, 4, 4)
        w.put(frames[4:])
    np.testing.assert_array_equal(np.load(path)['frames'], frames)
    np.testing.assert_array_equal(NumpyReader(path).get(20), frames)
    two = str(tmp_path / 'two.npz')
    np.savez(two, a=np.zeros((2, 3, 3)), b=np.ones((5, 3, 3)))
    assert len(NumpyReader(two)) == 2 and len(NumpyReader(two, key='b')) == 5
    with pytest.raises(KeyError, match="no array 'c'"):
        NumpyReader(two, key='c')


def test_numpy_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        NumpyReader(str(tmp_path / 'nope.npy'))
    flat = str(tmp_path / 'flat.npy')
    np.save(flat, np.zeros(10))
    with pytest.raises(ValueError, match='frames'):
        NumpyReader(flat)
    bad = tmp_path / 'bad.npy'
    bad.write_bytes(b'not numpy at all' * 10)
    with pytest.raises(ValueError, match='cannot read numpy file'):
        NumpyReader(str(bad))
    w = NumpyWriter(str(tmp_path / 'shape.npy'))
    w.put(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match='frames of shape'):
        w.put(np.zeros((2, 4, 4)))


def test_hdf5_writer_makes_a_chunked_gzip_appendable_dataset(tmp_path):
    path = str(tmp_path / 'out.h5')
    frames = np.random.rand(50, 8, 6).astype(np.float32)
    with HDF5Writer(path, 'ganglion_spikes_ON') as w:
        w.put(frames[:20])
        w.put(frames[20:])
    with h5py.File(path, 'r') as f:
        ds = f['ganglion_spikes_ON']
        assert ds.shape == (50, 8, 6) and ds.maxshape == (None, 8, 6)
        assert ds.compression == 'gzip' and ds.compression_opts == 1 and ds.shuffle and ds.chunks[1:] == (8, 6)
        np.testing.assert_array_equal(ds[:], frames)
    with pytest.raises(ValueError, match='compression'):
        HDF5Writer(str(tmp_path / 'z.h5'), compression='zip')
    with HDF5Writer(str(tmp_path / 'lzf.h5'), compression='lzf') as w:
        w.put(frames)
    with h5py.File(str(tmp_path / 'lzf.h5'), 'r') as f:
        assert f['images'].compression == 'lzf'
        np.testing.assert_array_equal(f['images'][:], frames)
    with HDF5Writer(path, 'ganglion_spikes_ON', mode='a') as w:
        assert w.frames_written == 50
        w.put(frames[:5])
    r = HDF5Reader(path, 'ganglion_spikes_ON')
    assert len(r) == 55
    np.testing.assert_array_equal(r.get(100)[50:], frames[:5])
    r.close()


def test_hdf5_errors(tmp_path):
    path = str(tmp_path / 'out.h5')
    with HDF5Writer(path) as w:
        w.put(np.zeros((3, 2, 2)))
    with pytest.raises(KeyError, match=r"no dataset 'spikes'.*\['images'\]"):
        HDF5Reader(path, 'spikes')
    with HDF5Writer(path, 'spikes', mode='a') as w:
        w.put(np.ones((4, 2, 2)))
    with HDF5Reader(path) as both:
        assert both.data_set_name == 'images' and len(both) == 3
    only = str(tmp_path / 'only.h5')
    with HDF5Writer(only, 'ganglion_spikes_ON') as w:
        w.put(np.ones((5, 2, 2)))
    with HDF5Reader(only) as r:
        assert r.data_set_name == 'ganglion_spikes_ON' and len(r) == 5
    with pytest.raises(KeyError, match=r"no dataset 'images'.*\['a', 'b'\]"):
        with h5py.File(str(tmp_path / 'ab.h5'), 'w') as f:
            f['a'] = np.zeros((2, 2, 2))
            f['b'] = np.zeros((2, 2, 2))
        HDF5Reader(str(tmp_path / 'ab.h5'))
    bad = tmp_path / 'bad.h5'
    bad.write_bytes(b'\x00' * 1000)
    with pytest.raises(ValueError, match='cannot read HDF5 file'):
        HDF5Reader(str(bad))
    with pytest.raises(FileNotFoundError):
        HDF5Reader(str(tmp_path / 'missing.h5'))


# ------------------------------------------------------------------ choosing by file name
def test_open_input_and_output_by_extension(tmp_path):
    frames = np.random.rand(6, 4, 4).astype(np.float32)
    for ext, cls in [('.h5', HDF5Writer), ('.npy', NumpyWriter), ('.npz', NumpyWriter), ('.inr', InrImageStreamWriter)]:
        path = str(tmp_path / ('x' + ext))
        with open_output(path) as w:
            assert type(w) is cls
            w.put(frames)
        r = open_input(path)
        np.testing.assert_allclose(r.get(10), frames, rtol=1e-6)
    assert type(open_output(str(tmp_path / 'v.mp4'))) is VideoWriter
    write_images(str(tmp_path), (frames * 255).astype(np.uint8), name='img_%02d')
    assert type(open_input(str(tmp_path / 'img_*.png'))) is ImageSequence
    with pytest.raises(ValueError, match='unknown output format'):
        open_output(str(tmp_path / 'out.xyz'))
    (tmp_path / 'in.xyz').write_text('?')
    with pytest.raises(ValueError, match='unknown input format'):
        open_input(str(tmp_path / 'in.xyz'))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        open_input(str(tmp_path / 'absent.mp4'))
    with pytest.raises(FileNotFoundError, match='folder'):
        open_output(str(tmp_path / 'no' / 'out.h5'))
