"""Kernel-free exports of views: a self-contained HTML player, mp4 and gif movies.

A live :class:`~convis_widgets.TensorView` is a Jupyter widget: an exported notebook (``jupyter nbconvert
--to html``, GitHub, a Voila-static page) shows nothing where it was, because the page cannot reach the
widget's kernel or its JavaScript.  :func:`animation_html` makes what those pages can show: one ``text/html``
cell output that holds everything,

* a poster ``<img>`` per panel (a PNG ``data:`` URI of the frame with the most contrast, unless told), so
  renderers that strip scripts (GitHub, sanitised untrusted notebooks) still show a picture, with its
  title and a colour bar (``vmin``, ``vmax`` and unit);
* the frames as sprite sheets: the quantised uint8 levels of the view (256 levels of its colour scale,
  :func:`convis_widgets.frames.quantise`) tiled into palette PNGs (one byte a pixel before compression,
  the colour map as palette), as ``data:`` URIs;
* an inline ``<script>`` player: play/pause, a frame slider, the frame rate, the model time of the frame;
  several panels (the explorer's input and outputs) share one time cursor;
* a caption with the size: ``100 frames, 64x64 px, 25 fps, 9 kB``.

Nothing refers to anything outside the output (no URLs, no widget state), so it plays from a ``file://``
page with the network off.  Frames larger than ``max_size`` pixels are averaged down by an integer factor,
and more than ``max_frames`` frames are thinned to every k-th (the frame rate divided by k, so the movie
keeps its duration); the caption says so.

>>> view = TensorView(np.random.rand(100, 32, 32), colormap='viridis')   # doctest: +SKIP
>>> view.embed()                       # doctest: +SKIP   (a player that survives nbconvert)
>>> view.save('movie.mp4')             # doctest: +SKIP   (or .gif)
"""
import html
import io
import json
import math
import os
import tempfile
import uuid
from base64 import b64encode

import numpy as np

__all__ = ['colormap_lut', 'Panel', 'panels_of', 'animation_html', 'poster_html', 'html_page', 'embed', 'save_movie', 'SHEET_PIXELS',
           'MOVIE_FORMATS']

# The colour maps of the browser (labextension/src/colormaps.ts): 17 evenly spaced control colours each,
# interpolated linearly to 256 entries.  tests/test_widgets_embed.py checks that both files agree.
_CONTROL = {
    'gray': '000000101010202020303030404040505050606060707070808080909090a0a0a0b0b0b0c0c0c0d0d0d0e0e0e0f0f0f0ffffff',
    'viridis': '44015448186a472d7b4240863b528b33638d2c728e26828e21918c1fa08828ae803fbc735ec96284d44baddc30d8e219'
               'fde725',
    'magma': '0000040a08221d114736106b51127c6a1c818326819c2e7fb73779d0416fe75263f56b5cfc8961fea772fec488fde2a3'
             'fcfdbf',
    'inferno': '0000040b0724210c4a3d096557106e71196e8a226aa32c61bc3754d24644e45a31f1731df98e09fcac11f9cb35f2ea69'
               'fcffa4',
    'RdBu': '0530611752902a71b23f8ec06bacd19bc9e0c2ddece0ecf3f7f6f6fbe5d8fbccb4f5aa89e48066d05548ba2832930e2667001f',
    'coolwarm': '3b4cc04e68d86282ea779af78db0fea3c2feb9d0f9ccd9eddddcdcecd3c5f5c4acf7b093f4987aeb7d62dd5f4bca3b37'
                'b40426',
    'hot': '0b00003500005f0000890000b30000dd0000ff0800ff3200ff5c00ff8600ffb000ffda00ffff07ffff46ffff85ffffc4ffffff',
}

SHEET_PIXELS = 4096
"""Largest width and height of one sprite sheet in pixels (browsers decode such images everywhere)."""

MOVIE_FORMATS = ('.mp4', '.gif')
"""File name endings :func:`save_movie` writes."""


