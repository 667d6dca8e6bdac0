#!/usr/bin/env python3
"""Can a text-only per-question router reach >=97% of gpt-4 quality at <=25% of its cost?

A diagnostic for BENCHMARKS.md, outside the router: per-(benchmark, model) classifiers of
a prompt's result from its text, and the quality-cost curve of routing on them, on the
same hashed 50/50 splits `llm-router eval` uses (seeds 0-4).

Run from the repository root (needs numpy, scipy and scikit-learn; a few minutes):
    OMP_NUM_THREADS=1 python3 crates/router-eval/diagnostics/text_signal.py [DATA_DIR]
DATA_DIR defaults to ../shared/data/routerbench_subset; it is only read."""
import ast, csv, json, re, sys, warnings
import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import StratifiedKFold, GridSearchCV, cross_val_predict, KFold
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

warnings.filterwarnings("ignore")
D = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/routerbench_subset"
GPT4 = "gpt-4-1106-preview"
STRONG = {GPT4: "gpt4", "zero-one-ai/Yi-34B-Chat": "Yi34", "mistralai/mixtral-8x7b-chat": "mixtral",
          "gpt-3.5-turbo-1106": "gpt35", "claude-v1": "cl-v1", "claude-instant-v1": "cl-inst"}
YI = "zero-one-ai/Yi-34B-Chat"
SUBSETS = ["arc-challenge", "mbpp", "winogrande"]


def fnv1a64(b):
    h = 0xcbf29ce484222325
    for x in b:
        h ^= x
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


# ---------------- data ----------------
prompts = {}
for line in open(f"{D}/prompts.jsonl"):
    r = json.loads(line)
    p = ast.literal_eval(r["prompt"])[0]
    prompts[r["prompt_id"]] = (r["subset"], p)
S, C = {}, {}
for r in csv.DictReader(open(f"{D}/scores.csv")):
    if r["score"] != "":
        S[(r["prompt_id"], r["model"])] = float(r["score"])
    if r["cost_usd"] != "":
        C[(r["prompt_id"], r["model"])] = float(r["cost_usd"])
MODELS = sorted({m for _, m in S})
assert len(MODELS) == 11
pids = sorted(prompts)
complete = {p for p in pids if all((p, m) in S and (p, m) in C for m in MODELS)}


def last_question(p, subset):
    if subset == "mbpp":
        return p.strip()
    blocks = [b for b in re.split(r"\n\s*\n", p.strip()) if b.strip()]
    q = blocks[-1]
    q = re.sub(r"Print only a single choice.*", "", q, flags=re.S)
    q = q.replace("Please answer with the letter of the correct answer.", "")
    return q.strip()


NEG = re.compile(r"\b(not|except|least|never|no|false|incorrect|cannot|n't)\b", re.I)


def handcrafted(p, subset):
    q = last_question(p, subset)
    opts = re.findall(r"^[A-E]\) (.*)$", q, flags=re.M)
    stem = re.split(r"\n[A-E]\) ", q)[0]
    w = stem.split()
    f = [np.log1p(len(p)), np.log1p(len(q)), len(w), len(opts),
         np.mean([len(o) for o in opts]) if opts else 0, max([len(o) for o in opts]) if opts else 0,
         len(NEG.findall(stem)), int(bool(re.search(r"\b(NOT|EXCEPT|LEAST)\b", stem))),
         int(bool(re.search(r"\d", stem))), stem.count(","), stem.count("?")]
    if subset == "winogrande":
        pos = stem.find("_")
        f += [pos / max(1, len(stem)), len(stem.split("_")[0].split()) if pos >= 0 else 0,
              int(all(o[:1].isupper() for o in opts))]
    elif subset == "mbpp":
        f += [int(bool(re.search(r"\b(list|tuple|dict|string|array|matrix|regex|recurs)", stem, re.I))),
              len(re.findall(r"\b(and|or|given|using|from)\b", stem)), 0]
    else:
        f += [int(bool(re.search(r"\b(best|most likely|most)\b", stem, re.I))), np.std([len(o) for o in opts]) if opts else 0, 0]
    return f


