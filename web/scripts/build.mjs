// @ts-check
// Builds the app when its build is missing or older than its sources: proves nothing by itself;
// shared by run-demo.mjs and e2e/run.mjs so neither serves a stale bundle.

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { WEB_DIR } from './stack.mjs';

const SOURCES = ['src', 'public', 'index.html', 'silent-renew.html', 'vite.config.ts', 'package-lock.json'];

/**
 * @param {string} path a file or a directory
 * @returns {number} the newest modification time in it (ms)
 */
function newestMtime(path) {
  const info = statSync(path);
  if (!info.isDirectory()) return info.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newestMtime(join(path, name))));
}

/**
 * Runs `vite build` in web/ unless web/dist is newer than every source.
 *
 * @param {{force?: boolean, log?: (line: string) => void}} [options]
 * @returns {boolean} true when a build ran
 */
export function ensureBuilt({ force = false, log = (line) => process.stderr.write(`${line}\n`) } = {}) {
  if (!existsSync(join(WEB_DIR, 'node_modules/vite'))) {
    throw new Error('web/node_modules is missing: run `make deps` (or `npm ci --prefix web`) first');
  }
  const built = join(WEB_DIR, 'dist/index.html');
  const sources = Math.max(...SOURCES.map((name) => join(WEB_DIR, name)).filter(existsSync).map(newestMtime));
  if (!force && existsSync(built) && statSync(built).mtimeMs >= sources) return false;
  log('web: building the app (vite build)…');
  const result = spawnSync(process.execPath, [join(WEB_DIR, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], {
    cwd: WEB_DIR,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (result.status !== 0) throw new Error(`vite build failed (exit ${result.status})`);
  return true;
}
