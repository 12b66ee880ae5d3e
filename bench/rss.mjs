// Resident memory of the renderer processes of one Chromium (the page and its workers share one renderer), found
// as the descendants of the browser process started with `profile` (other Chromiums may run on the machine):
// the largest renderer's VmRSS, and all of them together, sampled from /proc every 250 ms, with a peak per phase.
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { chromium } from 'playwright-core';

export function rssSampler(profile) {
  const rss = { peakOne: 0, peakAll: 0, now: 0, phases: {}, phase: 'start' };
  async function sample() {
    const procs = [];
    for (const pid of await readdir('/proc').catch(() => [])) {
      if (!/^\d+$/.test(pid)) continue;
      const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
      const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
      if (cmd) procs.push({ pid, ppid, cmd });
    }
    const ours = new Set(procs.filter((p) => p.cmd.includes(profile) && !p.cmd.includes('--type=')).map((p) => p.pid));
    for (let grown = true; grown;) {
      grown = false;
      for (const p of procs) if (!ours.has(p.pid) && ours.has(p.ppid)) { ours.add(p.pid); grown = true; }
    }
    let one = 0, all = 0;
    for (const { pid, cmd } of procs) {
      if (!ours.has(pid) || !cmd.includes('--type=renderer')) continue;
      const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      one = Math.max(one, kb);
      all += kb;
    }
    rss.now = one;
    rss.peakOne = Math.max(rss.peakOne, one);
    rss.peakAll = Math.max(rss.peakAll, all);
    rss.phases[rss.phase] = Math.max(rss.phases[rss.phase] ?? 0, one);
  }
  const timer = setInterval(sample, 250);
  rss.stop = () => clearInterval(timer);
  rss.sample = sample;
  return rss;
}

/** Debian's Chromium on a fresh on-disk profile (as a person's browser keeps its storage), its renderers' memory
 * sampled, and the page's warnings and errors collected: what the memory benchmarks share. */
export async function launchSampled(prefix) {
  const profile = await mkdtemp(join(tmpdir(), prefix));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--disable-dev-shm-usage'],
  });
  const rss = rssSampler(profile);
  const page = context.pages()[0] ?? await context.newPage();
  const logs = [];
  page.on('console', (m) => { if (m.type() !== 'log') logs.push(`${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  page.on('crash', () => logs.push('the page crashed'));
  return { profile, context, rss, page, logs };
}