Q = {p: last_question(prompts[p][1], prompts[p][0]) for p in pids}
H = {p: handcrafted(prompts[p][1], prompts[p][0]) for p in pids}
PLEN = {p: len(prompts[p][1]) for p in pids}


def feats(tr, te, sub):
    wv = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    cv = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True, max_features=30000)
    ttr, tte = [Q[p] for p in tr], [Q[p] for p in te]
    sc = StandardScaler()
    htr = sc.fit_transform(np.array([H[p] for p in tr]))
    hte = sc.transform(np.array([H[p] for p in te]))
    Xtr = sparse.hstack([wv.fit_transform(ttr), cv.fit_transform(ttr), sparse.csr_matrix(htr)]).tocsr()
    Xte = sparse.hstack([wv.transform(tte), cv.transform(tte), sparse.csr_matrix(hte)]).tocsr()
    return Xtr, Xte, htr, hte


def fit_prob(Xtr, y, Xte, grid=(0.01, 0.03, 0.1, 0.3, 1, 3, 10)):
    y = np.asarray(y)
    mn = min(y.sum(), len(y) - y.sum())
    if mn < 3:
        return np.full(Xte.shape[0], y.mean()), None
    k = int(min(5, mn))
    g = GridSearchCV(LogisticRegression(solver="liblinear", max_iter=2000), {"C": list(grid)},
                     cv=StratifiedKFold(k, shuffle=True, random_state=0), scoring="neg_log_loss")
    g.fit(Xtr, y)
    return g.predict_proba(Xte)[:, 1], g.best_params_["C"]


def auc(y, s):
    y = np.asarray(y)
    return roc_auc_score(y, s) if 0 < y.sum() < len(y) else np.nan


def hull_at(points, budget):
    pts = sorted(set(points))
    # upper concave hull over cost, keeping max quality up to each cost
    hull = []
    for c, q in pts:
        if hull and q <= hull[-1][1]:
            continue  # dominated (higher cost, not better)
        while len(hull) >= 2:
            (c1, q1), (c2, q2) = hull[-2], hull[-1]
            if (q2 - q1) * (c - c1) <= (q - q1) * (c2 - c1):
                hull.pop()
            else:
                break
        hull.append((c, q))
    if budget < hull[0][0]:
        return np.nan
    for (c1, q1), (c2, q2) in zip(hull, hull[1:]):
        if c1 <= budget <= c2:
            return q1 + (q2 - q1) * (budget - c1) / (c2 - c1)
    return hull[-1][1]


LAMS = np.concatenate([[0.0], np.logspace(-1, 6, 600)])


def sweep(qhat, chat, truth_q, truth_c):
    """qhat, chat: (n, M) predictions; returns list of (mean true cost, mean true quality)."""
    pts = []
    idx = np.arange(len(qhat))
    for lam in LAMS:
        j = np.argmax(qhat - lam * chat, axis=1)
        pts.append((truth_c[idx, j].mean(), truth_q[idx, j].mean()))
    return pts


