"""Streams of numpy files (``.npy`` memory-mapped, ``.npz``) and HDF5 datasets (h5py).

Frames are stored time-first, ``(t, x, y)`` (colour: ``(t, c, x, y)`` on disk, read back as
``(c, t, x, y)``).  The writers append frame by frame, so files of any length can be
written with flat memory (except ``.npz``, which is kept in memory until it is written).

>>> with NumpyWriter('out.npy') as w:        # doctest: +SKIP
...     w.put(frames)
>>> NumpyReader('out.npy').get(10)            # doctest: +SKIP
"""
import os
import struct

import numpy as np

from .base import Stream

__all__ = ['NumpyReader', 'NumpyWriter', 'HDF5Reader', 'HDF5Writer']

NPY_MAGIC = b'\x93NUMPY'
NPY_HEADER_LENGTH = 128


def _check_frames_array(a, filename):
    if a.ndim not in (3, 4):
        raise ValueError('%r holds an array of shape %s; a stream needs frames (t, x, y) or (t, c, x, y)'
                         % (filename, a.shape))
    if a.dtype.kind not in 'biuf':
        raise ValueError('%r holds %s values, not numbers' % (filename, a.dtype))


class _ArrayReader(Stream):
    """Frames read from a time-first array-like (numpy memmap, h5py dataset)."""

    def _attach(self, data):
        self._data = data
        self.size = tuple(data.shape[-2:])
        self.channels = data.shape[1] if len(data.shape) == 4 else None

    def _length(self):
        return int(self._data.shape[0])

    _seek = Stream._seek_position

    def _read(self, n):
        a = self._data[self._pos:self._pos + n]
        if a.dtype.kind != 'f':
            return a.astype(np.float32)
        return np.array(a) if isinstance(a, np.memmap) or not a.flags.writeable else a


class NumpyReader(_ArrayReader):
    """Frames of a ``.npy`` file (memory-mapped: files larger than memory are fine) or of an array in a ``.npz``.

    Parameters
    ----------
    file_ref : str
        the ``.npy`` or ``.npz`` file
    key : str or None
        the array of a ``.npz`` file (default: the first)

    >>> s = NumpyReader('frames.npy')         # doctest: +SKIP
    """

    def __init__(self, file_ref, key=None, size=None, pixel_per_degree=10, end='stop'):
        super().__init__(pixel_per_degree=pixel_per_degree, end=end)
        self.filename = os.fspath(file_ref)
        if not os.path.isfile(self.filename):
            raise FileNotFoundError('numpy file %r does not exist' % self.filename)
        try:
            if self.filename.lower().endswith('.npz'):
                with np.load(self.filename, allow_pickle=False) as f:
                    if not f.files:
                        raise ValueError('%r holds no arrays' % self.filename)
                    if key is None:
                        key = f.files[0]
                    elif key not in f.files:
                        raise KeyError('%r has no array %r; it has %s' % (self.filename, key, f.files))
                    data = f[key]
            else:
                data = np.load(self.filename, mmap_mode='r', allow_pickle=False)
        except (OSError, EOFError, ValueError) as e:
            if 'holds no arrays' in str(e):
                raise
            raise ValueError('cannot read numpy file %r: %s' % (self.filename, e)) from None
        if not isinstance(data, np.ndarray):
            raise ValueError('%r is not a single array' % self.filename)
        _check_frames_array(data, self.filename)
        if size is not None and tuple(size) != tuple(data.shape[-2:]):
            raise ValueError('%r has frames of %s pixels, not %s' % (self.filename, data.shape[-2:], tuple(size)))
        self.key = key
        self._attach(data)

    def _close(self):
        self._data = None


def _npy_header(shape, dtype):
    header = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (np.lib.format.dtype_to_descr(dtype),
                                                                       tuple(shape))
    pad = NPY_HEADER_LENGTH - len(NPY_MAGIC) - 4 - len(header) - 1
    if pad < 0:
        raise ValueError('the frame shape %s is too large for a .npy header' % (shape,))
    length = struct.pack('<H', NPY_HEADER_LENGTH - 10)
    return NPY_MAGIC + b'\x01\x00' + length + (header + ' ' * pad + '\n').encode('latin1')


