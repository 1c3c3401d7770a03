"""Streams of image files and video files (Pillow and imageio-ffmpeg; no OpenCV needed).

Pixel values are the file's own (0...255 for 8-bit files), as float32.  Grey frames are
the mean of the red, green and blue channels.  :class:`VideoWriter` maps a value range
``[lo, hi]`` linearly onto 0...255 (values outside are clipped):

.. math::  v_8 = \\operatorname{round}\\big(255 \\cdot \\operatorname{clip}((v - lo) / (hi - lo), 0, 1)\\big)

>>> inp = ImageSequence('input_*.jpg')          # doctest: +SKIP
>>> inp = VideoReader('a_video.mp4')            # doctest: +SKIP
"""
import glob
import logging
import os
import subprocess
import tempfile
from collections import OrderedDict

import numpy as np

from .base import Stream, check_count

__all__ = ['ImageSequence', 'VideoReader', 'VideoWriter', 'IMAGE_EXTENSIONS', 'VIDEO_EXTENSIONS']

logger = logging.getLogger('convis.streams')

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.gif', '.ppm', '.pgm', '.webp')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg', '.ogv', '.flv', '.wmv')
COLOR_MODES = ('mean', 'gray', 'r', 'g', 'b', 'rgb')


def has_glob(s):
    """Whether a file name is a glob pattern."""
    return any(c in s for c in '*?[')


def expand_filenames(filenames, extensions=IMAGE_EXTENSIONS, what='image'):
    """A sorted list of files from a glob pattern, a folder, one file name or a list of names."""
    if isinstance(filenames, (str, os.PathLike)):
        name = os.fspath(filenames)
        if has_glob(name):
            files = sorted(glob.glob(name))
        elif os.path.isdir(name):
            files = sorted(os.path.join(name, f) for f in os.listdir(name) if f.lower().endswith(extensions))
        else:
            files = [name]
        if not files:
            raise FileNotFoundError('no %s files match %r' % (what, name))
    else:
        files = [os.fspath(f) for f in filenames]
        if not files:
            raise ValueError('the list of %s files is empty' % what)
    for f in files:
        if not os.path.isfile(f):
            raise FileNotFoundError('%s file %r does not exist' % (what, f))
    return files


