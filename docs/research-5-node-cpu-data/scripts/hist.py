import sys, subprocess, collections, re
data, mono, lo, hi = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
out = subprocess.run(["perf","script","-i",data,"-F","comm,tid,time,ip,sym,dso","--time",f"{mono+lo:.6f},{mono+hi:.6f}"],capture_output=True,text=True).stdout
bins = collections.defaultdict(collections.Counter)
leaf = collections.Counter(); frames=collections.Counter()
cur=None
for block in out.split("\n\n"):
    lines=[l for l in block.splitlines() if l.strip()]
    if not lines: continue
    m=re.match(r"\s*(\S.*?)\s+(\d+)\s+(\d+\.\d+):",lines[0])
    if not m: continue
    comm,tid,t=m.group(1),m.group(2),float(m.group(3))
    b=int((t-mono)*100)/100
    bins[b][comm]+=1
    if comm=="corosync":
        syms=[l.strip().split(None,1)[1] if len(l.strip().split(None,1))>1 else "?" for l in lines[1:]]
        leaf[syms[0] if syms else "?"]+=1
        for s in set(syms): frames[re.sub(r"\+0x[0-9a-f]+","",s)]+=1
for b in sorted(bins):
    c=bins[b]; tot=sum(c.values())
    print(f"{b:.2f} busy {tot-c['swapper']:3d}/{tot:3d} corosync {c['corosync']:3d} based {c['pacemaker-based']:2d} contr {c['pacemaker-contr']:2d} other-top {[(k,v) for k,v in c.most_common(5) if k not in ('swapper','corosync')][:3]}")
print("corosync frames:")
for s,n in frames.most_common(40): print(f"  {n:4d} {s}")
