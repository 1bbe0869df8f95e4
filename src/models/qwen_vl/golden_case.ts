/**
 * One golden case (shared/golden/README.md): rebuild the inputs from the case
 * files, run the model, and compare every reference tensor, the integer
 * layouts (positions, rope deltas, vision segments, windows) and greedy
 * decoding — with the KV cache and by full recompute — against the reference.
 *
 * Pads: the reference runs left-padded [B, S] batches; we run each row without
 * its pads, so hidden states, logits and router logits are compared at the
 * attended positions only (the reference's values at pad positions come from
 * fully masked attention rows and carry no meaning).
 */
import type { SafetensorsFile } from '../../io/safetensors.ts';
import { Tensor, tidy, indexSelect, topk, logsumexp, argmax } from '../../tensor/index.ts';
import type { QwenVLModel, VisionBatch } from './model.ts';
import type { PositionConvention } from './rope_index.ts';
import { frameSegments, windowLayout, type Grid3 } from './vision_layout.ts';
import {
  type TensorDiff, type ExactCheck, type TokenMap, tokenMap, f32, maxAbs, maxAbsRows, diffOf, sameInts, sameTopk, flatInts,
} from './golden_compare.ts';

export interface CaseResult {
  case: string;
  diffs: TensorDiff[];
  exact: ExactCheck[];
  /** Greedy ids: reference, with our KV cache, by our full recompute. */
  greedy: { reference: number[][]; cached: number[][]; recompute: number[][] } | null;
  ok: boolean;
  ms: number;
  error?: string;
}

export interface CaseOptions {
  /** Absolute tolerance for float tensors (README: 1e-4). */
  tol?: number;
}

type Json = Record<string, unknown>;

const grids = (v: unknown): Grid3[] => ((v ?? []) as number[][]).map(([t, h, w]) => ({ t, h, w }));

class CaseRun {
  readonly diffs: TensorDiff[] = [];
  readonly exact: ExactCheck[] = [];
  readonly map: TokenMap;
  readonly ids: Int32Array;
  readonly images?: VisionBatch;
  readonly videos?: VisionBatch;

  constructor(readonly model: QwenVLModel, readonly j: Json, readonly st: SafetensorsFile, readonly tol: number) {
    const inputIds = j['input_ids'] as number[][];
    const mask = (j['attention_mask'] as number[][] | undefined) ?? inputIds.map((r) => r.map(() => 1));
    this.map = tokenMap(mask);
    this.ids = Int32Array.from(this.map.flat, (f) => inputIds[Math.floor(f / this.map.S)][f % this.map.S]);
    if (j['image_grid_thw']) this.images = { pixelValues: st.get('pixel_values'), grids: grids(j['image_grid_thw']) };
    if (j['video_grid_thw']) {
      this.videos = {
        pixelValues: st.get('pixel_values_videos'), grids: grids(j['video_grid_thw']),
        ...(j['second_per_grid_ts'] ? { secondPerGrid: j['second_per_grid_ts'] as number[] } : {}),
      };
    }
  }

  get media() {
    return { images: this.images, videos: this.videos };
  }

  ref(name: string): Float32Array | null {
    if (!this.st.has(name)) return null;
    const t = this.st.get(name);
    try {
      return f32(t);
    } finally {
      t.dispose();
    }
  }

  compare(name: string, value: number): void {
    this.diffs.push(diffOf(name, value, this.tol));
  }

  /** Positions and rope deltas of one convention against the reference's. */
  checkPositions(refKey: string, deltaKey: string | null, convention: PositionConvention): void {
    const ref = this.j[refKey] as number[][][] | undefined;
    if (!ref) return;
    const { positions, next } = this.model.positions(this.ids, this.map.rowLengths, this.media, undefined, convention);
    const T = this.ids.length;
    const refFlat = flatInts(ref);
    const BS = this.map.B * this.map.S;
    const want = new Int32Array(3 * T);
    for (let a = 0; a < 3; a++) for (let t = 0; t < T; t++) want[a * T + t] = refFlat[a * BS + this.map.flat[t]];
    this.exact.push(sameInts(refKey, positions, want));
    if (deltaKey && this.j[deltaKey]) {
      const deltas = next.map((p, b) => p - this.map.rowLengths[b]);
      this.exact.push(sameInts(deltaKey, deltas, flatInts(this.j[deltaKey])));
    }
  }

  checkVisionLayout(prefix: string, batch: VisionBatch | undefined): void {
    if (!batch) return;
    const v = this.model.config.vision;
    const cu = this.j[`${prefix}.cu_seqlens`];
    if (cu) this.exact.push(sameInts(`${prefix}.cu_seqlens`, frameSegments(batch.grids), flatInts(cu)));
    if (this.j[`${prefix}.window_index`] && v.windowSize > 0) {
      const w = windowLayout(batch.grids, v.windowSize, v.mergeSize, v.patchSize);
      this.exact.push(sameInts(`${prefix}.window_index`, w.windowIndex, flatInts(this.j[`${prefix}.window_index`])));
      this.exact.push(sameInts(`${prefix}.cu_window_seqlens`, w.cuWindowSeqlens, flatInts(this.j[`${prefix}.cu_window_seqlens`])));
    }
    if (this.j[`${prefix}.fullatt_block_indexes`]) {
      this.exact.push(sameInts(`${prefix}.fullatt_block_indexes`, v.fullattBlockIndexes, flatInts(this.j[`${prefix}.fullatt_block_indexes`])));
    }
    if (this.j[`${prefix}.deepstack_visual_indexes`]) {
      this.exact.push(sameInts(`${prefix}.deepstack_visual_indexes`, v.deepstackVisualIndexes, flatInts(this.j[`${prefix}.deepstack_visual_indexes`])));
    }
  }

