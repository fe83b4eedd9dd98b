#!/usr/bin/env python3
"""Benchmark of git-credential-iam (standard library only; run through contrib/bench/run.sh).

Prints a Markdown report on stdout (progress goes to stderr):

1. cache-hit `get`, whole process, against `git credential-store --file F get` (interleaved);
   with `--also NAME=PATH`, other builds of the helper (e.g. the static-PIE release build) run in
   the same interleaved loop, each against the same baseline and against `--bin`
2. peak RSS of a cache-hit `get` (/usr/bin/time -f %M)
3. cache-hit `get` with 1, 100 and 10,000 accounts in the cache directory
4. cache-hit `token --format raw` (skipped with a note when the binary has no `token` action)
5. 64 concurrent `get`s against an expired access token: refresh requests at the provider
6. 16 concurrent `get --interactive` on an empty cache: device authorizations at the provider

Everything binds 127.0.0.1 (the test IdP in tests/idp/) and lives in a temporary HOME.
Only processes started here are ever killed, by PID.
"""

import argparse
import json
import os
import platform
import random
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IDP_DIR = ROOT / "tests" / "idp"
REQUEST = b"protocol=https\nhost=example.org\n\n"
FAKE_ISSUER = "https://iam.example.org/"  # cache-hit runs: a miss would fail loudly, never prompt
TIED = "https://example.org/"  # the URL REQUEST asks about, tied to the account with --url
CLIENT = "public-cli"
SCOPE = "openid offline_access"  # the helper's default scope
CODE_RE = re.compile(r"^\s*Code:\s+([A-Z]{4}-[A-Z]{4})\s*$")


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(f"FAILED: {msg}")
    sys.exit(1)


# ------------------------------------------------------------------------------------------
# the cache format of src/store/cache.rs


def fnv1a(data: bytes) -> int:
    """FNV-1a, 64 bits, exactly as src/store/files.rs `fnv1a`."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def account_key(issuer, client_id, scope, audience=None):
    """src/store/cache.rs `account_key`: scopes as a sorted, deduplicated set."""
    scopes = sorted(set(scope.split()))
    material = f"{issuer}\0{client_id}\0{' '.join(scopes)}\0{audience or ''}"
    return f"{fnv1a(material.encode()):016x}"


def write_private(path: Path, data: bytes):
    """Temp file (0600) + rename, as the helper writes its cache files."""
    tmp = path.with_name(f".{path.name}.bench.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def make_cache_dir(path: Path):
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def write_entry(cache_dir: Path, issuer, client_id, token, expires_at, refresh=None, now=None):
    """One account's entry in the format serde writes for `cache::Entry` (pretty JSON)."""
    now = int(time.time()) if now is None else now
    entry = {
        "version": 1,
        "issuer": issuer,
        "client_id": client_id,
        "scope": SCOPE,
        "access_token": token,
        "expires_at": expires_at,
    }
    if refresh is not None:
        entry["refresh_token"] = refresh
    entry["updated_at"] = now
    key = account_key(issuer, client_id, SCOPE)
    write_private(cache_dir / f"{key}.json", json.dumps(entry, indent=2).encode())
    # the sibling lock file every account that ever refreshed has ("pid N")
    write_private(cache_dir / f"{key}.lock", b"pid 1")
    return key