class NumpyWriter(Stream):
    """Writes frames into a ``.npy`` file (appended as they come, flat memory) or a ``.npz`` file.

    A ``.npy`` file's header is rewritten with the frame count after every ``put``, so the file is a
    valid array whenever no ``put`` is under way.  A ``.npz`` file is kept in memory and written on
    ``flush()``/``close()`` (use ``.npy`` or HDF5 for long runs).

    Parameters
    ----------
    filename : str
        ``.npy`` or ``.npz``
    dtype : numpy dtype
        the stored type (float32 by default)
    key : str
        the array's name in a ``.npz`` file

    >>> with NumpyWriter('out.npy') as w:       # doctest: +SKIP
    ...     w.put(np.zeros((100, 20, 20)))
    """

    def __init__(self, filename, dtype=np.float32, key='frames', pixel_per_degree=10):
        super().__init__(pixel_per_degree=pixel_per_degree)
        self.filename = os.fspath(filename)
        self.npz = self.filename.lower().endswith('.npz')
        self.dtype, self.key = np.dtype(dtype), key
        self._chunks, self._frame_shape = [], None
        try:
            self._file = None if self.npz else open(self.filename, 'wb')
        except OSError as e:
            raise FileNotFoundError('cannot write numpy file %r: %s' % (self.filename, e.strerror)) from None
        if self.npz:
            folder = os.path.dirname(os.path.abspath(self.filename))
            if not os.path.isdir(folder):
                raise FileNotFoundError('cannot write %r: folder %r does not exist' % (self.filename, folder))

    def _write(self, a):
        if self._frame_shape is None:
            self._frame_shape = a.shape[1:]
            self.size = tuple(a.shape[-2:])
            self.channels = a.shape[1] if a.ndim == 4 else None
            if not self.npz:
                self._file.write(_npy_header((0,) + self._frame_shape, self.dtype))
        elif a.shape[1:] != self._frame_shape:
            raise ValueError('the file has frames of shape %s; cannot put frames of shape %s'
                             % (self._frame_shape, a.shape[1:]))
        a = np.ascontiguousarray(a, dtype=self.dtype)
        if self.npz:
            self._chunks.append(a)
            return
        self._file.write(a.tobytes())
        self._file.seek(0)
        self._file.write(_npy_header((self.frames_written + a.shape[0],) + self._frame_shape, self.dtype))
        self._file.seek(0, os.SEEK_END)

    def _frames(self):
        if self._chunks:
            return np.concatenate(self._chunks, axis=0)
        return np.zeros((0,) + (self._frame_shape or (0, 0)), dtype=self.dtype)

    def _flush(self):
        if self.npz:
            a = self._frames()
            self._chunks = [a] if a.shape[0] else []
            np.savez(self.filename, **{self.key: a})
        else:
            self._file.flush()

    def _close(self):
        if self.npz:
            self._flush()
            self._chunks = []
            return
        if self._frame_shape is None:
            self._file.write(_npy_header((0, 0, 0), self.dtype))
        self._file.close()


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError('HDF5 streams need h5py (pip install h5py)') from None
    return h5py


class HDF5Reader(_ArrayReader):
    """Frames of a dataset in an HDF5 file (read slice by slice: files larger than memory are fine).

    Parameters
    ----------
    filename : str
        the HDF5 file
    data_set_name : str or None
        the dataset, ``(t, x, y)`` or ``(t, c, x, y)`` (``None``: the file's only dataset, or ``'images'``)

    >>> s = HDF5Reader('frames.h5', 'images')       # doctest: +SKIP
    """

    def __init__(self, filename, data_set_name=None, pixel_per_degree=10, end='stop'):
        super().__init__(pixel_per_degree=pixel_per_degree, end=end)
        h5py = _h5py()
        self.filename, self.data_set_name = os.fspath(filename), data_set_name
        if not os.path.isfile(self.filename):
            raise FileNotFoundError('HDF5 file %r does not exist' % self.filename)
        try:
            self._h5 = h5py.File(self.filename, 'r')
        except OSError as e:
            raise ValueError('cannot read HDF5 file %r: %s' % (self.filename, e)) from None
        names = []
        self._h5.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        if data_set_name is None:
            data_set_name = names[0] if len(names) == 1 else 'images'
            self.data_set_name = data_set_name
        if data_set_name not in names:
            self._h5.close()
            raise KeyError('HDF5 file %r has no dataset %r; its datasets are %s'
                           % (self.filename, data_set_name, names))
        data = self._h5[data_set_name]
        try:
            _check_frames_array(data, self.filename)
        except ValueError:
            self._h5.close()
            raise
        self._attach(data)

    def _close(self):
        self._h5.close()


