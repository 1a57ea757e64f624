/**
 * What the CLI adds around a node it runs. The node itself, and its health/metrics server, are
 * startNode's (the config's http: section): the CLI builds neither a second server nor its own
 * readiness rule.
 */
import type { Logger } from '@partita/core';

/**
 * The process that launched this one, read when the CLI loads: read later (once the node is up), a
 * launcher that died during a slow start would already have been replaced by init or a subreaper, and
 * its exit would never be seen.
 */
const LAUNCHER_PID = process.ppid;

/**
 * Under npm (`npx partita start`, `npm run …`) the node's parent is npm's `sh -c`: npm passes a
 * SIGTERM on to that shell, which dies of it without passing it on, and the node would run on as an
 * orphan with its database. So when started by npm, the parent's exit counts as a SIGTERM (a graceful
 * stop through the same handler; one that comes while the node starts stops it as soon as it is up).
 * Call it once the SIGTERM handler is installed (startNode's handleSignals installs it synchronously).
 * A node started directly (`node_modules/.bin/partita`, systemd, a container) is not affected.
 */
export function stopWhenLauncherExits(logger: Logger, env: NodeJS.ProcessEnv = process.env, launcher: number = LAUNCHER_PID): () => void {
  if (!env.npm_command) return () => undefined;
  const timer = setInterval(() => {
    if (process.ppid === launcher) return;
    clearInterval(timer);
    logger.warn(
      { parent: launcher },
      'the npm process that started this node is gone (npm does not pass signals through its shell): stopping as on SIGTERM',
    );
    process.kill(process.pid, 'SIGTERM');
  }, 500);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Awaits a node's start (startNode's promise, called just before: its signal handlers are in place)
 * with its launcher watched from the start (stopWhenLauncherExits): a launcher gone while the node
 * starts stops it as soon as it is up. Resolves with the node and what ends the watch.
 */
export async function startWatched<T>(
  starting: Promise<T>,
  logger: Logger,
  env: NodeJS.ProcessEnv,
): Promise<{ node: T; unwatch: () => void }> {
  const unwatch = stopWhenLauncherExits(logger, env);
  try {
    return { node: await starting, unwatch };
  } catch (err) {
    unwatch();
    throw err;
  }
}