def fake_token(seed: int, length=1100):
    """A token the length of an INDIGO IAM JWT access token (base64url characters only)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    x = seed * 2654435761 + 1
    out = []
    for _ in range(length):
        x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        out.append(alphabet[x >> 58])
    return "ey" + "".join(out)


# ------------------------------------------------------------------------------------------
# running things


def clean_env(home: Path):
    """The environment tests/it/support/process.rs gives the helper (and git)."""
    for d in [".config", ".local/state", ".local/share", ".cache", "run"]:
        (home / d).mkdir(parents=True, exist_ok=True)
    os.chmod(home / "run", 0o700)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".local/state"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_RUNTIME_DIR": str(home / "run"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
        "LANG": "C",
    }


class Variant:
    """One command to time: argv, a file for stdin, the environment."""

    def __init__(self, name, argv, stdin_path, env):
        self.name, self.argv, self.stdin_path, self.env = name, argv, str(stdin_path), env
        self.ns = []
        self.cpu_us = []

    def spawn_once(self):
        """posix_spawn (vfork+exec in glibc: the harness's own size costs nothing), stdout and
        stderr to /dev/null, a new session (never a controlling terminal); returns
        (wall ns, exit status, user+sys CPU µs)."""
        acts = [
            (os.POSIX_SPAWN_OPEN, 0, self.stdin_path, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0),
        ]
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(self.argv[0], self.argv, self.env, file_actions=acts, setsid=True)
        _, status, ru = os.wait4(pid, 0)
        t1 = time.perf_counter_ns()
        return t1 - t0, os.waitstatus_to_exitcode(status), (ru.ru_utime + ru.ru_stime) * 1e6

    def run_checked(self, timeout=20):
        with open(self.stdin_path, "rb") as f:
            return subprocess.run(
                self.argv, stdin=f, capture_output=True, env=self.env, timeout=timeout,
                start_new_session=True,
            )


def interleave(variants, runs, warmup):
    """Round-robin over the variants (ABAB…, the starting variant rotating every round) so that
    load from other work on the machine hits every variant alike."""
    k = len(variants)
    for i in range(warmup + runs):
        off = i % k
        for v in variants[off:] + variants[:off]:
            ns, code, cpu = v.spawn_once()
            if code != 0:
                r = v.run_checked()
                die(f"{v.name} exited {code}; a rerun said: {r.stderr.decode(errors='replace')}")
            if i >= warmup:
                v.ns.append(ns)
                v.cpu_us.append(cpu)


def pct(values, p):
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, -(-len(s) * p // 100) - 1))]


def ms(ns):
    return f"{ns / 1e6:.2f} ms"


# ------------------------------------------------------------------------------------------
# the test IdP


class Idp:
    def __init__(self, workdir: Path, args=()):
        if not (IDP_DIR / "node_modules").is_dir():
            log("tests/idp/node_modules missing: running npm ci there (as tests/it/support does)")
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=IDP_DIR, check=True,
                           stdout=sys.stderr)
        self.log_path = workdir / "idp.log"
        self.log_file = open(self.log_path, "wb")
        # stdin stays a pipe: the server exits when it closes, even if this script is killed
        self.proc = subprocess.Popen(
            ["node", str(IDP_DIR / "server.js"), *args], cwd=IDP_DIR,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log_file,
        )
        q = queue.Queue()
        threading.Thread(target=lambda: q.put(self.proc.stdout.readline()), daemon=True).start()
        try:
            line = q.get(timeout=60)
        except queue.Empty:
            self.stop()
            die(f"the IdP printed no ready line within 60 s; see {self.log_path}")
        if not line:
            self.stop()
            die(f"the IdP exited before it was ready: {self.log_path.read_text()[-2000:]}")
        self.issuer = json.loads(line)["issuer"]
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _url(self, path):
        return self.issuer.rstrip("/") + path

    def counters(self):
        with self.opener.open(self._url("/__counters"), timeout=10) as r:
            return json.load(r)

    def reset(self):
        req = urllib.request.Request(self._url("/__counters/reset"), data=b"", method="POST")
        with self.opener.open(req, timeout=10) as r:
            r.read()

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # the server exits on stdin EOF
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.kill()  # our own child, by its pid
                self.proc.wait()
        self.log_file.close()


def kill_ours(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()  # Popen.kill signals exactly this child's pid
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def start_helpers(n, argv, env):
    """Starts n helpers that block on reading stdin (git's request), so that none does any work
    until release() writes the request to all of them at once."""
    return [subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, start_new_session=True)
            for _ in range(n)]


def wait_blocked(procs, binary, bound=10.0):
    """Polls (bounded) until every helper has exec'd the binary and sleeps (on its stdin read,
    the first thing it can block on). Returns how many were seen blocked."""
    deadline = time.perf_counter() + bound
    pending = {p.pid for p in procs}
    while pending and time.perf_counter() < deadline:
        for pid in list(pending):
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if exe == binary and state == "S":
                pending.discard(pid)
        if pending:
            time.sleep(0.002)  # a bounded poll of /proc, not a wait for readiness
    return len(procs) - len(pending)


def release(procs, data=REQUEST):
    """Writes the request to every helper's stdin and closes it; returns the release time."""
    t0 = time.perf_counter()
    for p in procs:
        try:
            p.stdin.write(data)
            p.stdin.close()
        except BrokenPipeError:
            pass
        p.stdin = None
    return t0


def collect(procs, deadline, on_line=None):
    """Drains every helper's stdout and stderr on threads (stderr line by line through
    `on_line(proc, line)`) until all exit, bounded by `deadline` (a perf_counter value);
    returns ([(exit code, stdout, stderr)], time the last one exited)."""
    outs = [None] * len(procs)
    ends = [0.0] * len(procs)

    def drain(i, p):
        out = []
        t = threading.Thread(target=lambda: out.append(p.stdout.read()), daemon=True)
        t.start()
        err = []
        for raw in iter(p.stderr.readline, b""):
            line = raw.decode(errors="replace")
            err.append(line)
            if on_line:
                on_line(p, line)
        t.join()
        p.wait()
        ends[i] = time.perf_counter()
        outs[i] = (p.returncode, out[0].decode(errors="replace") if out else "", "".join(err))

    threads = [threading.Thread(target=drain, args=(i, p), daemon=True)
               for i, p in enumerate(procs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.perf_counter()))
    if any(t.is_alive() for t in threads):
        kill_ours(procs)
        for t in threads:
            t.join(timeout=10)
        die("helpers still running at the deadline (killed): "
            + "; ".join(o[2].strip()[-300:] for o in outs if o))
    return outs, ends


def served_tokens(outs):
    toks = set()
    for code, out, _ in outs:
        m = re.search(r"^password=(.*)$", out, re.M)
        if code == 0 and m:
            toks.add(m.group(1))
    return toks


# ------------------------------------------------------------------------------------------
# scenarios


def machine_description(binary):
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    ver = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    fs = subprocess.run(["stat", "-f", "-c", "%T", tempfile.gettempdir()],
                        capture_output=True, text=True).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": f"{platform.system()} {platform.release()}",
        "git": git,
        "helper": f"{ver} ({binary}, {os.path.getsize(binary) // 1024} KiB)",
        "tmpfs": f"{tempfile.gettempdir()} ({fs})",
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }


def helper_argv(binary, cache_dir, action="get", extra=()):
    return [binary, "--issuer", FAKE_ISSUER, "--client-id", CLIENT, "--url", TIED,
            "--cache-dir", str(cache_dir), *extra, action]


def check_answer(v: Variant, token, what):
    r = v.run_checked()
    out = r.stdout.decode(errors="replace")
    if r.returncode != 0 or f"password={token}\n" not in out:
        die(f"{what}: expected a cache hit answering password=<the seeded token>; exit "
            f"{r.returncode}, stdout {out[:200]!r}, stderr {r.stderr.decode(errors='replace')!r}")
    if r.stderr:
        log(f"note: {what} wrote on stderr: {r.stderr.decode(errors='replace').strip()[:300]}")


def token_support(binary, cache_dir, token, env, stdin_path):
    """(supported, note). Decided by a trial run; --help only explains a failure."""
    help_text = subprocess.run([binary, "--help"], capture_output=True, text=True, env=env).stdout
    listed = bool(re.search(r"^\s+(?:[\w-]+,\s*)*token\b", help_text, re.M))
    argv = helper_argv(binary, cache_dir, "token", ("--format", "raw"))
    v = Variant("ours token", argv, stdin_path, env)
    r = v.run_checked()
    out = r.stdout.decode(errors="replace")
    if r.returncode == 0 and out.strip() == token:
        return True, "", argv
    err = r.stderr.decode(errors="replace").strip()[:200]
    if not listed:
        return False, "skipped: this binary has no `token` action (not in `--help`)", argv
    return False, (f"skipped: `token` is in `--help` but `token --format raw` did not print the "
                   f"cached token (exit {r.returncode}; stderr: {err!r})"), argv