class HDF5Writer(Stream):
    """Appends frames to a dataset of an HDF5 file: chunked, resizable along time, gzip-compressed.

    Parameters
    ----------
    filename : str
        the HDF5 file
    data_set_name : str
        the dataset (created with the first frames)
    mode : 'w' or 'a'
        ``'w'`` creates the file anew; ``'a'`` keeps it and appends to the dataset if it exists
    dtype : numpy dtype
        the stored type
    compression : str or None
        ``'gzip'`` (default), ``'lzf'`` (faster, larger) or ``None``
    compression_level : int
        gzip level 1 (fastest, the default) ... 9 (smallest)
    shuffle : bool
        the HDF5 byte-shuffle filter before compression (smaller float files, at little cost)
    chunk_frames : int
        frames per HDF5 chunk

    ``flush()`` makes the file complete on disk; ``close()`` closes it.

    >>> with HDF5Writer('out.h5', 'ganglion_spikes_ON') as w:       # doctest: +SKIP
    ...     w.put(frames)
    """

    def __init__(self, filename, data_set_name='images', mode='w', dtype=np.float32, compression='gzip',
                 compression_level=1, shuffle=True, chunk_frames=64, pixel_per_degree=10):
        super().__init__(pixel_per_degree=pixel_per_degree)
        h5py = _h5py()
        if mode not in ('w', 'a'):
            raise ValueError("mode must be 'w' or 'a', not %r" % (mode,))
        self.filename, self.data_set_name = os.fspath(filename), data_set_name
        if compression not in ('gzip', 'lzf', None):
            raise ValueError("compression must be 'gzip', 'lzf' or None, not %r" % (compression,))
        self.dtype, self.compression, self.chunk_frames = np.dtype(dtype), compression, max(int(chunk_frames), 1)
        self.compression_level, self.shuffle = compression_level, bool(shuffle and compression is not None)
        try:
            self._h5 = h5py.File(self.filename, mode)
        except (OSError, FileNotFoundError) as e:
            raise FileNotFoundError('cannot write HDF5 file %r: %s' % (self.filename, e)) from None
        self._ds = self._h5[data_set_name] if data_set_name in self._h5 else None
        if self._ds is not None:
            self.size = tuple(self._ds.shape[-2:])
            self.frames_written = int(self._ds.shape[0])

    def _write(self, a):
        if self._ds is None:
            self._ds = self._h5.create_dataset(
                self.data_set_name, shape=(0,) + a.shape[1:], maxshape=(None,) + a.shape[1:], dtype=self.dtype,
                chunks=(min(self.chunk_frames, max(1, 2 ** 20 // max(a[0].size * self.dtype.itemsize, 1))),)
                + a.shape[1:], compression=self.compression, shuffle=self.shuffle,
                compression_opts=self.compression_level if self.compression == 'gzip' else None)
            self.size = tuple(a.shape[-2:])
        if a.shape[1:] != self._ds.shape[1:]:
            raise ValueError('dataset %r has frames of shape %s; cannot put frames of shape %s'
                             % (self.data_set_name, self._ds.shape[1:], a.shape[1:]))
        n0 = self._ds.shape[0]
        self._ds.resize(n0 + a.shape[0], axis=0)
        self._ds[n0:] = a

    def _flush(self):
        self._h5.flush()

    def _close(self):
        self._h5.close()
