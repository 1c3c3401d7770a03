/**
 * Colour maps as 256-entry lookup tables of packed RGBA (little-endian ABGR
 * words, ready to be written into an ImageData through a Uint32Array).
 *
 * Each map is given by 17 evenly spaced control colours and interpolated
 * linearly in between.
 */

const CONTROL: { [name: string]: string } = {
  gray: '000000101010202020303030404040505050606060707070808080909090a0a0a0b0b0b0c0c0c0d0d0d0e0e0e0f0f0f0ffffff',
  viridis:
    '44015448186a472d7b4240863b528b33638d2c728e26828e21918c1fa08828ae803fbc735ec96284d44baddc30d8e219fde725',
  magma:
    '0000040a08221d114736106b51127c6a1c818326819c2e7fb73779d0416fe75263f56b5cfc8961fea772fec488fde2a3fcfdbf',
  inferno:
    '0000040b0724210c4a3d096557106e71196e8a226aa32c61bc3754d24644e45a31f1731df98e09fcac11f9cb35f2ea69fcffa4',
  RdBu: '0530611752902a71b23f8ec06bacd19bc9e0c2ddece0ecf3f7f6f6fbe5d8fbccb4f5aa89e48066d05548ba2832930e2667001f',
  coolwarm:
    '3b4cc04e68d86282ea779af78db0fea3c2feb9d0f9ccd9eddddcdcecd3c5f5c4acf7b093f4987aeb7d62dd5f4bca3b37b40426',
  hot: '0b00003500005f0000890000b30000dd0000ff0800ff3200ff5c00ff8600ffb000ffda00ffff07ffff46ffff85ffffc4ffffff'
};

export const COLORMAP_NAMES: string[] = Object.keys(CONTROL);

const cache: { [name: string]: Uint32Array } = {};

function parse(hex: string): number[][] {
  const out: number[][] = [];
  for (let i = 0; i + 6 <= hex.length; i += 6) {
    out.push([
      parseInt(hex.slice(i, i + 2), 16),
      parseInt(hex.slice(i + 2, i + 4), 16),
      parseInt(hex.slice(i + 4, i + 6), 16)
    ]);
  }
  return out;
}

/** The lookup table of `name` (gray for unknown names). */
export function lookupTable(name: string): Uint32Array {
  const key = CONTROL[name] ? name : 'gray';
  if (cache[key]) {
    return cache[key];
  }
  const points = parse(CONTROL[key]);
  const n = points.length - 1;
  const lut = new Uint32Array(256);
  for (let v = 0; v < 256; v++) {
    const x = (v / 255) * n;
    const i = Math.min(Math.floor(x), n - 1);
    const f = x - i;
    const rgb = [0, 1, 2].map(k =>
      Math.round(points[i][k] * (1 - f) + points[i + 1][k] * f)
    );
    lut[v] = (255 << 24) | (rgb[2] << 16) | (rgb[1] << 8) | rgb[0];
  }
  cache[key] = lut;
  return lut;
}

/** CSS colour of level `v` (0..255) of a colour map. */
export function cssColor(name: string, v: number): string {
  const c = lookupTable(name)[Math.max(0, Math.min(255, Math.round(v)))];
  return `rgb(${c & 255},${(c >> 8) & 255},${(c >>> 16) & 255})`;
}
