#!/usr/bin/env python3
"""The README's first command, as a user runs it: `scripts/run` from this checkout.

Starts scripts/run (it installs, builds and starts everything itself), waits until the shell
at `/` and `/api/health` answer through the proxy, signs up, installs one demo app and opens it
under /embed/<app>/, then presses Ctrl-C (SIGINT to the script's process group, as a terminal
does) and checks that every process the run started is gone and every port it used is free.

Loopback only, free ports chosen here, a temporary state directory; bounded in time.
`BLOUD_PROFILE=dev` by default so the build reuses what scripts/test already built (the code
path is the same; set BLOUD_PROFILE=release to check a release build).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The first run in a fresh clone builds the web shell and the binaries.
START_TIMEOUT = 900
STOP_TIMEOUT = 30
INSTALL_TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    """Nothing listens on it and it can be bound again."""
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def catalog_port(app: str) -> int:
    text = (REPO / "apps" / app / "metadata.yaml").read_text()
    m = re.search(r"^port:\s*(\d+)", text, re.M)
    if not m:
        raise SystemExit(f"apps/{app}/metadata.yaml has no port")
    return int(m.group(1))


class Client:
    def __init__(self, port: int):
        self.port = port
        self.cookie = ""

    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Host": f"localhost:{self.port}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.cookie:
            headers["Cookie"] = self.cookie
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            for value in resp.headers.get_all("Set-Cookie") or []:
                if value.startswith("bloud_session="):
                    self.cookie = value.split(";", 1)[0]
            return resp.status, payload
        finally:
            conn.close()


def wait_for(what: str, check, timeout: float, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail(f"scripts/run exited ({proc.returncode}) while waiting for {what}", log)
        try:
            ok, last = check()
            if ok:
                return
        except OSError as e:
            last = e
        time.sleep(0.25)
    fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})", log)


def fail(message: str, log: Path):
    print(f"FAIL: {message}", file=sys.stderr)
    print("---- scripts/run output (last 60 lines) ----", file=sys.stderr)
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    print("\n".join(lines[-60:]), file=sys.stderr)
    raise SystemExit(1)


def processes_mentioning(marker: str) -> list[str]:
    """Live processes whose command line or environment names `marker` (the state dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if not cmdline:
            continue  # zombie or kernel thread
        if marker.encode() in cmdline or marker.encode() in environ:
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {shown}")
    return found


def main() -> int:
    app = os.environ.get("BLOUD_RUN_CHECK_APP", "adguard-home")
    app_port = catalog_port(app)
    if not port_free(app_port):
        print(f"FAIL: the demo app's catalog port {app_port} is taken before the run", file=sys.stderr)
        return 1
    web, admin, agent, https = free_port(), free_port(), free_port(), free_port()
    state = Path(tempfile.mkdtemp(prefix="bloud-run-check-"))
    log = state / "run.log"
    env = dict(os.environ)
    env.update(
        BLOUD_PORT=str(web),
        BLOUD_ADMIN_PORT=str(admin),
        BLOUD_HTTPS_PORT=str(https),
        BLOUD_LISTEN=f"127.0.0.1:{agent}",
        BLOUD_RUN_DIR=str(state / "run"),
        BLOUD_PROFILE=env.get("BLOUD_PROFILE", "dev"),
        BLOUD_DEMO_STEP_MS="50",
    )
    print(f"scripts/run: web :{web}, admin :{admin}, agent :{agent}, state {state}")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(REPO / "scripts" / "run")],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, like a terminal's foreground job
        )
    try:
        client = Client(web)

        def shell_up():
            status, body = client.request("GET", "/")
            return status == 200 and b"<html" in body.lower(), status

        def health_up():
            status, body = client.request("GET", "/api/health")
            return status == 200, (status, body[:80])

        wait_for("the shell at / through the proxy", shell_up, START_TIMEOUT, proc, log)
        wait_for("/api/health through the proxy", health_up, 60, proc, log)
        print("shell and API answer through the proxy")

        # The HTTPS port serves the agent's certificate, which its box-local CA verifies.
        ca_file = state / "run" / "data" / "tls" / "ca.crt"

        def https_up():
            if not ca_file.exists():
                return False, "no CA yet"
            ctx = ssl.create_default_context(cafile=str(ca_file))
            conn = http.client.HTTPSConnection("127.0.0.1", https, timeout=5, context=ctx)
            try:
                # The certificate names localhost; connect by address, verify that name.
                conn.sock = ctx.wrap_socket(
                    socket.create_connection(("127.0.0.1", https), timeout=5),
                    server_hostname="localhost",
                )
                conn.request("GET", "/api/health", headers={"Host": f"localhost:{https}"})
                resp = conn.getresponse()
                return resp.status == 200, resp.status
            except (OSError, ssl.SSLError) as e:
                return False, repr(e)
            finally:
                conn.close()

        wait_for("/api/health over HTTPS, verified by the box CA", https_up, 60, proc, log)
        print("HTTPS answers with a certificate from the box-local CA")

        status, body = client.request(
            "POST", "/api/setup/create-user", {"username": "admin", "password": "run-check-pass-1"}
        )
        if status != 200:
            fail(f"create-user: {status} {body[:200]!r}", log)
        status, body = client.request(
            "POST", "/api/auth/login", {"username": "admin", "password": "run-check-pass-1"}
        )
        if status != 200 or not client.cookie:
            fail(f"login: {status} {body[:200]!r}", log)
        status, body = client.request(
            "POST", f"/api/apps/{app}/install", {}, timeout=INSTALL_TIMEOUT
        )
        if status != 200:
            fail(f"install {app}: {status} {body[:300]!r}", log)

        def app_open():
            status, body = client.request("GET", f"/embed/{app}/")
            return status == 200 and f"/embed/{app}/".encode() in body, status

        # The agent writes the app's routes and signals the proxy; the app then opens there.
        wait_for(f"/embed/{app}/ through the proxy", app_open, 60, proc, log)
        print(f"{app} installed and open at /embed/{app}/")
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run([str(REPO / "target" / "debug" / "bloud-agent"), "demo-stop", "--run-dir",
                        str(state / "run" / "data" / "demo")], check=False)
        raise

    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
    try:
        code = proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        fail(f"scripts/run did not stop within {STOP_TIMEOUT}s of Ctrl-C", log)
    print(f"scripts/run exited with {code} after Ctrl-C")

    problems = []
    left = processes_mentioning(str(state))
    if left:
        problems.append("processes left running:\n  " + "\n  ".join(left))
    for name, port in [("web", web), ("https", https), ("admin", admin), ("agent", agent), (app, app_port)]:
        if not port_free(port):
            problems.append(f"port {port} ({name}) is still in use")
    if problems:
        for pid_line in left:
            try:
                os.kill(int(pid_line.split(":", 1)[0]), signal.SIGKILL)
            except OSError:
                pass
        fail("; ".join(problems), log)
    print("after Ctrl-C: no process left, ports free")
    return 0


if __name__ == "__main__":
    sys.exit(main())
