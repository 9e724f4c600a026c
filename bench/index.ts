// `npm run bench -- <name> [--json] [options]`. Each bench file registers itself; add one import per bench.
import { benches } from './registry.js';
import './matmul.js';
import './attention.js';
import './train.js';
import './train-options.js';
import './elementwise.js';

const argv = process.argv.slice(2);
const name = argv.find((a) => !a.startsWith('-'));
const bench = name ? benches.get(name) : undefined;
if (!bench) {
  console.log(`usage: npm run bench -- <name> [--json] [options]\nbenches:\n${[...benches].map(([n, b]) => `  ${n} ${b.help}`).join('\n')}`);
  process.exit(name ? 1 : 0);
}
const args = argv.filter((a) => a !== name && a !== '--json');
await bench.run({ json: argv.includes('--json'), args });
// Dawn keeps the event loop alive; the results are printed.
process.exit(0);
