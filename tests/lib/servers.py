"""Real servers on 127.0.0.1 for the integration tests, started and stopped
from Python: the test servers of tests/servers/ (HTTP target, SMTP sink, LLM
stand-in, PostgreSQL through pg.sh) and an OpenSSH server.

    with Servers(tmp) as sv:
        http = sv.http()          # .port, .url(path), .requests()
        target = sv.target()      # .url(path), .requests(), .fault(spec), .state()
        smtp = sv.smtp()          # .port, .url, .messages()
        llm = sv.llm(replies)     # .port, .base_url, .requests(), .script(entries)
        pg = sv.postgres()        # .port, .psql(sql) as the postgres superuser
        ssh = sv.sshd()           # .port, .user, .key_file, .known_hosts

Every server listens on a free loopback port and says so its own way (a port
file written once it accepts connections, pg.sh's output, sshd's PidFile).
Each start waits for that with a deadline and fails loudly with the
server's log.  Servers are stopped in reverse order by stop() (or leaving
the with block), whatever happened in between; child processes also get
SIGTERM if this process dies (PR_SET_PDEATHSIG), and pg.sh's watchdog stops
PostgreSQL once this process has exited.

sshd runs as root (it needs to), with its own config: an absolute HostKey,
ListenAddress 127.0.0.1, StrictModes no, UsePAM no, key login only, root
allowed by key (PermitRootLogin prohibit-password), PidFile and
AuthorizedKeysFile in its folder.  Its known_hosts file names it as
"[127.0.0.1]:PORT", as OpenSSH does for a port other than 22.

Python 3 standard library only.  Files live in the folder given to Servers,
except PostgreSQL's, which must be reachable by the postgres user: a fresh
folder under /tmp that pg.sh removes when it stops.
"""
import ctypes
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVERS = os.path.join(ROOT, "tests", "servers")
SSHD = "/usr/sbin/sshd"

READY_TIMEOUT_S = 15.0      # a server must be listening within this
STOP_TIMEOUT_S = 5.0        # SIGTERM, then SIGKILL after this
SSHD_PORT_TRIES = 20        # free ports tried when another process takes one
POLL_S = 0.01

PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """preexec_fn: the child gets SIGTERM when this process dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def _records(folder):
    """The JSON files a recording server wrote, in the order it wrote them."""
    out = []
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        with open(path) as f:
            out.append(json.load(f))
    return out


class ServerError(RuntimeError):
    pass


class Proc:
    """A child process with a log file, stopped by stop()."""

    def __init__(self, name, argv, log):
        self.name = name
        self.log = log
        with open(log, "ab") as f:
            self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                                          preexec_fn=_die_with_parent, cwd=ROOT)

    def running(self):
        return self.popen.poll() is None

    def fail(self, why):
        self.stop()
        raise ServerError("%s %s; its log:\n%s" % (self.name, why, _read(self.log)))

    def await_file(self, path, timeout=READY_TIMEOUT_S):
        """Wait for path to hold text; fail if the process exits first."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            text = _read(path).strip()
            if text:
                return text
            if not self.running():
                self.fail("exited (status %s) before it was ready" % self.popen.returncode)
            time.sleep(POLL_S)
        self.fail("was not ready within %.0f s" % timeout)

    def stop(self):
        if self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


class HttpTarget:
    """tests/servers/http_target.py: records every request to .dir."""

    def __init__(self, folder):
        self.dir = os.path.join(folder, "requests")
        os.makedirs(self.dir)
        port_file = os.path.join(folder, "port")
        self.proc = Proc("http_target", [sys.executable, os.path.join(SERVERS, "http_target.py"),
                                         "--port-file", port_file, "--record", self.dir],
                         os.path.join(folder, "log"))
        self.port = int(self.proc.await_file(port_file))

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def requests(self):
        return _records(self.dir)

    def stop(self):
        self.proc.stop()


