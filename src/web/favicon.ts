// The service's icon (/favicon.ico): a white padlock on a blue rounded
// square, drawn here at 32×32 with 4×4 supersampling and packed as a
// one-image ICO (a 32-bit BMP with its mask). Drawn in code so there is no
// binary to ship and no path to find at run time.

const SIZE = 32;
const BLUE = [0x24, 0x51, 0xb3] as const;
const WHITE = [0xff, 0xff, 0xff] as const;

type Rgb = readonly [number, number, number];

function insideRoundedRect(x: number, y: number, x0: number, y0: number, x1: number, y1: number, r: number): boolean {
  const cx = Math.min(Math.max(x, x0 + r), x1 - r);
  const cy = Math.min(Math.max(y, y0 + r), y1 - r);
  return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
}

/** The colour at a point (in pixel units), or undefined outside the icon. */
function paint(x: number, y: number): Rgb | undefined {
  if (!insideRoundedRect(x, y, 0, 0, SIZE, SIZE, 7)) return undefined;
  // Keyhole: a round head and a slot, cut out of the lock body.
  const keyhole = (x - 16) ** 2 + (y - 19) ** 2 <= 2.2 ** 2 || (x >= 15 && x <= 17 && y >= 19 && y <= 23.5);
  if (insideRoundedRect(x, y, 8.5, 14, 23.5, 26, 2) && !keyhole) return WHITE;
  // Shackle: the upper half of a ring above the body, with its legs.
  const d = Math.hypot(x - 16, y - 12);
  if (y <= 12 && d >= 3.6 && d <= 6.2) return WHITE;
  if (y > 12 && y < 14.5 && ((x >= 9.8 && x <= 12.4) || (x >= 19.6 && x <= 22.2))) return WHITE;
  return BLUE;
}

/** BGRA pixels, bottom row first, as BMP wants them; 4×4 samples per pixel. */
function pixels(): Buffer {
  const out = Buffer.alloc(SIZE * SIZE * 4);
  for (let py = 0; py < SIZE; py++) {
    for (let px = 0; px < SIZE; px++) {
      let r = 0;
      let g = 0;
      let b = 0;
      let covered = 0;
      for (let sy = 0; sy < 4; sy++) {
        for (let sx = 0; sx < 4; sx++) {
          const c = paint(px + (sx + 0.5) / 4, py + (sy + 0.5) / 4);
          if (!c) continue;
          r += c[0];
          g += c[1];
          b += c[2];
          covered++;
        }
      }
      const at = ((SIZE - 1 - py) * SIZE + px) * 4;
      if (covered === 0) continue;
      out[at] = Math.round(b / covered);
      out[at + 1] = Math.round(g / covered);
      out[at + 2] = Math.round(r / covered);
      out[at + 3] = Math.round((covered / 16) * 255);
    }
  }
  return out;
}

function buildIco(): Buffer {
  const image = pixels();
  const mask = Buffer.alloc((SIZE / 8) * SIZE); // all 0: the alpha channel decides
  const info = Buffer.alloc(40);
  info.writeUInt32LE(40, 0);
  info.writeInt32LE(SIZE, 4);
  info.writeInt32LE(SIZE * 2, 8); // colour rows + mask rows
  info.writeUInt16LE(1, 12);
  info.writeUInt16LE(32, 14);
  info.writeUInt32LE(image.length + mask.length, 20);
  const bitmap = Buffer.concat([info, image, mask]);
  const header = Buffer.alloc(6 + 16);
  header.writeUInt16LE(0, 0);
  header.writeUInt16LE(1, 2); // icon
  header.writeUInt16LE(1, 4); // one image
  header.writeUInt8(SIZE, 6);
  header.writeUInt8(SIZE, 7);
  header.writeUInt16LE(1, 10); // planes
  header.writeUInt16LE(32, 12); // bits per pixel
  header.writeUInt32LE(bitmap.length, 14);
  header.writeUInt32LE(header.length, 18);
  return Buffer.concat([header, bitmap]);
}

let cached: Buffer | undefined;

/** The ICO file's bytes (made once). */
export function favicon(): Buffer {
  cached ??= buildIco();
  return cached;
}
