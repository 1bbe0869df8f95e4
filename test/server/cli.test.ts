/**
 * The CLI commands in child processes: --help everywhere, usage errors, and
 * greedy output of `seedvl run` equal to the same request through `seedvl serve`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const COMMANDS = { run: 'runCommand', chat: 'chatCommand', serve: 'serveCommand', quantize: 'quantizeCommand' } as const;

function script(cmd: keyof typeof COMMANDS): string {
  return `import('${ROOT}src/cli/${cmd}.ts').then(async (m) => process.exit(await m.${COMMANDS[cmd]}(JSON.parse(process.argv[1]))))`;
}

function runCli(cmd: keyof typeof COMMANDS, args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script(cmd), JSON.stringify(args)], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a command in this process, capturing console output (for --help and usage errors, which load nothing). */
async function inProcess(cmd: keyof typeof COMMANDS, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const mod = (await import(`../../src/cli/${cmd}.ts`)) as Record<string, (a: string[]) => Promise<number>>;
  let stdout = '';
  let stderr = '';
  const { log, error } = console;
  console.log = (...a: unknown[]) => void (stdout += a.join(' ') + '\n');
  console.error = (...a: unknown[]) => void (stderr += a.join(' ') + '\n');
  try {
    return { code: await mod[COMMANDS[cmd]]!(args), stdout, stderr };
  } finally {
    console.log = log;
    console.error = error;
  }
}

test('--help on every command; usage errors exit 2 with a message', async () => {
  for (const cmd of Object.keys(COMMANDS) as (keyof typeof COMMANDS)[]) {
    const r = await inProcess(cmd, ['--help']);
    assert.equal(r.code, 0, `${cmd} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`usage: seedvl ${cmd}`));
  }
  const cases: [keyof typeof COMMANDS, string[], RegExp][] = [
    ['run', ['--preset', 'tiny'], /give a prompt/],
    ['run', ['--preset', 'tiny', '--temperature', 'x', 'hi'], /--temperature must be a number/],
    ['run', ['--bogus', 'hi'], /bogus/],
    ['run', ['hi'], /exactly one of --model DIR or --preset NAME/],
    ['quantize', ['a', 'b', '--bits', '3'], /--bits must be 4 or 8/],
    ['serve', ['--preset', 'tiny', '--port', '99999'], /--port must be an integer/],
  ];
  for (const [cmd, args, re] of cases) {
    const r = await inProcess(cmd, args);
    assert.equal(r.code, 2, `${cmd} ${args.join(' ')}: exit ${r.code}, ${r.stderr}`);
    assert.match(r.stderr, re);
  }
  const missing = await inProcess('run', ['--model', '/nonexistent/seedvl-model', 'hi']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nonexistent/);
});

async function startServe(args: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script('serve'), JSON.stringify(args)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 30_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /serving on (http:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
  return { url, child };
}

test('greedy output through `seedvl serve` equals `seedvl run`; random weights are announced', async () => {
  const model = ['--preset', 'tiny', '--seed', '5'];
  const question = 'What is in the picture?';
  const cli = runCli('run', [...model, '--temperature', '0', '--max-tokens', '12', '--thinking', 'off', '--json', question]);
  assert.equal(cli.code, 0, cli.stderr);
  const viaCli = JSON.parse(cli.stdout) as { content: string; usage: { completion_tokens: number } };
  const human = runCli('run', [...model, '--temperature', '0', '--max-tokens', '4', question]);
  assert.equal(human.code, 0);
  assert.match(human.stderr, /RANDOM weights/);
  const { url, child } = await startServe([...model, '--port', '0']);
  try {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 });
    const r = await client.chat.completions.create({
      model: 'any', messages: [{ role: 'user', content: question }], temperature: 0, max_tokens: 12,
      // @ts-expect-error Seed extension
      thinking: { type: 'disabled' },
    });
    assert.equal(r.choices[0]!.message.content, viaCli.content);
    assert.equal(r.usage!.completion_tokens, viaCli.usage.completion_tokens);
    const page = await fetch(url);
    assert.match(await page.text(), /seedvl playground/);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
});

test('seedvl chat: multi-turn from piped input, commands between turns', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script('chat'), JSON.stringify(['--preset', 'tiny', '--max-tokens', '3', '--temperature', '0'])], {
    cwd: ROOT, encoding: 'utf8', timeout: 60_000, input: 'hello\n/thinking off\n/bogus\nsecond turn\n/exit\n',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.match(/model> /g)?.length, 2, r.stdout);
  assert.match(r.stderr, /commands: \/image PATH/);
});
