// pdq.js: the PDQ perceptual hash of a picture, computed in the browser, so a person can hash a picture on
// their own device and send only the hash (never the picture) to the scanner.
//
// It reproduces, bit for bit, what the server computes with the Python `pdqhash` package (a binding of Meta's
// C++ reference implementation) in `likeness.analyze.hashing.pdq` / `pdq_dihedral`: same hash (64 hex digits,
// ThreatExchange's order: first hex digit = the most significant nibble of word 15), same quality (0..100),
// same 8 dihedral hashes in the same order.
//
// Written for this project from Meta's published description of PDQ: ThreatExchange's `pdq/README.md` and
// the hashing document (`hashing/hashing.pdf`, "The TMK+PDQF and PDQ hashing algorithms"). The steps:
//   1. luminance Y = 0.299 R + 0.587 G + 0.114 B per pixel;
//   2. two passes of a Jarosz tent filter (box filter along rows then along columns, twice), window
//      ceil(dimension / 128) so that the two passes together cover one 64th of the picture;
//   3. decimation to 64x64 by sampling the blurred picture at the centres of a 64x64 grid;
//   4. quality: the sum of the quantised vertical and horizontal gradients of the 64x64 picture, scaled;
//   5. the 16x16 lowest non-constant coefficients of the 2D DCT-II of the 64x64 picture;
//   6. bit (i, j) is set when coefficient (i, j) is above the median of the 256 coefficients;
//   7. the 8 dihedral variants (rotations, mirrors) come from sign flips and transposition of the 16x16 DCT.
// The reference C++ (ThreatExchange `pdq/cpp`) was read only to learn the exact numerics (which steps are
// done in float32, window and sample-position formulas, the median's tie rule); this code is our own.
//
// No dependencies, no build step, no eval: it is served as a plain ES module under `script-src 'self'`.
//
// PDQ is Meta's; ThreatExchange carries it under this licence, whose notice we reproduce as it asks:
//
//   BSD License
//
//   For ThreatExchange software
//
//   Copyright (c) Meta Platforms, Inc. and affiliates.
//
//   Redistribution and use in source and binary forms, with or without modification,
//   are permitted provided that the following conditions are met:
//
//    * Redistributions of source code must retain the above copyright notice, this
//      list of conditions and the following disclaimer.
//
//    * Redistributions in binary form must reproduce the above copyright notice,
//      this list of conditions and the following disclaimer in the documentation
//      and/or other materials provided with the distribution.
//
//    * Neither the name Facebook nor the names of its contributors may be used to
//      endorse or promote products derived from this software without specific
//      prior written permission.
//
//   THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND
//   ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED
//   WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
//   DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR
//   ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES
//   (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES;
//   LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON
//   ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT
//   (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE OF THIS
//   SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
//
// On numerics: the reference keeps every intermediate in 32-bit floats. JavaScript numbers are 64-bit, so each
// float operation is followed by Math.fround (or a store into a Float32Array, which rounds the same way). For
// + - * / of two float32 values, rounding the exact-enough double result to float32 gives the correctly
// rounded float32 result (double has more than 2*24+2 bits), so this emulation is exact, not approximate.
// Operations are done in the reference's order, since float addition is not associative.
//
// Browser caveat: a canvas stores premultiplied alpha, so the colour of (partly) transparent pixels is lost
// or rounded, while the server (Pillow's convert("RGB")) keeps it: only opaque pictures hash identically.

const fround = Math.fround;

const DIM = 64; // the decimated picture is 64x64
const MIN_HASHABLE_DIM = 5; // smaller pictures get the all-zero hash and quality 0, as in the reference
const JAROSZ_PASSES = 2; // two box passes per axis make a tent filter

// The 16x64 DCT-II matrix (rows 1..16 of the 64-point DCT, row 0 being the constant term PDQ leaves out).
// The reference computes it in double and stores it as float, with its scale factor sqrt(2/64) itself
// first rounded to float.
const DCT = (() => {
  const scale = fround(Math.sqrt(2 / DIM));
  const matrix = new Float32Array(16 * DIM);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < DIM; j++) {
      matrix[i * DIM + j] = scale * Math.cos((Math.PI / 2 / DIM) * (i + 1) * (2 * j + 1));
    }
  }
  return matrix;
})();

