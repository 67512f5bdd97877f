"""Serving latency: p50/p99 of the JSON API under a bounded load from a local client.

For each model (ml-latest-small, and a synthetic catalogue of 60k items) the
script trains and saves the model, starts ``latentrec.serve.run`` in a separate
process on 127.0.0.1, warms it up, then sends a fixed number of requests with
httpx (keep-alive; ``--concurrency`` client threads) and prints a table:

* ``recommend`` — GET /api/users/{id}/recommendations?n=10 for random users
* ``similar``   — GET /api/items/{id}/similar?n=10 for random items
* ``visitor``   — POST /api/recommendations with 5 random (item, rating) pairs
* ``health``    — GET /api/health, the framework's floor on this machine

The peer measured in the same run is the model call alone, in-process
(``model.recommend(user, n=10)`` on one thread, as the server runs it): the
``x in-process`` column is HTTP p50 over in-process p50, i.e. what the service
adds. ``server model p50`` is the model call's time inside the server (from the
``Server-Timing`` header). Goal: recommend p99 < 20 ms for the
60k-item catalogue, zero errors.

Concurrent mode: ``--levels 1,4,16`` runs every endpoint at each number of
client threads and reports p50/p99 by concurrency level; ``--idle N`` holds N
idle TCP connections open to the server for the whole run (they must not cost
the other clients anything). The rows are also written as JSON (``--json``,
default ``benchmarks/results/serve_latency.json``, an ignored folder).

    LATENTREC_DATA_HOME=/work/shared/datasets python benchmarks/serve_latency.py
    python benchmarks/serve_latency.py --requests 2000 --concurrency 4 --skip-movielens
    python benchmarks/serve_latency.py --skip-movielens --levels 1,4,16 --idle 100 --requests 600
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

import latentrec


def factor_model(n_factors: int, n_epochs: int):
    try:
        from latentrec.models import BiasedMF

        return BiasedMF(n_factors=n_factors, n_epochs=n_epochs, random_state=0)
    except ImportError:
        from latentrec.models import TruncatedSVD

        return TruncatedSVD(n_factors=n_factors, random_state=0)


def movielens_small():
    try:
        return latentrec.load_movielens("ml-latest-small")
    except Exception as exc:  # noqa: BLE001 - reported and skipped
        print(f"ml-latest-small not available ({exc}); set LATENTREC_DATA_HOME", file=sys.stderr)
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: Path):
    port = free_port()
    code = ("import sys; from latentrec.serve import run; "
            "run(sys.argv[1], host='127.0.0.1', port=int(sys.argv[2]), log_level='warning', tmdb_api_key='')")
    proc = subprocess.Popen([sys.executable, "-c", code, str(model_dir), str(port)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            raise RuntimeError("the server exited before answering")
        try:
            with urllib.request.urlopen(url + "/api/health", timeout=2):
                return proc, url
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.25)


def load(url: str, requests: list, concurrency: int) -> tuple[np.ndarray, int, np.ndarray]:
    """Send every (method, path, json) once: latencies (ms), non-200 answers, server model times (ms)."""
    import httpx

    chunks = [requests[k::concurrency] for k in range(concurrency)]

    def worker(chunk):
        times, errors, model_ms = [], 0, []
        with httpx.Client(base_url=url, timeout=30.0) as client:
            for method, path, body in chunk:
                t0 = time.perf_counter()
                try:
                    resp = client.request(method, path, json=body)
                    ok = resp.status_code == 200 and resp.content
                    timing = resp.headers.get("server-timing", "")
                    if timing.startswith("model;dur="):
                        model_ms.append(float(timing.split("=", 1)[1]))
                except httpx.HTTPError:
                    ok = False
                times.append((time.perf_counter() - t0) * 1e3)
                errors += not ok
        return times, errors, model_ms

    with cf.ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(worker, chunks))
    return (np.concatenate([np.asarray(t) for t, _, _ in results]), sum(e for _, e, _ in results),
            np.concatenate([np.asarray(m, dtype=float) for _, _, m in results]))


def in_process_ms(model, users: np.ndarray, repeats: int) -> np.ndarray:
    """The peer: ``model.recommend(user, n=10)`` in this process, on one thread like the server."""
    if "n_threads" in model.get_params(deep=False):
        model.set_params(n_threads=1)
    model.recommend(users[0], n=10)
    out = []
    for u in users[:repeats]:
        t0 = time.perf_counter()
        model.recommend(u, n=10)
        out.append((time.perf_counter() - t0) * 1e3)
    return np.asarray(out)


def bench(label: str, model, args, workdir: Path) -> list[dict]:
    path = workdir / label
    t0 = time.perf_counter()
    model.save(path)
    print(f"[{label}] saved in {time.perf_counter() - t0:.1f} s; starting the server", file=sys.stderr)
    rng = np.random.default_rng(0)
    users = np.asarray(model.users_.ids)[rng.integers(0, len(model.users_), args.requests)]
    items = np.asarray(model.items_.ids)
    peer = in_process_ms(model, users, min(args.requests, 500))
    proc, url = start_server(path)
    rows = []
    try:
        scale = getattr(model, "rating_scale_", None) or (1.0, 5.0)

        def visitor():
            picks = rng.choice(len(items), 5, replace=False)
            return {"ratings": [{"item": items[k].item(), "rating": float(rng.uniform(*scale))} for k in picks],
                    "n": 10}

        plans = {
            "recommend": [("GET", f"/api/users/{u}/recommendations?n=10", None) for u in users],
            "similar": [("GET", f"/api/items/{i}/similar?n=10", None)
                        for i in items[rng.integers(0, len(items), args.requests)]],
            "visitor": [("POST", "/api/recommendations", visitor()) for _ in range(args.requests)],
            "health": [("GET", "/api/health", None)] * args.requests,
        }
        idle = hold_idle(url, args.idle)
        for name, plan in plans.items():
            load(url, plan[:args.warmup], 1)  # warm the connection and the kernels
            for level in args.levels:
                times, errors, model_ms = load(url, plan, level)
                p50, p90, p99 = np.percentile(times, [50, 90, 99])
                rows.append({"model": label, "items": len(items), "endpoint": name, "requests": len(times),
                             "conc": level, "idle": args.idle, "p50": p50, "p90": p90, "p99": p99,
                             "max": float(times.max()), "errors": errors,
                             "server_model_p50": float(np.median(model_ms)) if len(model_ms) else None,
                             "peer_p50": float(np.median(peer)) if name == "recommend" else None})
        for sock in idle:
            sock.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return rows


def hold_idle(url: str, n: int) -> list:
    """``n`` TCP connections to the server that never send a request (closed by the caller)."""
    host, port = url.rsplit("//", 1)[1].split(":")
    return [socket.create_connection((host, int(port)), timeout=5) for _ in range(n)]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="requests per endpoint (fixed, bounded load)")
    ap.add_argument("--concurrency", type=int, default=1, help="client threads (one level)")
    ap.add_argument("--levels", help="comma-separated client thread counts, e.g. 1,4,16 (overrides --concurrency)")
    ap.add_argument("--idle", type=int, default=0, help="idle TCP connections held open during the run")
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "serve_latency.json"),
                    help="where the rows are written as JSON")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--items", type=int, default=60_000, help="synthetic catalogue size")
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--ratings", type=int, default=1_000_000)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--skip-movielens", action="store_true")
    ap.add_argument("--skip-synthetic", action="store_true")
    args = ap.parse_args(argv)
    args.levels = [int(x) for x in args.levels.split(",")] if args.levels else [args.concurrency]
    if min(args.levels) < 1 or args.idle < 0 or args.requests < 1:
        ap.error("--levels/--concurrency and --requests must be >= 1, --idle >= 0")
    rows = []
    with tempfile.TemporaryDirectory(prefix="latentrec-serve-bench-") as tmp:
        if not args.skip_movielens:
            data = movielens_small()
            if data is not None:
                t0 = time.perf_counter()
                model = factor_model(args.factors, 20).fit(data)
                print(f"[ml-latest-small] {type(model).__name__} fitted in {time.perf_counter() - t0:.1f} s",
                      file=sys.stderr)
                rows += bench("ml-latest-small", model, args, Path(tmp))
        if not args.skip_synthetic:
            t0 = time.perf_counter()
            data = latentrec.synthetic_ratings(n_users=args.users, n_items=args.items, n_ratings=args.ratings,
                                               rank=10, random_state=0)
            model = factor_model(args.factors, 10).fit(data)
            print(f"[synthetic-{args.items // 1000}k] data + {type(model).__name__} in "
                  f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
            rows += bench(f"synthetic-{args.items // 1000}k", model, args, Path(tmp))
    print(f"\nserve latency, {args.requests} requests per endpoint and level, client threads "
          f"{','.join(map(str, args.levels))}, {args.idle} idle connections held, {os.cpu_count()} cores, "
          f"model: {type(model).__name__} {args.factors} factors")
    head = f"{'model':<16} {'items':>7} {'endpoint':<10} {'conc':>4} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} " \
           f"{'max ms':>7} {'errors':>6} {'server model p50':>16} {'in-process p50':>14} {'x in-process':>12}"
    print(head)
    print("-" * len(head))
    for r in rows:
        peer = f"{r['peer_p50']:.2f}" if r["peer_p50"] is not None else ""
        ratio = f"{r['p50'] / r['peer_p50']:.1f}" if r["peer_p50"] else ""
        srv = f"{r['server_model_p50']:.2f}" if r["server_model_p50"] is not None else ""
        print(f"{r['model']:<16} {r['items']:>7} {r['endpoint']:<10} {r['conc']:>4} {r['p50']:>7.2f} "
              f"{r['p90']:>7.2f} {r['p99']:>7.2f} {r['max']:>7.1f} {r['errors']:>6} {srv:>16} {peer:>14} {ratio:>12}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": {k: v for k, v in vars(args).items()}, "cores": os.cpu_count(),
                               "rows": rows}, indent=1, default=float))
    print(f"rows: {out}")


if __name__ == "__main__":
    main()