  /** Compares a traced tensor with the reference tensor of the same name. */
  onTrace(name: string, t: Tensor): void {
    const ref = this.ref(name);
    if (!ref) return;
    const ours = f32(t);
    const D = t.shape[t.ndim - 1];
    if (name === 'text.rotary_cos') {
      // Ours is the half table [T, F]; the reference is cos(cat(f, f)) [B, S, 2F].
      this.compare(name, Math.max(maxAbsRows(ours, ref, this.map, D, 2 * D, 0), maxAbsRows(ours, ref, this.map, D, 2 * D, D)));
    } else if (name.startsWith('text.')) {
      this.compare(name, maxAbsRows(ours, ref, this.map, D));
    } else {
      this.compare(name, maxAbs(ours, ref));
    }
  }

  /** Prefill logits [T, V] against logits.* (or refpos.logits.*). */
  checkLogits(logits: Tensor, prefix: string): void {
    const { map } = this;
    const last = map.rowStarts.map((s, b) => s + map.rowLengths[b] - 1);
    tidy(() => {
      const lastRef = this.ref(`${prefix}.last`);
      if (lastRef) this.compare(`${prefix}.last`, maxAbs(f32(indexSelect(logits, 0, last)), lastRef));
      const lseRef = this.ref(`${prefix}.logsumexp`);
      if (lseRef) this.compare(`${prefix}.logsumexp`, maxAbsRows(f32(logsumexp(logits, -1)), lseRef, map, 1));
      const subsetIds = this.j[`${prefix}.subset_ids`] as number[] | undefined;
      const subsetRef = this.ref(`${prefix}.subset`);
      if (subsetIds && subsetRef) this.compare(`${prefix}.subset`, maxAbsRows(f32(indexSelect(logits, 1, subsetIds)), subsetRef, map, subsetIds.length));
      const topRef = this.ref(`${prefix}.topk_values`);
      if (topRef) {
        const k = topRef.length / (map.B * map.S);
        const top = topk(logits, k);
        this.compare(`${prefix}.topk_values`, maxAbsRows(f32(top.values), topRef, map, k));
        const refIds = flatInts(this.j[`${prefix}.topk_ids`]);
        const ids = flatInts(top.indices.toArray());
        const want: number[] = [], wantVals: number[] = [];
        for (let t = 0; t < map.flat.length; t++) {
          for (let i = 0; i < k; i++) {
            want.push(refIds[map.flat[t] * k + i]);
            wantVals.push(topRef[map.flat[t] * k + i]);
          }
        }
        this.exact.push(sameTopk(`${prefix}.topk_ids`, ids, want, wantVals, k, this.tol));
      }
    });
  }

  /** Greedy decoding with the KV cache; compares every step's logits and positions. Returns ids [B, steps]. */
  greedyCached(steps: number, prefix: string, convention: PositionConvention, checkPositions: boolean): number[][] {
    const { map, model } = this;
    const B = map.B;
    const cache = model.createCache(B, Math.max(...map.rowLengths) + steps);
    const out: number[][] = Array.from({ length: B }, () => []);
    const topRef = this.ref(`${prefix}.step_topk_values`);
    const lseRef = this.ref(`${prefix}.step_logsumexp`);
    const refIds = this.j[`${prefix}.step_topk_ids`] ? flatInts(this.j[`${prefix}.step_topk_ids`]) : null;
    const perStep = this.j['generate.position_ids_per_step'] as number[][][][] | undefined;
    let worstTop = 0, worstLse = 0;
    const idsOk: ExactCheck[] = [];
    try {
      let logits = model.prefill(cache, { inputIds: this.ids, rowLengths: map.rowLengths, ...this.media }, { convention });
      for (let step = 0; step < steps; step++) {
        const tokens = tidy(() => {
          if (topRef) {
            const k = topRef.length / (B * steps);
            const top = topk(logits, k);
            const v = f32(top.values), ids = flatInts(top.indices.toArray());
            for (let b = 0; b < B; b++) {
              const ref = topRef.subarray((b * steps + step) * k, (b * steps + step + 1) * k);
              worstTop = Math.max(worstTop, maxAbs(v.subarray(b * k, (b + 1) * k), ref));
              if (refIds) idsOk.push(sameTopk(`${prefix}.step_topk_ids[${b},${step}]`, ids.slice(b * k, (b + 1) * k), refIds.slice((b * steps + step) * k, (b * steps + step + 1) * k), ref, k, this.tol));
            }
          }
          if (lseRef) {
            const l = f32(logsumexp(logits, -1));
            for (let b = 0; b < B; b++) worstLse = Math.max(worstLse, Math.abs(l[b] - lseRef[b * steps + step]));
          }
          return flatInts(argmax(logits, -1).toArray());
        });
        logits.dispose();
        tokens.forEach((tok, b) => out[b].push(tok));
        if (step === steps - 1) break;
        if (checkPositions && perStep?.[step + 1]) {
          const want = flatInts(perStep[step + 1]); // [3, B, 1]
          const ours: number[] = [];
          for (let a = 0; a < 3; a++) for (let b = 0; b < B; b++) ours.push(cache.next[b]);
          this.exact.push(sameInts(`generate.position_ids_per_step[${step + 1}]`, ours, want));
        }
        logits = model.decode(cache, tokens);
      }
    } finally {
      cache.dispose();
    }
    if (topRef) this.compare(`${prefix}.step_topk_values`, worstTop);
    if (lseRef) this.compare(`${prefix}.step_logsumexp`, worstLse);
    const bad = idsOk.find((c) => !c.ok);
    if (refIds) this.exact.push(bad ?? { name: `${prefix}.step_topk_ids`, ok: true });
    return out;
  }

