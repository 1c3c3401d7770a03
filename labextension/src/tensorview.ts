/**
 * TensorView: a canvas player for the frames of a 5-d tensor.
 *
 * The kernel quantises one (batch, channel) slice of a `[batch, channel, time, x, y]`
 * tensor to uint8 with a fixed colour scale (`vmin`..`vmax`) and sends it in
 * batches of frames as binary buffers (see codec.ts).  The model keeps the frames
 * and runs the playback clock; views draw the current frame on a canvas
 * (nearest-neighbour zoom), offer the player controls, and plot the time course of
 * a clicked pixel from the frames already in the browser.
 *
 * Views expose their state as data attributes for browser tests:
 * `data-current-frame`, `data-frame-checksum` (Adler-32 of the shown uint8 frame),
 * `data-frame-version` (the kernel's data version of the last batch applied),
 * `data-frames-loaded`, `data-n-frames`, `data-generation`, `data-playing`, `data-speed` (model seconds
 * per real second of playback), `data-clipped` (fraction of values outside the colour scale).
 */
import { DOMWidgetModel, DOMWidgetView, ISerializers } from '@jupyter-widgets/base';

import { COLORMAP_NAMES, lookupTable } from './colormaps';
import { adler32, decodeBatch, IFrameBatch } from './codec';
import { MODULE_NAME, MODULE_VERSION } from './version';

interface IFramesMessage extends IFrameBatch {
  type: 'frames';
  generation: number;
  version: number;
  n_frames: number;
}

interface IControlMessage {
  type: 'drop' | 'clear';
  generation: number;
  version: number;
  count?: number;
  n_frames?: number;
}

/** Seconds between two saves of the time cursor to the kernel while playing. */
const FRAME_SAVE_INTERVAL = 250;

export class TensorViewModel extends DOMWidgetModel {
  defaults(): any {
    return {
      ...super.defaults(),
      _model_name: 'TensorViewModel',
      _model_module: MODULE_NAME,
      _model_module_version: MODULE_VERSION,
      _view_name: 'TensorViewView',
      _view_module: MODULE_NAME,
      _view_module_version: MODULE_VERSION,
      frame: 0,
      n_frames: 0,
      height: 0,
      width: 0,
      n_batch: 1,
      n_channel: 1,
      batch: 0,
      channel: 0,
      playing: false,
      fps: 25,
      loop: true,
      colormap: 'gray',
      zoom: 0,
      vmin: 0,
      vmax: 1,
      unit: '',
      title: '',
      dt: 0.001,
      selected_pixel: [],
      data_version: 0,
      clipped: 0,
      compact: false
    };
  }

  static serializers: ISerializers = {
    ...DOMWidgetModel.serializers
  };

  // Backbone calls initialize() from its constructor, before class field initializers
  // would run: every field is declared here and set in initialize().
  /** The frames of the current generation (undefined where not yet received). */
  frames!: (Uint8Array | undefined)[];
  /** Shape of the stored frames. */
  frameHeight!: number;
  frameWidth!: number;
  /** The newest generation seen, and the data version of the last batch applied. */
  generation!: number;
  version!: number;

  private _decoding!: Promise<void>;
  private _clockHandle!: number | null;
  private _anchor!: { frame: number; time: number } | null;
  private _ownFrameChange!: boolean;
  private _lastSave!: number;

  initialize(attributes: any, options: any): void {
    super.initialize(attributes, options);
    this.frames = [];
    this.frameHeight = 0;
    this.frameWidth = 0;
    this.generation = -1;
    this.version = 0;
    this._decoding = Promise.resolve();
    this._clockHandle = null;
    this._anchor = null;
    this._ownFrameChange = false;
    this._lastSave = 0;
    this.on('msg:custom', this._onMessage, this);
    this.on('change:playing', this._onPlaying, this);
    this.on('change:frame', this._onFrameChanged, this);
    this.on('change:fps', () => (this._anchor = null), this);
    this.on('destroy', this._stopClock, this);
    if (this.comm_live) {
      // Ask the kernel for the frames (also after a page reload); a saved notebook without kernel has none.
      this.send({ type: 'request' }, {});
    }
    if (this.get('playing')) {
      this._startClock();
    }
  }

