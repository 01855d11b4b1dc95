#!/usr/bin/env python3
"""Leave-one-city-out check of a confidence model refitted on real imagery.

1. Runs `riverwatch detect --scene --features F.jsonl` with min_confidence 0
   on every OSCD dev city (../shared/data/oscd-dev), so every component and
   its model inputs are kept.
2. Labels each component with the reference map: the share of its area
   (sampled at reference pixel centres) that the reference marks changed;
   true at >= 50 %. (gdal_translate writes the reference as an ASCII grid, so
   no GDAL Python bindings are needed.)
3. For each held-out city: fits an L2 logistic model on the other 13 cities
   (inputs: the confidence-model inputs, optionally also the class-model
   inputs; components weighted by pixels), chooses the threshold that
   maximises mean kappa on those 13, and scores the held-out city's pixel
   kappa exactly from counts (the reported layer is the union of the kept
   components). Prints it next to the current model at min_confidence 0.45.

    cargo build --release
    pip install numpy
    scripts/oscd_cv.py [--inputs conf|conf+class] [--weights pix|sqrt|one] [--lam 10]
"""
import argparse, json, os, subprocess
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--data", default="../shared/data/oscd-dev")
ap.add_argument("--bin", default="target/release/riverwatch")
ap.add_argument("--work", default="target/oscdfit")
ap.add_argument("--inputs", default="conf+class", choices=["conf", "conf+class"])
ap.add_argument("--weights", default="pix", choices=["pix", "sqrt", "one"])
ap.add_argument("--lam", type=float, default=10.0)
a = ap.parse_args()
cities_meta = json.load(open(os.path.join(a.data, "cities.json")))
cfg = os.path.join(a.work, "min_confidence_0.toml")
os.makedirs(a.work, exist_ok=True)
open(cfg, "w").write("min_confidence = 0.0\n")


def detect_all():
    for c in cities_meta:
        n = c["city"]; d = os.path.join(a.data, n); o = os.path.join(a.work, n)
        if os.path.exists(f"{o}/ref.asc"):
            continue
        os.makedirs(o, exist_ok=True)
        subprocess.run([a.bin, "detect", "--scene", "--before", f"{d}/before.tif", "--after", f"{d}/after.tif",
                        "--before-date", c["before"], "--after-date", c["after"], "--tile", n, "--config", cfg,
                        "-o", f"{o}/pred.geojson", "--features", f"{o}/features.jsonl"], check=True, capture_output=True)
        subprocess.run(["gdal_translate", "-q", "-of", "AAIGrid", f"{d}/reference.tif", f"{o}/ref.asc"],
                       check=True, capture_output=True)
def read_asc(p):
    hdr={}; rows=[]
    with open(p) as f:
        for line in f:
            t=line.split()
            if t and t[0].isalpha():
                hdr[t[0].lower()]=float(t[1]); continue
            rows.append([int(float(v)) for v in t])
    dx=hdr.get('cellsize',hdr.get('dx')); dy=hdr.get('cellsize',hdr.get('dy'))
    nr=int(hdr['nrows']); x0=hdr['xllcorner']; ytop=hdr['yllcorner']+nr*dy
    flat=[v for r in rows for v in r]
    nc=int(hdr['ncols'])
    return flat, nc, nr, x0, ytop, dx, dy
def inside(x,y,ring):
    c=False; n=len(ring); j=n-1
    for i in range(n):
        xi,yi=ring[i]; xj,yj=ring[j]
        if (yi>y)!=(yj>y) and x < (xj-xi)*(y-yi)/(yj-yi)+xi: c=not c
        j=i
    return c
def inpoly(x,y,poly):
    if not inside(x,y,poly[0]): return False
    return not any(inside(x,y,h) for h in poly[1:])

