"""The AWS CLI, v1 (pip) and v2 (Debian), against the openpca binary,
used exactly as its documentation shows."""

import gzip
import hashlib
import json
import os
import ssl
import subprocess
import tempfile
import time
import unittest

import harness

CLIS = harness.aws_clis()

CONFIG = {
    "KeyAlgorithm": "EC_prime256v1",
    "SigningAlgorithm": "SHA256WITHECDSA",
    "Subject": {"CommonName": "E2E Subordinate", "Organization": "OpenPCA", "Country": "US"},
}


class CLITests:
    cli_name = None

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server().start()
        cls.cli = harness.CLI(CLIS[cls.cli_name], cls.server.url)
        cls.work = tempfile.mkdtemp(prefix="openpca-cli-")
        cls.root = harness.ExternalRoot(cls.work)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop_cleanly()

    def create(self, ca_type="SUBORDINATE", **extra):
        args = ["create-certificate-authority", "--certificate-authority-type", ca_type,
                "--certificate-authority-configuration", json.dumps(CONFIG)]
        for k, v in extra.items():
            args += ["--" + k.replace("_", "-"), v]
        return self.cli.json(*args)["CertificateAuthorityArn"]

    def activate_root(self, arn):
        """Self-signs a root CA's certificate and imports it; returns a
        folder holding ca.pem, and the certificate's ARN."""
        d = tempfile.mkdtemp(dir=self.work)
        csr = self.cli.run("get-certificate-authority-csr", "--certificate-authority-arn", arn, output="text").stdout
        with open(os.path.join(d, "ca.csr"), "w") as f:
            f.write(csr)
        root = self.cli.json("issue-certificate", "--certificate-authority-arn", arn, "--csr", "fileb://" + os.path.join(d, "ca.csr"),
                             "--signing-algorithm", "SHA256WITHECDSA", "--template-arn",
                             "arn:aws:acm-pca:::template/RootCACertificate/V1", "--validity", "Value=5,Type=YEARS")["CertificateArn"]
        pem = self.cli.run("get-certificate", "--certificate-authority-arn", arn, "--certificate-arn", root, output="text").stdout
        with open(os.path.join(d, "ca.pem"), "w") as f:
            f.write(pem)
        self.cli.run("import-certificate-authority-certificate", "--certificate-authority-arn", arn,
                     "--certificate", "fileb://" + os.path.join(d, "ca.pem"))
        return d, root

    def describe(self, arn):
        return self.cli.json("describe-certificate-authority", "--certificate-authority-arn", arn)["CertificateAuthority"]

    def test_subordinate_lifecycle(self):
        arn = self.create(idempotency_token="cli-" + self.cli_name)
        self.assertEqual(arn, self.create(idempotency_token="cli-" + self.cli_name), "idempotency token ignored")
        self.cli.run("wait", "certificate-authority-csr-created", "--certificate-authority-arn", arn)
        status = self.cli.run("describe-certificate-authority", "--certificate-authority-arn", arn,
                              "--query", "CertificateAuthority.Status", output="text").stdout.strip()
        self.assertEqual(status, "PENDING_CERTIFICATE")

        csr = self.cli.run("get-certificate-authority-csr", "--certificate-authority-arn", arn, output="text").stdout
        self.assertIn("BEGIN CERTIFICATE REQUEST", csr)
        cert = self.root.sign(csr, "sub-" + self.cli_name)
        self.cli.run("import-certificate-authority-certificate", "--certificate-authority-arn", arn,
                     "--certificate", "fileb://" + cert, "--certificate-chain", "fileb://" + self.root.pem)
        ca = self.describe(arn)
        self.assertEqual(ca["Status"], "ACTIVE")
        # v1 prints timestamps as sent (epoch seconds), v2 as ISO 8601.
        self.assertIsInstance(ca["NotAfter"], (int, float) if self.cli_name == "v1" else str)

        got = self.cli.json("get-certificate-authority-certificate", "--certificate-authority-arn", arn)
        with open(cert) as f:
            self.assertEqual(got["Certificate"].strip(), f.read().strip())
        with open(self.root.pem) as f:
            self.assertEqual(got["CertificateChain"].strip(), f.read().strip())

        self.cli.run("update-certificate-authority", "--certificate-authority-arn", arn, "--status", "DISABLED")
        self.assertEqual(self.describe(arn)["Status"], "DISABLED")
        self.cli.run("delete-certificate-authority", "--certificate-authority-arn", arn,
                     "--permanent-deletion-time-in-days", "7")
        ca = self.describe(arn)
        self.assertEqual(ca["Status"], "DELETED")
        self.assertIn("RestorableUntil", ca)
        self.cli.run("restore-certificate-authority", "--certificate-authority-arn", arn)
        self.assertEqual(self.describe(arn)["Status"], "DISABLED")

    def test_root_activation_and_issuance_as_documented(self):
        """The AWS CLI steps of the AWS Private CA user guide: self-sign the
        root, import it, then issue, fetch and revoke a certificate."""
        arn = self.create("ROOT")
        d = tempfile.mkdtemp(dir=self.work)
        csr = self.cli.run("get-certificate-authority-csr", "--certificate-authority-arn", arn, output="text").stdout
        with open(os.path.join(d, "ca.csr"), "w") as f:
            f.write(csr)
        cert_arn = self.cli.json(
            "issue-certificate", "--certificate-authority-arn", arn, "--csr", "fileb://" + os.path.join(d, "ca.csr"),
            "--signing-algorithm", "SHA256WITHECDSA", "--template-arn", "arn:aws:acm-pca:::template/RootCACertificate/V1",
            "--validity", "Value=3650,Type=DAYS")["CertificateArn"]
        self.cli.run("wait", "certificate-issued", "--certificate-authority-arn", arn, "--certificate-arn", cert_arn)
        pem = self.cli.run("get-certificate", "--certificate-authority-arn", arn, "--certificate-arn", cert_arn, output="text").stdout
        with open(os.path.join(d, "ca.pem"), "w") as f:
            f.write(pem)
        self.cli.run("import-certificate-authority-certificate", "--certificate-authority-arn", arn,
                     "--certificate", "fileb://" + os.path.join(d, "ca.pem"))
        self.assertEqual(self.describe(arn)["Status"], "ACTIVE")

        harness.openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=leaf.example/O=E2E", cwd=d)
        leaf_arn = self.cli.json(
            "issue-certificate", "--certificate-authority-arn", arn, "--csr", "fileb://" + os.path.join(d, "leaf.csr"),
            "--signing-algorithm", "SHA256WITHECDSA", "--validity", "Value=30,Type=DAYS",
            "--idempotency-token", "leaf-" + self.cli_name)["CertificateArn"]
        got = self.cli.json("get-certificate", "--certificate-authority-arn", arn, "--certificate-arn", leaf_arn)
        with open(os.path.join(d, "leaf.pem"), "w") as f:
            f.write(got["Certificate"])
        with open(os.path.join(d, "chain.pem"), "w") as f:
            f.write(got["CertificateChain"])
        verify = subprocess.run(["openssl", "verify", "-CAfile", "chain.pem", "leaf.pem"], cwd=d, capture_output=True, text=True)
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)

        serial = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", "leaf.pem"], cwd=d, capture_output=True,
                                text=True, check=True).stdout.strip().split("=")[1]
        self.assertTrue(leaf_arn.endswith("/certificate/" + serial.lower()), (leaf_arn, serial))
        colons = ":".join(serial[i:i + 2] for i in range(0, len(serial), 2)).lower()
        self.cli.run("revoke-certificate", "--certificate-authority-arn", arn, "--certificate-serial", colons,
                     "--revocation-reason", "KEY_COMPROMISE")
        p = self.cli.run("revoke-certificate", "--certificate-authority-arn", arn, "--certificate-serial", serial,
                         "--revocation-reason", "KEY_COMPROMISE", check=False)
        self.assertIn("(RequestAlreadyProcessedException)", p.stderr)

    def test_audit_report_as_documented(self):
        """The audit report commands of the AWS CLI documentation, with a
        bucket that is a folder of the embedded object store."""
        arn = self.create("ROOT")
        d, root = self.activate_root(arn)
        bucket = "cli-" + self.cli_name + "-reports"
        os.makedirs(os.path.join(self.server.data_dir, "s3", bucket))

        p = self.cli.run("create-certificate-authority-audit-report", "--certificate-authority-arn", arn,
                         "--s3-bucket-name", "no-such-bucket", "--audit-report-response-format", "JSON", check=False)
        self.assertIn("(ResourceNotFoundException)", p.stderr)

        out = self.cli.json("create-certificate-authority-audit-report", "--certificate-authority-arn", arn,
                            "--s3-bucket-name", bucket, "--audit-report-response-format", "JSON")
        report_id, key = out["AuditReportId"], out["S3Key"]
        self.assertEqual(key, "audit-report/%s/%s.json" % (arn.rsplit("/", 1)[1], report_id))
        self.cli.run("wait", "audit-report-created", "--certificate-authority-arn", arn, "--audit-report-id", report_id)
        status = self.cli.run("describe-certificate-authority-audit-report", "--certificate-authority-arn", arn,
                              "--audit-report-id", report_id, "--query", "AuditReportStatus", output="text").stdout.strip()
        self.assertEqual(status, "SUCCESS")
        table = self.cli.run("describe-certificate-authority-audit-report", "--certificate-authority-arn", arn,
                             "--audit-report-id", report_id, output="table").stdout
        self.assertIn(bucket, table)
        text = self.cli.run("describe-certificate-authority-audit-report", "--certificate-authority-arn", arn,
                            "--audit-report-id", report_id, output="text").stdout
        self.assertIn("SUCCESS", text)
        if self.cli_name == "v2":
            yaml = self.cli.run("describe-certificate-authority-audit-report", "--certificate-authority-arn", arn,
                                "--audit-report-id", report_id, output="yaml").stdout
            self.assertIn("AuditReportStatus: SUCCESS", yaml)
        with open(os.path.join(self.server.data_dir, "s3", bucket, key)) as f:
            rows = json.load(f)
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["certificateArn"], root)
        self.assertEqual(rows[0]["templateArn"], "arn:aws:acm-pca:::template/RootCACertificate/V1")

        # The report proves itself: openpca audit verify checks it against
        # its proof file and the server's public key, and against the
        # server's current log; a changed row fails it, with exit code 1.
        report = os.path.join(self.server.data_dir, "s3", bucket, key)
        # The proof file is gzip'd JSON Lines, which any gzip reader reads:
        # the header, then one record per entry of the CA's log.
        with gzip.open(report + ".proof.jsonl.gz", "rt") as f:
            lines = f.read().splitlines()
        self.assertEqual(json.loads(lines[0])["format"], "openpca-audit-proof/v1")
        self.assertEqual([json.loads(l)["kind"] for l in lines[1:]], ["CSR", "ISSUE", "IMPORT"])
        # The import names the certificate the CLI gets as the CA's.
        cert = self.cli.json("get-certificate-authority-certificate", "--certificate-authority-arn", arn)["Certificate"]
        cert_sha256 = hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert)).hexdigest()
        self.assertEqual(json.loads(lines[3])["certificateSha256"], cert_sha256)
        public_key = self.server.openpca("audit", "public-key").strip()
        verify = [self.server.binary, "audit", "verify", "--report", report, "--key", public_key]
        p = subprocess.run(verify + ["--server", self.server.url], capture_output=True, text=True, env=harness.CLIENT_ENV)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("OK the server's current log extends it", p.stdout)
        self.assertIn("the last import, entry 2,", p.stdout)
        self.assertIn("is of the certificate of SHA-256 " + cert_sha256 + ", without a chain", p.stdout)
        rows[0]["subject"] = "CN=Someone Else"
        tampered = os.path.join(d, "tampered.json")
        with open(tampered, "w") as f:
            json.dump(rows, f)
        p = subprocess.run([self.server.binary, "audit", "verify", "--report", tampered, "--proof", report + ".proof.jsonl.gz",
                            "--key", public_key], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn('subject is "CN=Someone Else", the log says', p.stdout)

        # A second report within 30 minutes, asked for with --cli-input-json.
        path = os.path.join(d, "report.json")
        with open(path, "w") as f:
            json.dump({"CertificateAuthorityArn": arn, "S3BucketName": bucket, "AuditReportResponseFormat": "CSV"}, f)
        p = self.cli.run("create-certificate-authority-audit-report", "--cli-input-json", "file://" + path, check=False)
        self.assertIn("(RequestInProgressException)", p.stderr)

    def test_revocation_configuration(self):
        """A CA with a CRL and OCSP, configured with the CLI as its
        documentation shows: the CRL appears in the bucket, and Describe shows
        the configuration back; a CNAME with a scheme is refused."""
        bucket = "cli-" + self.cli_name + "-crls"
        os.makedirs(os.path.join(self.server.data_dir, "s3", bucket))
        path = os.path.join(self.work, "revoke_config_%s.txt" % self.cli_name)
        with open(path, "w") as f:
            json.dump({"CrlConfiguration": {"Enabled": True, "ExpirationInDays": 7, "S3BucketName": bucket},
                       "OcspConfiguration": {"Enabled": True}}, f)
        arn = self.create("ROOT", revocation_configuration="file://" + path)
        rc = self.describe(arn)["RevocationConfiguration"]
        self.assertEqual(rc["CrlConfiguration"]["S3BucketName"], bucket)
        self.assertTrue(rc["OcspConfiguration"]["Enabled"])

        d, _ = self.activate_root(arn)
        crl = os.path.join(self.server.data_dir, "s3", bucket, "crl", arn.rsplit("/", 1)[1] + ".crl")
        for _ in range(100):
            if os.path.exists(crl):
                break
            time.sleep(0.1)
        p = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", crl, "-noout", "-CAfile", os.path.join(d, "ca.pem")],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("verify OK", p.stdout + p.stderr)

        p = self.cli.run("update-certificate-authority", "--certificate-authority-arn", arn, "--revocation-configuration",
                         json.dumps({"OcspConfiguration": {"Enabled": True, "OcspCustomCname": "http://ocsp.example.com"}}), check=False)
        self.assertIn("(InvalidArgsException)", p.stderr)

    def test_cli_input_json(self):
        path = os.path.join(self.work, f"input-{self.cli_name}.json")
        with open(path, "w") as f:
            json.dump({"CertificateAuthorityConfiguration": CONFIG, "CertificateAuthorityType": "ROOT",
                       "Tags": [{"Key": "team", "Value": "pki"}]}, f)
        arn = self.cli.json("create-certificate-authority", "--cli-input-json", "file://" + path)["CertificateAuthorityArn"]
        tags = self.cli.json("list-tags", "--certificate-authority-arn", arn)["Tags"]
        self.assertEqual(tags, [{"Key": "team", "Value": "pki"}])
        self.cli.run("tag-certificate-authority", "--certificate-authority-arn", arn, "--tags", "Key=env,Value=test")
        self.cli.run("untag-certificate-authority", "--certificate-authority-arn", arn, "--tags", "Key=team")
        tags = self.cli.json("list-tags", "--certificate-authority-arn", arn)["Tags"]
        self.assertEqual(tags, [{"Key": "env", "Value": "test"}])

    def test_pagination(self):
        for _ in range(5):
            self.create("ROOT")
        all_arns = self.cli.run("list-certificate-authorities", "--query", "CertificateAuthorities[].Arn",
                                output="json").stdout
        every = json.loads(all_arns)
        # The CLI follows NextToken on its own with a small page size.
        paged = json.loads(self.cli.run("list-certificate-authorities", "--page-size", "2",
                                        "--query", "CertificateAuthorities[].Arn").stdout)
        self.assertEqual(paged, every)
        first = self.cli.json("list-certificate-authorities", "--max-items", "2")
        self.assertEqual(len(first["CertificateAuthorities"]), 2)
        self.assertIn("NextToken", first)
        rest = self.cli.json("list-certificate-authorities", "--starting-token", first["NextToken"])
        self.assertEqual([c["Arn"] for c in first["CertificateAuthorities"] + rest["CertificateAuthorities"]], every)

    def test_output_formats(self):
        arn = self.create("ROOT")
        table = self.cli.run("describe-certificate-authority", "--certificate-authority-arn", arn, output="table").stdout
        self.assertIn("DescribeCertificateAuthority", table)
        self.assertIn("PENDING_CERTIFICATE", table)
        text = self.cli.run("list-certificate-authorities", output="text").stdout
        self.assertIn(arn, text)
        if self.cli_name == "v2":
            yaml = self.cli.run("describe-certificate-authority", "--certificate-authority-arn", arn, output="yaml").stdout
            self.assertIn("Status: PENDING_CERTIFICATE", yaml)

    def test_errors(self):
        missing = f"arn:aws:acm-pca:us-east-1:{harness.ACCOUNT}:certificate-authority/00000000-0000-0000-0000-000000000000"
        p = self.cli.run("describe-certificate-authority", "--certificate-authority-arn", missing, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("(ResourceNotFoundException)", p.stderr)
        self.assertIn("DescribeCertificateAuthority", p.stderr)

        p = self.cli.run("describe-certificate-authority", "--certificate-authority-arn",
                         f"arn:aws:acm-pca:us-east-1:{harness.ACCOUNT}:certificate-authority/nope", check=False)
        self.assertIn("(InvalidArnException)", p.stderr)

        arn = self.create("ROOT")
        p = self.cli.run("update-certificate-authority", "--certificate-authority-arn", arn, "--status", "ACTIVE", check=False)
        self.assertIn("(InvalidStateException)", p.stderr)
        p = self.cli.run("create-certificate-authority", "--certificate-authority-type", "ROOT",
                         "--certificate-authority-configuration",
                         json.dumps(dict(CONFIG, SigningAlgorithm="SHA256WITHRSA")), check=False)
        self.assertIn("(InvalidArgsException)", p.stderr)


for _name in CLIS:
    globals()[f"TestCLI{_name.upper()}"] = type(f"TestCLI{_name.upper()}", (CLITests, unittest.TestCase), {"cli_name": _name})

if __name__ == "__main__":
    unittest.main()