  private _onMessage(content: any, buffers: DataView[]): void {
    if (content.type === 'export') {
      downloadExport(content.filename, buffers[0]);
      return;
    }
    // Decoding is asynchronous: chain it so that batches apply in the order sent.
    this._decoding = this._decoding
      .then(() => this._apply(content, buffers))
      .catch(err => console.error('convis TensorView: cannot apply a message', err));
  }

  private async _apply(content: IFramesMessage | IControlMessage, buffers: DataView[]): Promise<void> {
    if (content.generation < this.generation) {
      return;
    }
    if (content.generation > this.generation) {
      this.generation = content.generation;
    }
    if (content.type === 'clear') {
      this.frames = [];
    } else if (content.type === 'drop') {
      this.frames.splice(0, content.count || 0);
    } else if (content.type === 'frames') {
      const msg = content as IFramesMessage;
      if (msg.generation < this.generation) {
        return;
      }
      const frames = await decodeBatch(msg, buffers[0]);
      if (msg.generation < this.generation) {
        return;
      }
      if (msg.height !== this.frameHeight || msg.width !== this.frameWidth) {
        this.frames = [];
        this.frameHeight = msg.height;
        this.frameWidth = msg.width;
      }
      for (let i = 0; i < frames.length; i++) {
        this.frames[msg.start + i] = frames[i];
      }
    }
    if (content.n_frames !== undefined && this.frames.length > content.n_frames) {
      this.frames.length = content.n_frames;
    }
    this.version = content.version;
    this.trigger('frames:update');
  }

  /** Number of frames present in the browser. */
  loadedCount(): number {
    let n = 0;
    for (let i = 0; i < this.frames.length; i++) {
      if (this.frames[i] !== undefined) {
        n++;
      }
    }
    return n;
  }

  /** Moves the time cursor (from a view or the clock); saved to the kernel at most every 250 ms while playing. */
  setFrame(frame: number, fromClock: boolean): void {
    if (!fromClock) {
      this._anchor = null;
    }
    this._ownFrameChange = fromClock;
    this.set('frame', frame);
    this._ownFrameChange = false;
    const now = performance.now();
    if (!fromClock || now - this._lastSave > FRAME_SAVE_INTERVAL) {
      this._lastSave = now;
      this.save_changes();
    }
  }

  private _onFrameChanged(): void {
    if (!this._ownFrameChange) {
      // A jump from outside (scrubbing, a linked view, the kernel) restarts the clock there.
      this._anchor = null;
    }
  }

  private _onPlaying(): void {
    if (this.get('playing')) {
      this._startClock();
    } else {
      this._stopClock();
      this.save_changes();
    }
  }

  private _startClock(): void {
    if (this._clockHandle !== null) {
      return;
    }
    this._anchor = null;
    const tick = (now: number) => {
      this._clockHandle = null;
      if (!this.get('playing')) {
        return;
      }
      this._advance(now);
      this._clockHandle = requestAnimationFrame(tick);
    };
    this._clockHandle = requestAnimationFrame(tick);
  }

  private _stopClock(): void {
    if (this._clockHandle !== null) {
      cancelAnimationFrame(this._clockHandle);
      this._clockHandle = null;
    }
    this._anchor = null;
  }

  private _advance(now: number): void {
    const n = Math.max(this.get('n_frames') as number, this.frames.length);
    if (n <= 0) {
      return;
    }
    const fps = Math.max(0.1, Number(this.get('fps')) || 25);
    if (this._anchor === null) {
      this._anchor = { frame: this.get('frame'), time: now };
    }
    let target = this._anchor.frame + Math.floor(((now - this._anchor.time) * fps) / 1000);
    if (target >= n) {
      if (this.get('loop')) {
        target = target % n;
        this._anchor = { frame: target, time: now };
      } else {
        this.setFrame(n - 1, true);
        this.set('playing', false);
        this.save_changes();
        return;
      }
    }
    if (target !== this.get('frame')) {
      this.setFrame(target, true);
    }
  }
}

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  parent?: HTMLElement
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.className = className;
  if (parent) {
    parent.appendChild(e);
  }
  return e;
}

