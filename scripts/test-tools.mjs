// Before `npm test`: the CLI tests drive `watch` in tmux and check `serve`'s exposition with promtool
// (Debian packages tmux and prometheus). Installs them when missing and this is a root shell with
// apt-get (a fresh CI or developer machine); otherwise says what to install and lets the tests report.
import { spawnSync } from 'node:child_process';

const missing = [
  ['tmux', 'tmux'],
  ['promtool', 'prometheus'],
].filter(([tool]) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);

if (missing.length > 0) {
  const packages = missing.map(([, pkg]) => pkg);
  const canInstall = process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v apt-get']).status === 0;
  if (canInstall) {
    console.error(`test tools: installing ${packages.join(', ')} (apt-get)`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const update = spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
    const install = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { stdio: 'inherit', env });
    if (update.status !== 0 || install.status !== 0) console.error('test tools: apt-get failed; the CLI tests that need them will fail');
  } else {
    console.error(`test tools: missing ${missing.map(([t]) => t).join(', ')}: install the Debian packages ${packages.join(' ')}`);
  }
}