class TargetService:
    """tests/servers/target_service.py: a service with a fault switch that
    records every request to .dir and writes its log to .log_file."""

    def __init__(self, folder, token=None):
        self.dir = os.path.join(folder, "requests")
        os.makedirs(self.dir)
        self.log_file = os.path.join(folder, "service.log")
        port_file = os.path.join(folder, "port")
        argv = [sys.executable, os.path.join(SERVERS, "target_service.py"), "--port-file",
                port_file, "--record", self.dir, "--log-file", self.log_file]
        if token is not None:
            argv += ["--token", token]
        self.proc = Proc("target_service", argv, os.path.join(folder, "log"))
        self.port = int(self.proc.await_file(port_file))

    def url(self, path=""):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def _control(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url("/_control/" + path), data=data,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=READY_TIMEOUT_S) as r:
            return json.load(r)

    def fault(self, spec):
        """Flip the switch: {"name", "cured_by", "recover_after", "fail_actions",
        "fail_systems"}; {} clears every fault."""
        return self._control("fault", spec)

    def incident(self, record):
        return self._control("incident", record)["result"]

    def state(self):
        return self._control("state")

    def requests(self):
        return _records(self.dir)

    def stop(self):
        self.proc.stop()


class SmtpSink:
    """tests/servers/smtp_sink.py: keeps every message accepted in .dir."""

    def __init__(self, folder):
        self.dir = os.path.join(folder, "messages")
        os.makedirs(self.dir)
        port_file = os.path.join(folder, "port")
        self.proc = Proc("smtp_sink", [sys.executable, os.path.join(SERVERS, "smtp_sink.py"),
                                       "--port-file", port_file, "--dir", self.dir],
                         os.path.join(folder, "log"))
        self.port = int(self.proc.await_file(port_file))
        self.url = "smtp://127.0.0.1:%d" % self.port

    def messages(self):
        return _records(self.dir)

    def stop(self):
        self.proc.stop()


class LlmStandin:
    """tests/servers/llm_standin.py: OpenAI and Anthropic wire formats.
    script() writes the control file (read on every request)."""

    def __init__(self, folder, entries=None, api_key=None):
        self.log = os.path.join(folder, "requests.jsonl")
        self.control = os.path.join(folder, "control.json")
        self.script(entries or [])
        port_file = os.path.join(folder, "port")
        argv = [sys.executable, os.path.join(SERVERS, "llm_standin.py"), "--port-file",
                port_file, "--log", self.log, "--control", self.control]
        if api_key is not None:
            argv += ["--api-key", api_key]
        self.proc = Proc("llm_standin", argv, os.path.join(folder, "server.log"))
        self.port = int(self.proc.await_file(port_file))
        self.base_url = "http://127.0.0.1:%d/v1" % self.port

    def script(self, entries):
        tmp = self.control + ".tmp"
        with open(tmp, "w") as f:
            json.dump(entries, f)
        os.rename(tmp, self.control)

    def requests(self):
        return [json.loads(l) for l in _read(self.log).splitlines() if l.strip()]

    def stop(self):
        self.proc.stop()


class Postgres:
    """A throwaway PostgreSQL through tests/servers/pg.sh.  The superuser
    `postgres` is trusted over TCP; the role `cairn` logs in with the
    password `cairn-pw`."""

    ROLE, PASSWORD = "cairn", "cairn-pw"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="cairn-pg-", dir="/tmp")
        self.pg_sh = os.path.join(SERVERS, "pg.sh")
        p = subprocess.run(["sh", self.pg_sh, "start", self.dir, str(os.getpid())],
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0 or not p.stdout.strip().isdigit():
            self.stop()
            raise ServerError("pg.sh start failed (%d): %s%s" % (p.returncode, p.stdout, p.stderr))
        self.port = int(p.stdout.strip())

    def dsn(self, user="postgres", password=None):
        text = "host=127.0.0.1 port=%d dbname=postgres user=%s" % (self.port, user)
        return text + (" password=%s" % password if password else "")

    def psql(self, sql):
        """Run sql as postgres; returns the rows, fields split on '|'."""
        p = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h",
                            "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d",
                            "postgres", "-c", sql], capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise ServerError("psql %r: %s" % (sql, p.stderr))
        return [l.split("|") for l in p.stdout.splitlines()]

    def stop(self):
        if self.dir:
            subprocess.run(["sh", self.pg_sh, "stop", self.dir], capture_output=True, timeout=60)
            self.dir = None


