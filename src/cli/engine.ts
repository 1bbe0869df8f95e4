import { native, numThreads, nativeMemory } from '../tensor/index.ts';

/** `seedvl engine [--json]`: what the native engine found on this machine. */
export async function engineCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log('usage: seedvl engine [--json]\n\nPrints the CPU features the native kernels dispatch on, the thread count\n(SEEDVL_NUM_THREADS overrides it) and native memory in use.');
    return 0;
  }
  const info = { isa: native.cpu.level, cpu: native.cpu, threads: numThreads(), memory: nativeMemory() };
  if (argv.includes('--json')) console.log(JSON.stringify(info));
  else {
    console.log(`kernels:  ${info.isa}`);
    console.log(`features: ${Object.entries(info.cpu).filter(([, v]) => v === true).map(([k]) => k).join(' ')}`);
    console.log(`threads:  ${info.threads}`);
  }
  return 0;
}
