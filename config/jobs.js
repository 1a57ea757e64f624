// Job definitions of the quick-start cluster (config/partita.yaml points `jobs:` here).
//
// A node imports this module and runs the jobs it defines; clients only need the type names.
// Export the definitions as `jobs` (or as the default export). `demo` lists the jobs that
// `partita demo` (npm start) enqueues to show them being processed; a real module leaves it out.
//
// These jobs do no I/O: sleeps stand in for the network calls real jobs would make.
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { defineJob } from '@partita/runtime';

// `sleep(ms, undefined, { signal: ctx.signal })` rejects with an AbortError as soon as the job is cancelled
// or times out, and detaches from the signal when the timer fires: a job that sleeps in a loop leaves no
// abort listeners behind.

/** Cents, to keep money exact. */
const cents = (amount) => Math.round(amount * 100);

/** billing/invoices: totals an invoice from its lines, with per-line tax rates and a discount. */
export const invoiceTotal = defineJob({
  type: 'invoice.total',
  queue: 'invoices',
  maxAttempts: 3,
  timeoutMs: 10_000,
  // One live job per invoice: enqueueing the same invoice twice while one is pending is refused.
  // A template (not a function), so the node registers it and every enqueuer applies it, the CLI too.
  queueKey: 'invoice:{invoice}',
  async perform(p, ctx) {
    if (!Array.isArray(p.lines) || p.lines.length === 0) throw new Error(`invoice ${p.invoice} has no lines`);
    let net = 0;
    let tax = 0;
    for (const [i, line] of p.lines.entries()) {
      const amount = cents(line.unitPrice) * line.quantity;
      net += amount;
      tax += Math.round(amount * (line.taxRate ?? 0));
      ctx.progress({ line: i + 1, of: p.lines.length });
      await sleep(20 + Math.random() * 40, undefined, { signal: ctx.signal }); // e.g. a price lookup
    }
    const discount = Math.round(net * (p.discountRate ?? 0));
    const total = net - discount + tax;
    return {
      invoice: p.invoice,
      currency: p.currency ?? 'EUR',
      net: net / 100,
      discount: discount / 100,
      tax: tax / 100,
      total: total / 100,
    };
  },
});

/** emails/default: "sends" an email (a pretend SMTP round trip) and returns a message id. */
export const sendEmail = defineJob({
  type: 'email.send',
  maxAttempts: 5,
  backoff: { baseMs: 200, maxMs: 5_000 },
  timeoutMs: 5_000,
  async perform(p, ctx) {
    if (typeof p.to !== 'string' || !p.to.includes('@')) throw new Error(`"${p.to}" is not an email address`);
    await sleep(80 + Math.random() * 220, undefined, { signal: ctx.signal });
    return { messageId: `<${ctx.id}@demo.partita>`, to: p.to, subject: p.subject };
  },
});

/**
 * billing/default: charges a card through a payment gateway that times out now and then. Here the
 * payload says how many attempts fail (`failAttempts`) so the demo shows retries with backoff.
 */
export const chargePayment = defineJob({
  type: 'payment.charge',
  maxAttempts: 4,
  backoff: { baseMs: 300, maxMs: 2_000 },
  async perform(p, ctx) {
    await sleep(50 + Math.random() * 100, undefined, { signal: ctx.signal });
    if (ctx.attempt <= (p.failAttempts ?? 0)) {
      throw new Error(`payment gateway timed out (simulated, attempt ${ctx.attempt})`);
    }
    return { charged: p.amount, currency: p.currency ?? 'EUR', authorization: `AUTH-${ctx.id.slice(-6).toUpperCase()}` };
  },
});

/** emails/default: builds a weekly digest from a list of events (pure computation). */
export const weeklyDigest = defineJob({
  type: 'digest.weekly',
  async perform(p) {
    const byKind = {};
    for (const e of p.events ?? []) byKind[e.kind] = (byKind[e.kind] ?? 0) + 1;
    const top = Object.entries(byKind)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3);
    return { to: p.to, events: (p.events ?? []).length, top: Object.fromEntries(top) };
  },
});

// ── the worker steps of the orders workflow app (config/apps/orders) ─────────────────────────
// A workflow's worker activity is a job of the type its `topic` names, run in the workflow's partition.

