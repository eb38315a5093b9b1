#!/usr/bin/env python3
"""Measure configs again, side by side, to tell a real optimum from a lucky one.

A full grid measures each config once, minutes apart from its neighbours, so
its best figure at a batch size is a minimum over noisy figures. This script
takes, for every M of a recorded grid, the grid's best few configs and (with
--db) what a tuning run picked, and measures them again through
`moetune worker`, interleaved over several rounds (round r measures every
candidate once before round r+1 starts), so slow drifts of the clock hit all
of them alike. The median over the rounds is each config's figure.

Output: a CSV of every (M, config, round) figure, and a table per M: the
grid's raw best, what it measures again, the best of the re-measured grid
top, and the tuning run's pick against that.

usage: bench/sidebyside.py --grid GRID.csv --shape E,N,K,TOPK [--db RUN.db]
                           [--top 12] [--rounds 5] [--device cuda:0]
                           [--moetune build/moetune] [--csv OUT.csv]
"""
import argparse, csv, json, sqlite3, statistics, subprocess, sys

GPU_KEYS = ["BLOCK_SIZE_M", "BLOCK_SIZE_N", "BLOCK_SIZE_K", "GROUP_SIZE_M", "num_warps", "num_stages", "NUM_SM"]
CPU_KEYS = ["block_m", "block_n", "block_k", "threads"]


def grid_rows(path):
    by_m = {}
    with open(path) as f:
        r = csv.DictReader(f)
        keys = [k for k in r.fieldnames if k in GPU_KEYS + CPU_KEYS]
        for row in r:
            if row["status"] != "ok":
                continue
            p = {k: int(row[k]) for k in keys}
            by_m.setdefault(int(row["M"]), []).append((float(row["median_us"]), json.dumps(p, separators=(",", ":"))))
    for v in by_m.values():
        v.sort()
    return keys, by_m


def run_picks(db, shape, keys):
    """The tuning run's winner per M (its finalists' best, else its raw best)
    and its raw top 3, from the newest sweep of that shape in the database."""
    c = sqlite3.connect(db)
    E, N, K, topk = shape
    pid = c.execute("select id from problems where E=? and N=? and K=? and topk=?", (E, N, K, topk)).fetchone()
    if not pid:
        sys.exit(f"sidebyside: {db} holds no problem E={E} N={N} K={K} top-{topk}")
    picks = {}
    raw = c.execute("select m.M, c.params, m.median_us from measurements m join configs c on c.id=m.config_id "
                    "where m.problem_id=? and m.status='ok' order by m.M, m.median_us", (pid[0],)).fetchall()
    for M, params, us in raw:
        d = picks.setdefault(M, {"winner": None, "top": []})
        if len(d["top"]) < 3:
            d["top"].append(json.dumps({k: json.loads(params)[k] for k in keys}, separators=(",", ":")))
    for M, params, us in c.execute("select f.M, c.params, f.median_us from finalists f join configs c on "
                                   "c.id=f.config_id where f.problem_id=? order by f.M, f.median_us", (pid[0],)):
        d = picks.setdefault(M, {"winner": None, "top": []})
        if d["winner"] is None:
            d["winner"] = json.dumps({k: json.loads(params)[k] for k in keys}, separators=(",", ":"))
    for d in picks.values():
        if d["winner"] is None and d["top"]:
            d["winner"] = d["top"][0]
    return picks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", required=True)
    ap.add_argument("--shape", required=True, help="E,N,K,TOPK of the grid's problem")
    ap.add_argument("--db", help="a tuning run's database: its picks are measured too")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--moetune", default="build/moetune")
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--ms", help="only these batch sizes, e.g. 1,2,4")
    ap.add_argument("--csv")
    a = ap.parse_args()
    shape = [int(x) for x in a.shape.split(",")]
    if len(shape) != 4:
        sys.exit("sidebyside: --shape wants E,N,K,TOPK")
    keys, by_m = grid_rows(a.grid)
    picks = run_picks(a.db, shape, keys) if a.db else {}
    ms = sorted(by_m) if not a.ms else [int(x) for x in a.ms.split(",")]
    w = subprocess.Popen([a.moetune, "worker", "--device", a.device], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, bufsize=1)

    def call(req):
        w.stdin.write(json.dumps(req) + "\n")
        line = w.stdout.readline()
        if not line:
            sys.exit("sidebyside: the worker died")
        return json.loads(line)

    hello = call({"op": "hello"})
    if not hello.get("ok"):
        sys.exit(f"sidebyside: {hello.get('error')}")
    out = csv.writer(open(a.csv, "w", newline="")) if a.csv else None
    if out:
        out.writerow(["M", "params", "grid_us", "grid_rank", "run_pick", "round", "median_us"])
    E, N, K, topk = shape
    table = []
    for M in ms:
        cands = [p for _, p in by_m[M][: a.top]]
        raw = {p: (us, i + 1) for i, (us, p) in enumerate(by_m[M])}
        pk = picks.get(M, {"winner": None, "top": []})
        for p in ([pk["winner"]] if pk["winner"] else []) + pk["top"]:
            if p not in cands:
                cands.append(p)
        figs = {p: [] for p in cands}
        for r in range(a.rounds):
            for p in cands:
                rep = call({"op": "measure", "E": E, "N": N, "K": K, "topk": topk, "dtype": a.dtype, "renormalize": 1,
                            "M": M, "params": json.loads(p), "seed": 1000 + 17 * r + M})
                if rep.get("status") == "ok":
                    figs[p].append(rep["median_us"])
                    if out:
                        out.writerow([M, p, raw.get(p, (None,))[0], raw.get(p, (None, None))[1],
                                      int(p == pk["winner"]), r, rep["median_us"]])
        med = {p: statistics.median(v) for p, v in figs.items() if v}
        if not med:
            continue
        best_p = min((p for p in med if p in cands[: a.top]), key=med.get)
        raw1 = cands[0]
        row = {"M": M, "grid_raw_us": by_m[M][0][0], "raw1_again_us": med.get(raw1), "true_best_us": med[best_p],
               "true_best_rank": raw[best_p][1], "pick_us": med.get(pk["winner"]) if pk["winner"] else None,
               "pick_grid_rank": raw.get(pk["winner"], (None, None))[1] if pk["winner"] else None,
               "spread": max((max(v) - min(v)) / statistics.median(v) for v in figs.values() if v)}
        table.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    w.stdin.close()
    w.wait()
    print("| M | grid best (raw) | same config again | best of grid top-%d again (its raw rank) | run's pick again "
          "(its raw rank) | pick / best | widest round spread |" % a.top)
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in table:
        ratio = r["pick_us"] / r["true_best_us"] if r["pick_us"] else None
        print("| %d | %.1f | %.1f | %.1f (%d) | %s | %s | %.1f %% |" % (
            r["M"], r["grid_raw_us"], r["raw1_again_us"] or float("nan"), r["true_best_us"], r["true_best_rank"],
            "%.1f (%s)" % (r["pick_us"], r["pick_grid_rank"]) if r["pick_us"] else "-",
            "%.3f" % ratio if ratio else "-", 100 * r["spread"]))


if __name__ == "__main__":
    main()