def label_all():
    cities = [c["city"] for c in cities_meta]
    out={}
    for n in cities:
        o=os.path.join(a.work, n)
        flat,nc,nr,x0,ytop,dx,dy=read_asc(f'{o}/ref.asc')
        N=sum(1 for v in flat if v in (1,2)); C=sum(1 for v in flat if v==2)
        feats={}
        with open(f'{o}/features.jsonl') as fh:
            hdr=json.loads(fh.readline())
            for line in fh:
                j=json.loads(line); feats[j['id']]=j
        comps=[]
        for f in json.load(open(f'{o}/pred.geojson'))['features']:
            g=f['geometry']; polys=[g['coordinates']] if g['type']=='Polygon' else g['coordinates']
            xs=[p[0] for poly in polys for p in poly[0]]; ys=[p[1] for poly in polys for p in poly[0]]
            c0=max(0,int((min(xs)-x0)/dx)); c1=min(nc-1,int((max(xs)-x0)/dx)+1)
            r0=max(0,int((ytop-max(ys))/dy)); r1=min(nr-1,int((ytop-min(ys))/dy)+1)
            tot=chg=0
            for r in range(r0,r1+1):
                y=ytop-(r+0.5)*dy
                for c in range(c0,c1+1):
                    x=x0+(c+0.5)*dx
                    if any(inpoly(x,y,p) for p in polys):
                        v=flat[r*nc+c]
                        if v in (1,2):
                            tot+=1; chg+= v==2
            fe=feats[f['properties']['id']]
            comps.append({'id':fe['id'],'tot':tot,'chg':chg,'xc':fe['conf_features'],'xk':fe['class_features'],'conf':fe['confidence'],'class':fe['class']})
        out[n]={'N':N,'C':C,'comps':comps}
        print(n, N, C, len(comps), sum(c['chg'] for c in comps), sum(c['tot'] for c in comps))
    json.dump(out, open(os.path.join(a.work, 'labels.json'), 'w'))
    return out


def kappa(N,C,F,TP):
    FP=F-TP; FN=C-TP; TN=N-F-FN
    po=(TP+TN)/N; pe=((TP+FP)*(TP+FN)+(FN+TN)*(FP+TN))/N/N
    return (po-pe)/(1-pe) if pe<1 else 1.0
def rows(cs, which):
    X=[];y=[];w=[]
    for c in cs:
        for k in L[c]['comps']:
            if k['tot']==0: continue
            f=k['xc'] if which=='c' else k['xc']+k['xk']
            X.append(f); y.append(1.0 if k['chg']/k['tot']>=0.5 else 0.0); w.append(k['tot'])
    return np.array(X),np.array(y),np.array(w,float)
def fit(X,y,w,lam):
    mu,sd=X.mean(0),X.std(0)+1e-9; Z=np.c_[np.ones(len(X)),(X-mu)/sd]
    w=w/w.mean(); b=np.zeros(Z.shape[1]); reg=lam*np.r_[0,np.ones(Z.shape[1]-1)]
    for _ in range(50):
        p=1/(1+np.exp(-Z@b)); W=w*p*(1-p)+1e-9
        H=Z.T@(Z*W[:,None])+np.diag(reg); g=Z.T@(w*(p-y))+reg*b
        b-=np.linalg.solve(H,g)
    return lambda X: 1/(1+np.exp(-(np.c_[np.ones(len(X)),(X-mu)/sd]@b)))
def city_kappa(c, score, t, which):
    N,C=L[c]['N'],L[c]['C']; F=TP=0
    ks=[k for k in L[c]['comps'] if k['tot']>0]
    if not ks: return kappa(N,C,0,0)
    X=np.array([k['xc'] if which=='c' else k['xc']+k['xk'] for k in ks])
    p=score(X)
    for k,pi in zip(ks,p):
        if pi>=t: F+=k['tot']; TP+=k['chg']
    return kappa(N,C,F,TP), F/N
def base(c,t=0.45):
    N,C=L[c]['N'],L[c]['C']; F=TP=0
    for k in L[c]['comps']:
        if k['conf']>=t: F+=k['tot']; TP+=k['chg']
    return kappa(N,C,F,TP), F/N
detect_all()
L = label_all()
cities = sorted(L)
which = 'c' if a.inputs == 'conf' else 'ck'; wmode = a.weights; lam = a.lam
res=[]
for h in cities:
    tr=[c for c in cities if c!=h]
    X,y,w=rows(tr,which)
    if wmode=='one': w=np.ones_like(w)
    if wmode=='sqrt': w=np.sqrt(w)
    s=fit(X,y,w,lam)
    ts=np.linspace(0.05,0.95,19)
    best=max(ts,key=lambda t: np.mean([city_kappa(c,s,t,which)[0] for c in tr]))
    k,fs=city_kappa(h,s,best,which); kb,fb=base(h)
    res.append((h,k,fs,kb,fb,best))
    print(f"{h:<12} held-out kappa {k:.3f} flagged {fs:.4f} (t={best:.2f}) | current model {kb:.3f} flagged {fb:.4f}")
a=np.array([[r[1],r[2],r[3],r[4]] for r in res])
print(f"mean held-out kappa {a[:,0].mean():.3f} (min {a[:,0].min():.3f}) flagged {a[:,1].mean():.4f} | current {a[:,2].mean():.3f} (min {a[:,2].min():.3f}) flagged {a[:,3].mean():.4f}")