def crop_or_resize(img, size, offset=None, resize=False, what='image'):
    """Crops ``size`` pixels of an ``(x, y)`` or ``(x, y, c)`` image at ``offset`` (centred if None), or resizes it."""
    if size is None:
        return img
    size = tuple(int(s) for s in size)
    if resize:
        from PIL import Image
        chans = [img] if img.ndim == 2 else [img[..., c] for c in range(img.shape[2])]
        out = [np.asarray(Image.fromarray(np.asarray(c, dtype=np.float32), mode='F')
                          .resize((size[1], size[0]), Image.BILINEAR)) for c in chans]
        return out[0] if img.ndim == 2 else np.stack(out, axis=-1)
    h, w = img.shape[:2]
    if size[0] > h or size[1] > w:
        raise ValueError('cannot crop %s pixels from a %s of %s pixels (use resize=True to scale it)'
                         % (size, what, (h, w)))
    if offset is None:
        offset = ((h - size[0]) // 2, (w - size[1]) // 2)
    o0, o1 = int(offset[0]), int(offset[1])
    if o0 < 0 or o1 < 0 or o0 + size[0] > h or o1 + size[1] > w:
        raise ValueError('a crop of %s pixels at offset %s does not fit into a %s of %s pixels'
                         % (size, (o0, o1), what, (h, w)))
    return img[o0:o0 + size[0], o1:o1 + size[1]]


def _to_channels(rgb, mode):
    """An ``(x, y, 3)`` image as grey (``mean``, ``gray``), one colour, or ``(3, x, y)`` for ``rgb``."""
    rgb = rgb.astype(np.float32, copy=False)
    if rgb.ndim == 2:
        return np.repeat(rgb[None], 3, axis=0) if mode == 'rgb' else rgb
    if mode == 'rgb':
        return np.moveaxis(rgb[..., :3], -1, 0)
    if mode in ('r', 'g', 'b'):
        return rgb[..., 'rgb'.index(mode)]
    if mode == 'gray':
        return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return rgb[..., :3].mean(axis=-1)


class ImageSequence(Stream):
    """Image files read as frames, in sorted order, each shown for ``repeat`` frames.

    Parameters
    ----------
    filenames : str or list
        a glob pattern (``'input_*.jpg'``, sorted), a folder (its image files, sorted), one file or a list
    size : (int, int) or None
        frame shape ``(x, y)`` (rows, columns): a crop at ``offset`` (centred when None), or with
        ``resize=True`` the image scaled to it; ``None`` keeps the images' own size
    repeat : int
        frames each image is shown for
    is_color : bool
        ``False``: grey frames ``(t, x, y)``, the mean of red, green and blue; ``True``: ``(3, t, x, y)``
    resize : bool
        scale whole images to ``size`` instead of cropping
    cache : int
        decoded images kept in memory

    Values are the file's pixel values (0...255 for 8-bit images), as float32.

    >>> inp = ImageSequence('input_*.jpg')         # doctest: +SKIP
    >>> o = retina.run(inp, dt=500)                # doctest: +SKIP
    """

    def __init__(self, filenames='*.jpg', size=None, repeat=1, offset=None, is_color=False, resize=False,
                 pixel_per_degree=10, end='stop', cache=20):
        super().__init__(size=size, pixel_per_degree=pixel_per_degree, end=end)
        self.filenames = expand_filenames(filenames)
        self.repeat = check_count(repeat, 'repeat')
        if self.repeat == 0:
            raise ValueError('repeat must be at least 1')
        self.offset, self.is_color, self.resize = offset, bool(is_color), bool(resize)
        self._crop_size = self.size
        self.channels = 3 if self.is_color else None
        self._cache, self._cache_size = OrderedDict(), max(int(cache), 1)
        first = self._image(0)
        self.size = tuple(first.shape[-2:])

    def _load(self, filename):
        from PIL import Image, UnidentifiedImageError
        try:
            with Image.open(filename) as im:
                if im.mode in ('P', 'PA', 'LA', 'RGBA', 'CMYK', 'YCbCr', 'HSV', 'LAB', '1'):
                    im = im.convert('RGB' if im.mode not in ('LA', '1') else 'L')
                img = np.asarray(im)
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise ValueError('cannot read image file %r: %s' % (filename, e)) from None
        img = crop_or_resize(img, self._crop_size, self.offset, self.resize, what='image %r' % filename)
        return _to_channels(img, 'rgb' if self.is_color else 'mean')

    def _image(self, i):
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        img = self._load(self.filenames[i])
        if self.size is not None and tuple(img.shape[-2:]) != self.size:
            raise ValueError('image %r has %s pixels, the sequence %s (give size= to crop or resize)'
                             % (self.filenames[i], img.shape[-2:], self.size))
        self._cache[i] = img
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return img

    def _length(self):
        return len(self.filenames) * self.repeat

    _seek = Stream._seek_position

    def _read(self, n):
        k = min(n, self._length() - self._pos)
        if k <= 0:
            return None
        return np.stack([self._image((self._pos + j) // self.repeat) for j in range(k)])


class VideoReader(Stream):
    """Frames of a video file (any format ffmpeg reads: mp4, avi, mov, webm, ...), via imageio-ffmpeg.

    Parameters
    ----------
    filename : str
        the video file
    size : (int, int) or None
        a crop of ``(x, y)`` pixels (rows, columns) at ``offset`` (centred when None); ``resize=True``
        scales the frames instead
    mode : str
        ``'mean'`` (mean of red, green, blue; the default), ``'gray'`` (luma 0.299 R + 0.587 G + 0.114 B),
        ``'r'``, ``'g'``, ``'b'``, or ``'rgb'`` (colour frames ``(3, t, x, y)``)

    Values are 0...255 (float32).  ``fps`` is the frame rate the file declares; ``len()`` counts the
    frames (without decoding them).

    >>> inp = VideoReader('a_video.mp4', size=(50, 50))     # doctest: +SKIP
    """

    def __init__(self, filename, size=None, offset=None, mode='mean', resize=False, pixel_per_degree=10,
                 end='stop'):
        super().__init__(size=size, pixel_per_degree=pixel_per_degree, end=end)
        if mode not in COLOR_MODES:
            raise ValueError('mode must be one of %s, not %r' % (COLOR_MODES, mode))
        if isinstance(filename, (int, np.integer)):
            raise ValueError('VideoReader reads video files; cameras are not supported')
        self.filename = os.fspath(filename)
        if not os.path.isfile(self.filename):
            raise FileNotFoundError('video file %r does not exist' % self.filename)
        self.offset, self.mode, self.resize = offset, mode, bool(resize)
        self._crop_size = self.size
        self.channels = 3 if mode == 'rgb' else None
        self._n_frames = None
        self._gen = None
        self._open()
        self.size = self._crop_shape

    def _open(self):
        import imageio_ffmpeg
        self._close()
        try:
            gen = imageio_ffmpeg.read_frames(self.filename, pix_fmt='rgb24')
            meta = next(gen)
        except (OSError, RuntimeError, StopIteration) as e:
            raise ValueError('cannot read video file %r: %s' % (self.filename, str(e).strip().splitlines()[-1]
                                                                 if str(e).strip() else type(e).__name__)) from None
        self._gen = gen
        self.meta = meta
        self.fps = float(meta.get('fps') or 0) or None
        w, h = meta['size']
        self._frame_shape = (h, w)
        dummy = np.zeros((h, w), dtype=np.float32)
        self._crop_shape = crop_or_resize(dummy, self._crop_size, self.offset, self.resize, what='video frame').shape

    def _next_frame(self):
        try:
            raw = next(self._gen)
        except StopIteration:
            return None
        except (OSError, RuntimeError) as e:
            raise ValueError('cannot read video file %r: %s' % (self.filename, e)) from None
        img = np.frombuffer(raw, dtype=np.uint8).reshape(self._frame_shape + (3,))
        img = crop_or_resize(img, self._crop_size, self.offset, self.resize, what='video frame')
        return _to_channels(img, self.mode)

    def _read(self, n):
        frames = []
        for _ in range(n):
            f = self._next_frame()
            if f is None:
                if self._n_frames is None:
                    self._n_frames = self._pos + len(frames)
                break
            frames.append(f)
        return np.stack(frames) if frames else None

    def _length(self):
        if self._n_frames is None:
            import imageio_ffmpeg
            try:
                self._n_frames = int(imageio_ffmpeg.count_frames_and_secs(self.filename)[0])
            except (OSError, RuntimeError) as e:
                estimate = float(self.meta.get('duration') or 0) * (self.fps or 0)
                if not np.isfinite(estimate) or estimate <= 0:
                    raise ValueError('cannot count the frames of %r: %s' % (self.filename, e)) from None
                self._n_frames = int(round(estimate))
                logger.warning('%s: ffmpeg could not count the frames; %d estimated from the duration',
                               self.filename, self._n_frames)
        return self._n_frames

    def _seek(self, i):
        self._open()
        for _ in range(i):
            if self._next_frame() is None:
                raise ValueError('cannot seek to frame %d: the video has fewer frames' % i)

    def _close(self):
        gen = getattr(self, '_gen', None)
        if gen is not None:
            gen.close()
            self._gen = None


class VideoWriter(Stream):
    """Writes frames into a video file (mp4 with H.264 by default) via imageio-ffmpeg.

    Values are mapped linearly from ``value_range = (lo, hi)`` onto 0...255 (clipped); with
    ``value_range=None`` the range of the first frames written is used for the whole video (a stable
    scale).  Grey frames ``(t, x, y)`` give a grey video, colour frames ``(3, t, x, y)`` a colour one.
    Frames with an odd number of rows or columns are padded by one edge pixel (H.264 needs even sizes).
    The file is complete after ``close()`` (or ``flush()``, which finishes the file: no frames can be
    added after it).

    Parameters
    ----------
    filename : str
        the file to write (its extension picks the container)
    fps : float
        frames per second of the video
    value_range : (float, float) or None
        the values that become black and white
    codec : str or None
        ffmpeg codec (default ``libx264`` for mp4/mkv/mov, ``mpeg4`` for avi, ``libvpx`` for webm)
    quality : float
        0 (smallest file) ... 10 (best)

    >>> with VideoWriter('out.mp4', fps=25, value_range=(0, 1)) as w:      # doctest: +SKIP
    ...     w.put(frames)
    """

    def __init__(self, filename='output.mp4', fps=25, value_range=None, codec=None, quality=9, is_color=None,
                 pixel_per_degree=10):
        super().__init__(pixel_per_degree=pixel_per_degree)
        self.filename = os.fspath(filename)
        folder = os.path.dirname(os.path.abspath(self.filename))
        if not os.path.isdir(folder):
            raise FileNotFoundError('cannot write %r: folder %r does not exist' % (self.filename, folder))
        ext = os.path.splitext(self.filename)[1].lower()
        if codec is None:
            codec = {'.avi': 'mpeg4', '.webm': 'libvpx'}.get(ext, 'libx264')
        if not fps > 0:
            raise ValueError('fps must be positive, not %r' % (fps,))
        if value_range is not None:
            lo, hi = (float(v) for v in value_range)
            if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
                raise ValueError('value_range must be finite (lo, hi) with hi > lo, not %r' % (value_range,))
            value_range = (lo, hi)
        _check_writable(self.filename, folder)
        self.fps, self.value_range, self.codec, self.quality = fps, value_range, codec, quality
        self.is_color = is_color
        self._proc = self._log = None
        self._finished = False

    def _start(self, a):
        import imageio_ffmpeg
        color = a.ndim == 4 if self.is_color is None else bool(self.is_color)
        self.channels = 3 if color else None
        h, w = a.shape[-2:]
        self.size = (h, w)
        self._padded = (h + h % 2, w + w % 2)
        if self.value_range is None:
            lo, hi = float(np.min(a)), float(np.max(a))
            if not (np.isfinite(lo) and np.isfinite(hi)):
                raise ValueError('VideoWriter %r: the first frames range over %g...%g; give a finite '
                                 'value_range=(lo, hi)' % (self.filename, lo, hi))
            self.value_range = (lo, hi if hi > lo else lo + 1.0)
            logger.info('VideoWriter %s: values %g...%g are mapped to 0...255', self.filename, *self.value_range)
        q = 1 - self.quality / 10.0
        quality = ['-crf', str(int(q * 51))] if self.codec == 'libx264' else ['-q:v', str(int(q * 30) + 1)]
        cmd = ([imageio_ffmpeg.get_ffmpeg_exe(), '-y', '-loglevel', 'error', '-f', 'rawvideo',
                '-pix_fmt', 'rgb24' if color else 'gray', '-s', '%dx%d' % (self._padded[1], self._padded[0]),
                '-r', repr(float(self.fps)), '-i', '-', '-an', '-c:v', self.codec, '-pix_fmt', 'yuv420p']
               + quality + [self.filename])
        self._log = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log,
                                      start_new_session=True)

    def _ffmpeg_failed(self, code):
        """The ``OSError`` of an ffmpeg that stopped with exit status ``code``, with its last message."""
        self._log.seek(0)
        lines = [x for x in self._log.read().decode('utf-8', 'replace').splitlines() if x.strip()]
        reason = lines[-1].strip()[:300] if lines else 'no message'
        return OSError('writing video %r failed (ffmpeg exit status %s): %s' % (self.filename, code, reason))

    def _to_uint8(self, a):
        lo, hi = self.value_range
        v = np.clip((a - lo) * (255.0 / (hi - lo)), 0, 255)
        v = np.rint(v).astype(np.uint8)
        if a.ndim == 4:
            v = np.moveaxis(v, 1, -1)
            if v.shape[-1] == 1:
                v = np.repeat(v, 3, axis=-1)
            elif v.shape[-1] != 3:
                raise ValueError('a colour video needs 3 channels, not %d' % v.shape[-1])
        elif self.channels:
            v = np.repeat(v[..., None], 3, axis=-1)
        ph, pw = self._padded[0] - v.shape[1], self._padded[1] - v.shape[2]
        if ph or pw:
            pad = [(0, 0), (0, ph), (0, pw)] + ([(0, 0)] if v.ndim == 4 else [])
            v = np.pad(v, pad, mode='edge')
        return np.ascontiguousarray(v)

    def _write(self, a):
        if self._finished:
            raise ValueError('%s: the video %r is finished (after flush or close); an mp4 cannot be appended to'
                             % (self._name(), self.filename))
        if np.isnan(a).any():
            raise ValueError('VideoWriter %r: the frames hold NaN values (frames %d...%d)'
                             % (self.filename, self.frames_written, self.frames_written + a.shape[0] - 1))
        if self._proc is None:
            self._start(a)
        if tuple(a.shape[-2:]) != self.size:
            raise ValueError('the video has frames of %s pixels; cannot put frames of %s' % (self.size, a.shape[-2:]))
        v = self._to_uint8(a)
        try:
            self._proc.stdin.write(v.tobytes())
        except OSError:
            raise self._stop() or self._ffmpeg_failed(self._proc.returncode) from None

    def _stop(self):
        """Ends ffmpeg (input closed, waits for it); the ``OSError`` to raise if it failed, else ``None``."""
        self._finished = True
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        code = self._proc.wait()
        if code != 0:
            return self._ffmpeg_failed(code)
        if not os.path.isfile(self.filename) or os.path.getsize(self.filename) == 0:
            return OSError('writing video %r failed: ffmpeg left no file' % self.filename)
        return None

    def _flush(self):
        self._close()

    def _close(self):
        if self._proc is None:
            return
        try:
            error = self._stop() if self._proc.returncode is None else None
        finally:
            self._log.close()
        if error is not None:
            raise error


def _check_writable(filename, folder):
    """``PermissionError`` (or ``IsADirectoryError``) when ``filename`` cannot be written (read-only disk, ...)."""
    if os.path.isdir(filename):
        raise IsADirectoryError('cannot write %r: it is a folder' % filename)
    target = filename if os.path.exists(filename) else folder
    if not os.access(target, os.W_OK):
        raise PermissionError('cannot write %r: %s is not writable (read-only file system or no permission)'
                              % (filename, 'the file' if target == filename else 'folder %r' % folder))
