#!/usr/bin/env python3
"""
Summarises the sampling heap profile the bench writes with --heap-profile N when PARTITA_BENCH_HEAP_FILE
names a file: bytes per unit (workflow) by allocating frame, each with its callers up to the first frame
of packages/ (so a builtin's allocation, `set` or `Map`, names the code that asked for it):

  PARTITA_BENCH_HEAP_FILE=/tmp/h.json npx tsx run.ts --only workflow-throughput --jobs 20000 --repeat 1 --heap-profile 5 --no-file
  python3 bench/tools/heapprofile.py /tmp/h.json 20000 [N=40] [REGEX]

With REGEX: the bytes allocated under frames matching it, by the path from the match down.
"""
import collections, json, re, sys

prof = json.load(open(sys.argv[1]))
units = int(sys.argv[2])
top = int(sys.argv[3]) if len(sys.argv) > 3 else 40
pattern = sys.argv[4] if len(sys.argv) > 4 else None


def name(cf):
    url = re.sub(r'^.*/(packages|node_modules)/', r'\1/', cf['url']).replace('/dist/', '/')
    fn = cf['functionName'] or '(anon)'
    return f"{fn} {url}:{cf['lineNumber'] + 1}" if url else fn


sites, total = collections.Counter(), 0
stack = [(prof['head'], [])]
while stack:
    node, above = stack.pop()
    frames = above + [name(node['callFrame'])]
    size = node.get('selfSize', 0)
    if size:
        total += size
        if pattern is None:
            key = [frames[-1]]
            for f in reversed(frames[:-1]):
                key.append(f)
                if 'packages/' in f:
                    break
            sites[' <- '.join(key[:4])] += size
        else:
            for i in range(len(frames) - 1, -1, -1):
                if re.search(pattern, frames[i]):
                    sites[' > '.join(frames[i:][:6])] += size
                    break
    for child in node.get('children', []):
        stack.append((child, frames))
print(f'total {total / units:.0f} B per unit')
for k, v in sites.most_common(top):
    print(f'{v / units:7.0f} B  {k}')
