"""Kernel-free exports (convis_widgets/embed.py): the HTML player's content, mp4 and gif movies, their errors."""
import base64
import io
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

import convis
from convis_widgets import TensorView, embed as embed_module
from convis_widgets.embed import Panel, animation_html, colormap_lut, panels_of

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def spec_of(text):
    """The player's JSON data (frames as data: URIs) of an exported HTML."""
    m = re.search(r'<script type="application/json" class="convis-embed-data">(.*?)</script>', text, re.S)
    return json.loads(m.group(1))


def decode_uri(uri):
    assert uri.startswith('data:image/png;base64,')
    return Image.open(io.BytesIO(base64.b64decode(uri.split(',', 1)[1])))


def decoded_frames(panel_spec):
    """The frames (t, x, y) as uint8 levels, cut out of the panel's decoded sprite sheets."""
    w, h, cols, rows = (panel_spec[k] for k in ('width', 'height', 'cols', 'rows'))
    frames = []
    for uri in panel_spec['sheets']:
        im = decode_uri(uri)
        assert im.mode == 'P'
        sheet = np.asarray(im)
        for k in range(cols * rows):
            r, c = divmod(k, cols)
            if len(frames) < panel_spec['n'] and (r + 1) * h <= sheet.shape[0]:
                frames.append(sheet[r * h:(r + 1) * h, c * w:(c + 1) * w])
    return np.stack(frames[:panel_spec['n']])


def posters(text):
    return [decode_uri(u) for u in re.findall(r'<img class="convis-embed-poster" src="([^"]+)"', text)]


def caption(text):
    return re.search(r'class="convis-embed-caption">([^<]*)<', text).group(1)


def grating_view(**kw):
    t = np.arange(40)[:, None, None]
    x = np.arange(12)[None, :, None]
    y = np.arange(10)[None, None, :]
    data = np.sin(0.3 * t + 0.5 * x) * np.cos(0.2 * y) * (1 + 0.02 * t)
    return TensorView(data, colormap=kw.pop('colormap', 'viridis'), fps=kw.pop('fps', 20.0), title='grating',
                      unit='cd/m2', **kw)


# ---------------------------------------------------------------------------- colour maps
def test_colormaps_agree_with_the_browser_and_end_at_their_control_colours():
    with open(os.path.join(ROOT, 'labextension', 'src', 'colormaps.ts')) as f:
        ts = f.read()
    body = ts[ts.index('const CONTROL'):ts.index('};')]
    browser = {}
    for name, parts in re.findall(r"(\w+):\s*((?:'[0-9a-f]+'\s*)+)", body):
        browser[name] = ''.join(re.findall(r"'([0-9a-f]+)'", parts))
    assert browser == embed_module._CONTROL
    lut = colormap_lut('viridis')
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert lut[0].tolist() == [0x44, 0x01, 0x54] and lut[255].tolist() == [0xfd, 0xe7, 0x25]
    gray = colormap_lut('gray').astype(int)
    assert gray[0].tolist() == [0, 0, 0] and gray[255].tolist() == [255, 255, 255]
    assert (np.diff(gray[:, 0]) >= 0).all() and (gray[:, 0] == gray[:, 2]).all()
    assert gray[128].tolist() == [129, 129, 129]        # 128 + 16 * (128 / 255 * 16 - 8), rounded half up
    with pytest.raises(ValueError, match='colormap must be one of'):
        colormap_lut('jet')


# ---------------------------------------------------------------------------- the HTML
def test_the_html_holds_a_poster_the_exact_frames_and_its_size():
    view = grating_view()
    text = view.to_html()
    spec = spec_of(text)
    assert spec['fps'] == 20.0 and spec['step'] == 1 and spec['total'] == 40
    (panel,) = spec['panels']
    frames = decoded_frames(panel)
    np.testing.assert_array_equal(frames, view.frames())
    palette = np.array(decode_uri(panel['sheets'][0]).getpalette()[:768], np.uint8).reshape(256, 3)
    np.testing.assert_array_equal(palette, colormap_lut('viridis'))
    (poster,) = posters(text)
    want = int(np.argmax(view.frames().reshape(40, -1).astype(float).std(axis=1)))
    assert spec['poster'] == want
    np.testing.assert_array_equal(np.asarray(poster), view.frames()[want])
    assert '<div class="convis-embed-title">grating</div>' in text
    assert 'cd/m2' in text
    m = re.fullmatch(r'40 frames, 12x10 px, 20 fps, (\d+) kB', caption(text))
    assert m, caption(text)
    assert abs(int(m.group(1)) * 1000 - len(text.encode())) <= 500


