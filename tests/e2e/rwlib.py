"""rwlib - shared helpers for rwgate's end-to-end tests (Python standard
library only): run rwgate and real peers on free 127.0.0.1 ports, encode
remote-write 1.0/2.0 and remote-read messages by hand (protobuf wire format +
snappy), decode remote-read responses, and count checks the way the suite
reports them ("N passed, N failed")."""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import http.client as http_client
import urllib.error
import urllib.parse
import urllib.request

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


# ---------------------------------------------------------------- results

class Checks:
    """Counts checks; prints failures as they happen and a closing line."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def check(self, cond, what, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: %s %s" % (what, detail), flush=True)
        return cond

    def eq(self, got, want, what):
        return self.check(got == want, what, "\n  got:  %r\n  want: %r" % (got, want))

    def done(self):
        print("%s: %d passed, %d failed" % (self.name, self.passed, self.failed), flush=True)
        sys.exit(1 if self.failed or not self.passed else 0)


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def small_fs(c, prefix, size="64M"):
    """A small ext4 file system of the test's own on a loop device (for full
    and frozen disks): -> (base directory, mount point). Without root or loop
    devices the test is skipped: one passing check, and the process exits."""
    if os.geteuid() != 0:
        log("SKIP: needs root to mount a small ext4 file system")
        c.check(True, "skipped without root")
        c.done()
    base = tempfile.mkdtemp(prefix=prefix)
    img, mnt = os.path.join(base, "fs.img"), os.path.join(base, "mnt")
    os.makedirs(mnt)
    subprocess.run(["truncate", "-s", size, img], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", img], check=True)
    if subprocess.run(["mount", "-o", "loop", img, mnt]).returncode != 0:
        log("SKIP: cannot loop-mount an ext4 image here")
        shutil.rmtree(base, ignore_errors=True)
        c.check(True, "skipped without loop devices")
        c.done()
    return base, mnt


def small_fs_remove(base, mnt):
    subprocess.run(["umount", "-l", mnt])
    shutil.rmtree(base, ignore_errors=True)


def scaled(n, least=1):
    """n scaled by RWGATE_E2E_SCALE (default 1): the sanitizer pass of
    tests/run.sh runs the end-to-end tests whose cost is their volume
    (series, queries) at a fraction of it; the release pass runs them in full"""
    return max(least, int(n * float(os.environ.get("RWGATE_E2E_SCALE", "1"))))


def wait_for(cond, what, timeout=60, interval=0.1):
    """Polls cond() until it returns a true value, which is returned; raises
    TimeoutError naming `what` after `timeout` seconds. Deadlines are
    generous: the suite runs on a loaded 2-core machine, and a condition
    that holds returns at once."""
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.time() > deadline:
            raise TimeoutError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


def poll(cond, timeout, step=0.25):
    """cond() until it returns something true or timeout seconds pass; its
    last value (for checks that report a falsy result themselves; wait_for
    raises instead)"""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


def rfc3339(s):
    """seconds since the epoch of a UTC RFC 3339 time as Prometheus writes it"""
    import calendar
    import re
    m = re.match(r"(\d+-\d+-\d+T\d+:\d+:\d+)(\.\d+)?Z", s)
    return calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) + float(m.group(2) or 0)


# Ports for test servers come from below the kernel's ephemeral range
# (ip_local_port_range, 32768-60999 by default): a port from bind(0) is free
# only until the next outgoing connection of any test running beside this one
# takes it as its local port, and a server started on it then cannot listen
# while a readiness probe may reach whatever else holds it. A port handed out
# here is not handed out again by this process (threads included).
_PORT_LOW, _PORT_HIGH = 12000, 32000
_ports_given = set()
_ports_lock = threading.Lock()


def free_port():
    import random
    with _ports_lock:
        for _ in range(1000):
            p = random.randrange(_PORT_LOW, _PORT_HIGH)
            if p in _ports_given:
                continue
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
            finally:
                s.close()
            _ports_given.add(p)
            return p
    raise RuntimeError("no free loopback port in %d-%d" % (_PORT_LOW, _PORT_HIGH))


def rwgate_path():
    for i, a in enumerate(sys.argv):
        if a == "--rwgate" and i + 1 < len(sys.argv):
            return os.path.abspath(sys.argv[i + 1])
    return os.path.abspath("build/rwgate")


# ---------------------------------------------------------------- protobuf

def varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(num, wt):
    return varint((num << 3) | wt)


def f_bytes(num, b):
    if isinstance(b, str):
        b = b.encode()
    return key(num, 2) + varint(len(b)) + b


def f_varint(num, v):
    return key(num, 0) + varint(v)


def f_double(num, v):
    return key(num, 1) + struct.pack("<d", v)


def enc_labels_v1(labels):
    return b"".join(f_bytes(1, f_bytes(1, k) + f_bytes(2, v)) for k, v in labels)


def enc_series_v1(labels, samples, histograms=0, exemplars=()):
    """labels: list of (name, value) in the order to send; samples: [(t_ms, v)]"""
    b = enc_labels_v1(labels)
    for t, v in samples:
        b += f_bytes(2, f_double(1, v) + f_varint(2, t))
    for (t, v) in exemplars:
        b += f_bytes(3, f_bytes(1, f_bytes(1, "trace_id") + f_bytes(2, "abc")) +
                     f_double(2, v) + f_varint(3, t))
    for i in range(histograms):
        # a minimal native histogram: count_int=1, sum=1, schema=0, timestamp
        b += f_bytes(4, f_varint(1, 1) + f_double(3, 1.0) + f_varint(15, 1000 + i))
    return b


def write_request_v1(series, metadata=()):
    """series: list of (labels, samples[, histograms]); metadata: (type, name, help, unit)"""
    b = b""
    for s in series:
        b += f_bytes(1, enc_series_v1(*s))
    for typ, name, help_, unit in metadata:
        b += f_bytes(3, f_varint(1, typ) + f_bytes(2, name) + f_bytes(4, help_) + f_bytes(5, unit))
    return b


def write_request_v2(series, symbols=None, metadata=None):
    """series: list of (labels, samples); builds the symbol table unless given
    explicitly (then labels are lists of (name_ref, value_ref) ints)."""
    if symbols is None:
        symbols = [""]
        idx = {"": 0}

        def ref(s):
            if s not in idx:
                idx[s] = len(symbols)
                symbols.append(s)
            return idx[s]
        enc = []
        for labels, samples in series:
            enc.append(([(ref(k), ref(v)) for k, v in labels], samples))
        series = enc
        if metadata:
            metadata = {i: (t, ref(h), ref(u)) for i, (t, h, u) in metadata.items()}
    b = b"".join(f_bytes(4, s) for s in symbols)
    for i, (refs, samples) in enumerate(series):
        flat = b"".join(varint(r) for pair in refs for r in pair)
        ts = f_bytes(1, flat)
        for t, v in samples:
            ts += f_bytes(2, f_double(1, v) + f_varint(2, t))
        if metadata and i in metadata:
            typ, h, u = metadata[i]
            ts += f_bytes(5, f_varint(1, typ) + f_varint(3, h) + f_varint(4, u))
        b += f_bytes(5, ts)
    return b


def read_request(queries):
    """queries: list of (start_ms, end_ms, [(type, name, value)]) type 0 EQ 1 NEQ 2 RE 3 NRE"""
    b = b""
    for start, end, matchers in queries:
        q = f_varint(1, start) + f_varint(2, end)
        for typ, name, value in matchers:
            q += f_bytes(3, f_varint(1, typ) + f_bytes(2, name) + f_bytes(3, value))
        b += f_bytes(1, q)
    b += f_bytes(2, varint(0))  # accepted_response_types: [SAMPLES]
    return b


def pb_fields(buf):
    """Yields (field number, wire type, value) of one message."""
    i = 0
    n = len(buf)
    while i < n:
        k, i = _uvarint(buf, i)
        num, wt = k >> 3, k & 7
        if wt == 0:
            v, i = _uvarint(buf, i)
        elif wt == 1:
            v = buf[i:i + 8]
            i += 8
        elif wt == 2:
            ln, i = _uvarint(buf, i)
            v = buf[i:i + ln]
            i += ln
        elif wt == 5:
            v = buf[i:i + 4]
            i += 4
        else:
            raise ValueError("bad wire type %d" % wt)
        yield num, wt, v


def _uvarint(b, i):
    shift = 0
    out = 0
    while True:
        c = b[i]
        i += 1
        out |= (c & 0x7F) << shift
        if not c & 0x80:
            return out, i
        shift += 7


def _sint64(u):
    return u - (1 << 64) if u >= 1 << 63 else u


def decode_read_response(buf):
    """-> list (one per query) of {labels tuple: [(t, v)]}"""
    return [dict(q) for q in decode_read_response_raw(buf)]


def decode_read_response_raw(buf):
    """-> list (one per query) of [(labels tuple, [(t, v)])], series and
    samples exactly as sent (a series twice stays twice). Written as flat
    loops over (field, wire type, start, end) spans: responses of 100k
    series must decode in seconds."""
    unpack_d = struct.Struct("<d").unpack_from

    def fields(b, i, n):
        while i < n:
            k = b[i]
            i += 1
            if k & 0x80:
                k, i = _uvarint(b, i - 1)
            wt = k & 7
            if wt == 2:
                ln = b[i]
                i += 1
                if ln & 0x80:
                    ln, i = _uvarint(b, i - 1)
                yield k >> 3, wt, i, i + ln
                i += ln
            elif wt == 0:
                v, i = _uvarint(b, i)
                yield k >> 3, wt, v, None
            elif wt == 1:
                yield k >> 3, wt, i, i + 8
                i += 8
            elif wt == 5:
                yield k >> 3, wt, i, i + 4
                i += 4
            else:
                raise ValueError("bad wire type %d" % wt)

    results = []
    for num, _, qs, qe in fields(buf, 0, len(buf)):
        if num != 1:
            continue
        series = []
        for n2, _, ss, se in fields(buf, qs, qe):
            if n2 != 1:
                continue
            labels = []
            samples = []
            i = ss
            while i < se:  # the TimeSeries' fields, by hand: this loop is the hot one
                k = buf[i]
                i += 1
                if k & 0x80:
                    k, i = _uvarint(buf, i - 1)
                if k & 7 == 0:
                    _, i = _uvarint(buf, i)
                    continue
                if k & 7 == 1:
                    i += 8
                    continue
                if k & 7 == 5:
                    i += 4
                    continue
                ln = buf[i]
                i += 1
                if ln & 0x80:
                    ln, i = _uvarint(buf, i - 1)
                a, e = i, i + ln
                i = e
                if k == 0x12:  # Sample
                    if ln >= 11 and buf[a] == 0x09 and buf[a + 9] == 0x10:
                        t, j = _uvarint(buf, a + 10)
                        if j == e:  # the usual layout: value (fixed64), timestamp (varint)
                            samples.append((_sint64(t), unpack_d(buf, a + 1)[0]))
                            continue
                    val, t = 0.0, 0
                    for n4, wt, x, y in fields(buf, a, e):
                        if n4 == 1 and wt == 1:
                            val = unpack_d(buf, x)[0]
                        elif n4 == 2 and wt == 0:
                            t = _sint64(x)
                    samples.append((t, val))
                elif k == 0x0a:  # Label
                    name = value = ""
                    for n4, _, x, y in fields(buf, a, e):
                        if n4 == 1:
                            name = buf[x:y].decode()
                        elif n4 == 2:
                            value = buf[x:y].decode()
                    labels.append((name, value))
            series.append((tuple(sorted(labels)), samples))
        results.append(series)
    return results


# ---------------------------------------------------------------- snappy

def snappy_compress(data):
    """Valid snappy block format using literals only (the server must accept
    any valid encoding; compression ratio does not matter here)."""
    out = bytearray(varint(len(data)))
    i = 0
    while i < len(data):
        chunk = data[i:i + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out += bytes([60 << 2, n])
        else:
            out += bytes([61 << 2]) + struct.pack("<H", n)
        out += chunk
        i += len(chunk)
    return bytes(out)


def snappy_decompress(b):
    n, i = _uvarint(b, 0)
    out = bytearray()
    while i < len(b):
        tag = b[i]
        i += 1
        t = tag & 3
        if t == 0:
            ln = tag >> 2
            if ln >= 60:
                nb = ln - 59
                ln = int.from_bytes(b[i:i + nb], "little")
                i += nb
            ln += 1
            out += b[i:i + ln]
            i += ln
            continue
        if t == 1:
            ln = ((tag >> 2) & 7) + 4
            off = ((tag >> 5) << 8) | b[i]
            i += 1
        elif t == 2:
            ln = (tag >> 2) + 1
            off = int.from_bytes(b[i:i + 2], "little")
            i += 2
        else:
            ln = (tag >> 2) + 1
            off = int.from_bytes(b[i:i + 4], "little")
            i += 4
        for _ in range(ln):
            out.append(out[-off])
    if len(out) != n:
        raise ValueError("snappy: length mismatch")
    return bytes(out)


# ---------------------------------------------------------------- HTTP

def http(method, url, body=None, headers=None, timeout=30):
    """-> (status, headers dict (lower-case names), body bytes); never raises on
    HTTP errors, and reads the reply even when the server refused the body
    early and closed the connection while it was being sent (413)."""
    u = urllib.parse.urlsplit(url)
    conn = http_client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    path = u.path + ("?" + u.query if u.query else "")
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        hdrs = dict(headers or {})
        if body is not None:
            hdrs.setdefault("Content-Length", str(len(body)))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        if body:
            try:
                conn.send(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered before reading everything
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


V1_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
              "X-Prometheus-Remote-Write-Version": "0.1.0"}
V2_HEADERS = {"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
              "Content-Encoding": "snappy", "X-Prometheus-Remote-Write-Version": "2.0.0"}


# ---------------------------------------------------------------- processes

class Rwgate:
    """One rwgate process on a free port with its own data directory."""

    def __init__(self, binary=None, data=None, extra=(), port=None, log=None):
        """log: the file its output goes to (default: beside the data
        directory; a test that fills the data's file system puts it elsewhere)"""
        self.binary = binary or rwgate_path()
        self.log_path = log
        self.own_data = data is None
        self.data = data or tempfile.mkdtemp(prefix="rwgate-e2e-")
        self.extra = list(extra)
        self.port = port or free_port()
        self.proc = None
        self.logf = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self, timeout=60):
        self.logf = open(self.log_path or os.path.join(self.data, "..", os.path.basename(self.data) + ".log"),
                         "ab")
        cmd = [self.binary, "--listen", "127.0.0.1:%d" % self.port, "--data", self.data] + self.extra
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("rwgate exited with %s; log: %s" % (self.proc.returncode, self.log_tail()))
            try:
                st, _, _ = http("GET", self.url + "/-/ready", timeout=2)
                if st == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("rwgate not ready in %ss; log: %s" % (timeout, self.log_tail()))

    def log_tail(self, n=3000):
        try:
            with open(self.logf.name, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except (OSError, AttributeError):
            return ""

    def stop(self, timeout=60):
        """SIGTERM; returns the exit code."""
        if not self.proc:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        return rc

    def kill9(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def cleanup(self):
        if self.proc:
            self.kill9()
        if self.logf:
            self.logf.close()
        if self.own_data and not os.environ.get("RWGATE_KEEP"):
            shutil.rmtree(self.data, ignore_errors=True)
            try:
                os.unlink(self.logf.name)
            except (OSError, AttributeError):
                pass

    # --- client helpers
    def write(self, body_pb, headers=None, raw=False):
        body = body_pb if raw else snappy_compress(body_pb)
        return http("POST", self.url + "/api/v1/write", body, headers or V1_HEADERS)

    def read(self, queries, raw=False):
        """remote-read; -> one {labels: samples} per query, or with raw=True
        one [(labels, samples)] per query as the server sent it"""
        body = snappy_compress(read_request(queries))
        st, hd, b = http("POST", self.url + "/api/v1/read", body,
                         {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                          "X-Prometheus-Remote-Read-Version": "0.1.0"}, timeout=120)
        if st != 200:
            raise RuntimeError("remote read: HTTP %d %s" % (st, b[:300]))
        res = decode_read_response_raw(snappy_decompress(b))
        return res if raw else [dict(q) for q in res]

    def metric(self, name, labels=None):
        """the value of one line of /metrics (name plus exact label text such
        as 'result="failure"'), summed over lines that match; None if absent"""
        st, _, b = http("GET", self.url + "/metrics")
        if st != 200:
            return None
        total = None
        for line in b.decode(errors="replace").splitlines():
            if line.startswith("#"):
                continue
            key, _, val = line.rpartition(" ")
            n, _, rest = key.partition("{")
            if n != name or (labels is not None and rest.rstrip("}") != labels):
                continue
            total = (total or 0.0) + float(val)
        return total

    def api(self, path, **params):
        q = urllib.parse.urlencode(params, doseq=True)
        st, _, b = http("GET", self.url + path + ("?" + q if q else ""))
        try:
            return st, json.loads(b)
        except ValueError:
            return st, {"raw": b.decode(errors="replace")}


class Prometheus:
    """A real Prometheus (Debian package) on a free port with its own data
    directory and the given configuration text; SELF_PORT in it becomes the
    port it listens on."""

    def __init__(self, name, config, extra=()):
        self.binary = shutil.which("prometheus")
        self.dir = tempfile.mkdtemp(prefix="rwgate-e2e-%s-" % name)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        with open(os.path.join(self.dir, "prometheus.yml"), "w") as f:
            f.write(config.replace("SELF_PORT", str(self.port)))
        self.extra = list(extra)
        self.name = name
        self.logf = open(os.path.join(self.dir, "log"), "wb")
        self._spawn()

    def _spawn(self):
        self.proc = subprocess.Popen(
            [self.binary, "--config.file=" + os.path.join(self.dir, "prometheus.yml"),
             "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port] + self.extra,
            stdout=self.logf, stderr=subprocess.STDOUT)
        name = self.name
        for _ in range(600):
            if self.proc.poll() is not None:
                break
            try:
                if http("GET", self.url + "/-/ready", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("prometheus %s did not start: %s" % (name, self.log_tail()))

    def log_tail(self, n=1500):
        try:
            with open(os.path.join(self.dir, "log"), errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def api(self, path, **params):
        q = urllib.parse.urlencode(params, doseq=True)
        st, _, b = http("GET", self.url + path + ("?" + q if q else ""), timeout=60)
        return st, json.loads(b)

    def query(self, expr, t=None, path="/api/v1/query", **params):
        params["query"] = expr
        if t is not None:
            params["time"] = "%.3f" % t
        st, _, b = http("GET", self.url + path + "?" + urllib.parse.urlencode(params), timeout=60)
        return json.loads(b)

    def pause(self):
        """SIGTERM, keeping the data directory (its WAL) for resume()"""
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def resume(self):
        """starts again on the same port and data directory"""
        self._spawn()

    def stop(self, show_log=False):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if show_log:
            log("prometheus log (%s):\n%s" % (self.dir, self.log_tail()))
        self.logf.close()
        shutil.rmtree(self.dir, ignore_errors=True)
