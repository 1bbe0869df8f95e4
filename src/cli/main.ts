/**
 * The `seedvl` command: a thin dispatcher. Each subcommand lives in its own
 * module and is loaded only when used, so `seedvl --help` stays fast.
 */
type Command = { summary: string; load: () => Promise<(argv: string[]) => Promise<number>> };

const COMMANDS: Record<string, Command> = {
  run: {
    summary: 'answer one prompt (streamed), with images/video',
    load: async () => (await import('./run.ts')).runCommand,
  },
  chat: {
    summary: 'interactive multi-turn chat (/image to attach)',
    load: async () => (await import('./chat.ts')).chatCommand,
  },
  serve: {
    summary: 'OpenAI-compatible HTTP API + playground',
    load: async () => (await import('./serve.ts')).serveCommand,
  },
  quantize: {
    summary: 'write an int8/int4 weight-quantised copy of a model directory',
    load: async () => (await import('./quantize.ts')).quantizeCommand,
  },
  info: {
    summary: 'parameter and FLOP accounting of a model preset',
    load: async () => (await import('./info.ts')).infoCommand,
  },
  inspect: {
    summary: 'what the model would see for an image or video (resize, grid, tokens)',
    load: async () => (await import('./inspect.ts')).inspectCommand,
  },
  'golden-check': {
    summary: 'compare the Qwen-VL implementation with reference outputs (shared/golden layout)',
    load: async () => (await import('./golden_check.ts')).goldenCheckCommand,
  },
  engine: {
    summary: 'native engine status: CPU features, threads, memory',
    load: async () => (await import('./engine.ts')).engineCommand,
  },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: seedvl <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun 'seedvl <command> --help' for a command's options.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    console.error(`seedvl: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  try {
    const run = await cmd.load();
    return await run(rest);
  } catch (e) {
    console.error(`seedvl ${name}: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}