/** billing/default: prices an order's items (cents, to keep money exact) plus shipping. */
export const priceOrder = defineJob({
  type: 'order.price',
  maxAttempts: 3,
  async perform(p, ctx) {
    if (!Array.isArray(p.items) || p.items.length === 0) throw new Error('the order has no items');
    await sleep(30 + Math.random() * 50, undefined, { signal: ctx.signal }); // e.g. a price list lookup
    const items = p.items.reduce((sum, item) => sum + cents(item.price) * item.qty, 0);
    const shipping = p.express ? 1500 : items >= cents(50) ? 0 : 490;
    return { items: items / 100, shipping: shipping / 100, total: (items + shipping) / 100, currency: 'EUR' };
  },
});

/** billing/default: packs the parcel of an order and books a carrier; returns its tracking number. */
export const packOrder = defineJob({
  type: 'order.pack',
  maxAttempts: 3,
  async perform(p, ctx) {
    await sleep(50 + Math.random() * 100, undefined, { signal: ctx.signal }); // a warehouse round trip
    const parcels = Math.max(1, Math.ceil((p.items ?? []).reduce((n, item) => n + item.qty, 0) / 3));
    return { tracking: `PX${ctx.id.replace(/-/g, '').slice(-10).toUpperCase()}`, carrier: p.express ? 'express' : 'standard', parcels };
  },
});

export const jobs = [invoiceTotal, sendEmail, chargePayment, weeklyDigest, priceOrder, packOrder];
export default jobs;

// ── what `partita demo` enqueues ─────────────────────────────────────────────────────────────

const customers = ['ada', 'grace', 'edsger', 'barbara', 'donald', 'frances'];

export const demo = [
  ...Array.from({ length: 8 }, (_, i) => ({
    partition: 'billing',
    type: 'invoice.total',
    payload: {
      invoice: `INV-${1001 + i}`,
      customer: customers[i % customers.length],
      currency: 'EUR',
      discountRate: i % 3 === 0 ? 0.05 : 0,
      lines: Array.from({ length: 2 + (i % 4) }, (_, j) => ({
        sku: `SKU-${100 + j}`,
        quantity: 1 + ((i + j) % 3),
        unitPrice: 9.99 + j * 5 + i,
        taxRate: j % 2 === 0 ? 0.2 : 0.055,
      })),
    },
    options: { lookup: { customer: customers[i % customers.length] } },
  })),
  ...customers.map((name, i) => ({
    partition: 'emails',
    type: 'email.send',
    payload: { to: `${name}@example.com`, subject: i % 2 ? 'Your invoice is ready' : 'Welcome to Partita' },
    options: { lookup: { customer: name } },
  })),
  { partition: 'billing', type: 'payment.charge', payload: { amount: 120.5, failAttempts: 0 } },
  { partition: 'billing', type: 'payment.charge', payload: { amount: 42, failAttempts: 1 } },
  { partition: 'billing', type: 'payment.charge', payload: { amount: 999.99, failAttempts: 2 } },
  {
    partition: 'emails',
    type: 'digest.weekly',
    payload: {
      to: 'team@example.com',
      events: [{ kind: 'signup' }, { kind: 'invoice' }, { kind: 'invoice' }, { kind: 'payment' }, { kind: 'signup' }, { kind: 'invoice' }],
    },
    // A scheduled job: runs two seconds from now.
    options: { delayMs: 2_000 },
  },
];

/**
 * The workflows `partita demo` runs beside the jobs: it deploys and activates the app, starts one
 * workflow per input, and for a workflow that waits at a hook activity named in `hooks`, prints the
 * `partita hook` command a person answers it with.
 */
export const demoWorkflows = [
  {
    app: fileURLToPath(new URL('./apps/orders/app.yaml', import.meta.url)),
    topic: 'order.placed',
    partition: 'billing',
    inputs: [
      { orderId: 'A-1001', customer: 'ada', items: [{ sku: 'book', qty: 2, price: 12.5 }] },
      {
        orderId: 'A-1002',
        customer: 'grace',
        express: true,
        items: [
          { sku: 'laptop', qty: 1, price: 1299 },
          { sku: 'sleeve', qty: 1, price: 29.9 },
        ],
      },
      { orderId: 'A-1003', customer: 'edsger', items: [{ sku: 'pen', qty: 10, price: 1.2 }] },
    ],
    // `data` plus the workflow's { id } is what the hint's `partita hook` sends.
    hooks: [{ activity: 'approval', topic: 'order.approval', data: { approved: true, by: 'you' } }],
  },
];
