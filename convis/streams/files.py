"""Opening the right stream for a file name: :func:`open_input` and :func:`open_output`.

========================================  ===============================  ======================
file name                                 read with                        written with
========================================  ===============================  ======================
``*.mp4 *.avi *.mov *.mkv *.webm`` ...    :class:`VideoReader`             :class:`VideoWriter`
a glob (``input_*.jpg``), a folder,       :class:`ImageSequence`           --
``*.jpg *.png *.tif`` ...
``*.inr``                                 :class:`InrImageStreamReader`    :class:`InrImageStreamWriter`
``*.npy *.npz``                           :class:`NumpyReader`             :class:`NumpyWriter`
``*.h5 *.hdf5 *.hdf``                     :class:`HDF5Reader`              :class:`HDF5Writer`
========================================  ===============================  ======================

>>> inp = open_input('input_*.jpg')              # doctest: +SKIP
>>> out = open_output('result.h5', key='ganglion_spikes_ON')    # doctest: +SKIP
"""
import os

from .arrays import HDF5Reader, HDF5Writer, NumpyReader, NumpyWriter
from .images import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, ImageSequence, VideoReader, VideoWriter, has_glob
from .inr import InrImageFileStreamer, InrImageStreamReader, InrImageStreamWriter

__all__ = ['open_input', 'open_output', 'INPUT_FORMATS', 'OUTPUT_FORMATS']

HDF5_EXTENSIONS = ('.h5', '.hdf5', '.hdf')
INPUT_FORMATS = 'video (%s), images (%s, a glob or a folder), INR (.inr), numpy (.npy .npz), HDF5 (%s)' % (
    ' '.join(VIDEO_EXTENSIONS), ' '.join(IMAGE_EXTENSIONS), ' '.join(HDF5_EXTENSIONS))
OUTPUT_FORMATS = 'HDF5 (%s), numpy (.npy .npz), INR (.inr), video (%s)' % (
    ' '.join(HDF5_EXTENSIONS), ' '.join(VIDEO_EXTENSIONS))


def open_input(path, size=None, key=None, **kwargs):
    """A stream reading ``path``, chosen by its extension (see the module table).

    ``size`` crops image and video frames; ``key`` names the dataset of an HDF5 file or the array of an
    ``.npz``.  Missing files raise ``FileNotFoundError``, unknown or unreadable formats ``ValueError``.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if has_glob(path):
        if ext == '.inr':
            return InrImageFileStreamer(path, **kwargs)
        return ImageSequence(path, size=size, **kwargs)
    if os.path.isdir(path):
        return ImageSequence(path, size=size, **kwargs)
    if not os.path.exists(path):
        raise FileNotFoundError('input file %r does not exist' % path)
    if ext in VIDEO_EXTENSIONS:
        return VideoReader(path, size=size, **kwargs)
    if ext in IMAGE_EXTENSIONS:
        return ImageSequence(path, size=size, **kwargs)
    if ext == '.inr':
        return InrImageStreamReader(path, **kwargs)
    if ext in ('.npy', '.npz'):
        return NumpyReader(path, key=key, **kwargs)
    if ext in HDF5_EXTENSIONS:
        return HDF5Reader(path, data_set_name=key, **kwargs)
    raise ValueError('unknown input format %r of %r; convis reads %s' % (ext or '(no extension)', path, INPUT_FORMATS))


def open_output(path, key=None, fps=25, value_range=None, compression='gzip', overwrite=False, **kwargs):
    """A stream writing ``path``, chosen by its extension (see the module table).

    ``key`` names the HDF5 dataset or the ``.npz`` array (default ``'images'``/``'frames'``); ``fps`` and
    ``value_range`` are for videos (see :class:`VideoWriter`), ``compression`` for HDF5 (see
    :class:`HDF5Writer`).  An existing HDF5 file keeps its other datasets; a dataset of the same name is
    replaced only with ``overwrite=True`` (otherwise ``FileExistsError``).  Other formats replace the file.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    folder = os.path.dirname(os.path.abspath(path))
    if ext in HDF5_EXTENSIONS + ('.npy', '.npz', '.inr') + VIDEO_EXTENSIONS and not os.path.isdir(folder):
        raise FileNotFoundError('cannot write %r: folder %r does not exist' % (path, folder))
    if ext in HDF5_EXTENSIONS:
        return HDF5Writer(path, data_set_name=key or 'images', compression=compression, overwrite=overwrite,
                          **kwargs)
    if ext in ('.npy', '.npz'):
        return NumpyWriter(path, key=key or 'frames', **kwargs)
    if ext == '.inr':
        return InrImageStreamWriter(path, **kwargs)
    if ext in VIDEO_EXTENSIONS:
        return VideoWriter(path, fps=fps, value_range=value_range, **kwargs)
    raise ValueError('unknown output format %r of %r; convis writes %s'
                     % (ext or '(no extension)', path, OUTPUT_FORMATS))