def run(seed):
    tr_all = [p for p in pids if fnv1a64(seed.to_bytes(8, "little") + p.encode()) % 10000 < 5000]
    trset = set(tr_all)
    te = [p for p in pids if p not in trset and p in complete]
    tq = np.array([[S[(p, m)] for m in MODELS] for p in te])
    tc = np.array([[C[(p, m)] for m in MODELS] for p in te])
    g4 = MODELS.index(GPT4)
    budget = 0.25 * tc[:, g4].mean()
    g4q = tq[:, g4].mean()
    n, M = tq.shape
    te_sub = np.array([prompts[p][0] for p in te])
    qhat = {k: np.zeros((n, M)) for k in ["subset", "oracle_subset", "tfidf", "diff"]}
    chat_mean, chat_len = np.zeros((n, M)), np.zeros((n, M))
    aucs = {}
    pair = {k: np.zeros(n) for k in ["yi"]}
    mc_choice, mc_conf = np.zeros(n, int), np.zeros(n)
    for sub in SUBSETS:
        tr = [p for p in tr_all if prompts[p][0] == sub]
        ti = np.where(te_sub == sub)[0]
        tes = [te[i] for i in ti]
        Xtr, Xte, htr, hte = feats(tr, tes, sub)
        # difficulty regressor (mean score over available models), OOF on train
        dtr = np.array([np.mean([S[(p, m)] for m in MODELS if (p, m) in S]) for p in tr])
        rg = Ridge(alpha=3.0)
        d_oof = cross_val_predict(rg, Xtr, dtr, cv=KFold(5, shuffle=True, random_state=0))
        d_te = rg.fit(Xtr, dtr).predict(Xte)
        aucs[(sub, "difficulty_r")] = np.corrcoef(d_te, tq[ti].mean(1))[0, 1]
        Ztr = np.column_stack([d_oof, htr]); Zte = np.column_stack([d_te, hte])
        for j, m in enumerate(MODELS):
            rows = [p for p in tr if (p, m) in S]
            y = np.array([S[(p, m)] for p in rows])
            cst = np.array([C[(p, m)] for p in rows if (p, m) in C])
            lens = np.array([PLEN[p] for p in rows if (p, m) in C])
            qhat["subset"][ti, j] = y.mean()
            qhat["oracle_subset"][ti, j] = tq[ti, j].mean()
            chat_mean[ti, j] = cst.mean()
            A = np.column_stack([np.ones_like(lens, dtype=float), lens])
            coef = np.linalg.lstsq(A, cst, rcond=None)[0]
            chat_len[ti, j] = coef[0] + coef[1] * np.array([PLEN[p] for p in tes])
            mask = np.array([(p, m) in S for p in tr])
            p1, _ = fit_prob(Xtr[mask], y, Xte)
            p2, _ = fit_prob(Ztr[mask], y, Zte, grid=(0.01, 0.1, 1, 10))
            qhat["tfidf"][ti, j] = p1
            qhat["diff"][ti, j] = p2
            aucs[(sub, m, "tfidf")] = auc(tq[ti, j], p1)
            aucs[(sub, m, "diff")] = auc(tq[ti, j], p2)
        # pairwise: gpt-4 right & Yi wrong
        rows = [p for p in tr if (p, GPT4) in S and (p, YI) in S]
        mask = np.array([(p, GPT4) in S and (p, YI) in S for p in tr])
        y = np.array([S[(p, GPT4)] == 1 and S[(p, YI)] == 0 for p in rows], float)
        pp, _ = fit_prob(Xtr[mask], y, Xte)
        pair["yi"][ti] = pp
        aucs[(sub, "pair_g4_not_yi")] = auc((tq[ti, g4] == 1) & (tq[ti, MODELS.index(YI)] == 0), pp)
        # multiclass: cheapest correct model (by mean train cost in subset); none correct -> cheapest model
        order = np.argsort(chat_mean[ti[0]])
        lab = []
        keep = []
        for k, p in enumerate(tr):
            if not all((p, m) in S for m in MODELS):
                continue
            ok = [j for j in order if S[(p, MODELS[j])] == 1]
            lab.append(ok[0] if ok else order[0]); keep.append(k)
        lab = np.array(lab)
        clf = GridSearchCV(LogisticRegression(solver="lbfgs", max_iter=3000), {"C": [0.1, 1, 10]},
                           cv=KFold(5, shuffle=True, random_state=0), scoring="accuracy")
        clf.fit(Xtr[keep], lab)
        pr = clf.predict_proba(Xte)
        mc_choice[ti] = clf.classes_[pr.argmax(1)]
        mc_conf[ti] = pr.max(1)
    res = {}
    idx = np.arange(n)
    for name, qh, ch in [("subset(train acc)", qhat["subset"], chat_mean),
                         ("subset(TEST acc, cheat)", qhat["oracle_subset"], chat_mean),
                         ("tfidf-LR, mean cost", qhat["tfidf"], chat_mean),
                         ("tfidf-LR, len cost", qhat["tfidf"], chat_len),
                         ("difficulty+hand LR", qhat["diff"], chat_len),
                         ("blend subset/tfidf", 0.5 * qhat["subset"] + 0.5 * qhat["tfidf"], chat_len)]:
        res[name] = hull_at(sweep(qh, ch, tq, tc), budget) / g4q
    # pairwise: Yi by default, escalate to gpt-4 on top-scored prompts
    yi = MODELS.index(YI)
    pts = []
    for t in np.concatenate([[1.1], np.quantile(pair["yi"], np.linspace(0, 1, 201))]):
        j = np.where(pair["yi"] >= t, g4, yi)
        pts.append((tc[idx, j].mean(), tq[idx, j].mean()))
    res["pairwise Yi->gpt4"] = hull_at(pts, budget) / g4q
    # random escalation from Yi (same curve with no information) for reference
    res["Yi/gpt4 random mix"] = hull_at([(tc[:, yi].mean(), tq[:, yi].mean()), (tc[:, g4].mean(), g4q)], budget) / g4q
    # multiclass cheapest-good: route to predicted class, escalate to gpt-4 when confidence < tau
    pts = []
    for t in np.linspace(0, 1.01, 102):
        j = np.where(mc_conf >= t, mc_choice, g4)
        pts.append((tc[idx, j].mean(), tq[idx, j].mean()))
    res["multiclass cheapest-good"] = hull_at(pts, budget) / g4q
    # per-question oracle, for scale
    ocost = np.where(tq.max(1) == 1, np.min(np.where(tq == 1, tc, np.inf), axis=1), tc.min(1))
    res["oracle cheapest-correct (q)"] = tq.max(1).mean() / g4q
    return res, aucs, dict(n_test=n, g4q=g4q, g4c=tc[:, g4].mean(), budget=budget, oracle_cost=ocost.mean())


