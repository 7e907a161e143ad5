"""The soak test of `adapt serve` (Benchmarks/serve/soak.sh): mixed traffic for a long while with an
adapter loaded and removed again and again, then every answer compared with `adapt predict` /
`adapt embed` on the same texts. Standard library only.

    python3 soak.py traffic --url URL --texts T.json --seconds 600 --clients 16 --output R.jsonl
    python3 soak.py compare --responses R.jsonl --texts T.json --expected DIR --report REPORT.md

traffic: CLIENTS threads, each on its own keep-alive connection, send requests one after another,
cycling over SETUPS (each 1-3 texts drawn from T.json); meanwhile one thread loads the adapter
`extra` (POST /v1/adapters) and removes it (DELETE) over and over. Every answer is written to R.jsonl.
compare: a request fails unless it got 200, or 404 naming `extra` when it asked for `extra`; every
200 must equal what adapt predict / adapt embed wrote in DIR/<setup>.jsonl (a line per text of T.json) for its texts (the same
labels, probabilities and embedding values within 1e-5: batching pads texts differently).
"""
import argparse
import http.client
import json
import random
import statistics
import sys
import threading
import time
import urllib.parse

# (name, endpoint, request fields): the names are the files adapt predict / embed wrote in compare's DIR.
SETUPS = [("a0", "classify", {"adapter": "a0"}), ("stacked-s0", "classify", {"adapters": ["lang", "s0"]}),
          ("a1", "classify", {"adapter": "a1"}), ("stacked-s1", "classify", {"adapters": ["lang", "s1"]}),
          ("a2", "classify", {"adapter": "a2"}), ("stacked-s2", "classify", {"adapters": ["lang", "s2"]}),
          ("extra", "classify", {"adapter": "extra"}), ("embed-lang", "embed", {"adapter": "lang"})]
EXTRA_PATH = "extra.h5"  # in the server's adapter directory: a copy of a1
EXPECTED_FOR = {"extra": "a1"}  # setups whose answers are another setup's


