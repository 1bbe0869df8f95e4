/**
 * Prints the int8/int4 accuracy table of the Qwen-VL golden models (see
 * quant_accuracy_qwen.ts):
 *   node --import tsx src/generation/quant_accuracy_qwen_main.ts [golden-dir] [--json]
 * (golden-dir defaults to /work/shared/golden).
 */
import { qwenQuantAccuracy, qwenAccuracyTable } from './quant_accuracy_qwen.ts';

const args = process.argv.slice(2);
const json = args.includes('--json');
const dir = args.find((a) => !a.startsWith('--')) ?? '/work/shared/golden';
const t0 = performance.now();
const rows = qwenQuantAccuracy(dir, { onRow: (r) => process.stderr.write(`${r.model} ${r.case} int${r.bits}: top-1 ${r.top1.toFixed(3)}\n`) });
if (json) console.log(JSON.stringify(rows));
else console.log(qwenAccuracyTable(rows));
process.stderr.write(`${rows.length} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