/** Playback speed as a fraction of real time: `fps` frames a second of `dt` seconds each. */
export function realTimeSpeed(fps: number, dt: number): string {
  const speed = fps * dt;
  if (!(speed > 0) || !isFinite(speed)) {
    return '';
  }
  if (Math.abs(speed - 1) < 0.005) {
    return 'real time';
  }
  if (speed < 1 && Math.abs(1 / speed - Math.round(1 / speed)) < 0.01) {
    return `1/${Math.round(1 / speed)} real time`;
  }
  return `${Number(speed.toPrecision(2))}\u00d7 real time`;
}

/** About `count` round tick values between `lo` and `hi`. */
export function ticks(lo: number, hi: number, count: number): number[] {
  if (!(hi > lo)) {
    return [lo];
  }
  const raw = (hi - lo) / Math.max(1, count);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map(m => m * power).find(v => v >= raw) || raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return out;
}

function formatValue(v: number): string {
  if (!isFinite(v)) {
    return String(v);
  }
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e4)) {
    return v.toExponential(2);
  }
  return String(Number(v.toPrecision(4)));
}

/** Saves the kernel's export (a self-contained HTML player, see convis_widgets/embed.py) as a download. */
function downloadExport(filename: string, buffer: DataView): void {
  const url = URL.createObjectURL(new Blob([buffer], { type: 'text/html' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

export class TensorViewView extends DOMWidgetView {
  model!: TensorViewModel;
  private _title!: HTMLDivElement;
  private _canvas!: HTMLCanvasElement;
  private _context!: CanvasRenderingContext2D;
  private _image: ImageData | null = null;
  private _colorbar!: HTMLCanvasElement;
  private _vminLabel!: HTMLSpanElement;
  private _vmaxLabel!: HTMLSpanElement;
  private _clipLabel!: HTMLSpanElement;
  private _speedLabel!: HTMLSpanElement;
  private _options!: HTMLDivElement;
  private _more!: HTMLButtonElement;
  private _play!: HTMLButtonElement;
  private _scrub!: HTMLInputElement;
  private _frameLabel!: HTMLSpanElement;
  private _fps!: HTMLInputElement;
  private _loop!: HTMLInputElement;
  private _cmap!: HTMLSelectElement;
  private _batch!: HTMLSelectElement;
  private _channel!: HTMLSelectElement;
  private _zoom!: HTMLSelectElement;
  private _trace!: HTMLCanvasElement;
  private _traceLabel!: HTMLDivElement;
  private _drawPending = false;

  render(): void {
    const el = this.el as HTMLElement;
    el.classList.add('convis-tensorview');
    this._title = element('div', 'convis-tv-title', el);
    const stage = element('div', 'convis-tv-stage', el);
    this._canvas = element('canvas', 'convis-tv-canvas', stage);
    this._context = this._canvas.getContext('2d') as CanvasRenderingContext2D;
    this._canvas.addEventListener('click', e => this._onClick(e));

    const bar = element('div', 'convis-tv-colorbar', el);
    this._vminLabel = element('span', 'convis-tv-vmin', bar);
    this._colorbar = element('canvas', 'convis-tv-colorbar-canvas', bar);
    this._colorbar.width = 256;
    this._colorbar.height = 1;
    this._vmaxLabel = element('span', 'convis-tv-vmax', bar);
    this._clipLabel = element('span', 'convis-tv-clipped', bar);

    const controls = element('div', 'convis-tv-controls', el);
    this._play = element('button', 'convis-tv-play', controls);
    this._play.addEventListener('click', () => {
      const playing = !this.model.get('playing');
      if (playing && this.model.get('frame') >= this._frameCount() - 1 && !this.model.get('loop')) {
        this.model.setFrame(0, false);
      }
      this.model.set('playing', playing);
      this.model.save_changes();
    });
    this._scrub = element('input', 'convis-tv-scrub', controls);
    this._scrub.type = 'range';
    this._scrub.min = '0';
    this._scrub.step = '1';
    this._scrub.addEventListener('input', () => this.model.setFrame(parseInt(this._scrub.value, 10), false));
    this._more = element('button', 'convis-tv-more', controls);
    this._more.textContent = '\u2699';
    this._more.title = 'player options';
    this._more.addEventListener('click', () => {
      this._options.style.display = this._options.style.display === 'none' ? '' : 'none';
    });
    const labels = element('div', 'convis-tv-labels', el);
    this._frameLabel = element('span', 'convis-tv-frame-label', labels);
    this._speedLabel = element('span', 'convis-tv-speed', labels);

    const options = element('div', 'convis-tv-options', el);
    this._options = options;
    this._fps = this._labelled(options, 'fps', element('input', 'convis-tv-fps'));
    this._fps.type = 'number';
    this._fps.min = '1';
    this._fps.max = '240';
    this._fps.addEventListener('change', () => this._save('fps', Math.max(1, Number(this._fps.value) || 25)));
    this._loop = this._labelled(options, 'loop', element('input', 'convis-tv-loop'));
    this._loop.type = 'checkbox';
    this._loop.addEventListener('change', () => this._save('loop', this._loop.checked));
    this._cmap = this._labelled(options, 'colormap', element('select', 'convis-tv-colormap'));
    for (const name of COLORMAP_NAMES) {
      this._cmap.add(new Option(name, name));
    }
    this._cmap.addEventListener('change', () => this._save('colormap', this._cmap.value));
    this._batch = this._labelled(options, 'batch', element('select', 'convis-tv-batch'));
    this._batch.addEventListener('change', () => this._save('batch', parseInt(this._batch.value, 10)));
    this._channel = this._labelled(options, 'channel', element('select', 'convis-tv-channel'));
    this._channel.addEventListener('change', () => this._save('channel', parseInt(this._channel.value, 10)));
    this._zoom = this._labelled(options, 'zoom', element('select', 'convis-tv-zoom'));
    for (const z of [0, 1, 2, 3, 4, 6, 8, 12, 16]) {
      this._zoom.add(new Option(z === 0 ? 'auto' : `${z}x`, String(z)));
    }
    this._zoom.addEventListener('change', () => this._save('zoom', Number(this._zoom.value)));
    const exportButton = element('button', 'convis-tv-export', options);
    exportButton.textContent = 'Export';
    exportButton.title = 'download these frames as an HTML player that needs no kernel (view.embed() shows one)';
    exportButton.addEventListener('click', () => this.send({ type: 'export' }));

    this._traceLabel = element('div', 'convis-tv-trace-label', el);
    this._trace = element('canvas', 'convis-tv-trace', el);
    this._trace.width = 320;
    this._trace.height = 110;

    const m = this.model;
    m.on('frames:update', this._scheduleDraw, this);
    m.on('change:frame', this._scheduleDraw, this);
    m.on('change:colormap', () => {
      this._drawColorbar();
      this._scheduleDraw();
    });
    m.on('change:zoom change:height change:width', this._resize, this);
    m.on('change:vmin change:vmax change:unit change:clipped', this._drawColorbar, this);
    m.on('change:compact', this._updateCompact, this);
    m.on('change:title', this._updateTitle, this);
    m.on(
      'change:playing change:fps change:loop change:n_frames change:batch change:channel ' +
        'change:n_batch change:n_channel change:selected_pixel change:dt',
      this._updateControls,
      this
    );
    this._updateTitle();
    this._updateCompact();
    this._resize();
    this._drawColorbar();
    this._updateControls();
    this._draw();
  }

  remove(): any {
    this.model.off(null, null, this);
    return super.remove();
  }

  private _labelled<T extends HTMLElement>(parent: HTMLElement, text: string, control: T): T {
    const label = element('label', 'convis-tv-option', parent);
    label.appendChild(document.createTextNode(text + ' '));
    label.appendChild(control);
    return control;
  }

  private _save(name: string, value: any): void {
    this.model.set(name, value);
    this.model.save_changes();
  }

  private _frameCount(): number {
    return Math.max(this.model.get('n_frames') as number, this.model.frames.length);
  }

  private _zoomFactor(): number {
    const z = Number(this.model.get('zoom'));
    if (z > 0) {
      return z;
    }
    const size = Math.max(this.model.get('height') as number, this.model.get('width') as number, 1);
    return Math.max(1, Math.floor(256 / size));
  }

  private _resize(): void {
    const h = Math.max(1, this.model.get('height') as number);
    const w = Math.max(1, this.model.get('width') as number);
    if (this._canvas.width !== w || this._canvas.height !== h) {
      this._canvas.width = w;
      this._canvas.height = h;
      this._image = null;
    }
    const z = this._zoomFactor();
    this._canvas.style.width = `${w * z}px`;
    this._canvas.style.height = `${h * z}px`;
    this._zoom.value = String(this.model.get('zoom'));
    this._scheduleDraw();
  }

  private _updateCompact(): void {
    const compact = Boolean(this.model.get('compact'));
    (this.el as HTMLElement).classList.toggle('convis-tv-compact', compact);
    this._more.style.display = compact ? '' : 'none';
    this._options.style.display = compact ? 'none' : '';
    this._trace.width = compact ? 240 : 320;
  }

  private _updateTitle(): void {
    const title = this.model.get('title') as string;
    this._title.textContent = title;
    this._title.style.display = title ? '' : 'none';
  }

  private _updateControls(): void {
    const m = this.model;
    const n = this._frameCount();
    this._play.textContent = m.get('playing') ? '\u275a\u275a' : '\u25b6';
    this._play.title = m.get('playing') ? 'pause' : 'play';
    this._scrub.max = String(Math.max(0, n - 1));
    this._fps.value = String(m.get('fps'));
    const speed = realTimeSpeed(Number(m.get('fps')), Number(m.get('dt')));
    this._speedLabel.textContent = speed;
    this._speedLabel.title = `${m.get('fps')} frames/s of ${formatValue(Number(m.get('dt')) * 1000)} ms each`;
    (this.el as HTMLElement).dataset.speed = String(Number(m.get('fps')) * Number(m.get('dt')));
    this._loop.checked = m.get('loop');
    this._cmap.value = m.get('colormap');
    this._fillSelect(this._batch, m.get('n_batch'), m.get('batch'));
    this._fillSelect(this._channel, m.get('n_channel'), m.get('channel'));
    this._scheduleDraw();
  }

  private _fillSelect(select: HTMLSelectElement, n: number, value: number): void {
    if (select.options.length !== n) {
      while (select.options.length > 0) {
        select.remove(0);
      }
      for (let i = 0; i < n; i++) {
        select.add(new Option(String(i), String(i)));
      }
    }
    select.value = String(value);
    (select.parentElement as HTMLElement).style.display = n > 1 ? '' : 'none';
  }

  private _drawColorbar(): void {
    const ctx = this._colorbar.getContext('2d') as CanvasRenderingContext2D;
    const image = ctx.createImageData(256, 1);
    new Uint32Array(image.data.buffer).set(lookupTable(this.model.get('colormap')));
    ctx.putImageData(image, 0, 0);
    const unit = this.model.get('unit') ? ' ' + this.model.get('unit') : '';
    this._vminLabel.textContent = formatValue(this.model.get('vmin'));
    this._vmaxLabel.textContent = formatValue(this.model.get('vmax')) + unit;
    const clipped = Number(this.model.get('clipped')) || 0;
    this._clipLabel.textContent = clipped > 0 ? `\u26a0 ${formatValue(100 * clipped)} % clipped` : '';
    this._clipLabel.title = clipped > 0 ? 'values outside the colour scale are shown with its end colours' : '';
    (this.el as HTMLElement).dataset.clipped = String(clipped);
  }

  private _scheduleDraw(): void {
    if (this._drawPending) {
      return;
    }
    this._drawPending = true;
    requestAnimationFrame(() => {
      this._drawPending = false;
      this._draw();
    });
  }

  private _draw(): void {
    const m = this.model;
    const n = this._frameCount();
    const frame = Math.min(m.get('frame') as number, Math.max(0, n - 1));
    const data = m.frames[frame];
    const h = this._canvas.height;
    const w = this._canvas.width;
    if (data !== undefined && data.length === h * w) {
      if (this._image === null) {
        this._image = this._context.createImageData(w, h);
      }
      const out = new Uint32Array(this._image.data.buffer);
      const lut = lookupTable(m.get('colormap'));
      for (let i = 0; i < data.length; i++) {
        out[i] = lut[data[i]];
      }
      this._context.putImageData(this._image, 0, 0);
    }
    this._scrub.max = String(Math.max(0, n - 1));
    this._scrub.value = String(frame);
    const dt = Number(m.get('dt'));
    const time = dt > 0 ? ` \u00b7 t = ${formatValue(frame * dt)} s` : '';
    this._frameLabel.textContent = `${frame + 1} / ${n}${time}`;
    this._drawTrace(frame);
    const el = this.el as HTMLElement;
    el.dataset.currentFrame = String(frame);
    el.dataset.frameChecksum = data !== undefined ? String(adler32(data)) : '';
    el.dataset.frameVersion = String(m.version);
    el.dataset.framesLoaded = String(m.loadedCount());
    el.dataset.nFrames = String(n);
    el.dataset.generation = String(m.generation);
    el.dataset.playing = String(Boolean(m.get('playing')));
  }

  private _onClick(e: MouseEvent): void {
    const rect = this._canvas.getBoundingClientRect();
    const row = Math.floor(((e.clientY - rect.top) / rect.height) * this._canvas.height);
    const col = Math.floor(((e.clientX - rect.left) / rect.width) * this._canvas.width);
    if (row < 0 || col < 0 || row >= this._canvas.height || col >= this._canvas.width) {
      return;
    }
    this._save('selected_pixel', [row, col]);
    this._scheduleDraw();
  }

  private _drawTrace(frame: number): void {
    const m = this.model;
    const pixel = m.get('selected_pixel') as number[];
    const ctx = this._trace.getContext('2d') as CanvasRenderingContext2D;
    const W = this._trace.width;
    const H = this._trace.height;
    ctx.clearRect(0, 0, W, H);
    if (!pixel || pixel.length !== 2) {
      this._trace.style.display = 'none';
      this._traceLabel.textContent = 'click a pixel to see its time course';
      return;
    }
    this._trace.style.display = '';
    this._trace.style.width = `${W}px`;
    this._trace.style.height = `${H}px`;
    const [row, col] = pixel;
    const index = row * this._canvas.width + col;
    const n = this._frameCount();
    const vmin = Number(m.get('vmin'));
    const vmax = Number(m.get('vmax'));
    const dt = Number(m.get('dt')) || 1;
    const unit = m.get('unit') ? ' ' + m.get('unit') : '';
    // plot area inside margins for the tick labels: values left, time below
    const left = 46;
    const right = W - 6;
    const top = 6;
    const bottom = H - 30;
    const px = (t: number) => left + (n > 1 ? t / (n - 1) : 0) * (right - left);
    const py = (q: number) => bottom - (q / 255) * (bottom - top);
    ctx.font = '10px sans-serif';
    ctx.fillStyle = '#555';
    ctx.strokeStyle = '#999';
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(left, top);
    ctx.lineTo(left, bottom);
    ctx.lineTo(right, bottom);
    ctx.stroke();
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const v of ticks(vmin, vmax, 3)) {
      const y = py(((v - vmin) / (vmax - vmin)) * 255);
      ctx.beginPath();
      ctx.moveTo(left - 3, y);
      ctx.lineTo(left, y);
      ctx.stroke();
      ctx.fillText(formatValue(v), left - 5, y);
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const tmax = Math.max(0, n - 1) * dt;
    for (const v of ticks(0, tmax, 4)) {
      const x = px(v / dt);
      ctx.beginPath();
      ctx.moveTo(x, bottom);
      ctx.lineTo(x, bottom + 3);
      ctx.stroke();
      ctx.fillText(formatValue(v), x, bottom + 4);
    }
    ctx.fillText('time (s)', (left + right) / 2, bottom + 16);
    ctx.save();
    ctx.translate(9, (top + bottom) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = 'middle';
    ctx.fillText(unit ? unit.trim() : 'value', 0, 0);
    ctx.restore();
    ctx.strokeStyle = '#1f5fa8';
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let started = false;
    for (let t = 0; t < n; t++) {
      const f = m.frames[t];
      if (f === undefined) {
        started = false;
        continue;
      }
      const x = px(t);
      const y = py(f[index]);
      if (started) {
        ctx.lineTo(x, y);
      } else {
        ctx.moveTo(x, y);
        started = true;
      }
    }
    ctx.stroke();
    const cursor = px(frame);
    ctx.strokeStyle = '#d62728';
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(cursor, top);
    ctx.lineTo(cursor, bottom);
    ctx.stroke();
    const current = m.frames[frame];
    const value = (q: number) => vmin + (q / 255) * (vmax - vmin);
    const shown = current !== undefined ? formatValue(value(current[index])) + unit : '...';
    this._traceLabel.textContent = `pixel x=${row}, y=${col}: ${shown}`;
    const el = this.el as HTMLElement;
    el.dataset.pixelValue = current !== undefined ? String(current[index]) : '';
  }
}
