#!/usr/bin/env python3
"""
Charges each busy sample of a V8 .cpuprofile to the innermost frame of our own code (packages/...) above it:
who made the pg, NATS, msgpack or node work happen, and what kind of work it was.

  python3 bench/tools/profile-owners.py PROFILE HOPS.json [--from I] [--to J] [--top N]
      samples inside the runs of `WF_HOPS_DUMP=HOPS.json bench/wf-hops.ts` (runs I..J-1), in ms per run
  python3 bench/tools/profile-owners.py PROFILE - [--skip F] [--per N] [--top N]
      no hops: samples from the first to the last frame of packages/workflows, the first fraction F left
      out (the deploy, the warm-up), in ms per N (e.g. the workflows measured in that span)
  ... --callers REGEX [--depth D]      instead: the call chains (D frames) above frames matching REGEX

Prints, per owning frame, its ms and the leaf kinds under it (own = packages/..., a node_modules package,
write = socket writes, gc, node = node internals), then the totals by leaf kind and by owning package.
"""
import bisect, collections, json, re, sys

args = sys.argv[1:]
opt = lambda name, default=None: args[args.index(name) + 1] if name in args else default
prof = json.load(open(args[0]))
nodes = {n['id']: n for n in prof['nodes']}
parent = {c: n['id'] for n in prof['nodes'] for c in n.get('children', [])}


def frame(i):
    cf = nodes[i]['callFrame']
    url = re.sub(r'^.*/(packages|node_modules)/', r'\1/', cf['url'])
    return f"{cf['functionName'] or '(anon)'} {url}:{cf['lineNumber'] + 1}"


def kind(i):
    cf = nodes[i]['callFrame']
    m = re.search(r'node_modules/((?:@[^/]+/)?[^/]+)/', cf['url'])
    if m:
        return m.group(1)
    if '/packages/' in cf['url']:
        return 'own'
    if cf['functionName'] in ('writev', 'writeBuffer'):
        return 'write'
    return 'gc' if cf['functionName'].startswith('(garbage') else 'node'


stamps, t = [], prof['startTime']
for d in prof['timeDeltas']:
    t += d
    stamps.append(t)
samples = prof['samples']
if args[1] != '-':
    runs = json.load(open(args[1]))[int(opt('--from', 0)):int(opt('--to', 10**9))]
    windows = [(r['t0'], r['t0'] + r['hops'][-1]['at'] * 1000) for r in runs]
    per = len(runs)
else:
    own = [k for k, s in enumerate(samples) if '/packages/workflows/' in nodes[s]['callFrame']['url']]
    lo, hi = stamps[own[0]], stamps[own[-1]]
    windows = [(lo + (hi - lo) * float(opt('--skip', 0)), hi)]
    per = int(opt('--per', 1))


def inside(at):
    i = bisect.bisect_right(windows, (at, float('inf'))) - 1
    return i >= 0 and windows[i][0] <= at < windows[i][1]


owners, kinds, chains = collections.Counter(), collections.defaultdict(collections.Counter), collections.Counter()
callers = re.compile(opt('--callers')) if '--callers' in args else None
depth = int(opt('--depth', 8))
for k in range(len(samples) - 1):
    s = samples[k]
    if not inside(stamps[k]) or frame(s).startswith('(idle)'):
        continue
    dt = stamps[k + 1] - stamps[k]
    chain, x = [], s
    while x is not None:
        chain.append(x)
        x = parent.get(x)
    if callers:
        hit = next((i for i, c in enumerate(chain) if callers.search(frame(c))), None)
        if hit is not None:
            chains[' <- '.join(frame(c) for c in chain[hit:hit + depth])] += dt
        continue
    owner = next((frame(c) for c in chain if '/packages/' in nodes[c]['callFrame']['url']), '(none) ' + frame(s))
    owners[owner] += dt
    kinds[owner][kind(s)] += dt
ms = lambda us: f'{us / 1000 / per:7.3f}'
if callers:
    for c, us in chains.most_common(int(opt('--top', 10))):
        print(f'{ms(us)}  {c}\n')
    sys.exit()
for o, us in owners.most_common(int(opt('--top', 40))):
    print(f'{ms(us)}  {o}   ' + ' '.join(f'{k}={v / 1000 / per:.3f}' for k, v in kinds[o].most_common(4)))
by_kind, by_package = collections.Counter(), collections.Counter()
for o, c in kinds.items():
    by_kind.update(c)
    m = re.search(r'packages/([^/]+)/', o)
    by_package[m.group(1) if m else '(none)'] += owners[o]
print('busy', ms(sum(owners.values())).strip(), 'ms per', 'run' if args[1] != '-' else f'{per}')
print('by leaf kind:', ' '.join(f'{k}={v / 1000 / per:.3f}' for k, v in by_kind.most_common()))
print('by owning package:', ' '.join(f'{k}={v / 1000 / per:.3f}' for k, v in by_package.most_common()))
