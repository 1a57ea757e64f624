#!/usr/bin/env node
/** The `partita` command. See `partita --help`. */
import { main } from './main.js';

// `partita jobs | head`: a closed pipe ends the output, it is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Long-running commands have closed everything they opened; if a stray handle (a timer in a
// library, an idle socket) would keep the process alive, do not let it linger.
setTimeout(() => process.exit(code), 2000).unref();
