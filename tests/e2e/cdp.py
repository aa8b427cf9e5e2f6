"""cdp - drives Debian's chromium headless over the DevTools protocol, with
the Python standard library only: the browser talks on a pipe
(--remote-debugging-pipe: it reads commands on fd 3 and writes answers and
events on fd 4, each a JSON message ended by a NUL byte).

Browser.page() attaches to the one tab and records what the UI tests assert
on: uncaught exceptions, console errors, Content-Security-Policy violations
(reported by a listener installed before any page script runs), every
request with its status, and failed loads. png_pixels() decodes a screenshot
so a test can count painted pixels."""

import base64
import json
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import zlib

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio",
         "--hide-scrollbars", "--force-color-profile=srgb", "--remote-debugging-pipe"]

CSP_LISTENER = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sourceFile || '') + ':' + e.lineNumber);
});
"""


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


class CDPError(Exception):
    pass


class Browser:
    def __init__(self, binary=None, width=1400, height=1000):
        self.binary = binary or find_chromium()
        if not self.binary:
            raise CDPError("chromium is not installed (deploy/install-deps.sh installs it)")
        self.profile = tempfile.mkdtemp(prefix="rwgate-chromium-")
        to_child_r, self._to_child_w = os.pipe()
        self._from_child_r, from_child_w = os.pipe()
        self.stderr = open(os.path.join(self.profile, "stderr.log"), "wb")

        def fds():
            # move both out of the way first: either may already be fd 3 or 4
            r, w = os.dup(to_child_r), os.dup(from_child_w)
            r, w = os.dup2(r, 100), os.dup2(w, 101)
            os.dup2(r, 3)
            os.dup2(w, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.proc = subprocess.Popen(
            [self.binary] + FLAGS + ["--user-data-dir=" + self.profile,
                                     "--window-size=%d,%d" % (width, height), "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.stderr, stderr=self.stderr,
            preexec_fn=fds, close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        self._id = 0
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._answers = {}
        self._listeners = []
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.width, self.height = width, height

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_child_r, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cv:
                    self._closed = True
                    self._cv.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._cv:
                    if "id" in msg:
                        self._answers[msg["id"]] = msg
                        self._cv.notify_all()
                    else:
                        for fn in list(self._listeners):
                            fn(msg)

    def send(self, method, params=None, session=None, timeout=60):
        with self._cv:
            self._id += 1
            mid = self._id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child_w, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        with self._cv:
            while mid not in self._answers:
                left = deadline - time.time()
                if self._closed:
                    raise CDPError("chromium exited: " + self.log_tail())
                if left <= 0:
                    raise CDPError("%s: no answer in %ss" % (method, timeout))
                self._cv.wait(left)
            ans = self._answers.pop(mid)
        if "error" in ans:
            raise CDPError("%s: %s" % (method, ans["error"]))
        return ans.get("result", {})

    def log_tail(self, n=2000):
        try:
            with open(os.path.join(self.profile, "stderr.log"), "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def page(self):
        targets = self.send("Target.getTargets")["targetInfos"]
        tid = next(t["targetId"] for t in targets if t["type"] == "page")
        sid = self.send("Target.attachToTarget", {"targetId": tid, "flatten": True})["sessionId"]
        return Page(self, sid)

    def close(self):
        try:
            self.send("Browser.close", timeout=10)
        except CDPError:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child_w, self._from_child_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """One tab. problems() lists everything that went wrong since reset()."""

    def __init__(self, browser, session):
        self.b = browser
        self.sid = session
        self.exceptions = []
        self.console_errors = []
        self.requests = {}      # requestId -> url
        self.responses = {}     # requestId -> status
        self.failed = []        # (url, errorText)
        browser._listeners.append(self._event)
        for dom in ("Runtime", "Log", "Network", "Page"):
            self.send(dom + ".enable")
        self.send("Page.addScriptToEvaluateOnNewDocument", {"source": CSP_LISTENER})
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": browser.width, "height": browser.height, "deviceScaleFactor": 1,
                   "mobile": False})

    def send(self, method, params=None, timeout=60):
        return self.b.send(method, params, session=self.sid, timeout=timeout)

    def _event(self, msg):
        if msg.get("sessionId") != self.sid:
            return
        m, p = msg["method"], msg.get("params", {})
        if m == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            self.exceptions.append(d.get("exception", {}).get("description") or d.get("text"))
        elif m == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            self.console_errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                                for a in p["args"]))
        elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
            self.console_errors.append("%s: %s" % (p["entry"].get("source"), p["entry"]["text"]))
        elif m == "Network.requestWillBeSent":
            self.requests[p["requestId"]] = p["request"]["url"]
        elif m == "Network.responseReceived":
            self.responses[p["requestId"]] = p["response"]["status"]
        elif m == "Network.loadingFailed" and not p.get("canceled"):
            self.failed.append((self.requests.get(p["requestId"], "?"), p.get("errorText")))

    def reset(self):
        self.exceptions, self.console_errors, self.failed = [], [], []
        self.requests, self.responses = {}, {}

    def problems(self, origin):
        """Everything a clean page load must not have: exceptions, console
        errors, CSP violations, failed requests, HTTP errors, other hosts."""
        out = ["exception: %s" % e for e in self.exceptions]
        out += ["console error: %s" % e for e in self.console_errors]
        out += ["CSP violation: %s" % v for v in (self.eval("window.__csp || []") or [])]
        out += ["failed request: %s (%s)" % f for f in self.failed]
        for rid, url in self.requests.items():
            if not (url.startswith(origin + "/") or url == origin or url.startswith("data:")
                    or url == "about:blank"):
                out.append("request to another host: %s" % url)
            st = self.responses.get(rid)
            if st is not None and st >= 400:
                out.append("HTTP %d: %s" % (st, url))
        return out

    def eval(self, expr, await_promise=False):
        r = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                           "awaitPromise": await_promise})
        if "exceptionDetails" in r:
            raise CDPError("evaluate %r: %s" % (expr[:80], r["exceptionDetails"].get("exception", {})
                                                 .get("description") or r["exceptionDetails"]))
        return r["result"].get("value")

    def wait(self, expr, timeout=30, what=None):
        """Polls a JS expression until it is truthy; returns its value."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = self.eval(expr)
            if last:
                return last
            time.sleep(0.1)
        raise CDPError("timed out waiting for %s (last value %r)" % (what or expr, last))

    def wait_ready(self, timeout=30):
        st = self.wait("document.documentElement.dataset.ready !== 'false' && "
                       "document.documentElement.dataset.ready", timeout, "the page's ready state")
        if st != "true":
            err = self.eval("(document.querySelector('.error') || {}).textContent")
            raise CDPError("page ended in state %r: %s" % (st, err))
        return st

    def goto(self, url, timeout=30):
        # the old document may still report ready: wait for a new one
        self.eval("window.__old_document = true")
        self.send("Page.navigate", {"url": url})
        self.wait("!window.__old_document && document.readyState !== 'loading'", timeout,
                  "navigation to " + url)
        return self.wait_ready(timeout)

    def reload(self, timeout=30):
        self.eval("window.__old_document = true")
        self.send("Page.reload", {"ignoreCache": False})
        self.wait("!window.__old_document && document.readyState !== 'loading'", timeout,
                  "the reload")
        return self.wait_ready(timeout)

    def rect(self, selector):
        r = self.eval("(() => { const e = document.querySelector(%s); if (!e) return null;"
                      " e.scrollIntoView({block: 'center'});"
                      " const r = e.getBoundingClientRect();"
                      " return [r.x, r.y, r.width, r.height]; })()" % json.dumps(selector))
        if not r:
            raise CDPError("no element %s" % selector)
        return r

    def click(self, selector):
        """A real mouse click in the middle of the element."""
        x, y, w, h = self.rect(selector)
        cx, cy = x + w / 2, y + h / 2
        for t in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": t, "x": cx, "y": cy, "button": "left",
                                                   "clickCount": 1})

    def type_text(self, text):
        self.send("Input.insertText", {"text": text})

    def key(self, key, code=None, vk=None):
        for t in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", {"type": t, "key": key, "code": code or key,
                                                 "windowsVirtualKeyCode": vk or 0})

    def screenshot(self, path=None, selector=None):
        params = {"format": "png"}
        if selector:
            x, y, w, h = self.rect(selector)
            sx, sy = self.eval("[window.scrollX, window.scrollY]")
            params["clip"] = {"x": x + sx, "y": y + sy, "width": w, "height": h, "scale": 1}
        else:
            w, h = self.eval("[document.documentElement.scrollWidth,"
                             " document.documentElement.scrollHeight]")
            params["clip"] = {"x": 0, "y": 0, "width": w, "height": min(h, 6000), "scale": 1}
            params["captureBeyondViewport"] = True
        data = base64.b64decode(self.send("Page.captureScreenshot", params)["data"])
        if path:
            with open(path, "wb") as f:
                f.write(data)
        return data


def png_pixels(data):
    """Decodes an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes)
    -> (width, height, rows of (r, g, b) tuples)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    i, idat = 8, b""
    while i < len(data):
        ln, typ = struct.unpack(">I4s", data[i:i + 8])
        body = data[i + 8:i + 8 + ln]
        if typ == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or ctype not in (2, 6) or interlace:
                raise ValueError("unsupported PNG: depth %d type %d" % (depth, ctype))
        elif typ == b"IDAT":
            idat += body
        i += 12 + ln
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, bpp)])
        prev = line
    return w, h, rows


def painted(rows, background, tolerance=24):
    """Pixels that differ from the background colour by more than tolerance."""
    n = 0
    for row in rows:
        for px in row:
            if max(abs(px[k] - background[k]) for k in range(3)) > tolerance:
                n += 1
    return n
