/**
 * What the CLI adds around a node it runs. The node itself, and its health/metrics server, are
 * startNode's (the config's http: section): the CLI builds neither a second server nor its own
 * readiness rule.
 */
import type { Logger } from '@partita/core';

/**
 * Under npm (`npx partita start`, `npm run …`) the node's parent is npm's `sh -c`: npm passes a
 * SIGTERM on to that shell, which dies of it without passing it on, and the node would run on as an
 * orphan with its database. So when started by npm, the parent's exit counts as a SIGTERM (a graceful
 * stop through the same handler). A node started directly (`node_modules/.bin/partita`, systemd,
 * a container) is not affected.
 */
export function stopWhenLauncherExits(logger: Logger, env: NodeJS.ProcessEnv = process.env): () => void {
  if (!env.npm_command) return () => undefined;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    logger.warn(
      { parent },
      'the npm process that started this node is gone (npm does not pass signals through its shell): stopping as on SIGTERM',
    );
    process.kill(process.pid, 'SIGTERM');
  }, 500);
  timer.unref();
  return () => clearInterval(timer);
}
