"""CA keys in hardware with the AWS CLI: a SoftHSM2 token and local-kms,
each through a CA's whole life, checked with openssl and openpca audit
verify."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.request

import harness

CLIS = harness.aws_clis()
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def go_binary(name):
    """A command .ci/run installs with go install."""
    path = shutil.which(name)
    if path:
        return path
    gopath = subprocess.run(["go", "env", "GOPATH"], capture_output=True, text=True).stdout.strip()
    path = os.path.join(gopath, "bin", name)
    if not os.access(path, os.X_OK):
        raise RuntimeError(name + " is not installed: .ci/run installs it")
    return path


class SoftHSM:
    """A token of SoftHSM2 in a temporary folder."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="openpca-e2e-softhsm-")
        os.makedirs(os.path.join(self.dir, "tokens"))
        self.conf = os.path.join(self.dir, "softhsm2.conf")
        with open(self.conf, "w") as f:
            f.write("directories.tokendir = %s\nobjectstore.backend = file\n" % os.path.join(self.dir, "tokens"))
        self.env = {"SOFTHSM2_CONF": self.conf}
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "e2e", "--pin", "1234", "--so-pin", "5678"],
                       check=True, capture_output=True, env=dict(os.environ, **self.env))
        self.pin_file = os.path.join(self.dir, "pin")
        with open(self.pin_file, "w") as f:
            f.write("1234\n")

    def server_args(self):
        # The audit log's key is made in the token too: the report's
        # checkpoints are signed there.
        return ["--key-store", "pkcs11", "--audit-key-store", "pkcs11", "--pkcs11-module", SOFTHSM_MODULE,
                "--pkcs11-token-label", "e2e", "--pkcs11-pin-file", self.pin_file]

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class LocalKMS:
    """local-kms on a free port, its keys in a temporary folder."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="openpca-e2e-kms-")
        self.port = harness.free_port()
        self.proc = subprocess.Popen([go_binary("local-kms")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=dict(os.environ, PORT=str(self.port), KMS_DATA_PATH=self.dir, KMS_REGION=harness.REGION))
        self.url = "http://127.0.0.1:%d" % self.port
        self.env = {"AWS_ACCESS_KEY_ID": "e2e", "AWS_SECRET_ACCESS_KEY": "e2e-secret", "AWS_REGION": harness.REGION,
                    "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
        deadline = time.time() + 20
        while True:
            try:
                req = urllib.request.Request(self.url, data=b"{}", headers={"X-Amz-Target": "TrentService.ListKeys",
                                                                           "Content-Type": "application/x-amz-json-1.1"})
                urllib.request.urlopen(req, timeout=1)
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("local-kms did not start")
                time.sleep(0.05)

    def server_args(self):
        return ["--key-store", "kms", "--kms-endpoint", self.url]

    def close(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class HardwareKeyTests(unittest.TestCase):
    def run_lifecycle(self, store):
        server = harness.Server(extra_args=store.server_args(), env=store.env).start()
        work = tempfile.mkdtemp(prefix="openpca-e2e-hw-")
        try:
            for name, cmd in CLIS.items():
                with self.subTest(cli=name):
                    self.lifecycle(server, harness.CLI(cmd, server.url), work, name)
            out = server.openpca("cas", "list")
            self.assertRegex(out, r"ACTIVE\s+%s\s" % ("pkcs11" if isinstance(store, SoftHSM) else "kms"))
        finally:
            server.stop_cleanly()
            shutil.rmtree(work, ignore_errors=True)

    def lifecycle(self, server, cli, work, name):
        bucket = "hw-" + name
        os.makedirs(os.path.join(server.data_dir, "s3", bucket))
        config = {"KeyAlgorithm": "EC_prime256v1", "SigningAlgorithm": "SHA256WITHECDSA", "Subject": {"CommonName": "HW " + name}}
        revocation = {"CrlConfiguration": {"Enabled": True, "S3BucketName": bucket}, "OcspConfiguration": {"Enabled": True}}
        arn = cli.json("create-certificate-authority", "--certificate-authority-type", "ROOT",
                       "--certificate-authority-configuration", json.dumps(config),
                       "--revocation-configuration", json.dumps(revocation))["CertificateAuthorityArn"]
        described = cli.json("describe-certificate-authority", "--certificate-authority-arn", arn)["CertificateAuthority"]
        self.assertNotIn("KeyStorageSecurityStandard", described)  # no level declared for these stores

        def write(fname, text):
            path = os.path.join(work, name + "-" + fname)
            with open(path, "w") as f:
                f.write(text)
            return path
        csr = write("ca.csr", cli.run("get-certificate-authority-csr", "--certificate-authority-arn", arn, output="text").stdout)
        root = cli.json("issue-certificate", "--certificate-authority-arn", arn, "--csr", "fileb://" + csr,
                        "--signing-algorithm", "SHA256WITHECDSA", "--template-arn", "arn:aws:acm-pca:::template/RootCACertificate/V1",
                        "--validity", "Value=5,Type=YEARS")["CertificateArn"]
        ca_pem = write("ca.pem", cli.run("get-certificate", "--certificate-authority-arn", arn, "--certificate-arn", root, output="text").stdout)
        cli.run("import-certificate-authority-certificate", "--certificate-authority-arn", arn, "--certificate", "fileb://" + ca_pem)

        leaf_csr, leaf_key = os.path.join(work, name + "-leaf.csr"), os.path.join(work, name + "-leaf.key")
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", leaf_key, "-out", leaf_csr, "-subj", "/CN=hw.example"], check=True, capture_output=True)
        leaf = cli.json("issue-certificate", "--certificate-authority-arn", arn, "--csr", "fileb://" + leaf_csr,
                        "--signing-algorithm", "SHA256WITHECDSA", "--validity", "Value=7,Type=DAYS")["CertificateArn"]
        leaf_pem = write("leaf.pem", cli.json("get-certificate", "--certificate-authority-arn", arn, "--certificate-arn", leaf)["Certificate"])
        p = subprocess.run(["openssl", "verify", "-CAfile", ca_pem, leaf_pem], capture_output=True, text=True)
        self.assertIn(": OK", p.stdout, p.stderr)

        cli.run("revoke-certificate", "--certificate-authority-arn", arn, "--certificate-serial", leaf.rsplit("/", 1)[1],
                "--revocation-reason", "KEY_COMPROMISE")
        crl = os.path.join(server.data_dir, "s3", bucket, "crl", arn.rsplit("/", 1)[1] + ".crl")
        deadline = time.time() + 20
        while True:
            out = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", crl, "-noout", "-text", "-CAfile", ca_pem],
                                 capture_output=True, text=True)
            if "Revoked Certificates" in out.stdout:
                break
            self.assertLess(time.time(), deadline, "no CRL lists the revocation: " + out.stdout + out.stderr)
            time.sleep(0.1)
        self.assertIn("verify OK", out.stderr + out.stdout)
        p = subprocess.run(["openssl", "ocsp", "-issuer", ca_pem, "-cert", leaf_pem, "-url", server.url + "/ocsp",
                            "-CAfile", ca_pem, "-no_nonce"], capture_output=True, text=True)
        self.assertIn("revoked", p.stdout, p.stderr)
        self.assertIn("Response verify OK", p.stderr + p.stdout)

        report = cli.json("create-certificate-authority-audit-report", "--certificate-authority-arn", arn,
                          "--s3-bucket-name", bucket, "--audit-report-response-format", "JSON")
        cli.run("wait", "audit-report-created", "--certificate-authority-arn", arn, "--audit-report-id", report["AuditReportId"])
        path = os.path.join(server.data_dir, "s3", bucket, report["S3Key"])
        key = subprocess.run([server.binary, "audit", "public-key", "--server", server.url], capture_output=True, text=True,
                             env=harness.CLIENT_ENV).stdout.strip()
        p = subprocess.run([server.binary, "audit", "verify", "--report", path, "--key", key, "--server", server.url],
                           capture_output=True, text=True, env=harness.CLIENT_ENV)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_softhsm(self):
        token = SoftHSM()
        try:
            self.run_lifecycle(token)
        finally:
            token.close()

    def test_local_kms(self):
        kms = LocalKMS()
        try:
            self.run_lifecycle(kms)
        finally:
            kms.close()


if __name__ == "__main__":
    unittest.main()