def test_the_html_refers_to_nothing_outside_itself():
    text = grating_view().to_html()
    rest = re.sub(r'data:image/png;base64,[A-Za-z0-9+/=]+', 'DATA', text)
    assert not re.search(r'https?:|//[a-z]|url\(|@import|href=|\bsrc=(?!"DATA")', rest, re.I)
    sources = re.findall(r'\bsrc="([^"]*)"', text)
    assert sources and all(s.startswith('data:image/png;base64,') for s in sources)
    assert text.count('<script') == 2 and '<iframe' not in text


def test_an_explicit_poster_and_frames_spread_over_several_sheets(monkeypatch):
    monkeypatch.setattr(embed_module, 'SHEET_PIXELS', 40)      # 4 x 3 frames of 12 x 10 px a sheet
    view = grating_view()
    text = view.to_html(poster=7)
    spec = spec_of(text)
    (panel,) = spec['panels']
    assert (panel['cols'], panel['rows'], len(panel['sheets'])) == (4, 3, 4)
    np.testing.assert_array_equal(decoded_frames(panel), view.frames())
    assert spec['poster'] == 7
    np.testing.assert_array_equal(np.asarray(posters(text)[0]), view.frames()[7])


def test_large_frames_are_averaged_down_and_long_views_thinned():
    data = np.random.default_rng(1).random((50, 30, 31)).astype(np.float32)
    view = TensorView(data, vmin=0.0, vmax=1.0, fps=30.0)
    text = view.to_html(max_size=10, max_frames=20)
    spec = spec_of(text)
    assert spec['step'] == 3 and spec['fps'] == pytest.approx(10.0)
    (panel,) = spec['panels']
    assert (panel['n'], panel['height'], panel['width']) == (17, 8, 8)        # 31 px / 4 <= 10 px
    levels = view.frames()[::3].astype(float)
    padded = np.pad(levels, ((0, 0), (0, 2), (0, 1)), mode='edge')
    want = np.rint(padded.reshape(17, 8, 4, 8, 4).mean(axis=(2, 4))).astype(np.uint8)
    np.testing.assert_array_equal(decoded_frames(panel), want)
    assert caption(text).startswith('50 frames, 30x31 px (averaged down 4x to 8x8 px; every 3rd frame), 10 fps')


def test_several_panels_share_one_player():
    a, b = grating_view(), TensorView(np.random.rand(25, 6, 6), title='noise', colormap='hot')
    text = animation_html(panels_of(a, b))
    spec = spec_of(text)
    assert [p['n'] for p in spec['panels']] == [40, 25]
    np.testing.assert_array_equal(decoded_frames(spec['panels'][1]), b.frames())
    assert len(posters(text)) == 2 and text.count('convis-embed-colorbar') == 2
    assert text.count('<script type="text/javascript">') == 1


def test_embed_shows_one_text_html_output(monkeypatch):
    shown = []
    monkeypatch.setattr('IPython.display.display', lambda *objs, **kw: shown.extend(objs))
    view = grating_view()
    assert view.embed() is None
    (obj,) = shown
    data = obj._repr_html_()
    assert data.startswith('<div class="convis-embed"') and spec_of(data)['total'] == 40


def test_the_explorer_embeds_its_input_and_outputs_side_by_side(monkeypatch):
    from convis_widgets import ModelExplorer
    shown = []
    monkeypatch.setattr('IPython.display.display', lambda *objs, **kw: shown.extend(objs))
    model = convis.models.LN((3, 3, 3))
    e = ModelExplorer(model, shape=(20, 8, 8), impulse=False, device=None)
    try:
        assert e.wait(60)
        e.embed()
    finally:
        e.close()
    text = shown[0]._repr_html_()
    spec = spec_of(text)
    assert len(spec['panels']) == 2
    titles = re.findall(r'<div class="convis-embed-title">([^<]*)</div>', text)
    assert titles[0] == 'input' and len(titles) == 2
    np.testing.assert_array_equal(decoded_frames(spec['panels'][1]), e.output_views[0].frames())


def test_bad_requests_raise_clear_errors():
    with pytest.raises(ValueError, match='no frames to export'):
        TensorView().to_html()
    with pytest.raises(ValueError, match=r'poster must be a frame in \[0, 40\)'):
        grating_view().to_html(poster=40)
    with pytest.raises(ValueError, match='uint8'):
        Panel(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match='max_size and max_frames'):
        grating_view().to_html(max_size=0)


# ---------------------------------------------------------------------------- movies
def test_a_gif_has_the_views_colours_frames_and_rate(tmp_path):
    view = grating_view(fps=10.0)
    path = view.save(str(tmp_path / 'movie.gif'), scale=2)
    im = Image.open(path)
    assert im.n_frames == 40 and im.info['duration'] == 100 and im.info['loop'] == 0
    lut = colormap_lut('viridis')
    for i in (0, 17, 39):
        im.seek(i)
        rgb = np.asarray(im.convert('RGB'))
        want = lut[view.frames()[i].repeat(2, 0).repeat(2, 1)]
        np.testing.assert_array_equal(rgb, want)
    assert os.listdir(tmp_path) == ['movie.gif']


