"""Streams of numpy files (``.npy`` memory-mapped, ``.npz``) and HDF5 datasets (h5py).

Frames are stored time-first, ``(t, x, y)`` (colour: ``(t, c, x, y)`` on disk, read back as
``(c, t, x, y)``).  The writers append frame by frame, so files of any length can be
written with flat memory (except ``.npz``, which is kept in memory until it is written).

>>> with NumpyWriter('out.npy') as w:        # doctest: +SKIP
...     w.put(frames)
>>> NumpyReader('out.npy').get(10)            # doctest: +SKIP
"""
import errno
import logging
import os
import struct

import numpy as np

from .base import Stream

__all__ = ['NumpyReader', 'NumpyWriter', 'HDF5Reader', 'HDF5Writer']

logger = logging.getLogger('convis.streams')

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

    Only the named dataset is written: the file's other datasets are kept.  Every ``put`` ends with a
    flush, so the file on disk is complete after each chunk: a run killed by ``SIGKILL``, ``timeout`` or
    the OOM killer leaves a readable file with every frame put before the last ``put`` began.  Before a
    chunk is written its disk space is reserved (``posix_fallocate``); on a full disk ``put`` raises
    ``OSError`` and the file keeps the frames of the earlier puts.

    Parameters
    ----------
    filename : str
        the HDF5 file (created if missing; an existing one keeps its other datasets)
    data_set_name : str
        the dataset (created with the first frames)
    mode : 'w' or 'a'
        ``'w'`` writes a new dataset (an existing dataset of that name is an error unless
        ``overwrite=True``); ``'a'`` appends to the dataset if it exists
    dtype : numpy dtype
        the stored type
    compression : str or None
        ``'gzip'`` (default), ``'lzf'`` (faster, larger) or ``None``
    compression_level : int
        gzip level 1 (fastest, the default) ... 9 (smallest)
    shuffle : bool
        the HDF5 byte-shuffle filter before compression (smaller float files, at little cost)
    chunk_frames : int or None
        frames per HDF5 chunk (``None``: the frames of the first ``put``, or the largest divisor of that
        number that keeps a chunk under 1 MiB).  Puts that fill whole chunks never rewrite a chunk written
        before, which is what keeps the earlier frames intact when a run is killed during a ``put``.
    overwrite : bool
        replace an existing dataset of that name (and a file at ``filename`` that is not HDF5)

    ``flush()`` makes the file complete on disk (every ``put`` does it too); ``close()`` closes it.

    >>> with HDF5Writer('out.h5', 'ganglion_spikes_ON') as w:       # doctest: +SKIP
    ...     w.put(frames)
    """

    def __init__(self, filename, data_set_name='images', mode='w', dtype=np.float32, compression='gzip',
                 compression_level=1, shuffle=True, chunk_frames=None, pixel_per_degree=10, overwrite=False):
        super().__init__(pixel_per_degree=pixel_per_degree)
        if mode not in ('w', 'a'):
            raise ValueError("mode must be 'w' or 'a', not %r" % (mode,))
        self.filename, self.data_set_name = os.fspath(filename), data_set_name
        if compression not in ('gzip', 'lzf', None):
            raise ValueError("compression must be 'gzip', 'lzf' or None, not %r" % (compression,))
        self.dtype, self.compression = np.dtype(dtype), compression
        self.chunk_frames = None if chunk_frames is None else max(int(chunk_frames), 1)
        self.compression_level, self.shuffle = compression_level, bool(shuffle and compression is not None)
        self._h5, self._ds = _open_hdf5_for_writing(self.filename, overwrite), None
        try:
            self._ds = self._existing_dataset(mode, overwrite)
            self._h5.flush()
        except BaseException:
            self._h5.close()
            raise
        if self._ds is not None:
            self.size = tuple(self._ds.shape[-2:])
            self.channels = self._ds.shape[1] if self._ds.ndim == 4 else None
            self.frames_written = int(self._ds.shape[0])

    def _existing_dataset(self, mode, overwrite):
        name = self.data_set_name
        if name not in self._h5:
            return None
        h5py = _h5py()
        obj = self._h5[name]
        if mode == 'a':
            if not isinstance(obj, h5py.Dataset) or obj.ndim not in (3, 4) or obj.maxshape[0] is not None:
                raise ValueError('cannot append to %r in HDF5 file %r: it is not a dataset of frames resizable '
                                 'along time' % (name, self.filename))
            return obj
        if not overwrite:
            what = ('a dataset %r of %d frames' % (name, obj.shape[0]) if isinstance(obj, h5py.Dataset)
                    and obj.ndim else 'an object %r' % name)
            raise FileExistsError('HDF5 file %r already has %s; give overwrite=True (command line: --overwrite) '
                                  'to replace it, or another dataset name' % (self.filename, what))
        del self._h5[name]
        return None

    def _chunk_shape(self, k, frame_shape):
        """HDF5 chunks for a first put of ``k`` frames: ``chunk_frames``, or a divisor of ``k`` under 1 MiB."""
        frame_bytes = max(int(np.prod(frame_shape)) * self.dtype.itemsize, 1)
        most = max(1, 2 ** 20 // frame_bytes)
        if self.chunk_frames is not None:
            n = min(self.chunk_frames, most)
        else:
            n = max(d for d in range(1, min(k, most) + 1) if k % d == 0)
        return (n,) + tuple(frame_shape)

    def _reserve(self, n0, k, frame_shape):
        """Reserves on disk the space the chunks touched by frames ``n0 ... n0 + k`` may need (bytes)."""
        chunk = self._ds.chunks if self._ds is not None else self._chunk_shape(k, frame_shape)
        chunks = -(-(n0 + k) // chunk[0]) - n0 // chunk[0]
        need = chunks * int(np.prod(chunk)) * self.dtype.itemsize * 101 // 100 + 2 ** 16
        _reserve_space(self.filename, need)

    def _write(self, a):
        if self._ds is not None and a.shape[1:] != self._ds.shape[1:]:
            raise ValueError('dataset %r has frames of shape %s; cannot put frames of shape %s'
                             % (self.data_set_name, self._ds.shape[1:], a.shape[1:]))
        n0 = 0 if self._ds is None else int(self._ds.shape[0])
        self._reserve(n0, a.shape[0], a.shape[1:])
        try:
            if self._ds is None:
                self._ds = self._h5.create_dataset(
                    self.data_set_name, shape=(0,) + a.shape[1:], maxshape=(None,) + a.shape[1:],
                    dtype=self.dtype, chunks=self._chunk_shape(a.shape[0], a.shape[1:]), compression=self.compression,
                    shuffle=self.shuffle,
                    compression_opts=self.compression_level if self.compression == 'gzip' else None)
                self.size = tuple(a.shape[-2:])
                self.channels = a.shape[1] if a.ndim == 4 else None
            self._ds.resize(n0 + a.shape[0], axis=0)
            self._ds[n0:] = a
            self._h5.flush()
            _trim(self.filename, self._h5.id.get_filesize())
        except (OSError, RuntimeError) as e:
            self._roll_back(n0)
            raise OSError('writing %d frames to dataset %r of %r failed: %s; the file keeps the %d frames '
                          'written before' % (a.shape[0], self.data_set_name, self.filename,
                                              _first_line(e), n0)) from None
        except BaseException:
            self._roll_back(n0)
            raise

    def _roll_back(self, n0):
        """After a failed write: the dataset back to its ``n0`` frames, flushed (best effort)."""
        try:
            if self._ds is not None:
                self._ds.resize(n0, axis=0)
            self._h5.flush()
        except (OSError, RuntimeError) as e:
            logger.warning('%s: could not restore the dataset after a failed write: %s', self.filename,
                           _first_line(e))

    def _flush(self):
        self._h5.flush()

    def _close(self):
        try:
            size = self._h5.id.get_filesize()
            self._h5.close()
            _trim(self.filename, size)
        except (OSError, RuntimeError) as e:
            raise OSError('closing HDF5 file %r failed: %s' % (self.filename, _first_line(e))) from None


def _first_line(e):
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:300]


def _open_hdf5_for_writing(filename, overwrite):
    """``filename`` opened by h5py in mode ``'a'`` (created if missing), flushed so that it is a valid file."""
    h5py = _h5py()
    exists = os.path.exists(filename)
    if exists and not os.path.isfile(filename):
        raise IsADirectoryError('cannot write HDF5 file %r: it is not a file' % filename)
    try:
        if exists and not h5py.is_hdf5(filename):
            if not overwrite:
                raise FileExistsError('cannot write HDF5 file %r: it exists and is not an HDF5 file; give '
                                      'overwrite=True (command line: --overwrite) to replace it' % filename)
            return h5py.File(filename, 'w', fs_strategy='none')
        if not exists:
            return h5py.File(filename, 'x', fs_strategy='none')
        return h5py.File(filename, 'a')
    except FileExistsError:
        raise
    except OSError as e:
        if exists:
            raise OSError('cannot write HDF5 file %r: %s' % (filename, _first_line(e))) from None
        if os.path.exists(filename) and os.path.getsize(filename) == 0:
            os.remove(filename)
        raise OSError('cannot create HDF5 file %r: %s' % (filename, _first_line(e))) from None


def _reserve_space(filename, nbytes):
    """Makes sure ``nbytes`` past the end of ``filename`` are allocated on disk; ``OSError`` when the disk is full.

    HDF5 writes new chunks and metadata at the end of the file, so the space reserved here is where the
    next chunk goes; :func:`_trim` gives back what it did not use.  File systems without ``fallocate`` are
    written to without a reservation.
    """
    if not hasattr(os, 'posix_fallocate'):
        return
    fd = os.open(filename, os.O_WRONLY)
    try:
        os.posix_fallocate(fd, os.fstat(fd).st_size, int(nbytes))
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise OSError(e.errno, 'no space left to write the next frames into %r (%d bytes needed): %s; the '
                          'file keeps the frames written before' % (filename, nbytes, e.strerror)) from None
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    finally:
        os.close(fd)


def _trim(filename, size):
    """Cuts ``filename`` back to ``size`` bytes (what HDF5 uses) after a reservation by :func:`_reserve_space`."""
    if os.path.getsize(filename) > size:
        os.truncate(filename, size)
