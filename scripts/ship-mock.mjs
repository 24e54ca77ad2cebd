// After `prebuildify`: put the mock NVML libraries beside the prebuilt addon, in the same folders they
// have beside a source build (mock/, mock-eras/), so `vramguard/testing` finds them either way.
// prebuildify also copies every top-level shared library of build/Release (gyp's intermediate copies
// of the mocks): those are removed, so nothing named libnvidia-ml.so.1 sits next to the addon itself.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
for (const name of readdirSync(target)) {
  if (/\.so(\.\d+)?$/.test(name)) rmSync(join(target, name));
}
const eras = JSON.parse(readFileSync(join(root, 'native', 'sources.json'), 'utf8')).mockEras;
const libraries = [['mock', 'libnvidia-ml.so.1']];
for (const era of Object.keys(eras)) if (era !== '580') libraries.push(['mock-eras', `libnvidia-ml-${era}.so.1`]);
rmSync(join(target, 'mock-legacy'), { recursive: true, force: true });
for (const [folder, file] of libraries) {
  mkdirSync(join(target, folder), { recursive: true });
  copyFileSync(join(root, 'build', 'Release', folder, file), join(target, folder, file));
}
console.log(`mock NVML shipped in ${target}`);
