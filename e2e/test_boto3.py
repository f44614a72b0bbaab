"""boto3 against the openpca binary: client methods, paginators, waiters
and the errors it raises."""

import csv
import json
import os
import subprocess
import tempfile
import unittest
import urllib.request

import boto3
import botocore.config
from botocore.exceptions import ClientError

import harness

CONFIG = {
    "KeyAlgorithm": "EC_prime256v1",
    "SigningAlgorithm": "SHA256WITHECDSA",
    "Subject": {"CommonName": "boto3 CA", "Country": "US"},
}


def client(url, region=harness.REGION, **config):
    return boto3.client(
        "acm-pca", endpoint_url=url, region_name=region,
        aws_access_key_id=harness.CLIENT_ENV["AWS_ACCESS_KEY_ID"], aws_secret_access_key=harness.CLIENT_ENV["AWS_SECRET_ACCESS_KEY"],
        config=botocore.config.Config(retries={"max_attempts": 1}, **config))


class Boto3Tests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server().start()
        cls.pca = client(cls.server.url)
        cls.work = tempfile.mkdtemp(prefix="openpca-boto3-")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop_cleanly()

    def create(self, ca_type="ROOT", **kw):
        return self.pca.create_certificate_authority(
            CertificateAuthorityConfiguration=CONFIG, CertificateAuthorityType=ca_type, **kw)["CertificateAuthorityArn"]

    def test_lifecycle_with_waiter(self):
        arn = self.create("SUBORDINATE", IdempotencyToken="boto3")
        self.pca.get_waiter("certificate_authority_csr_created").wait(CertificateAuthorityArn=arn)
        csr = self.pca.get_certificate_authority_csr(CertificateAuthorityArn=arn)["Csr"]
        root = harness.ExternalRoot(self.work)
        cert = root.sign(csr, "boto3-sub")
        with open(cert, "rb") as c, open(root.pem, "rb") as chain:
            self.pca.import_certificate_authority_certificate(
                CertificateAuthorityArn=arn, Certificate=c.read(), CertificateChain=chain.read())
        ca = self.pca.describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]
        self.assertEqual(ca["Status"], "ACTIVE")
        self.assertLess(ca["NotBefore"], ca["NotAfter"])  # parsed into datetimes
        self.assertEqual(ca["OwnerAccount"], harness.ACCOUNT)

    def test_issue_get_revoke(self):
        arn = self.create()
        csr = self.pca.get_certificate_authority_csr(CertificateAuthorityArn=arn)["Csr"]
        root_arn = self.pca.issue_certificate(
            CertificateAuthorityArn=arn, Csr=csr.encode(), SigningAlgorithm="SHA256WITHECDSA",
            TemplateArn="arn:aws:acm-pca:::template/RootCACertificate/V1",
            Validity={"Type": "YEARS", "Value": 5})["CertificateArn"]
        root = self.pca.get_certificate(CertificateAuthorityArn=arn, CertificateArn=root_arn)
        self.assertNotIn("CertificateChain", root)
        self.pca.import_certificate_authority_certificate(CertificateAuthorityArn=arn, Certificate=root["Certificate"].encode())

        d = tempfile.mkdtemp(dir=self.work)
        harness.openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "k.pem", "-out", "c.csr",
                        "-subj", "/CN=boto3.example", cwd=d)
        with open(d + "/c.csr", "rb") as f:
            leaf_csr = f.read()
        leaf_arn = self.pca.issue_certificate(
            CertificateAuthorityArn=arn, Csr=leaf_csr, SigningAlgorithm="SHA384WITHECDSA",
            Validity={"Type": "DAYS", "Value": 10}, IdempotencyToken="boto3-leaf")["CertificateArn"]
        self.assertEqual(leaf_arn, self.pca.issue_certificate(
            CertificateAuthorityArn=arn, Csr=leaf_csr, SigningAlgorithm="SHA384WITHECDSA",
            Validity={"Type": "DAYS", "Value": 10}, IdempotencyToken="boto3-leaf")["CertificateArn"])
        self.pca.get_waiter("certificate_issued").wait(CertificateAuthorityArn=arn, CertificateArn=leaf_arn)
        leaf = self.pca.get_certificate(CertificateAuthorityArn=arn, CertificateArn=leaf_arn)
        self.assertEqual(leaf["CertificateChain"].strip(), root["Certificate"].strip())
        serial = leaf_arn.rsplit("/", 1)[1]
        self.pca.revoke_certificate(CertificateAuthorityArn=arn, CertificateSerial=serial.upper(), RevocationReason="SUPERSEDED")
        with self.assertRaises(self.pca.exceptions.RequestAlreadyProcessedException):
            self.pca.revoke_certificate(CertificateAuthorityArn=arn, CertificateSerial=serial, RevocationReason="SUPERSEDED")
        with self.assertRaises(self.pca.exceptions.MalformedCSRException):
            self.pca.issue_certificate(CertificateAuthorityArn=arn, Csr=b"garbage", SigningAlgorithm="SHA256WITHECDSA",
                                       Validity={"Type": "DAYS", "Value": 1})
        with self.assertRaises(self.pca.exceptions.InvalidArgsException):
            self.pca.issue_certificate(CertificateAuthorityArn=arn, Csr=leaf_csr, SigningAlgorithm="SHA256WITHRSA",
                                       Validity={"Type": "DAYS", "Value": 1})

    def test_audit_report(self):
        arn = self.create()
        csr = self.pca.get_certificate_authority_csr(CertificateAuthorityArn=arn)["Csr"]
        root = self.pca.issue_certificate(CertificateAuthorityArn=arn, Csr=csr.encode(), SigningAlgorithm="SHA256WITHECDSA",
                                          TemplateArn="arn:aws:acm-pca:::template/RootCACertificate/V1",
                                          Validity={"Type": "YEARS", "Value": 5})["CertificateArn"]
        pem = self.pca.get_certificate(CertificateAuthorityArn=arn, CertificateArn=root)["Certificate"]
        self.pca.import_certificate_authority_certificate(CertificateAuthorityArn=arn, Certificate=pem.encode())
        os.makedirs(os.path.join(self.server.data_dir, "s3", "boto3-reports"))
        out = self.pca.create_certificate_authority_audit_report(
            CertificateAuthorityArn=arn, S3BucketName="boto3-reports", AuditReportResponseFormat="CSV")
        self.pca.get_waiter("audit_report_created").wait(
            CertificateAuthorityArn=arn, AuditReportId=out["AuditReportId"], WaiterConfig={"Delay": 1})
        d = self.pca.describe_certificate_authority_audit_report(CertificateAuthorityArn=arn, AuditReportId=out["AuditReportId"])
        self.assertEqual(d["AuditReportStatus"], "SUCCESS")
        self.assertEqual(d["S3Key"], out["S3Key"])
        self.assertTrue(d["CreatedAt"].tzinfo)
        with open(os.path.join(self.server.data_dir, "s3", "boto3-reports", out["S3Key"]), newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([r["certificateArn"] for r in rows], [root])
        with self.assertRaises(self.pca.exceptions.RequestInProgressException):
            self.pca.create_certificate_authority_audit_report(
                CertificateAuthorityArn=arn, S3BucketName="boto3-reports", AuditReportResponseFormat="JSON")
        with self.assertRaises(self.pca.exceptions.ResourceNotFoundException):
            self.pca.describe_certificate_authority_audit_report(
                CertificateAuthorityArn=arn, AuditReportId="00000000-0000-0000-0000-000000000000")

    def test_paginators(self):
        arns = [self.create(Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(5)]) for _ in range(4)]
        pages = self.pca.get_paginator("list_certificate_authorities").paginate(PaginationConfig={"PageSize": 3})
        listed = [ca["Arn"] for page in pages for ca in page["CertificateAuthorities"]]
        for arn in arns:
            self.assertIn(arn, listed)
        self.assertEqual(len(listed), len(set(listed)))
        tags = self.pca.get_paginator("list_tags").paginate(
            CertificateAuthorityArn=arns[0], PaginationConfig={"PageSize": 2}).build_full_result()["Tags"]
        self.assertEqual(sorted(t["Key"] for t in tags), [f"k{i}" for i in range(5)])

    def test_errors(self):
        missing = f"arn:aws:acm-pca:us-east-1:{harness.ACCOUNT}:certificate-authority/00000000-0000-0000-0000-000000000000"
        with self.assertRaises(self.pca.exceptions.ResourceNotFoundException) as cm:
            self.pca.describe_certificate_authority(CertificateAuthorityArn=missing)
        meta = cm.exception.response["ResponseMetadata"]
        self.assertEqual(meta["HTTPStatusCode"], 400)
        self.assertTrue(meta["RequestId"])
        self.assertIn(missing, cm.exception.response["Error"]["Message"])

        with self.assertRaises(self.pca.exceptions.InvalidArgsException):
            self.pca.create_certificate_authority(
                CertificateAuthorityConfiguration=dict(CONFIG, KeyAlgorithm="SM2", SigningAlgorithm="SM3WITHSM2"),
                CertificateAuthorityType="ROOT")
        with self.assertRaises(self.pca.exceptions.InvalidNextTokenException):
            self.pca.list_certificate_authorities(NextToken="bogus")
        arn = self.create()
        with self.assertRaises(self.pca.exceptions.InvalidStateException):
            self.pca.get_certificate_authority_certificate(CertificateAuthorityArn=arn)
        with self.assertRaises(self.pca.exceptions.MalformedCertificateException):
            self.pca.import_certificate_authority_certificate(CertificateAuthorityArn=arn, Certificate=b"not a certificate")

    def test_server_side_validation(self):
        # With the client's own checks off, the server must still refuse.
        raw = client(self.server.url, parameter_validation=False)
        with self.assertRaises(ClientError) as cm:
            raw.describe_certificate_authority(CertificateAuthorityArn="arn")
        err = cm.exception.response["Error"]
        self.assertEqual(err["Code"], "ValidationException")
        self.assertIn("certificateAuthorityArn", err["Message"])
        with self.assertRaises(ClientError) as cm:
            raw.list_certificate_authorities(MaxResults=0)
        self.assertEqual(cm.exception.response["Error"]["Code"], "ValidationException")

    def test_metrics_and_health(self):
        with urllib.request.urlopen(self.server.url + "/healthz") as r:
            self.assertEqual(r.status, 200)
        with urllib.request.urlopen(self.server.url + "/metrics") as r:
            body = r.read().decode()
        self.assertIn("openpca_requests_total", body)
        self.assertIn("openpca_certificate_authorities", body)