  /** Greedy decoding by full recompute (no cache): the prompt plus the tokens so far, every step. */
  greedyRecompute(steps: number, convention: PositionConvention): number[][] {
    const { map, model } = this;
    const rows = map.rowLengths.map((n, b) => Array.from(this.ids.subarray(map.rowStarts[b], map.rowStarts[b] + n)));
    const out: number[][] = rows.map(() => []);
    for (let step = 0; step < steps; step++) {
      const lens = rows.map((r) => r.length);
      const flat = rows.flat();
      const tokens = tidy(() => {
        const { hidden } = model.forward({ inputIds: flat, rowLengths: lens, ...this.media }, { convention });
        const lastRows: number[] = [];
        let off = 0;
        for (const n of lens) lastRows.push((off += n) - 1);
        return flatInts(argmax(model.language.logits(indexSelect(hidden, 0, lastRows)), -1).toArray());
      });
      tokens.forEach((tok, b) => {
        rows[b].push(tok);
        out[b].push(tok);
      });
    }
    return out;
  }

  dispose(): void {
    this.images?.pixelValues.dispose();
    this.videos?.pixelValues.dispose();
  }
}

/** Runs one case; never throws (a failure becomes `error`). */
export function checkGoldenCase(model: QwenVLModel, name: string, j: Json, st: SafetensorsFile, opts: CaseOptions = {}): CaseResult {
  const t0 = performance.now();
  const tol = opts.tol ?? 1e-4;
  let run: CaseRun | null = null;
  try {
    run = new CaseRun(model, j, st, tol);
    const r = run;
    r.checkPositions('position_ids', 'rope_deltas', 'transformers');
    r.checkPositions('position_ids_reference_convention', null, 'original');
    r.checkVisionLayout('vision', r.images);
    r.checkVisionLayout('vision_video', r.videos);
    // Prefill with every intermediate tensor compared as it is produced.
    tidy(() => {
      const { hidden } = model.forward({ inputIds: r.ids, rowLengths: r.map.rowLengths, ...r.media }, { convention: 'transformers', trace: (n, t) => r.onTrace(n, t) });
      r.checkLogits(model.language.logits(hidden), 'logits');
    });
    const reference = (j['generated_ids'] as number[][] | undefined) ?? [];
    const steps = reference[0]?.length ?? 0;
    let greedy: CaseResult['greedy'] = null;
    if (steps > 0) {
      const cached = r.greedyCached(steps, 'generate', 'transformers', true);
      const recompute = r.greedyRecompute(steps, 'transformers');
      r.exact.push(sameInts('generated_ids (KV cache)', cached.flat(), reference.flat()));
      r.exact.push(sameInts('generated_ids (full recompute)', recompute.flat(), reference.flat()));
      greedy = { reference, cached, recompute };
    }
    if (j['position_ids_reference_convention'] && st.has('refpos.logits.last')) {
      tidy(() => {
        const { hidden } = model.forward({ inputIds: r.ids, rowLengths: r.map.rowLengths, ...r.media }, { convention: 'original' });
        r.checkLogits(model.language.logits(hidden), 'refpos.logits');
      });
      const refIds = j['refpos.generated_ids'] as number[][] | undefined;
      if (refIds) {
        const ids = r.greedyCached(refIds[0].length, 'refpos.generate', 'original', false);
        r.exact.push(sameInts('refpos.generated_ids (KV cache)', ids.flat(), refIds.flat()));
      }
    }
    const ok = r.diffs.every((d) => d.ok) && r.exact.every((e) => e.ok);
    return { case: name, diffs: r.diffs, exact: r.exact, greedy, ok, ms: performance.now() - t0 };
  } catch (e) {
    return {
      case: name, diffs: run?.diffs ?? [], exact: run?.exact ?? [], greedy: null, ok: false, ms: performance.now() - t0,
      error: (e as Error).message,
    };
  } finally {
    run?.dispose();
  }
}
