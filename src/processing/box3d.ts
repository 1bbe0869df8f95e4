/**
 * 3D boxes (`<3dbbox>x y z x_size y_size z_size pitch yaw roll</3dbbox>`, spec §6.3):
 * centre and size in metres in camera coordinates (X right, Y down, Z forward),
 * rotations in (−1, 1) meaning ·180 degrees. Projection follows the cookbook's
 * drawing code: rotate corners about X (pitch), then Y (yaw), then Z (roll),
 * translate, project with the pinhole intrinsics, skip corners with Z ≤ 0.
 */
import { round1 } from './numeric.ts';

export interface Box3D {
  center: [number, number, number];
  size: [number, number, number];
  /** Normalised rotations in (−1, 1); multiply by 180 for degrees. */
  pitch: number;
  yaw: number;
  roll: number;
}

export interface Intrinsics {
  fx: number;
  fy: number;
  cx: number;
  cy: number;
}

/** Python round(v, 2) closely enough for intrinsics (values are not exact ties in practice). */
function round2(v: number): number {
  return Number(v.toFixed(2));
}

/** The cookbook's fallback camera: 60° field of view, principal point at the centre. */
export function defaultIntrinsics(width: number, height: number): Intrinsics {
  const t = Math.tan(Math.PI / 6);
  return { fx: round2(width / (2 * t)), fy: round2(height / (2 * t)), cx: round2(width / 2), cy: round2(height / 2) };
}

/** The 8 corners in camera coordinates, in the order (±x, ±y, ±z) with x slowest. */
export function box3dCorners(b: Box3D): [number, number, number][] {
  const p = b.pitch * Math.PI;
  const yw = b.yaw * Math.PI;
  const r = b.roll * Math.PI;
  const out: [number, number, number][] = [];
  for (const sx of [-1, 1]) {
    for (const sy of [-1, 1]) {
      for (const sz of [-1, 1]) {
        let x = (sx * b.size[0]) / 2;
        let y = (sy * b.size[1]) / 2;
        let z = (sz * b.size[2]) / 2;
        // R_x(pitch)
        [y, z] = [y * Math.cos(p) - z * Math.sin(p), y * Math.sin(p) + z * Math.cos(p)];
        // R_y(yaw)
        [x, z] = [x * Math.cos(yw) + z * Math.sin(yw), -x * Math.sin(yw) + z * Math.cos(yw)];
        // R_z(roll)
        [x, y] = [x * Math.cos(r) - y * Math.sin(r), x * Math.sin(r) + y * Math.cos(r)];
        out.push([x + b.center[0], y + b.center[1], z + b.center[2]]);
      }
    }
  }
  return out;
}

/** Project the corners to pixels; corners behind the camera are `null`. */
export function projectBox3d(b: Box3D, k: Intrinsics): ({ x: number; y: number } | null)[] {
  return box3dCorners(b).map(([x, y, z]) => (z <= 0 ? null : { x: (k.fx * x) / z + k.cx, y: (k.fy * y) / z + k.cy }));
}

/** Rotation angles in degrees, as the cookbook prints them. */
export function box3dDegrees(b: Box3D): { pitch: number; yaw: number; roll: number } {
  return { pitch: round1(b.pitch * 180), yaw: round1(b.yaw * 180), roll: round1(b.roll * 180) };
}
