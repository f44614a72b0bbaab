"""Starts the built openpca binary for end-to-end tests and runs clients.

The binary comes from $OPENPCA_BIN (scripts/test builds it). Each server
gets a free port on 127.0.0.1 and a temporary data folder.
"""

import functools
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

REGION = "us-east-1"
ACCOUNT = "111122223333"

# AWS clients refuse to run without credentials, even against a local endpoint.
CLIENT_ENV = dict(
    os.environ,
    AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
    AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    AWS_DEFAULT_REGION=REGION,
    AWS_REGION=REGION,
    AWS_PAGER="",
    AWS_CONFIG_FILE="/dev/null",
    AWS_SHARED_CREDENTIALS_FILE="/dev/null",
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """An openpca serve process."""

    def __init__(self, extra_args=(), env=None):
        self.binary = os.environ.get("OPENPCA_BIN")
        if not self.binary or not os.access(self.binary, os.X_OK):
            raise RuntimeError("set OPENPCA_BIN to the built openpca binary")
        self.dir = tempfile.mkdtemp(prefix="openpca-e2e-")
        self.port = free_port()
        self.url = None
        self.log_path = os.path.join(self.dir, "server.log")
        self.data_dir = os.path.join(self.dir, "data")
        self.extra_args = list(extra_args)
        # The default account's key is the one the clients use.
        self.env = dict(os.environ, OPENPCA_ROOT_ACCESS_KEY_ID=CLIENT_ENV["AWS_ACCESS_KEY_ID"],
                        OPENPCA_ROOT_SECRET_ACCESS_KEY=CLIENT_ENV["AWS_SECRET_ACCESS_KEY"])
        self.env.update(env or {})
        self.scheme = "https" if "--tls-self-signed" in self.extra_args else "http"
        self.proc = None

    def start(self):
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--listen", f"127.0.0.1:{self.port}",
             "--data-dir", self.data_dir] + self.extra_args,
            stdout=self.log, stderr=self.log, env=self.env)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"openpca exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1, context=self.ssl_context()) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("openpca did not become ready:\n" + self.logs())

    @property
    def ca_bundle(self):
        return os.path.join(self.data_dir, "tls", "ca.pem")

    def ssl_context(self):
        if self.scheme != "https" or not os.path.exists(self.ca_bundle):
            return None
        return ssl.create_default_context(cafile=self.ca_bundle)

    def openpca(self, command, subcommand, *args):
        """Runs an operator command of the binary on this server's data."""
        p = subprocess.run([self.binary, command, subcommand, "--data-dir", self.data_dir] + list(args),
                           capture_output=True, text=True, env=self.env)
        if p.returncode != 0:
            raise AssertionError(f"openpca {command} {subcommand} {' '.join(args)} failed: {p.stderr}")
        return p.stdout

    def stop(self):
        """Stops the server with SIGTERM and returns its exit code."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self.proc = None
        self.log.close()
        return code

    def stop_cleanly(self):
        """Stops the server, fails unless it exited with 0, and removes its
        folder."""
        code = self.stop()
        if code != 0:
            raise AssertionError(f"server exited with {code}:\n{self.logs()}")
        self.close()

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@functools.cache
def aws_clis():
    """The AWS CLIs every CLI test runs with: v1 from pip and v2 from
    Debian's awscli package. A missing one is an error, never a skip.
    Checked once a process: the suite's runner imports every module."""
    clis = {
        "v1": [sys.executable, "-m", "awscli"],
        "v2": ["/usr/bin/aws"],
    }
    for name, cmd in clis.items():
        out = subprocess.run(cmd + ["--version"], capture_output=True, text=True, env=CLIENT_ENV)
        version = (out.stdout + out.stderr).strip()
        if out.returncode != 0 or not version.startswith(f"aws-cli/{name[1]}."):
            raise RuntimeError(f"AWS CLI {name} is not usable ({cmd}): {version}")
    return clis


class CLI:
    """Runs one AWS CLI against a server, with the default account's key
    unless another is given."""

    def __init__(self, cmd, url, env=None, ca_bundle=None):
        self.cmd, self.url, self.env = cmd, url, dict(CLIENT_ENV, **(env or {}))
        self.extra = ["--ca-bundle", ca_bundle] if ca_bundle else []

    def run(self, *args, check=True, output="json"):
        argv = self.cmd + ["--endpoint-url", self.url, "--output", output] + self.extra + ["acm-pca"] + list(args)
        p = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(args[:1])} failed ({p.returncode}): {p.stderr}")
        return p

    def json(self, *args):
        out = self.run(*args).stdout
        return json.loads(out) if out.strip() else {}


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


class ExternalRoot:
    """A root CA made with the openssl command, to sign subordinate CSRs."""

    def __init__(self, workdir):
        self.dir = workdir
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "root.key", "-out", "root.pem", "-subj", "/CN=E2E External Root", "-days", "3650",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=workdir)
        with open(os.path.join(workdir, "sub.ext"), "w") as f:
            f.write("basicConstraints=critical,CA:TRUE,pathlen:0\n"
                    "keyUsage=critical,keyCertSign,cRLSign,digitalSignature\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        self.pem = os.path.join(workdir, "root.pem")

    def sign(self, csr_pem, name):
        csr = os.path.join(self.dir, name + ".csr")
        with open(csr, "w") as f:
            f.write(csr_pem)
        openssl("x509", "-req", "-in", csr, "-CA", "root.pem", "-CAkey", "root.key", "-CAcreateserial",
                "-days", "1825", "-extfile", "sub.ext", "-out", name + ".pem", cwd=self.dir)
        return os.path.join(self.dir, name + ".pem")