def peak_rss(variants, runs):
    """Max RSS (KiB) per run through GNU time, interleaved like the timing runs."""
    gnu_time = "/usr/bin/time"
    if not os.access(gnu_time, os.X_OK):
        return None
    res = {v.name: [] for v in variants}
    with tempfile.NamedTemporaryFile(prefix="bench-rss-") as out:
        for i in range(runs):
            off = i % len(variants)
            for v in variants[off:] + variants[:off]:
                with open(v.stdin_path, "rb") as f:
                    r = subprocess.run([gnu_time, "-f", "%M", "-o", out.name, *v.argv], stdin=f,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       env=v.env, start_new_session=True)
                if r.returncode != 0:
                    die(f"{v.name} under {gnu_time} exited {r.returncode}")
                res[v.name].append(int(Path(out.name).read_text().split()[-1]))
    r = subprocess.run([gnu_time, "-f", "%M", "/bin/true"], capture_output=True, text=True)
    floor = int(r.stderr.split()[-1]) if r.returncode == 0 else None
    return res, floor


def concurrent_expired(binary, idp, cache_dir, key, env, n, rounds):
    """n concurrent gets, the cached access token expired: refreshes at the provider; alternated
    with n concurrent gets on a valid token (the cost of starting n processes, for scale)."""
    data = cache_dir / f"{key}.json"
    argv = [binary, "--issuer", idp.issuer, "--client-id", CLIENT, "--url", TIED,
            "--cache-dir", str(cache_dir), "--non-interactive", "get"]
    rows = []
    for rnd in range(rounds):
        for kind in ("expired", "valid"):
            entry = json.loads(data.read_text())
            if kind == "expired":
                entry["expires_at"] = int(time.time()) - 3600
                write_private(data, json.dumps(entry, indent=2).encode())
            elif entry["expires_at"] - time.time() < 600:
                die("the refreshed token is not valid for long enough for the valid-token round")
            idp.reset()
            procs = start_helpers(n, argv, env)
            blocked = wait_blocked(procs, binary)
            t0 = release(procs)
            outs, ends = collect(procs, t0 + 120)
            wall = max(ends) - t0
            finish_ms = sorted((e - t0) * 1000 for e in ends)
            c = idp.counters()
            failed = [o for o in outs if o[0] != 0]
            rows.append({
                "kind": kind, "round": rnd, "wall_s": wall, "blocked_at_release": blocked,
                "finish_ms": [round(x, 1) for x in finish_ms],
                "refresh": c["token"]["refresh_token"],
                "device_authorization": c["device_authorization"],
                "failed": len(failed), "tokens": len(served_tokens(outs)),
                "waited": sum("waiting for" in o[2] for o in outs),
                "first_error": failed[0][2].strip()[:300] if failed else "",
            })
            log(f"  {n} x get, {kind} token, round {rnd + 1}: {rows[-1]}")
    return rows


