"""The operations files (docker/, kubernetes/) checked by real tools:

- nginx: `nginx -t` on docker/nginx.conf with a throwaway certificate, then
  real nginx on loopback in front of a master and a replica started by the
  harness (webhooks end on the master only, the rate limit answers 429, the
  body limit 413, security headers);
- Prometheus: `promtool check config`, `promtool check rules`, `promtool test
  rules` (tests/ops/alerts_test.yml); every metric the alerts and the Grafana
  dashboard name is declared by a real scrape; every dashboard query parses;
- compose: `docker-compose config` (Debian's docker-compose 1.29, offline)
  on both files plus the project's assertions;
- Kubernetes: YAML parse plus the project's assertions (probes, limits,
  security context, selectors); `kubectl kustomize` when a kubectl exists
  (Debian has none: kubeconform and kubeval are not packaged either);
- the image's entrypoint against a real Redis Sentinel, and the runtime
  stage's packages against the libraries the built server links.

The images themselves are not built here (no Docker engine): README,
"Operations", says how ops verify them.

Tools come from tools/deps.sh (nginx, prometheus, docker-compose, openssl);
a test whose tool is missing is skipped with the reason.
"""
import http.client
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SERVER_BIN, free_port, stop_process, wait_for

pytestmark = pytest.mark.obentchi_only

DOCKER = REPO / "docker"
KUBE = REPO / "kubernetes"
SENTINEL_BIN = os.environ.get("REDIS_SENTINEL", "/usr/bin/redis-sentinel")


def need(tool, package):
    path = shutil.which(tool) or (tool if Path(tool).exists() else None)
    if not path:
        pytest.skip("%s not installed (Debian package %s; tools/deps.sh installs it)" % (tool, package))
    return path


def run(argv, **kw):
    kw.setdefault("timeout", 60)
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def http_port_of(srv):
    """The HTTP listener's port of a harness server (conftest gives every
    obentchi server one); skips when this build has no listener."""
    port = getattr(srv, "http_port", None) or srv.options.get("http-port") or srv.options.get("http_port")
    if not port:
        pytest.skip("the harness gives this server no HTTP listener (http-port)")
    return int(port)


def http_get(port, path, method="GET", body=None, headers=None, timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


# ------------------------------------------------------------------ nginx


def make_cert(d):
    openssl = need("openssl", "openssl")
    d.mkdir(parents=True, exist_ok=True)
    r = run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
             "-keyout", str(d / "tls.key"), "-out", str(d / "tls.crt")])
    assert r.returncode == 0, r.stderr
    return d


def render_nginx(tmp, upstreams, https_port, http_port, rate=None, burst=None):
    """docker/nginx.conf with test values: upstream servers, listen ports,
    certificate/pid/temp paths, and optionally the rate.  Anything else is the
    file as shipped; each substitution must apply (the test fails if the file
    no longer has what it replaces)."""
    text = (DOCKER / "nginx.conf").read_text()
    tls = make_cert(tmp / "tls")
    cache = tmp / "cache"
    cache.mkdir(exist_ok=True)
    subs = [
        (r"(?m)^(\s*)server obentchi-0:8080 (.*)$",
         lambda m: "\n".join("%sserver 127.0.0.1:%d %s" % (m.group(1), p, m.group(2)) for p in upstreams)),
        (r"(?m)^\s*server obentchi-[12]:8080 .*\n", ""),
        (r"/etc/nginx/tls/", str(tls) + "/"),
        (r"/var/cache/nginx/", str(cache) + "/"),
        (r"pid /var/run/nginx.pid;", "pid %s;" % (tmp / "nginx.pid")),
        (r"listen 80;", "listen 127.0.0.1:%d;" % http_port),
        (r"listen 443 ssl", "listen 127.0.0.1:%d ssl" % https_port),
        (r"(?m)^\s*listen \[::\]:.*\n", ""),
        (r"worker_processes auto;", "worker_processes 1;"),
        (r"access_log /dev/stdout main;", "access_log %s main;" % (tmp / "access.log")),
        (r"error_log /dev/stderr warn;", "error_log %s info;" % (tmp / "error.log")),
    ]
    if rate:
        subs.append((r"rate=\d+r/s", "rate=%s" % rate))
    if burst is not None:
        subs.append((r"burst=\d+", "burst=%d" % burst))
    for pat, rep in subs:
        text, n = re.subn(pat, rep, text)
        assert n, "docker/nginx.conf no longer has %r" % pat
    conf = tmp / "nginx.conf"
    conf.write_text(text)
    return conf


