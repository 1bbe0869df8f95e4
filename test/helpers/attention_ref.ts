/** Plain-JS attention reference shared by the attention kernel tests. */

/** Attention with a full softmax per row in float64 (q [T,Hq,D], k/v [T,Hkv,D] flat, sequences cu); also returns the logsumexp of the scaled scores. */
export function refAttention(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, T: number, Hq: number, Hkv: number,
  D: number, cu: number[], causal: boolean, scale = 1 / Math.sqrt(D)): { out: Float64Array; lse: Float64Array } {
  const out = new Float64Array(T * Hq * D), lse = new Float64Array(T * Hq).fill(-Infinity);
  const G = Hq / Hkv;
  for (let s = 0; s + 1 < cu.length; s++) {
    for (let h = 0; h < Hq; h++) {
      const hk = Math.floor(h / G);
      for (let i = cu[s]; i < cu[s + 1]; i++) {
        const jEnd = causal ? i + 1 : cu[s + 1];
        const sc: number[] = [];
        let mx = -Infinity;
        for (let j = cu[s]; j < jEnd; j++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[(i * Hq + h) * D + d] * k[(j * Hkv + hk) * D + d];
          sc.push(dot * scale);
          mx = Math.max(mx, dot * scale);
        }
        let sum = 0;
        for (let n = 0; n < sc.length; n++) sum += (sc[n] = Math.exp(sc[n] - mx));
        lse[i * Hq + h] = mx + Math.log(sum);
        for (let n = 0; n < sc.length; n++) {
          const j = cu[s] + n;
          for (let d = 0; d < D; d++) out[(i * Hq + h) * D + d] += (sc[n] / sum) * v[(j * Hkv + hk) * D + d];
        }
      }
    }
  }
  return { out, lse };
}
