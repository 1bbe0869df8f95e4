/**
 * Separable convolution resize on packed RGB uint8, with Pillow's exact semantics
 * (`ImagingResample` in Pillow's Resample.c): the filter support grows with the
 * downscale factor (so downscaling is antialiased), coefficients are normalised in
 * double precision, converted to 22-bit fixed point, accumulated in integers with
 * rounding, and clipped to 0..255. A horizontal pass over only the rows the vertical
 * pass needs is followed by the vertical pass.
 *
 * Why our own code instead of sharp/libvips: the reference processors resize with
 * PIL, and libvips' kernels and rounding differ by a few 1/255 steps (measured in
 * test/processing/resample.test.ts). Matching PIL bit for bit makes pixel_values
 * match the Hugging Face goldens to float rounding. This is arithmetic on decoded
 * pixels, not a codec.
 */

export type ResampleFilter = 'bilinear' | 'bicubic';

export interface RgbImage {
  width: number;
  height: number;
  /** Packed RGB, row-major, 3 bytes per pixel (length = width·height·3). */
  data: Uint8Array;
}

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

const FILTERS: Record<ResampleFilter, { support: number; fn: (x: number) => number }> = {
  bilinear: {
    support: 1,
    fn: (x) => {
      if (x < 0) x = -x;
      return x < 1 ? 1 - x : 0;
    },
  },
  bicubic: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
};

interface Coeffs {
  ksize: number;
  /** Per output pixel: first source index and number of taps. */
  bounds: Int32Array;
  /** Fixed-point weights, ksize per output pixel. */
  kk: Int32Array;
}

/** Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`. */
function precomputeCoeffs(inSize: number, outSize: number, filter: ResampleFilter): Coeffs {
  const { support: baseSupport, fn } = FILTERS[filter];
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = baseSupport * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero; both values here are ≥ -0.5 before clamping.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const v = fn((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x]! / ww : w[x]!;
      kk[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function clip8(v: number): number {
  if (v >= ONE << 8) return 255; // 2^30 fits in int32
  if (v <= 0) return 0;
  return v >> PRECISION_BITS;
}

/** Horizontal pass over source rows [rowStart, rowStart + rows). */
function resampleHorizontal(src: RgbImage, outWidth: number, rowStart: number, rows: number, c: Coeffs): Uint8Array {
  const out = new Uint8Array(outWidth * rows * 3);
  const { ksize, bounds, kk } = c;
  const inStride = src.width * 3;
  const data = src.data;
  for (let yy = 0; yy < rows; yy++) {
    const rowOff = (yy + rowStart) * inStride;
    const outOff = yy * outWidth * 3;
    for (let xx = 0; xx < outWidth; xx++) {
      const xmin = bounds[xx * 2]!;
      const xmax = bounds[xx * 2 + 1]!;
      const k0 = xx * ksize;
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      let p = rowOff + xmin * 3;
      for (let x = 0; x < xmax; x++, p += 3) {
        const k = kk[k0 + x]!;
        s0 += data[p]! * k;
        s1 += data[p + 1]! * k;
        s2 += data[p + 2]! * k;
      }
      const o = outOff + xx * 3;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
  return out;
}

/** Vertical pass; `c.bounds` are relative to the first row of `src`. */
function resampleVertical(src: RgbImage, outHeight: number, c: Coeffs, rowShift: number): Uint8Array {
  const width = src.width;
  const stride = width * 3;
  const out = new Uint8Array(stride * outHeight);
  const { ksize, bounds, kk } = c;
  const data = src.data;
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = bounds[yy * 2]! - rowShift;
    const ymax = bounds[yy * 2 + 1]!;
    const k0 = yy * ksize;
    const outOff = yy * stride;
    for (let i = 0; i < stride; i++) {
      let s = HALF;
      let p = ymin * stride + i;
      for (let y = 0; y < ymax; y++, p += stride) s += data[p]! * kk[k0 + y]!;
      out[outOff + i] = clip8(s);
    }
  }
  return out;
}

/**
 * Resize like Pillow's `Image.resize((width, height), BILINEAR | BICUBIC)` on an RGB
 * image. Returns a copy when the size does not change (as Pillow does).
 */
export function resizeRgb(src: RgbImage, width: number, height: number, filter: ResampleFilter): RgbImage {
  if (!(width >= 1 && height >= 1 && Number.isInteger(width) && Number.isInteger(height))) {
    throw new RangeError(`resize target must be a positive integer size, got ${width}x${height}`);
  }
  if (src.data.length !== src.width * src.height * 3) {
    throw new RangeError(`RGB buffer of ${src.data.length} bytes does not match ${src.width}x${src.height}`);
  }
  if (width === src.width && height === src.height) {
    return { width, height, data: new Uint8Array(src.data) };
  }
  const needH = width !== src.width;
  const needV = height !== src.height;
  const cv = precomputeCoeffs(src.height, height, filter);
  let cur: RgbImage = src;
  let rowShift = 0;
  if (needH) {
    const ch = precomputeCoeffs(src.width, width, filter);
    // Only the source rows that the vertical pass reads.
    const first = needV ? cv.bounds[0]! : 0;
    const last = needV ? cv.bounds[height * 2 - 2]! + cv.bounds[height * 2 - 1]! : src.height;
    cur = { width, height: last - first, data: resampleHorizontal(src, width, first, last - first, ch) };
    rowShift = first;
  }
  if (needV) {
    return { width, height, data: resampleVertical(cur, height, cv, rowShift) };
  }
  return cur;
}
