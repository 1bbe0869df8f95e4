/**
 * Hub weight names → our module names (open-models.md §4.2, §5.1, §6.3, §7.2).
 *
 * Two Hub layouts exist: Qwen2/2.5-VL as published (`visual.*`, `model.layers.*`,
 * `model.embed_tokens`, `model.norm`) and Qwen3-VL / re-saved files
 * (`model.visual.*`, `model.language_model.*`); `lm_head.weight` is top level
 * in both and absent when tied. Our tree is `vision.*` and `language.*`:
 *
 *   visual.patch_embed.proj.weight (C,3,T,P,P)  → vision.patch_embed.weight (C, 3·T·P·P)  (a reshape, no copy)
 *   visual.merger.ln_q | mlp.0 | mlp.2           → vision.merger.norm | fc1 | fc2          (Qwen2/2.5)
 *   visual.merger.norm | linear_fc1 | linear_fc2 → vision.merger.norm | fc1 | fc2          (Qwen3)
 *   visual.deepstack_merger_list.k.*             → vision.deepstack_mergers.k.*            (same renames)
 *   visual.blocks.i.mlp.linear_fc1|linear_fc2    → vision.blocks.i.mlp.fc1|fc2             (Qwen3)
 *   …layers.i.mlp.experts.gate_up_proj (E,H,2I)  → language.layers.i.mlp.experts.e.{gate,up}_proj.weight (I,H)
 *   …layers.i.mlp.experts.down_proj    (E,I,H)   → language.layers.i.mlp.experts.e.down_proj.weight    (H,I)
 *
 * Fused experts are used as `x @ W[e]` on the Hub, so each expert's Linear
 * weight is a transposed narrow view of the stored tensor: zero-copy (the
 * GEMM/GEMV kernels read the transposed layout directly).
 */

/** How a canonical tensor is derived from a Hub tensor. */
export type WeightRef =
  | { kind: 'plain'; hub: string }
  /** Conv3d kernel (C, …) flattened to a Linear weight (C, prod(rest)). */
  | { kind: 'conv'; hub: string }
  /** Expert e's gate or up half of gate_up_proj (E, H, 2I), transposed to (I, H). */
  | { kind: 'gate_up'; hub: string; expert: number; half: 0 | 1 }
  /** Expert e of down_proj (E, I, H), transposed to (H, I). */
  | { kind: 'down'; hub: string; expert: number };

const VISION_RENAMES: [RegExp, string][] = [
  [/^patch_embed\.proj\.(weight|bias)$/, 'patch_embed.$1'],
  [/^merger\.ln_q\.(weight|bias)$/, 'merger.norm.$1'],
  [/^merger\.mlp\.0\.(weight|bias)$/, 'merger.fc1.$1'],
  [/^merger\.mlp\.2\.(weight|bias)$/, 'merger.fc2.$1'],
  [/^merger\.linear_fc([12])\.(weight|bias)$/, 'merger.fc$1.$2'],
  [/^deepstack_merger_list\.(\d+)\.linear_fc([12])\.(weight|bias)$/, 'deepstack_mergers.$1.fc$2.$3'],
  [/^deepstack_merger_list\.(\d+)\.norm\.(weight|bias)$/, 'deepstack_mergers.$1.norm.$2'],
  [/^blocks\.(\d+)\.mlp\.linear_fc([12])\.(weight|bias)$/, 'blocks.$1.mlp.fc$2.$3'],
];

/** The canonical name of a vision tensor (the part after `visual.`). */
function visionName(rest: string): string {
  for (const [re, to] of VISION_RENAMES) if (re.test(rest)) return `vision.${rest.replace(re, to)}`;
  return `vision.${rest}`;
}

/**
 * Maps every Hub tensor name onto canonical names. Names that belong to no
 * known layout come back in `unknown` (the loader reports them with their file).
 * `numExperts` is needed to expand fused expert tensors.
 */
export function sanitizeNames(hubNames: readonly string[], numExperts = 0): { refs: Map<string, WeightRef>; unknown: string[] } {
  const refs = new Map<string, WeightRef>();
  const unknown: string[] = [];
  const add = (name: string, ref: WeightRef): void => {
    if (refs.has(name)) {
      const prev = refs.get(name)!;
      throw new Error(`weights: '${ref.hub}' and '${prev.hub}' both map to '${name}'`);
    }
    refs.set(name, ref);
  };
  for (const hub of hubNames) {
    let m: RegExpExecArray | null;
    if ((m = /^(?:model\.)?visual\.(.+)$/.exec(hub))) {
      const name = visionName(m[1]);
      add(name, { kind: name === 'vision.patch_embed.weight' ? 'conv' : 'plain', hub });
    } else if ((m = /^(?:model\.language_model|model|language_model\.model|language_model)\.(.+)$/.exec(hub))) {
      const rest = m[1];
      const fused = /^layers\.(\d+)\.mlp\.experts\.(gate_up_proj|down_proj)$/.exec(rest);
      if (fused) {
        if (numExperts < 1) {
          unknown.push(hub);
          continue;
        }
        const prefix = `language.layers.${fused[1]}.mlp.experts`;
        for (let e = 0; e < numExperts; e++) {
          if (fused[2] === 'gate_up_proj') {
            add(`${prefix}.${e}.gate_proj.weight`, { kind: 'gate_up', hub, expert: e, half: 0 });
            add(`${prefix}.${e}.up_proj.weight`, { kind: 'gate_up', hub, expert: e, half: 1 });
          } else {
            add(`${prefix}.${e}.down_proj.weight`, { kind: 'down', hub, expert: e });
          }
        }
      } else if (/^(embed_tokens|layers|norm)\b/.test(rest)) {
        add(`language.${rest}`, { kind: 'plain', hub });
      } else {
        unknown.push(hub);
      }
    } else if ((m = /^(?:language_model\.)?lm_head\.weight$/.exec(hub))) {
      add('language.lm_head.weight', { kind: 'plain', hub });
    } else {
      unknown.push(hub);
    }
  }
  return { refs, unknown };
}
