#!/usr/bin/env python3
"""
Summarises a V8 .cpuprofile (the bench's --cpu-profile DIR, node-drain's --cpu-profile):

  python3 bench/tools/cpuprofile.py FILE [N=40]            self time by package and by function
  python3 bench/tools/cpuprofile.py FILE N --incl          ... and inclusive time by function
  python3 bench/tools/cpuprofile.py FILE N --win           ... and idle / GC / JS share per 100 ms window
  python3 bench/tools/cpuprofile.py FILE N --under REGEX   self time of what runs under frames matching REGEX
  python3 bench/tools/cpuprofile.py FILE N --lines REGEX   ticks by source line (dist .js) of functions matching REGEX

Frames are named "function path:line" with paths cut to packages/... or node_modules/...
"""
import collections, json, re, sys

args = sys.argv[1:]
path = args[0]
top = int(args[1]) if len(args) > 1 and args[1].isdigit() else 40
opt = lambda name: args[args.index(name) + 1] if name in args else None
p = json.load(open(path))
nodes = {n['id']: n for n in p['nodes']}
parent = {c: n['id'] for n in p['nodes'] for c in n.get('children', [])}


def name(n):
    cf = n['callFrame']
    url = re.sub(r'^.*/(packages|node_modules)/', r'\1/', cf['url'])
    return f"{cf['functionName'] or '(anon)'} {url}:{cf['lineNumber'] + 1}"


def package(n):
    url = n['callFrame']['url']
    m = re.search(r'/packages/([^/]+)/', url) or re.search(r'node_modules/((?:@[^/]+/)?[^/]+)/', url)
    if m:
        return m.group(1)
    if url.startswith('node:'):
        return 'node:'
    return n['callFrame']['functionName'] if not url else 'other'


def chain(sample):
    out, x = [], sample
    while x is not None:
        out.append(name(nodes[x]))
        x = parent.get(x)
    return out


SPECIAL = ('(idle)', '(garbage collector)', '(program)')
by_self, by_pkg, incl = collections.Counter(), collections.Counter(), collections.Counter()
windows = collections.defaultdict(collections.Counter)
under, under_total = collections.Counter(), 0
pattern = opt('--under')
total, t = 0, 0
for s, d in zip(p['samples'], p['timeDeltas']):
    t += d
    total += d
    n = nodes[s]
    by_self[name(n)] += d
    by_pkg[package(n)] += d
    fn = n['callFrame']['functionName']
    windows[int(t / 100_000)][fn if fn in SPECIAL else 'js'] += d
    if '--incl' in args or pattern:
        frames = chain(s)
        if '--incl' in args:
            for f in set(frames):
                incl[f] += d
        if pattern and any(re.search(pattern, f) for f in frames):
            under_total += d
            under[frames[0]] += d


def table(counter, n, of=total):
    for k, v in counter.most_common(n):
        print(f'{v / 1000:9.1f} ms {100 * v / of:5.1f}%  {k}')


print(f'total {total / 1000:.0f} ms')
table(by_pkg, 25)
print('--- self')
table(by_self, top)
if '--incl' in args:
    print('--- inclusive')
    table(incl, top)
if pattern:
    print(f'--- under {pattern}: {under_total / 1000:.0f} ms')
    table(under, top, under_total or 1)
if opt('--lines'):
    ticks = collections.Counter()
    for n in p['nodes']:
        cf = n['callFrame']
        if re.search(opt('--lines'), f"{cf['functionName']} {cf['url']}"):
            for pt in n.get('positionTicks', []):
                ticks[(cf['url'].split('/')[-1], pt['line'])] += pt['ticks']
    print('--- ticks by line')
    for (u, line), k in ticks.most_common(top):
        print(f'{k:6d}  {u}:{line}')
if '--win' in args:
    print('--- per 100 ms window: idle / gc / program / js %')
    for w in sorted(windows):
        c = windows[w]
        tt = sum(c.values()) or 1
        print(f"{w / 10:6.1f}s  idle {100 * c['(idle)'] / tt:3.0f}  gc {100 * c['(garbage collector)'] / tt:3.0f}  "
              f"prog {100 * c['(program)'] / tt:3.0f}  js {100 * c['js'] / tt:3.0f}")
