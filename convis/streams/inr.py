"""INRIMAGE-4 files, the image format VirtualRetina reads stimuli from and writes maps to.

An INRIMAGE-4 file is a text header of ``KEY=VALUE`` lines padded to a multiple of 256
bytes (it starts with ``#INRIMAGE-4#{`` and ends with ``##}``), then the raw samples::

    #INRIMAGE-4#{
    XDIM=64          width (columns)
    YDIM=64          height (rows)
    ZDIM=200         depth: the frames of a sequence
    VDIM=1           values per voxel
    TYPE=float       float | unsigned fixed | signed fixed
    PIXSIZE=64 bits  bits per value
    CPU=decm         byte order: decm, pc, alpha = little endian; sun, sgi = big endian
    ##}

Samples are stored with V fastest, then x, then y, then z, so frame ``z`` is the array
``(YDIM, XDIM)`` = ``(rows, columns)``, which convis reads as ``(x, y)``.  Frames are
along Z (VirtualRetina's stimulus sequences); a file with ``ZDIM=1`` and ``VDIM>1`` can be
read with time along V.

>>> with InrImageStreamWriter('output.inr') as w:       # doctest: +SKIP
...     w.put(frames)
>>> InrImageStreamReader('output.inr').get(10)          # doctest: +SKIP
"""
import os

import numpy as np

from .base import Stream
from .images import expand_filenames

__all__ = ['InrImageStreamReader', 'InrImageStreamWriter', 'InrImageFileStreamer', 'InrImageStreamer',
           'read_inr_header', 'make_inr_header']

MAGIC = b'#INRIMAGE-4#{'
END = b'##}\n'
LITTLE = ('decm', 'pc', 'alpha')
BIG = ('sun', 'sgi')
TYPES = {('float', 32): 'f4', ('float', 64): 'f8', ('unsigned fixed', 8): 'u1', ('unsigned fixed', 16): 'u2',
         ('unsigned fixed', 32): 'u4', ('signed fixed', 8): 'i1', ('signed fixed', 16): 'i2',
         ('signed fixed', 32): 'i4'}