class Sshd:
    """/usr/sbin/sshd -D as root on 127.0.0.1, one ed25519 host key, one
    ed25519 user key for .user (root) in its authorized_keys."""

    def __init__(self, folder):
        self.folder = folder
        self.user = "root"
        self.host_key = os.path.join(folder, "host_ed25519")
        self.key_file = os.path.join(folder, "user_ed25519")
        self.authorized_keys = os.path.join(folder, "authorized_keys")
        self.known_hosts = os.path.join(folder, "known_hosts")
        self.pid_file = os.path.join(folder, "sshd.pid")
        self.config = os.path.join(folder, "sshd_config")
        self.log = os.path.join(folder, "sshd.log")
        self.proc = None
        for name in (self.host_key, self.key_file):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                            os.path.basename(name), "-f", name], check=True,
                           capture_output=True, timeout=30)
        with open(self.key_file + ".pub") as f, open(self.authorized_keys, "w") as out:
            out.write(f.read())
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.port = self._listen()
        with open(self.host_key + ".pub") as f:
            kind, blob = f.read().split()[:2]
        with open(self.known_hosts, "w") as f:
            f.write("[127.0.0.1]:%d %s %s\n" % (self.port, kind, blob))

    def _write_config(self, port):
        with open(self.config, "w") as f:
            f.write("ListenAddress 127.0.0.1\nPort %d\nHostKey %s\nPidFile %s\n"
                    "AuthorizedKeysFile %s\nStrictModes no\nUsePAM no\n"
                    "PermitRootLogin prohibit-password\nPubkeyAuthentication yes\n"
                    "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                    "LogLevel ERROR\n"
                    % (port, self.host_key, self.pid_file, self.authorized_keys))

    def _listen(self):
        """Start on a free port; another process may take it between the
        probe and sshd's bind, so that failure is retried on a fresh one.
        Ready: the PidFile names the server (written after it listens)."""
        for _ in range(SSHD_PORT_TRIES):
            port = free_port()
            self._write_config(port)
            for path in (self.pid_file, self.log):
                if os.path.exists(path):
                    os.unlink(path)
            self.proc = Proc("sshd", [SSHD, "-D", "-e", "-f", self.config], self.log)
            if self._ready():
                return port
            if "Address already in use" not in _read(self.log):
                self.proc.fail("did not start")
        self.proc.fail("found no free port in %d tries" % SSHD_PORT_TRIES)

    def _ready(self):
        end = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < end:
            if _read(self.pid_file).strip() == str(self.proc.popen.pid):
                return True
            if not self.proc.running():
                return False
            time.sleep(POLL_S)
        self.proc.fail("was not ready within %.0f s" % READY_TIMEOUT_S)

    def stop(self):
        if self.proc:
            self.proc.stop()


class Servers:
    """Starts servers on demand and stops every one of them, newest first."""

    def __init__(self, folder):
        self.folder = folder
        self.started = []

    def _sub(self, name):
        path = os.path.join(self.folder, name)
        os.makedirs(path)
        return path

    def _keep(self, server):
        self.started.append(server)
        return server

    def http(self):
        return self._keep(HttpTarget(self._sub("http")))

    def smtp(self):
        return self._keep(SmtpSink(self._sub("smtp")))

    def target(self, name="target", token=None):
        return self._keep(TargetService(self._sub(name), token))

    def llm(self, entries=None, api_key=None):
        return self._keep(LlmStandin(self._sub("llm"), entries, api_key))

    def postgres(self):
        return self._keep(Postgres())

    def sshd(self):
        return self._keep(Sshd(self._sub("sshd")))

    def stop(self):
        """Stop everything started; one that fails to stop does not keep the
        others running."""
        errors = []
        while self.started:
            server = self.started.pop()
            try:
                server.stop()
            except Exception as e:  # noqa: BLE001 - keep stopping the rest
                errors.append("%s: %r" % (type(server).__name__, e))
        if errors:
            raise ServerError("stopping servers: " + "; ".join(errors))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False