def concurrent_signin(binary, idp, workdir, env, n, rounds):
    """n concurrent `get --interactive` on an empty cache; an approver answers the one code."""
    rows, dirs = [], []
    argv_base = [binary, "--issuer", idp.issuer, "--client-id", CLIENT, "--url", TIED,
                 "--interactive", "--lock-timeout", "120"]
    for rnd in range(rounds):
        cache_dir = workdir / f"signin-{rnd}"
        dirs.append(cache_dir)
        argv = [*argv_base, "--cache-dir", str(cache_dir), "get"]
        idp.reset()
        codes, approvals = [], []
        approver_lock = threading.Lock()

        def approve(code):
            r = subprocess.run(["node", str(IDP_DIR / "approve.js"), "--issuer", idp.issuer,
                                "--user-code", code], capture_output=True, text=True, timeout=60)
            approvals.append((r.returncode, r.stderr.strip()))

        def on_line(p, line):
            m = CODE_RE.match(line)
            if m:
                with approver_lock:
                    codes.append((p.pid, m.group(1)))
                    first = len(codes) == 1
                if first:  # the approver runs on this process's stderr thread
                    approve(m.group(1))

        procs = start_helpers(n, argv, env)
        blocked = wait_blocked(procs, binary)
        t0 = release(procs)
        outs, ends = collect(procs, t0 + 150, on_line)
        wall = max(ends) - t0
        c = idp.counters()
        failed = [o for o in outs if o[0] != 0]
        rows.append({
            "round": rnd, "wall_s": wall, "blocked_at_release": blocked,
            "device_authorization": c["device_authorization"],
            "device_polls": c["token"]["urn:ietf:params:oauth:grant-type:device_code"],
            "refresh": c["token"]["refresh_token"],
            "codes_shown": len(codes), "approved": [a[0] for a in approvals],
            "failed": len(failed), "tokens": len(served_tokens(outs)),
            "waited": sum("waiting for" in o[2] for o in outs),
            "first_error": failed[0][2].strip()[:300] if failed else "",
        })
        log(f"  {n} x get --interactive, empty cache, round {rnd + 1}: {rows[-1]}")
    return rows, dirs