def test_an_mp4_has_the_views_rate_frames_and_colours(tmp_path):
    import imageio.v2 as imageio
    view = grating_view(fps=12.0, colormap='gray')
    path = view.save(tmp_path / 'movie.mp4')            # 10 px wide: scale 26 -> 312 x 260 px
    reader = imageio.get_reader(path)
    meta = reader.get_meta_data()
    assert meta['fps'] == 12.0 and meta['size'] == (260, 312)
    frames = [f for f in reader]
    reader.close()
    assert len(frames) == 40
    want = colormap_lut('gray')[view.frames()[5].repeat(26, 0).repeat(26, 1)]
    assert np.abs(frames[5].astype(float) - want).mean() < 3.0         # H.264 is lossy, but not by much
    assert os.listdir(tmp_path) == ['movie.mp4']


def test_unwritable_paths_and_unknown_formats_raise_naming_the_path(tmp_path):
    view = grating_view()
    blocker = tmp_path / 'a-file'
    blocker.write_text('x')
    with pytest.raises(NotADirectoryError, match='a-file/movie.mp4'):
        view.save(str(blocker / 'movie.mp4'))
    with pytest.raises(FileNotFoundError, match='no-such-folder'):
        view.save(str(tmp_path / 'no-such-folder' / 'movie.gif'))
    (tmp_path / 'dir.gif').mkdir()
    with pytest.raises(IsADirectoryError, match='is a directory'):
        view.save(str(tmp_path / 'dir.gif'))
    with pytest.raises(ValueError, match=r"must end with one of \('.mp4', '.gif'\)"):
        view.save(str(tmp_path / 'movie.avi'))
    with pytest.raises(ValueError, match='fps'):
        view.save(str(tmp_path / 'movie.gif'), fps=0)
    assert sorted(os.listdir(tmp_path)) == ['a-file', 'dir.gif']


def test_a_failing_encoder_leaves_the_old_file_and_no_partial_movie(tmp_path, monkeypatch):
    view = grating_view()
    target = tmp_path / 'movie.mp4'
    target.write_bytes(b'old movie')

    def broken(levels, lut, path, fps):
        with open(path, 'wb') as f:
            f.write(b'half a movie')
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(embed_module, '_write_mp4', broken)
    with pytest.raises(OSError, match="cannot write the movie to '.*movie.mp4': No space left on device"):
        view.save(str(target))
    assert target.read_bytes() == b'old movie' and os.listdir(tmp_path) == ['movie.mp4']
    monkeypatch.setattr(embed_module, '_write_mp4', lambda *a: 1 / 0)
    with pytest.raises(RuntimeError, match='cannot write the movie .* ZeroDivisionError'):
        view.save(str(target))
    assert target.read_bytes() == b'old movie' and os.listdir(tmp_path) == ['movie.mp4']


def test_the_export_button_gets_the_html_player_as_a_download():
    view = grating_view()
    sent = []
    view.send = lambda content, buffers=None: sent.append((content, buffers))
    view._handle_frontend_msg(view, {'type': 'export'}, [])          # what the browser's Export button sends
    ((content, buffers),) = sent
    assert content['type'] == 'export' and content['filename'] == 'grating.html'
    text = bytes(buffers[0]).decode('utf-8')
    assert content['size'] == len(buffers[0])
    np.testing.assert_array_equal(decoded_frames(spec_of(text)['panels'][0]), view.frames())
    empty = TensorView(title='a/b c')
    empty.send = lambda content, buffers=None: sent.append((content, buffers))
    empty._handle_frontend_msg(empty, {'type': 'export'}, [])        # nothing to export: a warning, no message
    assert len(sent) == 1


def test_a_live_view_offers_a_still_beside_the_widget_for_pages_without_widgets():
    view = grating_view()
    data = view._repr_mimebundle_()
    assert sorted(data) == ['application/vnd.jupyter.widget-view+json', 'text/html', 'text/plain']
    text = data['text/html']
    assert '<script' not in text and not re.search(r'(src|href)="(https?:)?//', text)
    (uri,) = re.findall(r'class="convis-embed-poster" src="data:image/png;base64,([^"]+)"', text)
    still = Image.open(io.BytesIO(base64.b64decode(uri)))
    frames = view.frames()
    k = int(np.argmax(frames.reshape(len(frames), -1).astype(float).std(axis=1)))
    np.testing.assert_array_equal(np.asarray(still), frames[k])          # palette levels = the view's levels
    assert 'frame %d of %d' % (k, len(frames)) in text
    assert sorted(TensorView()._repr_mimebundle_()) == ['application/vnd.jupyter.widget-view+json', 'text/plain']