class ShutdownTests(unittest.TestCase):
    def test_sigterm_exits_cleanly_and_keeps_data(self):
        server = harness.Server().start()
        try:
            arn = client(server.url).create_certificate_authority(
                CertificateAuthorityConfiguration=CONFIG, CertificateAuthorityType="ROOT")["CertificateAuthorityArn"]
            self.assertEqual(server.stop(), 0, server.logs())
            self.assertIn('"msg":"stopped"', server.logs())
            server.start()
            ca = client(server.url).describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]
            self.assertEqual(ca["Status"], "PENDING_CERTIFICATE")
        finally:
            server.close()

    def test_env_variables_configure_the_server(self):
        server = harness.Server(env={"OPENPCA_ACCOUNT_ID": "123456789012", "OPENPCA_REGION": "eu-west-1"}).start()
        try:
            # Clients sign for the server's region.
            arn = client(server.url, region="eu-west-1").create_certificate_authority(
                CertificateAuthorityConfiguration=CONFIG, CertificateAuthorityType="ROOT")["CertificateAuthorityArn"]
            self.assertTrue(arn.startswith("arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/"), arn)
        finally:
            server.close()

    def test_first_start_prints_a_key(self):
        server = harness.Server(env={"OPENPCA_ROOT_ACCESS_KEY_ID": "", "OPENPCA_ROOT_SECRET_ACCESS_KEY": ""})
        server.env.pop("OPENPCA_ROOT_ACCESS_KEY_ID")
        server.env.pop("OPENPCA_ROOT_SECRET_ACCESS_KEY")
        server.start()
        try:
            logs = server.logs()
            key = logs.split("AWS_ACCESS_KEY_ID=")[1].split()[0]
            secret = logs.split("AWS_SECRET_ACCESS_KEY=")[1].split()[0]
            pca = boto3.client("acm-pca", endpoint_url=server.url, region_name=harness.REGION,
                               aws_access_key_id=key, aws_secret_access_key=secret)
            with self.assertRaises(ClientError):  # the usual key was never made
                client(server.url).list_certificate_authorities()
            self.assertEqual(pca.list_certificate_authorities()["CertificateAuthorities"], [])
            server.stop()
            server.start()
            self.assertEqual(server.logs().count("AWS_SECRET_ACCESS_KEY="), 1)
        finally:
            server.close()

    def test_bad_flags_fail_at_start(self):
        p = subprocess.run([harness.Server().binary, "serve", "--account-id", "12"], capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("account-id", p.stderr)


if __name__ == "__main__":
    unittest.main()