# ------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the git-credential-iam binary")
    ap.add_argument("--runs", type=int, default=500, help="timed runs per variant [500]")
    ap.add_argument("--warmup", type=int, default=20, help="untimed runs per variant first [20]")
    ap.add_argument("--rss-runs", type=int, default=50, help="runs under /usr/bin/time [50]")
    ap.add_argument("--accounts", default="1,100,10000", help="cache sizes for item 3")
    ap.add_argument("--refresh-rounds", type=int, default=5, help="rounds of item 5 [5]")
    ap.add_argument("--signin-rounds", type=int, default=3, help="rounds of item 6 [3]")
    ap.add_argument("--refresh-procs", type=int, default=64)
    ap.add_argument("--signin-procs", type=int, default=16)
    ap.add_argument("--json", help="also write every figure (and raw samples) to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--also", action="append", default=[], metavar="NAME=PATH",
                    help="another build to time in item 1, side by side (repeatable)")
    a = ap.parse_args()
    also = []
    for spec in a.also:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            die(f"--also wants NAME=PATH, got {spec!r}")
        if not os.access(path, os.X_OK):
            die(f"--also {name}: {path} is not an executable")
        also.append((name, str(Path(path).resolve())))

    binary = str(Path(a.bin).resolve())
    git = shutil.which("git") or die("git not found")
    if not shutil.which("node"):
        die("node (20+) not found: items 5 and 6 need the test IdP")
    work = Path(tempfile.mkdtemp(prefix="gci-bench-"))
    log(f"work dir {work}")
    home = work / "home"
    env = clean_env(home)
    req_path = work / "request.txt"
    req_path.write_bytes(REQUEST)
    empty_path = work / "empty.txt"
    empty_path.write_bytes(b"")
    machine = machine_description(binary)
    machine["also"] = {name: machine_description(path)["helper"] for name, path in also}
    report = {"machine": machine, "runs": a.runs}
    idp = None
    try:
        # --- the seeded caches: 1, 100, 10,000 accounts; the measured one is one of them
        now = int(time.time())
        token = fake_token(0)
        sizes = [int(x) for x in a.accounts.split(",")]
        if 1 not in sizes:
            sizes.insert(0, 1)
        dirs = {}
        for size in sizes:
            d = work / f"cache-{size}"
            make_cache_dir(d)
            measured = size // 2  # somewhere in the middle of the directory
            for i in range(size):
                if i == measured:
                    write_entry(d, FAKE_ISSUER, CLIENT, token, now + 7 * 86400, "rt-0", now)
                else:
                    write_entry(d, FAKE_ISSUER, f"other-client-{i}", fake_token(i + 1),
                                now + 7 * 86400, f"rt-{i + 1}", now)
            dirs[size] = d
            log(f"seeded {size} account(s) in {d}")
        key = account_key(FAKE_ISSUER, CLIENT, SCOPE)

        store_file = work / "git-credentials"
        write_private(store_file, f"https://oauth2:{token}@example.org\n".encode())
        store = Variant("git credential-store", [git, "credential-store", "--file",
                                                 str(store_file), "get"], req_path, env)
        check_answer(store, token, "git credential-store get")
        ours = {s: Variant(f"ours get ({s} accounts)", helper_argv(binary, dirs[s]), req_path, env)
                for s in sizes}
        for s, v in ours.items():
            check_answer(v, token, v.name)  # proves the Python account_key finds the file

        # --- 1. cache-hit get vs git credential-store (and the --also builds), ABAB / ABCABC
        log(f"1. cache-hit get vs git credential-store get"
            f"{''.join(f' and {n}' for n, _ in also)}: {a.runs} runs each, interleaved")
        one = Variant("ours get", ours[1].argv, req_path, env)
        base1 = Variant("store", store.argv, req_path, env)
        others = [Variant(f"{n} get", helper_argv(path, dirs[1]), req_path, env)
                  for n, path in also]
        for v in others:
            check_answer(v, token, v.name)
        interleave([one, *others, base1], a.runs, a.warmup)
        report["hit"] = summarize(one, base1)
        report["hit_also"] = {n: {"vs_store": summarize(v, base1), "vs_bin": summarize(v, one)}
                              for (n, _), v in zip(also, others)}

        # --- 2. peak RSS
        log(f"2. peak RSS: {a.rss_runs} runs each under /usr/bin/time")
        rss = peak_rss([Variant("ours", ours[1].argv, req_path, env),
                        Variant("store", store.argv, req_path, env)], a.rss_runs)
        report["rss"] = None if rss is None else {
            "ours_kib": rss[0]["ours"], "store_kib": rss[0]["store"], "true_kib": rss[1]}

        # --- 3. many accounts: store and every size round-robin in one loop
        log(f"3. cache sizes {sizes}: {a.runs} runs each, round-robin with the store")
        base3 = Variant("store", store.argv, req_path, env)
        many = [Variant(f"{s}", ours[s].argv, req_path, env) for s in sizes]
        interleave([base3, *many], a.runs, a.warmup)
        report["sizes"] = {v.name: summarize(v, base3) for v in many}

        # --- 4. token --format raw
        ok, note, targv = token_support(binary, dirs[1], token, env, empty_path)
        if ok:
            log(f"4. token --format raw vs store get: {a.runs} runs each, interleaved")
            tok = Variant("ours token", targv, empty_path, env)
            base4 = Variant("store", store.argv, req_path, env)
            interleave([tok, base4], a.runs, a.warmup)
            report["token"] = summarize(tok, base4)
        else:
            log(f"4. {note}")
            report["token"] = {"skipped": note}

        # --- 6 (first: it creates the login that 5 refreshes), then 5
        log("starting the test IdP (tests/idp/server.js)")
        idp = Idp(work)
        log(f"IdP at {idp.issuer}")
        log(f"6. {a.signin_procs} concurrent get --interactive on an empty cache, "
            f"{a.signin_rounds} rounds")
        signin, signin_dirs = concurrent_signin(binary, idp, work, env, a.signin_procs,
                                                a.signin_rounds)
        report["signin"] = signin
        # the helper's own file name must be the Python account_key
        live_key = account_key(idp.issuer, CLIENT, SCOPE)
        made = sorted(p.name for p in signin_dirs[0].glob("*.json")
                      if not p.name.startswith("discovery-"))
        if made != [f"{live_key}.json"]:
            die(f"account_key mismatch: the helper wrote {made}, Python expects {live_key}.json")
        report["key_verified"] = f"{live_key}.json"
        log(f"account_key verified against the helper's own file: {live_key}.json")

        log(f"5. {a.refresh_procs} concurrent get on an expired token, {a.refresh_rounds} rounds")
        report["refresh"] = concurrent_expired(binary, idp, signin_dirs[0], live_key, env,
                                               a.refresh_procs, a.refresh_rounds)
    finally:
        if idp is not None:
            idp.stop()
        if a.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print(render(report, a))
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=2))


