/**
 * The processes' HTTP routes on a node: GET /processes, GET /processes/:name (state, owner, last
 * run, per-item status, errors, stats) and POST /processes/:name/trigger|pause|resume.
 */
import type { Client } from '@partita/client';
import { describeError, PartitaError } from '@partita/core';
import type { Route } from '@partita/runtime';
import type http from 'node:http';
import { processes } from './client.js';
import { UnknownProcessError } from './errors.js';

const ACTIONS = ['trigger', 'pause', 'resume'] as const;

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

export function processRoutes(client: Client): Route[] {
  const api = processes(client);
  const guard = async (res: http.ServerResponse, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      if (err instanceof UnknownProcessError) send(res, 404, { error: err.code, message: err.message });
      else if (err instanceof PartitaError) send(res, 400, { error: err.code, message: err.message });
      else send(res, 500, { error: 'INTERNAL', message: describeError(err).message });
    }
  };
  return [
    {
      method: 'GET',
      path: '/processes',
      handler: (_req, res) => guard(res, async () => send(res, 200, await api.list())),
    },
    {
      method: ['GET', 'POST'],
      path: '/processes/*',
      handler: (req, res, { rest }) =>
        guard(res, async () => {
          const parts = rest.split('/').map((p) => decodeURIComponent(p));
          const [name, action, extra] = parts;
          if (!name || extra !== undefined)
            return send(res, 404, { error: 'NOT_FOUND', message: 'use /processes/:name or /processes/:name/trigger|pause|resume' });
          if (req.method === 'GET' || req.method === 'HEAD') {
            if (action !== undefined) return send(res, 405, { error: 'METHOD_NOT_ALLOWED', message: `POST /processes/${name}/${action}` });
            const record = await api.get(name);
            if (!record) throw new UnknownProcessError(name);
            return send(res, 200, record);
          }
          if (!(ACTIONS as readonly (string | undefined)[]).includes(action))
            return send(res, 404, { error: 'NOT_FOUND', message: `POST /processes/${name}/trigger, /pause or /resume` });
          await api[action as (typeof ACTIONS)[number]](name);
          send(res, 200, await api.get(name));
        }),
    },
  ];
}