// Luminance as `pdqhash` computes it: in numpy float64 (uint8 times Python floats), summed left to right,
// then cast to float32 (here by the Float32Array store). Meta's C++ fills luma in float arithmetic instead,
// which can differ in the last bit; we follow the Python binding, since that is what the server runs.
function lumaOfRGBA(data, width, height) {
  const n = width * height;
  const luma = new Float32Array(n);
  for (let i = 0, p = 0; i < n; i++, p += 4) {
    luma[i] = data[p] * 0.299 + data[p + 1] * 0.587 + data[p + 2] * 0.114;
  }
  return luma;
}

// The box filter's window: ceil(dimension / 128), so two passes span dimension / 64, one output pixel's worth.
function jaroszWindow(oldDimension, newDimension) {
  return Math.floor((oldDimension + 2 * newDimension - 1) / (2 * newDimension));
}

// One-dimensional moving average over `length` values `stride` apart, the window centred (for even windows,
// one more value ahead than behind), shrinking at both ends. A running float32 sum, added to and subtracted
// from in the reference's order: the rounding of that running sum is part of the result.
function box1D(src, dst, start, length, stride, window) {
  const half = (window + 2) >> 1;
  const lead = half - 1; // values summed before the first output
  const growing = window - half + 1; // outputs while the window grows to full size
  const full = length - window; // outputs with the full window
  const shrinking = half - 1; // outputs while the window shrinks at the end
  let left = start;
  let right = start;
  let out = start;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < lead; i++) {
    sum = fround(sum + src[right]);
    count++;
    right += stride;
  }
  for (let i = 0; i < growing; i++) {
    sum = fround(sum + src[right]);
    count++;
    dst[out] = sum / count; // the Float32Array store rounds the float division
    right += stride;
    out += stride;
  }
  for (let i = 0; i < full; i++) {
    sum = fround(sum + src[right]);
    sum = fround(sum - src[left]);
    dst[out] = sum / count;
    left += stride;
    right += stride;
    out += stride;
  }
  for (let i = 0; i < shrinking; i++) {
    sum = fround(sum - src[left]);
    count--;
    dst[out] = sum / count;
    left += stride;
    out += stride;
  }
}

// box1D down every column at once: the same arithmetic, per column, in the same order, but sweeping the
// picture row by row (one running sum per column) instead of striding down each column, which is several
// times faster on large pictures because it reads memory in order.
function boxColumns(src, dst, rows, cols, window) {
  const half = (window + 2) >> 1;
  const lead = half - 1;
  const growing = window - half + 1;
  const full = rows - window;
  const shrinking = half - 1;
  const sums = new Float32Array(cols); // float32 running sums: the store rounds like fround
  let left = 0;
  let right = 0;
  let out = 0;
  let count = 0;
  for (let i = 0; i < lead; i++, right += cols) {
    for (let j = 0; j < cols; j++) sums[j] += src[right + j];
    count++;
  }
  for (let i = 0; i < growing; i++, right += cols, out += cols) {
    count++;
    for (let j = 0; j < cols; j++) {
      sums[j] += src[right + j];
      dst[out + j] = sums[j] / count;
    }
  }
  for (let i = 0; i < full; i++, left += cols, right += cols, out += cols) {
    for (let j = 0; j < cols; j++) {
      sums[j] += src[right + j];
      sums[j] -= src[left + j];
      dst[out + j] = sums[j] / count;
    }
  }
  for (let i = 0; i < shrinking; i++, left += cols, out += cols) {
    count--;
    for (let j = 0; j < cols; j++) {
      sums[j] -= src[left + j];
      dst[out + j] = sums[j] / count;
    }
  }
}

// Blur in place (buffer holds the result; scratch is overwritten): rows then columns, JAROSZ_PASSES times.
function jaroszFilter(buffer, scratch, rows, cols) {
  const alongRows = jaroszWindow(cols, DIM);
  const alongCols = jaroszWindow(rows, DIM);
  for (let pass = 0; pass < JAROSZ_PASSES; pass++) {
    for (let i = 0; i < rows; i++) box1D(buffer, scratch, i * cols, cols, 1, alongRows);
    boxColumns(scratch, buffer, rows, cols, alongCols);
  }
}

