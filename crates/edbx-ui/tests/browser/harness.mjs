// What the browser tests, the benchmark and the screenshot script share: a real EventDBX
// server (the test kit's `edbx-test-server`), `edbx ui` against it, `edbx` for writes, and
// Debian's chromium driven by playwright-core.
//
// Environment: EDBX_BIN_DIR (the cargo target folder holding `edbx` and `edbx-test-server`,
// default <repo>/target/debug), CHROMIUM (default: chromium on the PATH). A missing binary
// fails loudly, naming what to build or install.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '../../../..');
const binDir = process.env.EDBX_BIN_DIR || path.join(repo, 'target', 'debug');

function binary(name) {
  const file = path.join(binDir, name);
  if (!existsSync(file)) {
    throw new Error(`${file} is missing: build it with \`cargo build -p edbx-cli -p edbx-testkit --bins\` ` +
      '(or point EDBX_BIN_DIR at the folder that holds it)');
  }
  return file;
}

export function chromiumPath() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const candidate of ['/usr/bin/chromium', '/usr/bin/chromium-browser']) if (existsSync(candidate)) return candidate;
  throw new Error('chromium is not installed: scripts/system-packages.sh installs Debian\'s (or set CHROMIUM)');
}

// The first line a child writes to stdout.
function firstLine(child, what) {
  return new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout });
    let stderr = '';
    child.stderr.on('data', d => { stderr += d; });
    lines.once('line', line => resolve(line));
    child.once('exit', code => reject(new Error(`${what} exited (${code}) before it was ready: ${stderr}`)));
  });
}

// A throwaway EventDBX server; `stop()` ends it and removes its data.
export async function startServer() {
  const child = spawn(binary('edbx-test-server'), [], { stdio: ['pipe', 'pipe', 'pipe'] });
  const info = JSON.parse(await firstLine(child, 'edbx-test-server'));
  const env = {
    ...process.env,
    EVENTDBX_HOST: info.host,
    EVENTDBX_PORT: String(info.port),
    EVENTDBX_TOKEN: info.token,
    EVENTDBX_TENANT_ID: info.tenant,
    EDBX_CONFIG: path.join(tmpdir(), 'edbx-ui-tests-no-config.toml'),
  };
  return {
    info,
    env,
    // Runs `edbx ARGS` against this server; fails on a non-zero exit.
    edbx(args, input) {
      const run = spawnSync(binary('edbx'), args, { env, input, encoding: 'utf8' });
      if (run.status !== 0) throw new Error(`edbx ${args.join(' ')} exited ${run.status}: ${run.stderr}`);
      return run.stdout;
    },
    // Writes events from objects (the import format), many at once.
    importEvents(events, concurrency = 16) {
      const dir = mkdtempSync(path.join(tmpdir(), 'edbx-ui-import-'));
      const file = path.join(dir, 'events.ndjson');
      writeFileSync(file, events.map(e => JSON.stringify(e)).join('\n') + '\n');
      try {
        this.edbx(['import', file, '--concurrency', String(concurrency), '--progress', 'never']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    stop() {
      child.stdin.end();
      return new Promise(resolve => { if (child.exitCode !== null) resolve(); else child.once('exit', resolve); });
    },
  };
}

// `edbx ui` against `server`; `url` is the one-time login link it printed.
export async function startUi(server, extraArgs = []) {
  const child = spawn(binary('edbx'), ['ui', '--poll-interval', '100', ...extraArgs], {
    env: server.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = await firstLine(child, 'edbx ui');
  if (!/^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{64}$/.test(url)) throw new Error(`unexpected login link: ${url}`);
  const base = url.slice(0, url.indexOf('?'));
  return {
    url,
    base,
    port: Number(new URL(base).port),
    stop() {
      if (child.exitCode !== null) return Promise.resolve(child.exitCode);
      return new Promise(resolve => { child.once('exit', code => resolve(code)); child.kill('SIGINT'); });
    },
  };
}

export async function launch() {
  return chromium.launch({
    executablePath: chromiumPath(),
    // The sandbox needs user namespaces, which CI containers running as root lack.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

// A page that records Content-Security-Policy violations and script errors in
// `window.__violations` (set up before any of the page's own script runs).
export async function newPage(context) {
  const page = await context.newPage();
  await page.addInitScript(() => {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', e => {
      window.__violations.push(e.violatedDirective + ' ' + e.blockedURI);
    });
    window.addEventListener('error', e => window.__violations.push('error: ' + e.message));
  });
  return page;
}
