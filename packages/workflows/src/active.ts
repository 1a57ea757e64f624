/**
 * The active version of each app, as new workflows started through one client see it: read from
 * Postgres once and cached, except while an activation of the app is under way (nocache mode), when
 * every use reads it again until it is the version being activated. One cache per client, shared by
 * every `app(client, id)` handle; on a node (node.client) the plugin's activation member drives it.
 */
import type { Client } from '@partita/client';

export class ActiveVersions {
  private readonly cached = new Map<string, Promise<string | undefined>>();
  /** App → the version an activation is switching it to. */
  private readonly nocache = new Map<string, string>();
  /** The cached versions read already (`cached`'s resolved): a pub takes them without a wait. */
  private readonly resolved = new Map<string, string | undefined>();
  constructor(private readonly read: (appId: string) => Promise<string | undefined>) {}

  async get(appId: string): Promise<string | undefined> {
    const until = this.nocache.get(appId);
    if (until !== undefined) {
      const version = await this.read(appId);
      // Seen flipped: cache again (an activation that went on to another version has its own entry by now).
      if (version === until && this.nocache.get(appId) === until) {
        this.nocache.delete(appId);
        this.cached.set(appId, Promise.resolve(version));
        this.resolved.set(appId, version);
      }
      return version;
    }
    let version = this.cached.get(appId);
    if (!version) {
      version = this.read(appId);
      const mine = version;
      version.then(
        (v) => {
          if (this.cached.get(appId) === mine) this.resolved.set(appId, v);
        },
        () => {
          if (this.cached.get(appId) === mine) this.cached.delete(appId);
        },
      );
      this.cached.set(appId, version);
    }
    return version;
  }

  /**
   * The version get() would give now without a read or a wait; undefined when it would read or wait
   * (nocache, not read yet, being read) or when the app has none.
   */
  peek(appId: string): string | undefined {
    return this.nocache.has(appId) ? undefined : this.resolved.get(appId);
  }

  /** An activation to `untilVersion` began: read from Postgres on every use until it is active. */
  enterNocache(appId: string, untilVersion: string): void {
    this.nocache.set(appId, untilVersion);
    this.cached.delete(appId);
    this.resolved.delete(appId);
  }

  /** The activation ended (activated or abandoned), or the app's cache is stale: read it again on next use. */
  forget(appId: string): void {
    this.nocache.delete(appId);
    this.cached.delete(appId);
    this.resolved.delete(appId);
  }

  /** After a reconnect: every cached version may be stale. Nocache modes stay (the member renews them). */
  forgetAll(): void {
    this.cached.clear();
    this.resolved.clear();
  }

  /** This client just flipped the app to `version` itself. */
  activated(appId: string, version: string): void {
    this.nocache.delete(appId);
    this.cached.set(appId, Promise.resolve(version));
    this.resolved.set(appId, version);
  }
}

const byClient = new WeakMap<Client, ActiveVersions>();

/** The client's cache; `read` is used when it is made (the first handle or the plugin's start). */
export function activeVersionsOf(client: Client, read: (appId: string) => Promise<string | undefined>): ActiveVersions {
  let cache = byClient.get(client);
  if (!cache) {
    cache = new ActiveVersions(read);
    byClient.set(client, cache);
  }
  return cache;
}