// Sample the blurred picture at the centres of a 64x64 grid (positions computed in double, truncated).
function decimate(buffer, rows, cols) {
  const out = new Float32Array(DIM * DIM);
  for (let i = 0; i < DIM; i++) {
    const row = Math.trunc(((i + 0.5) * rows) / DIM);
    for (let j = 0; j < DIM; j++) {
      const col = Math.trunc(((j + 0.5) * cols) / DIM);
      out[i * DIM + j] = buffer[row * cols + col];
    }
  }
  return out;
}

// The 64x64 picture PDQ works on. `shortcut`: a picture already 64x64 is used as it is, without the filter,
// as the reference's single-hash entry point does; its dihedral entry point always filters (and a window of
// 1 is not quite the identity in float32, since the running sum rounds), so the two can differ on 64x64 input.
function downsample(luma, rows, cols, shortcut) {
  if (shortcut && rows === DIM && cols === DIM) return luma;
  jaroszFilter(luma, new Float32Array(luma.length), rows, cols);
  return decimate(luma, rows, cols);
}

// Quality: gradients between neighbours, each scaled to percent of full range and truncated (so that only
// significant gradients count), summed, divided by 90, capped at 100. The per-gradient steps are float32.
function quality(image) {
  let sum = 0;
  for (let i = 0; i < DIM - 1; i++) {
    for (let j = 0; j < DIM; j++) {
      const d = Math.trunc(fround(fround(fround(image[i * DIM + j] - image[(i + 1) * DIM + j]) * 100) / 255));
      sum += Math.abs(d);
    }
  }
  for (let i = 0; i < DIM; i++) {
    for (let j = 0; j < DIM - 1; j++) {
      const d = Math.trunc(fround(fround(fround(image[i * DIM + j] - image[i * DIM + j + 1]) * 100) / 255));
      sum += Math.abs(d);
    }
  }
  return Math.min(100, Math.floor(sum / 90));
}

// B = D A D^T, keeping only coefficients 1..16 on each axis; float32 sums accumulated in index order.
function dct16(image) {
  const t = new Float32Array(16 * DIM);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < DIM; j++) {
      let sum = 0;
      for (let k = 0; k < DIM; k++) sum = fround(sum + fround(DCT[i * DIM + k] * image[k * DIM + j]));
      t[i * DIM + j] = sum;
    }
  }
  const b = new Float32Array(256);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 16; j++) {
      let sum = 0;
      for (let k = 0; k < DIM; k++) sum = fround(sum + fround(t[i * DIM + k] * DCT[j * DIM + k]));
      b[i * 16 + j] = sum;
    }
  }
  return b;
}

// Bits: coefficient above the median. The reference's median (Torben's method) returns, for 256 values, the
// 128th smallest (the lower median); a sorted copy gives exactly that value, ties included.
// Hex: bit (i, j) is bit j of 16-bit word i; words printed from 15 down to 0, 4 hex digits each
// (ThreatExchange's order, the same as numpy.packbits of pdqhash's bit vector).
function hexOfDct(b) {
  const median = Float32Array.from(b).sort()[127];
  let hex = "";
  for (let i = 15; i >= 0; i--) {
    let word = 0;
    for (let j = 0; j < 16; j++) if (b[i * 16 + j] > median) word |= 1 << j;
    hex += word.toString(16).padStart(4, "0");
  }
  return hex;
}

// The DCT of a rotated or mirrored picture is the original's, transposed or not, with the signs of odd rows
// and/or columns flipped (a mirror negates the odd-frequency basis functions along that axis). `transpose`
// says whether (i, j) goes to (j, i); `sign(i, j)` is the factor for the original's coefficient (i, j).
const DIHEDRAL = [
  // in pdqhash.compute_dihedral's order
  { name: "original", transpose: false, sign: () => 1 },
  { name: "rotate90", transpose: true, sign: (i, j) => (j & 1 ? 1 : -1) },
  { name: "rotate180", transpose: false, sign: (i, j) => ((i + j) & 1 ? -1 : 1) },
  { name: "rotate270", transpose: true, sign: (i, j) => (i & 1 ? 1 : -1) },
  { name: "flipX", transpose: false, sign: (i, j) => (i & 1 ? 1 : -1) },
  { name: "flipY", transpose: false, sign: (i, j) => (j & 1 ? 1 : -1) },
  { name: "flipPlus1", transpose: true, sign: () => 1 },
  { name: "flipMinus1", transpose: true, sign: (i, j) => ((i + j) & 1 ? -1 : 1) },
];