def nginx_t(nginx, tmp, conf):
    return run([nginx, "-t", "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")])


def test_nginx_config_syntax(tmp_path):
    nginx = need("nginx", "nginx")
    conf = render_nginx(tmp_path, [free_port(), free_port()], free_port(), free_port())
    r = nginx_t(nginx, tmp_path, conf)
    assert r.returncode == 0 and "test is successful" in r.stderr, r.stderr
    text = (DOCKER / "nginx.conf").read_text()
    # What the issue asks of the front, present in the shipped file.
    for must in ("least_conn;", "max_fails=", "fail_timeout=", "proxy_next_upstream error timeout http_503 non_idempotent",
                 "limit_req_zone $binary_remote_addr", "limit_req_status 429", "client_max_body_size",
                 "gzip on;", "ssl_certificate ", "Strict-Transport-Security", "X-Content-Type-Options",
                 "server_tokens off;", "location = /telegram/webhook"):
        assert must in text, "nginx.conf lacks %r" % must
    # A broken file is caught (the check is real): nginx -t fails on it.
    bad = tmp_path / "bad.conf"
    bad.write_text(conf.read_text().replace("least_conn;", "least_conn on;"))
    r = nginx_t(nginx, tmp_path, bad)
    assert r.returncode != 0 and "least_conn" in r.stderr, r.stderr