if __name__ == "__main__":
    allres, allauc = [], []
    for seed in range(5):
        r, a, info = run(seed)
        allres.append(r); allauc.append(a)
        print(f"seed {seed}: n_test={info['n_test']} gpt4 q={info['g4q']:.3f} c=${info['g4c']*1000:.2f}/1k "
              f"budget=${info['budget']*1000:.2f}/1k", {k: round(v, 4) for k, v in r.items()}, flush=True)
    print("\n== budget-quality (share of gpt-4 quality at 25% gpt-4 cost), mean [min, max] over seeds 0-4")
    for k in allres[0]:
        v = np.array([r[k] for r in allres])
        print(f"  {k:32s} {v.mean()*100:6.2f}%  [{v.min()*100:.2f}, {v.max()*100:.2f}]")
    print("\n== test AUC, mean over seeds (tfidf-LR / difficulty+hand LR)")
    for sub in SUBSETS:
        line = []
        for m, short in STRONG.items():
            t = np.nanmean([a[(sub, m, "tfidf")] for a in allauc])
            d = np.nanmean([a[(sub, m, "diff")] for a in allauc])
            line.append(f"{short} {t:.3f}/{d:.3f}")
        allm_t = np.nanmean([[a[(sub, m, "tfidf")] for m in MODELS] for a in allauc])
        line.append(f"all11 {allm_t:.3f}")
        print(f"  {sub:14s}", "  ".join(line))
        print(f"  {'':14s} pair(g4 right&Yi wrong) AUC {np.nanmean([a[(sub,'pair_g4_not_yi')] for a in allauc]):.3f}"
              f"  difficulty corr r={np.nanmean([a[(sub,'difficulty_r')] for a in allauc]):.3f}")
