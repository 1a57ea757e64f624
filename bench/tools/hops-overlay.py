#!/usr/bin/env python3
"""
Lays the hops of `WF_HOPS_DUMP=FILE npx tsx bench/wf-hops.ts` over a V8 .cpuprofile of the same process
(`node --import tsx --cpu-prof --cpu-prof-dir DIR bench/wf-hops.ts N`), both on the monotonic clock:

  python3 bench/tools/hops-overlay.py PROFILE HOPS.json            busy and idle ms per workflow, and the
                                                                   busy time by (outermost own frame | leaf)
  python3 bench/tools/hops-overlay.py PROFILE HOPS.json RUN        ... and run RUN's timeline: its hops with
                                                                   what the thread did between them

Each sample counts for the time to the next one (V8 samples every --cpu-prof-interval µs at best; on
this VM ~130 µs apart at 25 requested), so read the per-workflow sums, not single samples.
"""
import bisect, collections, json, re, sys

prof = json.load(open(sys.argv[1]))
runs = json.load(open(sys.argv[2]))
which = int(sys.argv[3]) if len(sys.argv) > 3 else None
nodes = {n['id']: n for n in prof['nodes']}
parent = {c: n['id'] for n in prof['nodes'] for c in n.get('children', [])}
stamps = []
t = prof['startTime']
for d in prof['timeDeltas']:
    t += d
    stamps.append(t)
# Event-loop plumbing: the label names the first frame below these.
PLUMBING = ('(root)', 'processTicksAndRejections', 'runMicrotasks', 'listOnTimeout', 'processTimers', 'processImmediate',
            'emit ', 'onStreamRead', 'Readable', 'readable', 'addChunk', 'runInAsyncScope', 'runMicrotask')


def frame(node_id):
    cf = nodes[node_id]['callFrame']
    url = re.sub(r'^.*/(packages|node_modules)/', r'\1/', cf['url']).split('/')[-1]
    return f"{cf['functionName'] or '(anon)'} {url}:{cf['lineNumber'] + 1}"


def label(sample):
    chain = []
    x = sample
    while x is not None and x in nodes:
        chain.append(frame(x))
        x = parent.get(x)
    chain.reverse()
    leaf = chain[-1]
    if leaf.startswith('(idle)'):
        return 'idle'
    own = [c for c in chain if not c.startswith(PLUMBING)]
    return f"{(own[0] if own else leaf)[:60]} | {leaf[:50]}"


def events(run):
    t0 = run['t0']
    end = t0 + run['hops'][-1]['at'] * 1000
    lo, hi = bisect.bisect_left(stamps, t0), bisect.bisect_right(stamps, end)
    ev = [(stamps[k], 'sample', label(prof['samples'][k]), (stamps[k + 1] - stamps[k]) if k + 1 < len(stamps) else 0) for k in range(lo, hi)]
    ev += [(t0 + h['at'] * 1000, 'hop', h['name'], 0) for h in run['hops']]
    return sorted(ev, key=lambda e: e[0])


busy = idle = 0
by_label = collections.Counter()
for run in runs:
    for at, kind, what, dt in events(run):
        if kind != 'sample':
            continue
        if what == 'idle':
            idle += dt
        else:
            busy += dt
            by_label[what] += dt
n = len(runs)
print(f'busy {busy / n / 1000:.2f} ms, idle {idle / n / 1000:.2f} ms per workflow ({n} runs)')
for what, us in by_label.most_common(40):
    print(f'{us / n / 1000:7.3f}  {what}')
if which is not None:
    run = runs[which]
    t0 = run['t0']
    current, since = None, None
    for at, kind, what, _ in events(run) + [(float('inf'), 'hop', '(end)', 0)]:
        if kind == 'sample' and what == current:
            continue
        if current is not None:
            print(f'   {(since - t0) / 1000:7.3f}-{(min(at, t0 + run["hops"][-1]["at"] * 1000) - t0) / 1000:7.3f}  {current}')
            current = None
        if kind == 'hop':
            if what != '(end)':
                print(f'{(at - t0) / 1000:7.3f}  ** {what}')
        else:
            current, since = what, at
