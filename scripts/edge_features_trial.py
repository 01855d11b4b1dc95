#!/usr/bin/env python3
"""Trial (not shipped): do edge-density features help the pixel model on
real imagery? Pixel level, OSCD cities only, leave one city out: a
gradient-boosted model (scikit-learn, the shipped tree settings) on the 36
shipped features, then on those plus 20 edge features (Sobel gradient
magnitude of each of the 5 index layers of both dates, mean over 7 px
windows for each date and the after - before difference over 7 and 15 px).
Probability averaged over 5 x 5 px, one threshold chosen on the other 13
cities. Reads the rasters `scripts/fit_change_model.py prepare` wrote
under target/changefit/oscd. About 5 minutes on 2 cores:

    target/fit-venv/bin/python scripts/edge_features_trial.py
"""
import json, os, re, subprocess
import numpy as np
from scipy import ndimage
from sklearn.ensemble import HistGradientBoostingClassifier


from envi import envi  # noqa: E402 (scripts/envi.py)


cities=[c["city"] for c in json.load(open("../shared/data/oscd-dev/cities.json"))]
W="target/changefit/oscd"
def kappa(p,r):
    n=r.size; tp=np.sum(p&r); fp=np.sum(p&~r); fn=np.sum(~p&r); tn=n-tp-fp-fn
    po=(tp+tn)/n; pe=((tp+fp)*(tp+fn)+(fn+tn)*(fp+tn))/n/n
    return (po-pe)/(1-pe) if pe<1 else 0.0
def grad(x):
    x=np.nan_to_num(x)
    return np.hypot(ndimage.sobel(x,0),ndimage.sobel(x,1))
data={}
for c in cities:
    o = f"{W}/{c}"
    F = envi(f"{o}/{c}_change_features.tif", f"{o}/feat")
    ref = envi(f"{o}/ref.tif", f"{o}/refr")[0]
    ib = envi(f"{o}/{c}_indices_before.tif", f"{o}/idxb")
    ia = envi(f"{o}/{c}_indices_after.tif", f"{o}/idxa")
    ex=[]
    for k in range(ib.shape[0]):
        gb,ga=grad(ib[k]),grad(ia[k])
        for w in (7,15):
            mb,ma=ndimage.uniform_filter(gb,w),ndimage.uniform_filter(ga,w)
            ex += [ma-mb] + ([mb,ma] if w==7 else [])
    E=np.array(ex,np.float32)
    data[c]=(F,E,ref)
rng=np.random.default_rng(0)
def sample(c,use):
    F,E,ref=data[c]; X=np.concatenate([F,E]) if use else F
    X=X.reshape(X.shape[0],-1).T; r=ref.ravel()
    keep=(r>0)&np.any(F.reshape(F.shape[0],-1).T!=0,axis=1)
    pos=np.nonzero(keep&(r==2))[0]; neg=np.nonzero(keep&(r==1))[0]
    pos=rng.choice(pos,min(len(pos),30000),replace=False); neg=rng.choice(neg,min(len(neg),30000),replace=False)
    idx=np.concatenate([pos,neg]); y=np.r_[np.ones(len(pos)),np.zeros(len(neg))]
    w=np.r_[np.full(len(pos),0.5/len(pos)),np.full(len(neg),0.5/len(neg))]
    return X[idx],y,w
T=[0.5,0.6,0.7,0.75,0.8,0.85,0.9]
for use in (False,True):
    S={c:sample(c,use) for c in cities}
    K={}
    for c in cities:
        X=np.concatenate([S[o][0] for o in cities if o!=c]); y=np.concatenate([S[o][1] for o in cities if o!=c]); w=np.concatenate([S[o][2] for o in cities if o!=c])
        m=HistGradientBoostingClassifier(max_iter=150,max_depth=6,learning_rate=0.1,random_state=0).fit(X,y,sample_weight=w)
        F,E,ref=data[c]; XX=np.concatenate([F,E]) if use else F
        p=m.predict_proba(XX.reshape(XX.shape[0],-1).T)[:,1].reshape(ref.shape)
        q=ndimage.uniform_filter(p,5); mm=ref>0; r=(ref==2)[mm]
        K[c]=[kappa((q>t)[mm],r) for t in T]
    A=np.array([K[c] for c in cities])
    held=[A[i,np.argmax(np.delete(A,i,0).mean(0))] for i in range(len(cities))]
    print("edge" if use else "base", "LOCO mean %.3f min %.3f"%(np.mean(held),np.min(held)), " ".join(f"{c}:{h:.3f}" for c,h in zip(cities,held)),flush=True)