def colormap_lut(name):
    """The colour map ``name`` as a ``(256, 3)`` uint8 RGB table, exactly as the browser computes it."""
    if name not in _CONTROL:
        raise ValueError('colormap must be one of %s, not %r' % (tuple(_CONTROL), name))
    hexes = _CONTROL[name]
    points = np.array([[int(hexes[i + k:i + k + 2], 16) for k in (0, 2, 4)] for i in range(0, len(hexes), 6)],
                      np.float64)
    n = len(points) - 1
    x = np.arange(256) / 255.0 * n
    i = np.minimum(np.floor(x).astype(int), n - 1)
    f = (x - i)[:, None]
    # Math.round in the browser rounds halves up
    return np.floor(points[i] * (1 - f) + points[i + 1] * f + 0.5).astype(np.uint8)


class Panel(object):
    """One animated picture of an export: uint8 frames ``(t, x, y)`` with their colour scale and labels.

    ``frames`` are levels 0..255 between ``vmin`` and ``vmax`` (in ``unit``), shown with ``colormap``;
    ``dt`` is the model time per frame in seconds, ``fps`` the playback speed in frames per second.
    """

    def __init__(self, frames, colormap='gray', vmin=0.0, vmax=1.0, title='', unit='', dt=0.001, fps=25.0):
        frames = np.asarray(frames)
        if frames.ndim != 3 or frames.dtype != np.uint8:
            raise ValueError('frames must be uint8 (t, x, y), not %s %s' % (frames.dtype, frames.shape))
        if frames.shape[0] == 0 or min(frames.shape[1:]) == 0:
            raise ValueError('nothing to export: the frames have the shape %s' % (frames.shape,))
        if not 0 < fps <= 1000:
            raise ValueError('fps must be in (0, 1000], not %r' % (fps,))
        colormap_lut(colormap)
        self.frames, self.colormap, self.vmin, self.vmax = frames, colormap, float(vmin), float(vmax)
        self.title, self.unit, self.dt, self.fps = str(title), str(unit), float(dt), float(fps)


def panels_of(*views):
    """A :class:`Panel` per TensorView (its shown batch and channel, colour scale, title, unit, dt and fps)."""
    panels = []
    for v in views:
        frames = v.frames()
        if frames.shape[0] == 0:
            raise ValueError('the view %r has no frames to export' % (v.title or 'untitled',))
        panels.append(Panel(frames, v.colormap, v.vmin, v.vmax, v.title, v.unit, v.dt, v.fps))
    return panels