def ratio_ci(a, b, reps=1000, seed=1):
    """95 % bootstrap interval of median(a) / median(b) (independent resampling)."""
    rnd = random.Random(seed)
    rs = sorted(statistics.median(rnd.choices(a, k=len(a)))
                / statistics.median(rnd.choices(b, k=len(b))) for _ in range(reps))
    return rs[int(reps * 0.025)], rs[int(reps * 0.975) - 1]


def summarize(v: Variant, base: Variant):
    return {
        "ratio_ci95": ratio_ci(v.ns, base.ns),
        "n": len(v.ns),
        "median_ns": statistics.median(v.ns), "p90_ns": pct(v.ns, 90),
        "base_median_ns": statistics.median(base.ns), "base_p90_ns": pct(base.ns, 90),
        "ratio": statistics.median(v.ns) / statistics.median(base.ns),
        "ratio_p90": pct(v.ns, 90) / pct(base.ns, 90),
        "cpu_median_us": statistics.median(v.cpu_us),
        "base_cpu_median_us": statistics.median(base.cpu_us),
    }


def verdict(ok):
    return "yes" if ok else "**no**"


def render(r, a):
    m = r["machine"]
    out = [
        "| machine | |", "|---|---|",
        f"| CPU | {m['nproc']} × {m['cpu']} (`nproc` = {m['nproc']}) |",
        f"| kernel | {m['kernel']} |",
        f"| git | {m['git']} |",
        f"| helper | {m['helper']} |",
        *[f"| helper `{n}` (`--also`) | {h} |" for n, h in m.get("also", {}).items()],
        f"| temp dir | {m['tmpfs']} |",
        f"| load average at start | {' '.join(m['loadavg'])} |",
        "",
        "| # | benchmark | git-credential-iam | baseline | ratio ours/baseline (median; p90) | target | met |",
        "|---|---|---|---|---|---|---|",
    ]

    def timed_row(num, what, s, target_ratio=1.0):
        lo, hi = s["ratio_ci95"]
        return (f"| {num} | {what} (n = {s['n']} each, interleaved) "
                f"| median {ms(s['median_ns'])}, p90 {ms(s['p90_ns'])} "
                f"(CPU {s['cpu_median_us'] / 1000:.2f} ms) "
                f"| `git credential-store get`: median {ms(s['base_median_ns'])}, "
                f"p90 {ms(s['base_p90_ns'])} (CPU {s['base_cpu_median_us'] / 1000:.2f} ms) "
                f"| **{s['ratio']:.2f}** (95% CI {lo:.2f}–{hi:.2f}); {s['ratio_p90']:.2f} "
                f"| ≤ {target_ratio:.1f} "
                f"| {verdict(s['ratio'] <= target_ratio)} |")

    out.append(timed_row(1, "cache-hit `get`, whole process", r["hit"]))
    for name, s in r.get("hit_also", {}).items():
        lo, hi = s["vs_bin"]["ratio_ci95"]
        out.append(timed_row(1, f"cache-hit `get`, whole process, build `{name}` (same loop; vs "
                                f"`--bin`: {s['vs_bin']['ratio']:.2f}, 95% CI {lo:.2f}–{hi:.2f})",
                             s["vs_store"]))
    if r["rss"] is None:
        out.append("| 2 | peak RSS of a cache-hit `get` | n/a: /usr/bin/time missing "
                   "(Debian package `time`) | | | ≤ 5 MB | |")
    else:
        o, s = r["rss"]["ours_kib"], r["rss"]["store_kib"]
        out.append(
            f"| 2 | peak RSS of a cache-hit `get` (`/usr/bin/time -f %M`, n = {len(o)}) "
            f"| median {statistics.median(o) / 1024:.2f} MiB, max {max(o) / 1024:.2f} MiB "
            f"| `git credential-store get`: median {statistics.median(s) / 1024:.2f} MiB "
            f"(`/bin/true`: {r['rss']['true_kib'] / 1024:.2f} MiB) "
            f"| {statistics.median(o) / statistics.median(s):.2f} | ≤ 5 MB "
            f"| {verdict(max(o) * 1024 <= 5_000_000)} |")
    for size, s in r["sizes"].items():
        out.append(timed_row(3, f"cache-hit `get`, {int(size):,} account(s) in the cache dir",
                             s))
    t = r["token"]
    if "skipped" in t:
        out.append(f"| 4 | cache-hit `token --format raw` | {t['skipped']} | | | ≤ 1.0 | |")
    else:
        out.append(timed_row(4, "cache-hit `token --format raw` (vs store `get`)", t))

    ref = [x for x in r["refresh"] if x["kind"] == "expired"]
    val = [x for x in r["refresh"] if x["kind"] == "valid"]
    n5 = a.refresh_procs
    refreshes = [x["refresh"] for x in ref]
    ok5 = all(x == 1 for x in refreshes) and all(x["failed"] == 0 for x in ref)
    out.append(
        f"| 5 | {n5} concurrent `get`, access token expired ({len(ref)} rounds) "
        f"| refresh requests per round: {', '.join(map(str, refreshes))}; "
        f"all {n5} answered: {'yes' if all(x['failed'] == 0 for x in ref) else 'NO'}; "
        f"distinct tokens served: {', '.join(str(x['tokens']) for x in ref)}; "
        f"processes that said they wait: {', '.join(str(x['waited']) for x in ref)}; "
        f"blocked on stdin at release: {min(x['blocked_at_release'] for x in r['refresh'])}/{n5}; "
        f"wall for all {n5}: median {statistics.median(x['wall_s'] for x in ref) * 1000:.0f} ms "
        f"(per-process finish, median round: first "
        f"{statistics.median(x['finish_ms'][0] for x in ref):.0f} ms, median "
        f"{statistics.median(statistics.median(x['finish_ms']) for x in ref):.0f} ms, last "
        f"{statistics.median(x['finish_ms'][-1] for x in ref):.0f} ms) "
        f"| {n5} concurrent cache-hit `get` (valid token): wall median "
        f"{statistics.median(x['wall_s'] for x in val) * 1000:.0f} ms, "
        f"refreshes {', '.join(str(x['refresh']) for x in val)} "
        f"| | exactly 1 refresh | {verdict(ok5)} |")
    sg = r["signin"]
    n6 = a.signin_procs
    das = [x["device_authorization"] for x in sg]
    ok6 = all(x == 1 for x in das) and all(x["failed"] == 0 for x in sg)
    out.append(
        f"| 6 | {n6} concurrent `get --interactive`, empty cache ({len(sg)} rounds) "
        f"| device authorizations per round: {', '.join(map(str, das))}; "
        f"codes shown: {', '.join(str(x['codes_shown']) for x in sg)}; "
        f"device-code polls: {', '.join(str(x['device_polls']) for x in sg)}; "
        f"blocked on stdin at release: {min(x['blocked_at_release'] for x in sg)}/{n6}; "
        f"all {n6} answered: {'yes' if all(x['failed'] == 0 for x in sg) else 'NO'}; "
        f"wall incl. approval: median {statistics.median(x['wall_s'] for x in sg):.2f} s "
        f"| | | exactly 1 device authorization | {verdict(ok6)} |")
    out += ["", f"`account_key` (Python copy of src/store/cache.rs) checked against the file the "
                f"helper wrote: `{r['key_verified']}`."]
    return "\n".join(out)


if __name__ == "__main__":
    main()
