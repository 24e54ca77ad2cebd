// Child process for bench/guard-compare.mjs: the guard's reaction times with one build of vramguard.
//   node bench/lib/reaction-child.mjs <path of dist/cjs> <crossings>
import { createRequire } from 'node:module';
import { join } from 'node:path';

import { measureReaction } from './guard-reaction.mjs';

const [dist, crossings] = process.argv.slice(2);
const require = createRequire(join(dist, 'index.js'));
const reactions = await measureReaction(require(join(dist, 'index.js')), require(join(dist, 'testing', 'index.js')), Number(crossings));
process.stdout.write(JSON.stringify(reactions));