def _downscale(frames, factor):
    """Frames averaged over ``factor`` x ``factor`` blocks (edges padded by repetition), rounded to uint8."""
    if factor == 1:
        return frames
    t, x, y = frames.shape
    px, py = -x % factor, -y % factor
    a = np.pad(frames, ((0, 0), (0, px), (0, py)), mode='edge').astype(np.float32)
    a = a.reshape(t, (x + px) // factor, factor, (y + py) // factor, factor).mean(axis=(2, 4))
    return np.rint(a).astype(np.uint8)


def _png(levels, lut):
    """A palette PNG of uint8 ``levels`` (2-d) with the colour table ``lut`` (256, 3)."""
    from PIL import Image
    im = Image.fromarray(np.ascontiguousarray(levels), 'P')
    im.putpalette(lut.tobytes())
    buf = io.BytesIO()
    im.save(buf, 'PNG', compress_level=6)
    return buf.getvalue()


def _data_uri(png):
    return 'data:image/png;base64,' + b64encode(png).decode('ascii')


def _sheets(frames, lut):
    """The frames tiled row by row into palette PNGs of at most SHEET_PIXELS a side: (uris, cols, rows)."""
    t, h, w = frames.shape
    cols = max(1, min(t, SHEET_PIXELS // w))
    rows = max(1, min(-(-t // cols), SHEET_PIXELS // h))
    uris = []
    for start in range(0, t, cols * rows):
        chunk = frames[start:start + cols * rows]
        r = -(-len(chunk) // cols)
        sheet = np.zeros((r * h, cols * w), np.uint8)
        for k, f in enumerate(chunk):
            sheet[(k // cols) * h:(k // cols + 1) * h, (k % cols) * w:(k % cols + 1) * w] = f
        uris.append(_data_uri(_png(sheet, lut)))
    return uris, cols, rows


def _most_contrast(frames):
    return int(np.argmax(frames.reshape(len(frames), -1).astype(np.float32).std(axis=1)))


def _size_text(n):
    return '%.0f kB' % (n / 1000.0) if n < 10 ** 6 else '%.1f MB' % (n / 1e6)


def _number(v, span):
    """``v`` to 4 significant digits of the scale's width ``span`` (so that 6e-07 on a scale of 1 reads 0)."""
    digits = 3 - int(math.floor(math.log10(span))) if span > 0 else 3
    return '%.6g' % (round(v, digits) + 0.0)


_STYLE = '''<style>
.convis-embed{font:12px/1.4 sans-serif;color:#222}
.convis-embed-panels{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
.convis-embed-panel{margin:0}
.convis-embed-title{font-weight:bold;margin-bottom:2px}
.convis-embed img.convis-embed-poster,.convis-embed canvas{image-rendering:pixelated;display:block}
.convis-embed-bar{display:flex;justify-content:space-between;font-size:11px}
.convis-embed-controls{display:flex;gap:8px;align-items:center;margin:6px 0}
.convis-embed-controls input[type=number]{width:4.5em}
.convis-embed-caption{color:#666;font-size:11px}
</style>'''

# The player: swaps each poster for a canvas once the sprite sheets are decoded, then draws frame i of every
# panel (clamped to the panel's length) from its sheet; plain ES5, no external resources.
_PLAYER = '''(function () {
  var root = document.getElementById('%(id)s');
  if (!root || root.getAttribute('data-player')) { return; }
  root.setAttribute('data-player', 'loading');
  var spec = JSON.parse(root.querySelector('script.convis-embed-data').textContent);
  var figures = root.querySelectorAll('.convis-embed-panel');
  var n = 0, frame = spec.poster, fps = spec.fps, timer = null;
  var panels = spec.panels.map(function (p, k) {
    n = Math.max(n, p.n);
    var poster = figures[k].querySelector('img.convis-embed-poster');
    var canvas = document.createElement('canvas');
    canvas.width = p.width; canvas.height = p.height; canvas.className = 'convis-embed-canvas';
    canvas.style.width = poster.getAttribute('width') + 'px';
    canvas.style.height = poster.getAttribute('height') + 'px';
    var sheets = p.sheets.map(function (uri) { var im = new Image(); im.src = uri; return im; });
    return {p: p, poster: poster, canvas: canvas, ctx: canvas.getContext('2d'), sheets: sheets};
  });
  var controls = document.createElement('div');
  controls.className = 'convis-embed-controls';
  controls.innerHTML = '<button type="button" class="convis-embed-play" title="play / pause">&#9654;</button>' +
    '<input type="range" class="convis-embed-slider" min="0" step="1">' +
    '<label>fps <input type="number" class="convis-embed-fps" min="0.1" max="1000" step="any"></label>' +
    '<span class="convis-embed-label"></span>';
  var play = controls.querySelector('.convis-embed-play'), slider = controls.querySelector('.convis-embed-slider');
  var fpsInput = controls.querySelector('.convis-embed-fps'), label = controls.querySelector('.convis-embed-label');
  slider.max = n - 1; fpsInput.value = fps;
  function draw(i) {
    frame = i;
    panels.forEach(function (q) {
      var j = Math.min(i, q.p.n - 1), per = q.p.cols * q.p.rows, r = j %% per;
      q.ctx.drawImage(q.sheets[Math.floor(j / per)], (r %% q.p.cols) * q.p.width,
                      Math.floor(r / q.p.cols) * q.p.height, q.p.width, q.p.height, 0, 0, q.p.width, q.p.height);
    });
    slider.value = i;
    label.textContent = 'frame ' + (i * spec.step) + ' / ' + spec.total + ', t = ' +
      (i * spec.step * spec.dt * 1000).toFixed(1) + ' ms';
    root.setAttribute('data-frame', i);
  }
  function stop() { if (timer !== null) { clearTimeout(timer); timer = null; } play.innerHTML = '&#9654;'; }
  function tick() {
    draw((frame + 1) %% n);
    timer = setTimeout(tick, 1000 / fps);
  }
  play.onclick = function () {
    if (timer !== null) { stop(); } else { play.innerHTML = '&#10074;&#10074;'; timer = setTimeout(tick, 1000 / fps); }
  };
  slider.oninput = function () { stop(); draw(parseInt(slider.value, 10)); };
  fpsInput.onchange = function () {
    var v = parseFloat(fpsInput.value);
    if (v > 0 && v <= 1000) { fps = v; } else { fpsInput.value = fps; }
  };
  var pending = panels.reduce(function (s, q) { return s + q.sheets.length; }, 0);
  function loaded() {
    if (--pending > 0) { return; }
    panels.forEach(function (q) {
      q.ctx.imageSmoothingEnabled = false;
      q.poster.style.display = 'none';
      q.poster.parentNode.insertBefore(q.canvas, q.poster.nextSibling);
    });
    root.querySelector('.convis-embed-panels').parentNode.insertBefore(
      controls, root.querySelector('.convis-embed-caption'));
    draw(frame);
    root.setAttribute('data-player', 'ready');
  }
  panels.forEach(function (q) {
    q.sheets.forEach(function (im) {
      if (im.complete && im.naturalWidth) { loaded(); } else { im.onload = loaded; }
      im.onerror = function () { root.setAttribute('data-player', 'failed'); };
    });
  });
})();'''


def _colour_bar(panel, lut, width):
    bar = _data_uri(_png(np.arange(256, dtype=np.uint8)[None], lut))
    unit = ' ' + html.escape(panel.unit) if panel.unit else ''
    span = panel.vmax - panel.vmin
    return ('<img class="convis-embed-colorbar" src="%s" alt="colour bar" width="%d" height="10" '
            'style="display:block;image-rendering:auto">'
            '<div class="convis-embed-bar"><span>%s%s</span><span>%s%s</span></div>'
            % (bar, width, _number(panel.vmin, span), unit, _number(panel.vmax, span), unit))


def animation_html(panels, poster=None, max_size=256, max_frames=1000, zoom=None, fps=None):
    """A self-contained HTML player of one or more :class:`Panel` s sharing one time cursor (a str).

    Parameters
    ----------
    panels : Panel or list of Panel
        the pictures, side by side; the first gives the frame rate and the time per frame
    poster : int or None
        the frame shown before the player starts and where scripts do not run (default: the frame with the
        largest spatial standard deviation of the first panel)
    max_size : int
        frames whose width or height exceeds this many pixels are averaged down by an integer factor
    max_frames : int
        more frames than this are thinned to every k-th frame (and the frame rate divided by k)
    zoom : float or None
        screen pixels per (exported) pixel; default about 256 screen pixels for the widest panel
    fps : float or None
        playback speed in frames per second (default: the first panel's)

    The caption reports the frames, their size, the frame rate and the size of the whole output.
    """
    panels = [panels] if isinstance(panels, Panel) else list(panels)
    if not panels:
        raise ValueError('nothing to export: no panels')
    if int(max_size) < 1 or int(max_frames) < 1:
        raise ValueError('max_size and max_frames must be at least 1, not %r and %r' % (max_size, max_frames))
    total = max(len(p.frames) for p in panels)
    step = max(1, math.ceil(total / int(max_frames)))
    fps = float(panels[0].fps if fps is None else fps) / step
    if not 0 < fps <= 1000:
        raise ValueError('fps must be in (0, 1000], not %r' % (fps * step,))
    factor = max(1, max(math.ceil(max(p.frames.shape[1:]) / float(max_size)) for p in panels))
    frames = [_downscale(p.frames[::step], factor) for p in panels]
    n = max(len(f) for f in frames)
    poster = _most_contrast(frames[0]) if poster is None else int(poster) // step
    if not 0 <= poster < n:
        raise ValueError('poster must be a frame in [0, %d), not %r' % (total, poster * step))
    widest = max(f.shape[2] for f in frames)
    zoom = float(zoom) if zoom else max(1.0, round(256.0 / widest))
    uid = 'convis-embed-' + uuid.uuid4().hex
    spec = {'poster': poster, 'fps': fps, 'step': step, 'total': total, 'dt': panels[0].dt, 'panels': []}
    figures = []
    for panel, f in zip(panels, frames):
        lut = colormap_lut(panel.colormap)
        uris, cols, rows = _sheets(f, lut)
        spec['panels'].append({'n': len(f), 'width': f.shape[2], 'height': f.shape[1], 'cols': cols,
                               'rows': rows, 'sheets': uris})
        w, h = int(round(f.shape[2] * zoom)), int(round(f.shape[1] * zoom))
        title = html.escape(panel.title)
        figures.append(
            '<figure class="convis-embed-panel" style="width:%dpx">%s'
            '<img class="convis-embed-poster" src="%s" width="%d" height="%d" alt="%s">%s</figure>'
            % (w, '<div class="convis-embed-title">%s</div>' % title if title else '',
               _data_uri(_png(f[min(poster, len(f) - 1)], lut)), w, h,
               html.escape('%s frame %d' % (panel.title, poster * step)).strip(), _colour_bar(panel, lut, w)))
    t, x, y = panels[0].frames.shape
    notes = []
    if factor > 1:
        notes.append('averaged down %dx to %dx%d px' % (factor, frames[0].shape[1], frames[0].shape[2]))
    if step > 1:
        notes.append('every %s frame' % ('%d%s' % (step, 'nd' if step == 2 else 'rd' if step == 3 else 'th')))
    placeholder = uid + '-size'
    caption = '%d frames, %dx%d px%s, %s fps, %s' % (
        total, x, y, ' (%s)' % '; '.join(notes) if notes else '', '%.4g' % fps, placeholder)
    data = json.dumps(spec, separators=(',', ':')).replace('<', '\\u003c')
    out = ('<div class="convis-embed" id="%s">%s<div class="convis-embed-panels">%s</div>'
           '<div class="convis-embed-caption">%s</div>'
           '<script type="application/json" class="convis-embed-data">%s</script>'
           '<script type="text/javascript">%s</script></div>'
           % (uid, _STYLE, ''.join(figures), html.escape(caption), data, _PLAYER % {'id': uid}))
    size = len(out.encode('utf-8')) - len(placeholder)
    size += len(_size_text(size + 8))
    return out.replace(placeholder, _size_text(size), 1)


def poster_html(panel, max_size=256):
    """A still picture of a :class:`Panel` in plain HTML: its title, the frame with most contrast, colour bar, size.

    A live view offers this beside its widget (``TensorView._repr_mimebundle_``): JupyterLab, Notebook 7 and
    Voila draw the widget, while ``jupyter nbconvert --to html`` of a notebook saved without widget state (and
    any page without the widget's JavaScript) shows this picture where the view was.  No script, no URL;
    frames larger than ``max_size`` pixels are averaged down.
    """
    factor = max(1, math.ceil(max(panel.frames.shape[1:]) / float(max_size)))
    k = _most_contrast(panel.frames)
    frame = _downscale(panel.frames[k:k + 1], factor)[0]
    lut = colormap_lut(panel.colormap)
    zoom = max(1.0, round(256.0 / frame.shape[1]))
    w, h = int(round(frame.shape[1] * zoom)), int(round(frame.shape[0] * zoom))
    t, x, y = panel.frames.shape
    title = html.escape(panel.title)
    caption = ('%s frame %d of %d, %dx%d px: a still of a live view (view.embed() makes a player that '
               'survives export)' % (panel.title or 'TensorView', k, t, x, y))
    return ('<div class="convis-embed convis-static">%s<figure class="convis-embed-panel" style="width:%dpx">%s'
            '<img class="convis-embed-poster" src="%s" width="%d" height="%d" alt="%s">%s</figure>'
            '<div class="convis-embed-caption">%s</div></div>'
            % (_STYLE, w, '<div class="convis-embed-title">%s</div>' % title if title else '',
               _data_uri(_png(frame, lut)), w, h, html.escape('%s frame %d' % (panel.title, k)).strip(),
               _colour_bar(panel, lut, w), html.escape(caption)))


def html_page(fragment, title=''):
    """``fragment`` (from :func:`animation_html`) as a whole HTML document: UTF-8 declared, ``title`` as its title.

    A file saved from the fragment alone leaves its encoding to the browser's guess (a unit such as µm may
    read as mojibake) and has no title; this is what the Export button of a view downloads.
    """
    return ('<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>%s</title></head>\n<body>%s</body></html>\n'
            % (html.escape(title or 'convis export'), fragment))


def embed(panels, **kwargs):
    """Shows :func:`animation_html` of ``panels`` as a cell output of its own (``text/html``); returns None.

    The output plays in JupyterLab, in ``jupyter nbconvert --to html`` pages and Voila without a kernel;
    where scripts are stripped its poster frames remain.
    """
    from IPython.display import HTML, display
    display(HTML(animation_html(panels, **kwargs)))


def _open_checked(path):
    """Creates an empty temporary file beside ``path`` (so that a failing write leaves no half movie)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError('cannot write the movie to %r: it is a directory' % (path,))
    try:
        fd, tmp = tempfile.mkstemp(prefix='.convis-movie-', suffix=os.path.splitext(path)[1], dir=folder)
    except OSError as e:
        raise type(e)(e.errno, 'cannot write the movie to %r: %s' % (path, e.strerror)) from e
    os.close(fd)
    return tmp


def save_movie(panel, path, fps=None, scale=None):
    """Writes the frames of a :class:`Panel` as a movie: ``.mp4`` (H.264, imageio-ffmpeg) or ``.gif`` (looping).

    ``fps`` (frames per second) defaults to the panel's; ``scale`` is an integer number of movie pixels per
    frame pixel (nearest neighbour; default: about 256 pixels wide, like the view).  The colours are those of
    the panel's colour map.  The movie is written to a temporary file beside ``path`` and renamed when
    complete: a failure (unwritable folder, full disk, a missing encoder) raises an ``OSError`` or
    ``RuntimeError`` naming the path and leaves nothing behind.  Returns the path.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in MOVIE_FORMATS:
        raise ValueError('a movie file name must end with one of %s, not %r' % (MOVIE_FORMATS, path[-40:]))
    fps = float(panel.fps if fps is None else fps)
    if not 0 < fps <= 1000:
        raise ValueError('fps must be in (0, 1000], not %r' % (fps,))
    t, h, w = panel.frames.shape
    scale = int(scale) if scale else max(1, int(round(256.0 / w)))
    if scale < 1:
        raise ValueError('scale must be a positive integer, not %r' % (scale,))
    levels = panel.frames.repeat(scale, axis=1).repeat(scale, axis=2)
    lut = colormap_lut(panel.colormap)
    tmp = _open_checked(path)
    try:
        if ext == '.gif':
            _write_gif(levels, lut, tmp, fps)
        else:
            _write_mp4(levels, lut, tmp, fps)
        os.replace(tmp, path)
    except Exception as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError):
            raise type(e)(e.errno, 'cannot write the movie to %r: %s' % (path, e.strerror or e)) from e
        raise RuntimeError('cannot write the movie to %r: %s: %s' % (path, type(e).__name__, e)) from e
    return path


def _write_gif(levels, lut, path, fps):
    """A looping palette GIF: each frame its levels, the colour map its palette (exact colours)."""
    from PIL import Image
    images = []
    for f in levels:
        im = Image.fromarray(np.ascontiguousarray(f), 'P')
        im.putpalette(lut.tobytes())
        images.append(im)
    # GIF delays are whole hundredths of a second
    images[0].save(path, 'GIF', save_all=True, append_images=images[1:], duration=1000.0 / fps, loop=0,
                   optimize=False, disposal=1)


def _write_mp4(levels, lut, path, fps):
    """An H.264 mp4 (yuv420p, so the frame is padded by repeating its edge to even width and height)."""
    import imageio.v2 as imageio
    t, h, w = levels.shape
    writer = imageio.get_writer(path, format='FFMPEG', mode='I', fps=fps, codec='libx264', quality=8,
                                macro_block_size=1, pixelformat='yuv420p', ffmpeg_log_level='error')
    try:
        for f in levels:
            writer.append_data(np.pad(lut[f], ((0, h % 2), (0, w % 2), (0, 0)), mode='edge'))
    finally:
        writer.close()
