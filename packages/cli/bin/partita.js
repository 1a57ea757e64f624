#!/usr/bin/env node
// The `partita` command's entry point (the code is dist/bin.js, compiled from src/bin.ts). It is a
// committed file, not dist/bin.js itself, because npm links a workspace's bin into
// node_modules/.bin at `npm install` only if the file exists then, and on a fresh clone dist/ is not
// built yet: `npx partita` would then go looking for a package of that name on the registry.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write(`partita: ${entry.pathname} is missing; build first (npm run build)\n`);
  process.exit(1);
}
await import(entry.href);