def make_inr_header(xdim, ydim, zdim, vdim=1, pixsize=64, type_='float', cpu='decm'):
    """The bytes of an INRIMAGE-4 header (a multiple of 256 bytes)."""
    lines = ['#INRIMAGE-4#{', 'XDIM=%d' % xdim, 'YDIM=%d' % ydim, 'ZDIM=%d' % zdim, 'VDIM=%d' % vdim,
             'TYPE=%s' % type_, 'PIXSIZE=%d bits' % pixsize, 'SCALE=2**0', 'CPU=%s' % cpu]
    text = ('\n'.join(lines) + '\n').encode('ascii')
    size = -(-(len(text) + len(END)) // 256) * 256
    return text + b'\n' * (size - len(text) - len(END)) + END


def read_inr_header(f, filename='file'):
    """Reads the header of an open binary INRIMAGE-4 file: ``(fields dict, header length, numpy dtype)``."""
    head = f.read(256)
    if not head.startswith(MAGIC):
        raise ValueError('%r is not an INRIMAGE-4 file (it does not start with %r)' % (filename, MAGIC.decode()))
    while b'##}' not in head:
        more = f.read(256)
        if len(more) < 256 or len(head) > 65536:
            raise ValueError('%r: the INRIMAGE-4 header has no end ("##}")' % filename)
        head += more
    length = -(-(head.index(b'##}') + 4) // 256) * 256
    fields = {}
    for line in head[len(MAGIC):head.index(b'##}')].decode('ascii', 'replace').splitlines():
        line = line.strip()
        if '=' in line and not line.startswith('#'):
            k, v = line.split('=', 1)
            fields[k.strip().upper()] = v.strip()
    try:
        dims = {k: int(fields.get(k, '1')) for k in ('XDIM', 'YDIM', 'ZDIM', 'VDIM')}
    except ValueError:
        raise ValueError('%r: invalid dimensions in the INRIMAGE-4 header %s' % (filename, fields)) from None
    if 'XDIM' not in fields or 'YDIM' not in fields or min(dims.values()) < 0:
        raise ValueError('%r: the INRIMAGE-4 header lacks valid XDIM/YDIM: %s' % (filename, fields))
    kind = ' '.join(fields.get('TYPE', 'float').lower().split())
    try:
        bits = int(fields.get('PIXSIZE', '32 bits').split()[0])
    except ValueError:
        raise ValueError('%r: invalid PIXSIZE %r' % (filename, fields.get('PIXSIZE'))) from None
    if (kind, bits) not in TYPES:
        raise ValueError('%r: unsupported INRIMAGE-4 type %r with %d bits' % (filename, kind, bits))
    cpu = fields.get('CPU', 'decm').lower()
    if cpu not in LITTLE + BIG:
        raise ValueError('%r: unknown CPU (byte order) %r' % (filename, cpu))
    dtype = np.dtype(('<' if cpu in LITTLE else '>') + TYPES[(kind, bits)])
    fields.update(dims)
    return fields, length, dtype


class InrImageStreamReader(Stream):
    """Reads the frames of an INRIMAGE-4 file (VirtualRetina's format), memory-mapped.

    Parameters
    ----------
    filename : str
        the ``.inr`` file
    time_dimension : 'ZDIM', 'VDIM' or None
        the axis that holds the frames (``None``: Z, or V when ``ZDIM=1`` and ``VDIM>1``)

    Values come as stored (float64 for VirtualRetina's maps; integer files as float32).

    >>> s = InrImageStreamReader('stimulus.inr')      # doctest: +SKIP
    >>> len(s), s.size
    """

    def __init__(self, filename, time_dimension=None, pixel_per_degree=10, end='stop'):
        super().__init__(pixel_per_degree=pixel_per_degree, end=end)
        self.filename = os.fspath(filename)
        if not os.path.isfile(self.filename):
            raise FileNotFoundError('INR file %r does not exist' % self.filename)
        with open(self.filename, 'rb') as f:
            self.header, self.header_length, self.dtype = read_inr_header(f, self.filename)
        h = self.header
        if time_dimension is None:
            time_dimension = 'VDIM' if h['ZDIM'] == 1 and h['VDIM'] > 1 else 'ZDIM'
        if time_dimension not in ('ZDIM', 'VDIM'):
            raise ValueError("time_dimension must be 'ZDIM' or 'VDIM', not %r" % (time_dimension,))
        if time_dimension == 'ZDIM' and h['VDIM'] != 1:
            raise ValueError('%r has VDIM=%d values per voxel; read it with time_dimension="VDIM"'
                             % (self.filename, h['VDIM']))
        if time_dimension == 'VDIM' and h['ZDIM'] != 1:
            raise ValueError('%r has ZDIM=%d: time along V needs ZDIM=1' % (self.filename, h['ZDIM']))
        self.time_dimension = time_dimension
        n = h['XDIM'] * h['YDIM'] * h['ZDIM'] * h['VDIM']
        data_bytes = os.path.getsize(self.filename) - self.header_length
        if data_bytes < n * self.dtype.itemsize:
            raise ValueError('%r is truncated: the header announces %d values (%d bytes), the file holds %d bytes'
                             % (self.filename, n, n * self.dtype.itemsize, data_bytes))
        self.size = (h['YDIM'], h['XDIM'])
        if n == 0:
            self._data = np.zeros((0,) + self.size, dtype=self.dtype)
            return
        shape = (h['ZDIM'], h['YDIM'], h['XDIM'], h['VDIM'])
        data = np.memmap(self.filename, dtype=self.dtype, mode='r', offset=self.header_length, shape=shape)
        self._data = data[..., 0] if time_dimension == 'ZDIM' else np.moveaxis(data[0], -1, 0)

    def _length(self):
        return self._data.shape[0]

    _seek = Stream._seek_position

    def _read(self, n):
        a = np.array(self._data[self._pos:self._pos + n])
        if a.dtype.kind != 'f':
            a = a.astype(np.float32)
        elif a.dtype.byteorder not in ('=', '|', '<' if np.little_endian else '>'):
            a = a.astype(a.dtype.newbyteorder('='))
        return a

    def _close(self):
        self._data = None


class InrImageStreamWriter(Stream):
    """Writes frames into an INRIMAGE-4 file that VirtualRetina (and :class:`InrImageStreamReader`) reads.

    Frames go along Z; the header is rewritten with the frame count after every ``put``, so the file
    is complete whenever no ``put`` is under way (and after ``close()``).

    Parameters
    ----------
    filename : str
        the ``.inr`` file (overwritten)
    pixsize : 32 or 64
        bits per float sample (VirtualRetina writes 64)

    >>> w = InrImageStreamWriter('output.inr')        # doctest: +SKIP
    >>> w.put(np.zeros((100, 50, 50))); w.close()
    """

    def __init__(self, filename='output.inr', pixsize=64, pixel_per_degree=10):
        super().__init__(pixel_per_degree=pixel_per_degree)
        if pixsize not in (32, 64):
            raise ValueError('pixsize must be 32 or 64 (bits per float), not %r' % (pixsize,))
        self.filename = os.fspath(filename)
        self.pixsize = pixsize
        self.dtype = np.dtype('<f4' if pixsize == 32 else '<f8')
        try:
            self._file = open(self.filename, 'wb')
        except OSError as e:
            raise FileNotFoundError('cannot write INR file %r: %s' % (self.filename, e.strerror)) from None
        self._started = False

    def _write_header(self, frames):
        ydim, xdim = self.size if self.size is not None else (0, 0)
        self._file.seek(0)
        self._file.write(make_inr_header(xdim, ydim, frames, pixsize=self.pixsize))
        self._file.seek(0, os.SEEK_END)

    def _write(self, a):
        if a.ndim != 3:
            raise ValueError('INR files hold grey frames (t, x, y); got colour frames %s' % (a.shape,))
        if self.size is None:
            self.size = tuple(a.shape[1:])
        elif tuple(a.shape[1:]) != self.size:
            raise ValueError('the INR file has frames of %s pixels; cannot put frames of %s' % (self.size, a.shape[1:]))
        if not self._started:
            self._write_header(0)
            self._started = True
        self._file.write(np.ascontiguousarray(a, dtype=self.dtype).tobytes())
        self._write_header(self.frames_written + a.shape[0])

    def _flush(self):
        self._file.flush()

    def _close(self):
        if not self._started:
            self._write_header(0)
        self._file.close()


class InrImageFileStreamer(Stream):
    """The frames of several INR files one after the other (e.g. a folder of VirtualRetina ``-savemap`` maps).

    ``filenames`` is a glob pattern (sorted), a folder or a list.

    >>> s = InrImageFileStreamer('bipolarFrames/*.inr')       # doctest: +SKIP
    """

    def __init__(self, filenames, pixel_per_degree=10, end='stop'):
        super().__init__(pixel_per_degree=pixel_per_degree, end=end)
        self.filenames = expand_filenames(filenames, extensions=('.inr',), what='INR')
        self._readers = [InrImageStreamReader(f) for f in self.filenames]
        sizes = {r.size for r in self._readers}
        if len(sizes) != 1:
            raise ValueError('the INR files have different frame sizes %s' % sorted(sizes))
        self.size = sizes.pop()
        self._starts = np.cumsum([0] + [len(r) for r in self._readers])

    def _length(self):
        return int(self._starts[-1])

    _seek = Stream._seek_position

    def _read(self, n):
        k = int(np.searchsorted(self._starts, self._pos, side='right')) - 1
        if k >= len(self._readers):
            return None
        r = self._readers[k]
        r.seek(self._pos - int(self._starts[k]))
        return np.asarray(r.get(n)) if len(r) else None

    def _close(self):
        for r in self._readers:
            r.close()


InrImageStreamer = InrImageStreamReader