function variant(b, { transpose, sign }) {
  const out = new Float32Array(256);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 16; j++) {
      out[transpose ? j * 16 + i : i * 16 + j] = sign(i, j) * b[i * 16 + j]; // negation is exact
    }
  }
  return out;
}

const ZERO_HASH = "0".repeat(64);

function checkPixels(data, width, height) {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0) {
    throw new RangeError(`bad picture size ${width}x${height}`);
  }
  if (!data || data.length < width * height * 4) throw new RangeError("fewer RGBA bytes than width*height*4");
}

/** PDQ of RGBA pixels (alpha ignored): {hash: 64 lowercase hex digits, quality: integer 0..100}. */
export function pdqFromRGBA(data, width, height) {
  checkPixels(data, width, height);
  if (width < MIN_HASHABLE_DIM || height < MIN_HASHABLE_DIM) return { hash: ZERO_HASH, quality: 0 };
  const image = downsample(lumaOfRGBA(data, width, height), height, width, true);
  return { hash: hexOfDct(dct16(image)), quality: quality(image) };
}

/** The PDQ hashes of the picture's 8 orientations, in pdqhash.compute_dihedral's order: original, rotated
 * 90, 180, 270, flipped in x, in y, about the main diagonal, about the anti-diagonal; {hashes, quality}. */
export function pdqDihedralFromRGBA(data, width, height) {
  checkPixels(data, width, height);
  if (width < MIN_HASHABLE_DIM || height < MIN_HASHABLE_DIM) {
    return { hashes: DIHEDRAL.map(() => ZERO_HASH), quality: 0 };
  }
  const image = downsample(lumaOfRGBA(data, width, height), height, width, false);
  const b = dct16(image);
  return { hashes: DIHEDRAL.map((v) => hexOfDct(variant(b, v))), quality: quality(image) };
}

/** The names of the dihedral variants, in the order of pdqDihedralFromRGBA's hashes. */
export const DIHEDRAL_NAMES = DIHEDRAL.map((v) => v.name);

/** Decode a picture File/Blob in the browser: {data: Uint8ClampedArray RGBA, width, height}. No colour
 * management (the server applies none either); the browser applies the EXIF orientation itself, as the
 * server does with ImageOps.exif_transpose. */
export async function pixelsOfFile(file) {
  const bitmap = await createImageBitmap(file, { colorSpaceConversion: "none" });
  try {
    const { width, height } = bitmap;
    let canvas;
    if (typeof OffscreenCanvas !== "undefined") {
      canvas = new OffscreenCanvas(width, height);
    } else {
      canvas = document.createElement("canvas");
      canvas.width = width;
      canvas.height = height;
    }
    // willReadFrequently keeps the canvas in memory rather than on the GPU: we read it back once, exactly.
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(bitmap, 0, 0);
    const { data } = context.getImageData(0, 0, width, height);
    return { data, width, height };
  } finally {
    bitmap.close();
  }
}

/** Both at once: {hash, quality, hashes}, as pdqFromRGBA and pdqDihedralFromRGBA would give, blurring the
 * picture once (the two differ only for a 64x64 picture, which the single hash takes unfiltered). */
export function pdqAllFromRGBA(data, width, height) {
  const dihedral = pdqDihedralFromRGBA(data, width, height);
  const single =
    width === DIM && height === DIM
      ? pdqFromRGBA(data, width, height)
      : { hash: dihedral.hashes[0], quality: dihedral.quality };
  return { hash: single.hash, quality: single.quality, hashes: dihedral.hashes };
}

/** Hash a picture File/Blob: {hash, quality, hashes (the 8 dihedral), width, height}. */
export async function hashFile(file) {
  const { data, width, height } = await pixelsOfFile(file);
  return { ...pdqAllFromRGBA(data, width, height), width, height };
}