class Nginx:
    def __init__(self, nginx, tmp, conf, https_port):
        self.tmp, self.https_port = tmp, https_port
        out = open(tmp / "nginx.out", "wb")
        self.proc = subprocess.Popen([nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log"),
                                      "-g", "daemon off;"], stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("nginx exited: %s %s" % ((tmp / "nginx.out").read_text(),
                                                               (tmp / "error.log").read_text()))
            try:
                self.request("GET", "/nothing")
                return True
            except OSError:
                return False
        wait_for(up, timeout=10, what="nginx on %d" % https_port)

    def conn(self):
        return http.client.HTTPSConnection("127.0.0.1", self.https_port, context=self.ctx, timeout=10)

    def request(self, method, path, body=None, headers=None, conn=None):
        c = conn or self.conn()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            if conn is None:
                c.close()

    def access_log(self):
        p = self.tmp / "access.log"
        return [json.loads(l) for l in p.read_text().splitlines() if l.strip()] if p.exists() else []

    def stop(self):
        stop_process(self.proc, signal.SIGQUIT)  # graceful; nginx's master stops its workers


@pytest.fixture
def group(make_server):
    """A master and a replica of it, replication link up."""
    master = make_server()
    replica = make_server(replicaof=["127.0.0.1", str(master.port)])
    rc = replica.client()
    wait_for(lambda: rc.info("replication").get("master_link_status") == "up", timeout=20,
             what="replica link up")
    return master, replica


@pytest.fixture
def front(tmp_path, group):
    """nginx in front of [replica, master] (the replica listed first, so that
    least_conn tries it too).  rate/burst small enough to trip in a test."""
    nginx = need("nginx", "nginx")
    master, replica = group
    started = []

    def start(rate=None, burst=None):
        https_port = free_port()
        conf = render_nginx(tmp_path, [http_port_of(replica), http_port_of(master)], https_port, free_port(),
                            rate=rate, burst=burst)
        ng = Nginx(nginx, tmp_path, conf, https_port)
        started.append(ng)
        return ng
    yield start
    for ng in started:
        ng.stop()


def test_nginx_sends_webhooks_to_the_master_only(group, front):
    master, replica = group
    mport, rport = http_port_of(master), http_port_of(replica)
    # Readiness, as the nodes give it: the master is ready, the replica says why not.
    st, _, body = http_get(mport, "/readyz")
    assert st == 200, body
    st, _, body = http_get(rport, "/readyz")
    assert st == 503 and b"replica" in body.lower(), (st, body)
    st, _, _ = http_get(rport, "/telegram/webhook", "POST", b"{}", {"Content-Type": "application/json"})
    if st == 404:
        pytest.skip("this build has no POST /telegram/webhook yet (the replica answers 404, not 503)")
    assert st == 503, "a replica must answer the webhook with 503, got %d" % st

    ng = front()
    results = []
    for i in range(20):
        upd = json.dumps({"update_id": 900000 + i, "message": {"message_id": i, "date": int(time.time()),
                          "chat": {"id": 4242, "type": "private"}, "from": {"id": 4242, "is_bot": False,
                          "first_name": "ops"}, "text": "/start"}}).encode()
        st, hdrs, body = ng.request("POST", "/telegram/webhook", upd, {"Content-Type": "application/json"})
        results.append(st)
        assert st != 503, "nginx passed a replica's 503 to the client (request %d): %r" % (i, body)
        assert st != 502, "nginx found no live upstream (request %d)" % i
    # Every request ended on the master: the access log names the upstream(s)
    # tried; the last one is always the master, a replica only before it.
    # nginx logs a request after its answer went out: the last line may lag.
    deadline = time.monotonic() + 5
    while True:
        log = [e for e in ng.access_log() if e["uri"] == "/telegram/webhook"]
        if len(log) >= 20 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(log) == 20, log
    for e in log:
        tried = [a.strip() for a in e["upstream"].split(",")]
        statuses = [s.strip() for s in e["upstream_status"].split(",")]
        assert tried[-1] == "127.0.0.1:%d" % mport, e
        assert statuses[-1] != "503", e
        for a, s in zip(tried[:-1], statuses[:-1]):
            assert a == "127.0.0.1:%d" % rport and s == "503", e


def test_nginx_rate_limit_body_limit_and_headers(group, front):
    ng = front(rate="5r/s", burst=5)
    conn = ng.conn()
    statuses = []
    deadline = time.monotonic() + 10
    for i in range(30):  # 30 requests as fast as one connection goes, 10 s at most
        st, hdrs, _ = ng.request("GET", "/api/v1/ops-test-%d" % i, conn=conn)
        statuses.append(st)
        if time.monotonic() > deadline:
            break
    conn.close()
    assert 429 not in statuses[:6], statuses  # the burst (5) plus the first request pass
    assert statuses.count(429) >= 10, statuses
    # Security headers on every answer, nginx's version hidden.
    st, hdrs, _ = ng.request("GET", "/nothing-here")
    assert st in (404, 429), st
    assert hdrs.get("strict-transport-security", "").startswith("max-age=")
    assert hdrs.get("x-content-type-options") == "nosniff"
    assert hdrs.get("x-frame-options") == "DENY"
    assert hdrs.get("server") == "nginx", hdrs.get("server")
    # A body over client_max_body_size (1m) is refused by nginx itself.
    time.sleep(1.2)
    st, _, _ = ng.request("POST", "/telegram/webhook", b"x" * (2 << 20), {"Content-Type": "application/json"})
    assert st == 413, st


# ------------------------------------------------------------ Prometheus


def promtool():
    return need("promtool", "prometheus")


def test_prometheus_config_and_rules(tmp_path):
    pt = promtool()
    # The config names the rules by their in-container path: point it here.
    cfg = (DOCKER / "prometheus.yml").read_text()
    assert "/etc/prometheus/alerts.yml" in cfg
    shutil.copy(DOCKER / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(cfg.replace("/etc/prometheus/alerts.yml", str(tmp_path / "alerts.yml")))
    r = run([pt, "check", "config", str(tmp_path / "prometheus.yml")])
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr
    r = run([pt, "check", "rules", str(DOCKER / "alerts.yml")])
    assert r.returncode == 0, r.stdout + r.stderr
    rules = yaml.safe_load((DOCKER / "alerts.yml").read_text())
    names = {rule["alert"] for g in rules["groups"] for rule in g["rules"]}
    for want in ("ObentchiNodeDown", "ObentchiNoMaster", "ObentchiReplicaLag", "ObentchiSnapshotFailing",
                 "ObentchiQueueBacklogGrowing", "ObentchiDeadLetters", "ObentchiWebhookErrors"):
        assert want in names, names
    # The rules' behaviour on synthetic series (fires when it should, not before).
    r = run([pt, "test", "rules", str(REPO / "tests" / "ops" / "alerts_test.yml")])
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr
    # And the check is real: a broken expression fails.
    bad = tmp_path / "bad.yml"
    bad.write_text((DOCKER / "alerts.yml").read_text().replace("up{job=\"obentchi\"} == 0", "up{job=\"obentchi\" == 0"))
    assert run([pt, "check", "rules", str(bad)]).returncode != 0


def dashboard():
    return json.loads((DOCKER / "grafana" / "dashboards" / "obentchi.json").read_text())


def dashboard_exprs():
    out = []
    for p in dashboard()["panels"]:
        for t in p.get("targets", []):
            out.append(t["expr"])
    return out


def test_grafana_dashboard_and_provisioning(tmp_path):
    pt = promtool()
    d = dashboard()
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    titles = " ".join(p["title"].lower() for p in d["panels"])
    for what in ("commands per second", "latency", "memory", "replica lag", "queues", "bot", "webhook"):
        assert what in titles, "dashboard has no %r panel" % what
    for p in d["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
    # Every query parses as PromQL: promtool checks them as recording rules
    # (Grafana's variables replaced by values).
    rules = []
    for i, e in enumerate(dashboard_exprs()):
        e = e.replace("$__rate_interval", "5m").replace('"$instance"', '".*"')
        assert "$" not in e, e
        rules.append({"record": "dashboard:q%d" % i, "expr": e})
    f = tmp_path / "dashboard_rules.yml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    r = run([pt, "check", "rules", str(f)])
    assert r.returncode == 0, r.stdout + r.stderr
    # Provisioning: the data source's uid is the dashboard's default, and the
    # dashboards provider reads the directory compose mounts the JSON into.
    ds = yaml.safe_load((DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = ds["datasources"][0]["uid"]
    dsvar = [v for v in d["templating"]["list"] if v["name"] == "datasource"][0]
    assert dsvar["current"]["value"] == uid
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"
    prov = yaml.safe_load((DOCKER / "grafana" / "provisioning" / "dashboards" / "obentchi.yml").read_text())
    compose = yaml.safe_load((DOCKER / "docker-compose.production.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert "./grafana/dashboards:%s:ro" % prov["providers"][0]["options"]["path"] in mounts, mounts


def referenced_metrics():
    """Metric names used by alerts.yml and the dashboard (histogram series
    reduced to their family)."""
    text = (DOCKER / "alerts.yml").read_text() + "\n".join(dashboard_exprs())
    names = set(re.findall(r"\b((?:obentchi|process)_[a-z0-9_]+)", text))
    return {re.sub(r"_(bucket|sum|count)$", "", n) if n.endswith(("_bucket", "_sum", "_count")) else n
            for n in names}


def scrape_families(port):
    st, hdrs, body = http_get(port, "/metrics")
    assert st == 200, st
    fams = set(re.findall(r"(?m)^# TYPE (\S+) ", body.decode()))
    return fams, body


def test_alerts_and_dashboard_name_real_metrics(group, tmp_path):
    """Every metric the alerts and the dashboard use is declared by a real
    scrape of a master or a replica: a renamed metric breaks this test, not a
    silent alert."""
    master, replica = group
    fams = set()
    for srv in (master, replica):
        f, body = scrape_families(http_port_of(srv))
        fams |= f
    missing = sorted(referenced_metrics() - fams)
    assert not missing, "alerts/dashboard use metrics no scrape declares: %s\n(declared: %s)" % (
        missing, sorted(fams))


# --------------------------------------------------------------- compose


def compose_config(f):
    dc = need("docker-compose", "docker-compose")
    r = run([dc, "-f", str(f), "config"], cwd=str(REPO))
    assert r.returncode == 0, r.stdout + r.stderr
    return yaml.safe_load(r.stdout)


def server_option_names(make_server):
    srv = make_server()
    names = srv.client().config_get("*").keys()
    return {n if isinstance(n, str) else n.decode() for n in names}


def env_option_names(env):
    """OBENTCHI_X[_FILE] variables -> option names (x, or x for x-file)."""
    out = {}
    for k in env:
        if k.startswith("OBENTCHI_"):
            name = k[len("OBENTCHI_"):].lower().replace("_", "-")
            out[k] = name[:-5] if name.endswith("-file") else name
    return out


def test_compose_files(make_server):
    options = server_option_names(make_server)
    dev = compose_config(DOCKER / "docker-compose.yml")
    prod = compose_config(DOCKER / "docker-compose.production.yml")
    # A broken file is refused (the validation is real).
    assert run([shutil.which("docker-compose"), "-f", "-", "config", "-q"],
               input="services:\n  x:\n    image: a\n    ports: 12\n", cwd=str(DOCKER)).returncode != 0

    assert set(dev["services"]) == {"obentchi", "mongo"}
    assert dev["services"]["obentchi"]["build"]["target"] == "runtime"
    assert "OBENTCHI_MONGO_URI" in dev["services"]["obentchi"]["environment"]

    svcs = prod["services"]
    nodes = sorted(s for s in svcs if s.startswith("obentchi-"))
    sentinels = sorted(s for s in svcs if s.startswith("sentinel-"))
    assert nodes == ["obentchi-0", "obentchi-1", "obentchi-2"], nodes
    assert len(sentinels) == 3
    for s in ("mongo", "nginx", "prometheus", "grafana"):
        assert s in svcs, s
    # Only nginx and (loopback) Grafana are published; RESP is internal.
    for name, s in svcs.items():
        for p in s.get("ports", []):
            host_ip = p.get("host_ip") if isinstance(p, dict) else (str(p).split(":")[0] if str(p).count(":") == 2 else None)
            assert name == "nginx" or (name == "grafana" and host_ip == "127.0.0.1"), (name, p)
    # Every OBENTCHI_* variable names a real option of the server (the
    # server refuses unknown ones at start).
    for env in [dev["services"]["obentchi"]["environment"]] + [svcs[n]["environment"] for n in nodes]:
        for var, opt in env_option_names(env).items():
            assert opt in options, "%s: the server has no option %r" % (var, opt)
    # Secrets come from files, never from variables.
    for n in nodes:
        env = svcs[n]["environment"]
        for secret in ("REQUIREPASS", "MONGO_URI", "BOT_TOKEN"):
            assert "OBENTCHI_%s" % secret not in env and "OBENTCHI_%s_FILE" % secret in env
    # nginx's upstream lists exactly the nodes; Prometheus scrapes exactly them.
    ups = re.findall(r"server (obentchi-\d):8080", (DOCKER / "nginx.conf").read_text())
    assert sorted(ups) == nodes
    prom = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    job = [j for j in prom["scrape_configs"] if j["job_name"] == "obentchi"][0]
    assert sorted(t.split(":")[0] for t in job["static_configs"][0]["targets"]) == nodes
    # Files mounted from the repository exist.
    for name, s in svcs.items():
        for v in s.get("volumes", []):
            src = v["source"] if isinstance(v, dict) else v.split(":")[0]
            if src.startswith("/work") or src.startswith("."):
                p = Path(src) if src.startswith("/") else DOCKER / src
                if "secrets" not in str(p):
                    assert p.exists(), (name, src)


def test_dockerfile(server_binary):
    text = (DOCKER / "Dockerfile").read_text()
    stages = dict((m.group(2), m.group(1)) for m in re.finditer(r"(?m)^FROM (\S+) AS (\S+)", text))
    assert stages.get("build") == "debian:12" and stages.get("runtime") == "debian:12-slim", stages
    runtime = text.split("AS runtime", 1)[1].split("\nFROM ", 1)[0]
    m = re.search(r"(?m)^USER (\d+)", runtime)
    assert m and int(m.group(1)) != 0, "the runtime stage must run as a non-root user"
    assert re.search(r"(?m)^HEALTHCHECK .*\n?.*/healthz", runtime)
    assert re.search(r"(?m)^EXPOSE 6379 8080$", runtime)
    # Every COPY source (from the context) exists.
    for m in re.finditer(r"(?m)^COPY (?!--from)(.+) (\S+)$", text):
        for src in m.group(1).split():
            if src != ".":
                assert (REPO / src).exists(), src
    ign = (REPO / ".dockerignore").read_text().split()
    for must in (".git", "build", "build-*"):
        assert must in ign, must
    r = run(["bash", "-n", str(DOCKER / "entrypoint.sh")])
    assert r.returncode == 0, r.stderr
    assert os.access(DOCKER / "entrypoint.sh", os.X_OK)
    # The runtime stage installs the Debian package of every shared library
    # the built server links (libc's are in the base image).
    if not shutil.which("dpkg") or not Path(server_binary).exists():
        pytest.skip("no dpkg or no server binary to check the runtime packages against")
    pkgs = set(re.search(r"apt-get install -y --no-install-recommends \\\n(.*?)\\\n &&", runtime, re.S)
               .group(1).split())
    libs = re.findall(r"=> (/\S+)", run(["ldd", server_binary]).stdout)
    assert libs
    # the sanitizer build under test links the sanitizers' runtimes; the image never does
    libs = [x for x in libs if not re.search(r"/lib(asan|ubsan|lsan|tsan)\.so", x)]
    base = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libzstd1", "libssl3", "libcrypt1"}
    missing = {}
    for lib in libs:
        r = run(["dpkg", "-S", os.path.realpath(lib)])
        if r.returncode != 0:
            r = run(["dpkg", "-S", lib])
        if r.returncode != 0:
            continue
        pkg = r.stdout.split(":")[0]
        # Libraries pulled in by another package's dependencies are fine;
        # the direct ones (those the build links) must be named.
        if pkg in base:
            continue
        direct = run(["readelf", "-d", server_binary]).stdout
        if os.path.basename(lib) in direct and pkg not in pkgs:
            missing[os.path.basename(lib)] = pkg
    assert not missing, "runtime stage lacks packages for: %s" % missing


# --------------------------------------------------------------- entrypoint


def start_entrypoint(tmp, env_extra, port):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBENTCHI_")}
    env.update(env_extra)
    env["OBENTCHI_PORT"] = str(port)
    log = tmp / ("entry%d.log" % port)
    argv = ["bash", str(DOCKER / "entrypoint.sh"), SERVER_BIN, "--bind", "127.0.0.1", "--dir", str(tmp),
            "--http-port", "0"]
    out = open(log, "wb")
    p = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    out.close()
    return p, log


def role_of(port):
    import redis
    c = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
    try:
        info = c.info("replication")
        return info["role"], info.get("master_port")
    except redis.exceptions.ConnectionError:
        return None, None
    finally:
        c.close()


def test_entrypoint_asks_sentinel_for_the_master(make_server, tmp_path):
    """docker/entrypoint.sh with a real Redis Sentinel: a node that starts
    while Sentinel names another master comes up as its replica; with no
    Sentinel answering, BOOT_MASTER decides (itself: master)."""
    if not Path(SENTINEL_BIN).exists():
        pytest.skip("redis-sentinel not installed")
    master = make_server()
    sport = free_port()
    sdir = tmp_path / "sentinel"
    sdir.mkdir()
    conf = sdir / "sentinel.conf"
    conf.write_text("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor obentchi 127.0.0.1 %d 1\n"
                    % (sport, sdir, master.port))
    out = open(sdir / "out", "wb")
    sentinel = subprocess.Popen([SENTINEL_BIN, str(conf)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    out.close()
    procs = [sentinel]
    try:
        import redis
        sc = redis.Redis(host="127.0.0.1", port=sport, socket_timeout=2)
        wait_for(lambda: _safe(lambda: sc.execute_command("SENTINEL", "get-master-addr-by-name", "obentchi")),
                 timeout=10, what="sentinel answers")
        sc.close()
        # 1. Sentinel names the master: the node starts as its replica,
        #    whatever BOOT_MASTER says.
        p1port = free_port()
        p1, log1 = start_entrypoint(tmp_path, {"SENTINELS": "127.0.0.1:%d" % sport, "BOOT_MASTER": "127.0.0.1:%d" % p1port,
                                               "SELF_HOST": "127.0.0.1"}, p1port)
        procs.append(p1)
        wait_up(p1port, log1)
        assert role_of(p1port) == ("slave", master.port), log1.read_text()
        assert "replica of 127.0.0.1 %d" % master.port in log1.read_text()
        # 2. No Sentinel answers (a closed port) and BOOT_MASTER is this node: master.
        p2port = free_port()
        p2, log2 = start_entrypoint(tmp_path, {"SENTINELS": "127.0.0.1:%d" % free_port(),
                                               "BOOT_MASTER": "127.0.0.1:%d" % p2port, "SELF_HOST": "127.0.0.1"},
                                    p2port)
        procs.append(p2)
        wait_up(p2port, log2)
        assert role_of(p2port)[0] == "master", log2.read_text()
        # 3. No Sentinel, BOOT_MASTER another node: its replica.
        p3port = free_port()
        p3, log3 = start_entrypoint(tmp_path, {"BOOT_MASTER": "127.0.0.1:%d" % p2port}, p3port)
        procs.append(p3)
        wait_up(p3port, log3)
        assert role_of(p3port) == ("slave", p2port), log3.read_text()
    finally:
        for p in reversed(procs):
            stop_process(p)


def wait_up(port, log):
    try:
        wait_for(lambda: role_of(port)[0] is not None, timeout=20, what="node on %d up" % port)
    except AssertionError as e:
        raise AssertionError("%s; its output:\n%s" % (e, log.read_text()[-3000:]))


def _safe(fn):
    try:
        return fn()
    except Exception:
        return None


# ------------------------------------------------------------ Kubernetes


def kube_docs():
    docs = []
    for f in sorted(KUBE.glob("*.yaml")):
        if f.name == "kustomization.yaml":
            continue
        for d in yaml.safe_load_all(f.read_text()):
            if d:
                assert "apiVersion" in d and "kind" in d and d.get("metadata", {}).get("name"), (f, d)
                docs.append(d)
    return docs


def test_kubernetes_manifests(make_server):
    docs = kube_docs()
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    kust = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    assert sorted(kust["resources"]) == sorted(f.name for f in KUBE.glob("*.yaml") if f.name != "kustomization.yaml")

    sts = by[("StatefulSet", "obentchi")]
    headless = by[("Service", sts["spec"]["serviceName"])]
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    webhook = by[("Service", "obentchi-webhook")]
    assert webhook["spec"]["selector"].items() <= labels.items()
    assert webhook["spec"].get("publishNotReadyAddresses") is not True  # only the ready master
    ann = sts["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "8080"
    assert ann["prometheus.io/path"] == "/metrics"

    sentinel = by[("Deployment", "obentchi-sentinel")]
    assert sentinel["spec"]["replicas"] == 3

    options = server_option_names(make_server)
    cms = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    for w in (sts, sentinel):
        pod = w["spec"]["template"]["spec"]
        assert pod.get("enableServiceLinks") is False, w["metadata"]["name"]
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0
        for c in pod["containers"]:
            res = c["resources"]
            for k in ("cpu", "memory"):
                assert k in res["requests"] and k in res["limits"], (c["name"], k)
            assert c.get("livenessProbe") and c.get("readinessProbe"), c["name"]
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
            assert "ALL" in sc["capabilities"]["drop"]
            for ef in c.get("envFrom", []):
                assert ef["configMapRef"]["name"] in cms
            for v in pod.get("volumes", []):
                if "secret" in v:
                    assert v["secret"]["secretName"] in secrets
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            for src in c.get("envFrom", []):
                env.update(cms[src["configMapRef"]["name"]]["data"])
            if c["name"] == "obentchi":
                for var, opt in env_option_names(env).items():
                    assert opt in options, "%s: the server has no option %r" % (var, opt)
                ports = {p["name"]: p["containerPort"] for p in c["ports"]}
                assert ports == {"resp": 6379, "http": 8080}
                assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
                assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
                assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
                assert res["requests"]["memory"] == res["limits"]["memory"]  # no overcommit for a store
    # PDBs select existing pods.
    for d in docs:
        if d["kind"] == "PodDisruptionBudget":
            sel = d["spec"]["selector"]["matchLabels"]
            assert any(sel.items() <= w["spec"]["template"]["metadata"]["labels"].items()
                       for w in (sts, sentinel)), d["metadata"]["name"]
    # No HorizontalPodAutoscaler may target the store's StatefulSet.
    for d in docs:
        if d["kind"] == "HorizontalPodAutoscaler":
            assert d["spec"]["scaleTargetRef"]["kind"] != "StatefulSet"
    kubectl = shutil.which("kubectl")
    if kubectl:  # not a Debian package; used when present
        r = run([kubectl, "kustomize", str(KUBE)])
        assert r.returncode == 0, r.stderr
        assert len([d for d in yaml.safe_load_all(r.stdout) if d]) == len(docs)