def traffic(args):
    url = urllib.parse.urlparse(args.url)
    texts = json.load(open(args.texts))
    end = time.monotonic() + args.seconds
    lock = threading.Lock()
    output = open(args.output, "w")
    problems = []

    def record(entry):
        with lock:
            output.write(json.dumps(entry) + "\n")

    def send(connection, method, path, body=None):
        start = time.monotonic()
        connection.request(method, path, body=json.dumps(body) if body is not None else None,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read().decode(), time.monotonic() - start

    def client(index):
        generator = random.Random(index)
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=900)
        request = 0
        while time.monotonic() < end:
            name, endpoint, fields = SETUPS[(index + request) % len(SETUPS)]
            chosen = generator.sample(texts, generator.randint(1, 3))
            try:
                status, body, seconds = send(connection, "POST", f"/v1/{endpoint}", {**fields, "texts": chosen})
            except (OSError, http.client.HTTPException) as error:
                status, body, seconds = 0, f"connection error: {error}", 0.0
                connection = http.client.HTTPConnection(url.hostname, url.port, timeout=900)
            record({"setup": name, "texts": chosen, "status": status, "seconds": seconds, "body": body,
                    "at": args.seconds - (end - time.monotonic())})
            request += 1

    def adapters():
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=900)
        cycles = 0
        while time.monotonic() < end - 2:
            for method, path, body, expected in [("POST", "/v1/adapters", {"name": "extra", "path": EXTRA_PATH}, 201),
                                                 ("DELETE", "/v1/adapters/extra", None, 204)]:
                status, answer, _ = send(connection, method, path, body)
                if status != expected:
                    problems.append(f"{method} {path}: {status} {answer}")
                time.sleep(args.load_every / 2)
            cycles += 1
        record({"setup": "adapter-cycles", "cycles": cycles, "problems": problems})

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)] + [threading.Thread(target=adapters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    output.close()


def compare(args):
    records = [json.loads(line) for line in open(args.responses)]
    cycles = next(r for r in records if r["setup"] == "adapter-cycles")
    requests = [r for r in records if r["setup"] != "adapter-cycles"]
    texts = json.load(open(args.texts))
    expected = {}
    for name, _, _ in SETUPS:
        answers = [json.loads(line) for line in open(f"{args.expected}/{EXPECTED_FOR.get(name, name)}.jsonl")]
        assert len(answers) == len(texts), f"{name}: {len(answers)} answers for {len(texts)} texts"
        expected[name] = dict(zip(texts, answers))
    failures, mismatches, deliberate, largest = [], [], 0, 0.0
    for r in requests:
        if r["status"] != 200:
            if r["setup"] == "extra" and r["status"] == 404 and 'no adapter named \\"extra\\"' in r["body"]:
                deliberate += 1
            else:
                failures.append(r)
            continue
        body = json.loads(r["body"])
        answers = body.get("results") or body.get("embeddings")
        for text, answer in zip(r["texts"], answers):
            want = expected[r["setup"]][text]
            if "embeddings" in body:
                difference = max(abs(a - b) for a, b in zip(answer, want["embedding"]))
            else:
                if answer["label"] != want["label"] or answer["probabilities"].keys() != want["probabilities"].keys():
                    mismatches.append((r["setup"], text, answer["label"], want["label"]))
                    continue
                difference = max(abs(answer["probabilities"][k] - want["probabilities"][k]) for k in want["probabilities"])
            largest = max(largest, difference)
            if difference > 1e-5:
                mismatches.append((r["setup"], text, difference))
    answered = [r for r in requests if r["status"] == 200]
    latencies = sorted(r["seconds"] for r in answered)
    span = max(r["at"] for r in requests)
    lines = [f"| requests | answered (200) | deliberate 404 (`extra` removed) | failed | load / remove cycles of `extra` | "
             f"cycle errors | requests/s | p50 ms | p99 ms | answers unlike adapt predict / embed | largest difference |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
             f"| {len(requests):,} | {len(answered):,} | {deliberate:,} | {len(failures)} | {cycles['cycles']} | "
             f"{len(cycles['problems'])} | {len(requests) / span:.1f} | {1e3 * statistics.median(latencies):.0f} | "
             f"{1e3 * latencies[int(0.99 * (len(latencies) - 1))]:.0f} | {len(mismatches)} | {largest:.1e} |", ""]
    lines.append("| setup | requests | answered |")
    lines.append("|---|---:|---:|")
    for name, _, _ in SETUPS:
        mine = [r for r in requests if r["setup"] == name]
        lines.append(f"| {name} | {len(mine):,} | {sum(r['status'] == 200 for r in mine):,} |")
    for r in failures[:5]:
        lines.append(f"\nfailed: {r['setup']} {r['status']} {r['body'][:300]}")
    for m in mismatches[:5]:
        lines.append(f"\nunlike adapt predict: {m}")
    for p in cycles["problems"][:5]:
        lines.append(f"\ncycle error: {p}")
    report = "\n".join(lines) + "\n"
    open(args.report, "w").write(report)
    print(report)
    return 0 if not failures and not mismatches and not cycles["problems"] else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    t = commands.add_parser("traffic")
    t.add_argument("--url", required=True)
    t.add_argument("--texts", required=True)
    t.add_argument("--seconds", type=float, default=600)
    t.add_argument("--clients", type=int, default=16)
    t.add_argument("--load-every", type=float, default=4.0, help="seconds per load-and-remove cycle of `extra`")
    t.add_argument("--output", required=True)
    c = commands.add_parser("compare")
    c.add_argument("--responses", required=True)
    c.add_argument("--texts", required=True)
    c.add_argument("--expected", required=True)
    c.add_argument("--report", required=True)
    a = parser.parse_args()
    sys.exit(traffic(a) if a.command == "traffic" else compare(a))
