"""Least privilege with the AWS CLIs and boto3: resource policies on CAs
(put-policy, get-policy, delete-policy), permissions for ACM, and a key
whose IAM policy lets it issue end-entity certificates from one CA only."""

import json
import os
import subprocess
import tempfile
import unittest

import boto3
import botocore.config
from botocore.exceptions import ClientError

import harness

CLIS = harness.aws_clis()

CONFIG = {"KeyAlgorithm": "EC_prime256v1", "SigningAlgorithm": "SHA256WITHECDSA", "Subject": {"CommonName": "Policy E2E"}}
END_ENTITY = "arn:aws:acm-pca:::template/EndEntityCertificate/V1"
SUB_CA = "arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1"


def parse_key(out):
    values = dict(line.split("=", 1) for line in out.strip().splitlines())
    return values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"]


class PolicyTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server().start()
        cls.work = tempfile.mkdtemp(prefix="openpca-e2e-policy-")
        cls.cli = harness.CLI(CLIS["v2"], cls.server.url)
        os.makedirs(os.path.join(cls.server.data_dir, "s3", "policy-reports"))

    @classmethod
    def tearDownClass(cls):
        cls.server.stop_cleanly()

    def write(self, name, content):
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content))
        return path

    def active_root(self, cli, name):
        """Creates a root CA, self-signs and imports its certificate."""
        arn = cli.json("create-certificate-authority", "--certificate-authority-type", "ROOT",
                       "--certificate-authority-configuration", json.dumps(dict(CONFIG, Subject={"CommonName": name})))["CertificateAuthorityArn"]
        csr = self.write(name + ".csr", cli.run("get-certificate-authority-csr", "--certificate-authority-arn", arn, output="text").stdout)
        cert = cli.json("issue-certificate", "--certificate-authority-arn", arn, "--csr", "fileb://" + csr,
                        "--signing-algorithm", "SHA256WITHECDSA", "--template-arn", "arn:aws:acm-pca:::template/RootCACertificate/V1",
                        "--validity", "Value=5,Type=YEARS")["CertificateArn"]
        pem = self.write(name + ".pem", cli.run("get-certificate", "--certificate-authority-arn", arn, "--certificate-arn", cert, output="text").stdout)
        cli.run("import-certificate-authority-certificate", "--certificate-authority-arn", arn, "--certificate", "fileb://" + pem)
        return arn

    def leaf_csr(self, name):
        key, csr = os.path.join(self.work, name + ".key"), os.path.join(self.work, name + ".csr")
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", csr, "-subj", "/CN=" + name], check=True, capture_output=True)
        return csr

    def test_policies_and_permissions_with_the_clis(self):
        for i, (name, cmd) in enumerate(CLIS.items()):
            with self.subTest(cli=name):
                cli = harness.CLI(cmd, self.server.url)
                arn = self.active_root(cli, "policy-" + name)
                other = "4444555566%02d" % i
                policy = {"Version": "2012-10-17", "Statement": [
                    {"Sid": "Read", "Effect": "Allow", "Principal": {"AWS": other}, "Resource": arn,
                     "Action": ["acm-pca:DescribeCertificateAuthority", "acm-pca:GetCertificate", "acm-pca:GetCertificateAuthorityCertificate",
                                "acm-pca:ListPermissions", "acm-pca:ListTags"]},
                    {"Sid": "Issue", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%s:root" % other}, "Resource": arn,
                     "Action": "acm-pca:IssueCertificate", "Condition": {"StringEquals": {"acm-pca:TemplateArn": END_ENTITY}}}]}
                cli.run("put-policy", "--resource-arn", arn, "--policy", "file://" + self.write("policy-%s.json" % name, policy))
                got = cli.json("get-policy", "--resource-arn", arn)["Policy"]
                self.assertEqual(json.loads(got), policy)
                bad = dict(policy, Statement=[dict(policy["Statement"][0], Action="acm-pca:*")])
                p = cli.run("put-policy", "--resource-arn", arn, "--policy", json.dumps(bad), check=False)
                self.assertIn("(InvalidPolicyException)", p.stderr)
                cli.run("delete-policy", "--resource-arn", arn)
                p = cli.run("get-policy", "--resource-arn", arn, check=False)
                self.assertIn("(ResourceNotFoundException)", p.stderr)

                cli.run("create-permission", "--certificate-authority-arn", arn, "--principal", "acm.amazonaws.com",
                        "--actions", "IssueCertificate", "GetCertificate", "ListPermissions")
                p = cli.run("create-permission", "--certificate-authority-arn", arn, "--principal", "acm.amazonaws.com",
                            "--actions", "IssueCertificate", check=False)
                self.assertIn("(PermissionAlreadyExistsException)", p.stderr)
                perms = cli.json("list-permissions", "--certificate-authority-arn", arn)["Permissions"]
                self.assertEqual(len(perms), 1)
                self.assertEqual(perms[0]["Principal"], "acm.amazonaws.com")
                self.assertEqual(perms[0]["SourceAccount"], harness.ACCOUNT)
                self.assertEqual(sorted(perms[0]["Actions"]), ["GetCertificate", "IssueCertificate", "ListPermissions"])
                cli.run("delete-permission", "--certificate-authority-arn", arn, "--principal", "acm.amazonaws.com")
                self.assertEqual(cli.json("list-permissions", "--certificate-authority-arn", arn)["Permissions"], [])

    def test_least_privilege_key(self):
        """A key limited to IssueCertificate and GetCertificate on one CA,
        with the end-entity template, gets its certificate, and is denied
        everything else."""
        ca = self.active_root(self.cli, "issuing")
        other_ca = self.active_root(self.cli, "other")
        policy = self.write("issuer.json", {"Version": "2012-10-17", "Statement": [
            {"Sid": "IssueEndEntity", "Effect": "Allow", "Action": "acm-pca:IssueCertificate", "Resource": ca,
             "Condition": {"StringEquals": {"acm-pca:TemplateArn": END_ENTITY}}},
            {"Sid": "Fetch", "Effect": "Allow", "Action": "acm-pca:GetCertificate", "Resource": ca}]})
        key, secret = parse_key(self.server.openpca("keys", "create", "--account", harness.ACCOUNT, "--policy", policy))
        self.assertRegex(self.server.openpca("keys", "list"), key + r".*\sissuer\s")
        csr = self.leaf_csr("least")
        for name, cmd in CLIS.items():
            with self.subTest(cli=name):
                issuer = harness.CLI(cmd, self.server.url, env={"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret})
                issue = ["issue-certificate", "--csr", "fileb://" + csr, "--signing-algorithm", "SHA256WITHECDSA",
                         "--validity", "Value=7,Type=DAYS"]
                cert = issuer.json(*issue, "--certificate-authority-arn", ca, "--template-arn", END_ENTITY)["CertificateArn"]
                pem = issuer.json("get-certificate", "--certificate-authority-arn", ca, "--certificate-arn", cert)["Certificate"]
                self.assertIn("BEGIN CERTIFICATE", pem)
                for what, args in {
                    "a subordinate CA template": issue + ["--certificate-authority-arn", ca, "--template-arn", SUB_CA],
                    "another CA": issue + ["--certificate-authority-arn", other_ca],
                    "deletion": ["delete-certificate-authority", "--certificate-authority-arn", ca],
                    "an audit report": ["create-certificate-authority-audit-report", "--certificate-authority-arn", ca,
                                        "--s3-bucket-name", "policy-reports", "--audit-report-response-format", "JSON"],
                }.items():
                    p = issuer.run(*args, check=False)
                    self.assertIn("(AccessDeniedException)", p.stderr, what)
                    self.assertIn("is not authorized to perform: acm-pca:", p.stderr, what)
        status = self.cli.json("describe-certificate-authority", "--certificate-authority-arn", ca)["CertificateAuthority"]["Status"]
        self.assertEqual(status, "ACTIVE")

        out = self.server.openpca("policy", "simulate", key, "--action", "IssueCertificate", "--resource", ca,
                                  "--context", "acm-pca:TemplateArn=" + SUB_CA)
        self.assertIn("denied", out)
        self.assertIn("no identity-based policy allows", out)
        out = self.server.openpca("policy", "simulate", key, "--action", "acm-pca:IssueCertificate", "--resource", ca,
                                  "--context", "acm-pca:TemplateArn=" + END_ENTITY)
        self.assertIn("allowed by issuer (IssueEndEntity)", out)

    def test_boto3_policy_and_paginator(self):
        pca = boto3.client("acm-pca", endpoint_url=self.server.url, region_name=harness.REGION,
                           aws_access_key_id=harness.CLIENT_ENV["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=harness.CLIENT_ENV["AWS_SECRET_ACCESS_KEY"],
                           config=botocore.config.Config(retries={"max_attempts": 1}))
        arn = self.active_root(self.cli, "boto3-policy")
        with self.assertRaises(ClientError) as cm:
            pca.get_policy(ResourceArn=arn)
        self.assertEqual(cm.exception.response["Error"]["Code"], "ResourceNotFoundException")
        pca.create_permission(CertificateAuthorityArn=arn, Principal="acm.amazonaws.com", Actions=["IssueCertificate"])
        pages = list(pca.get_paginator("list_permissions").paginate(CertificateAuthorityArn=arn, PaginationConfig={"PageSize": 1}))
        self.assertEqual(sum(len(p["Permissions"]) for p in pages), 1)
        with self.assertRaises(ClientError) as cm:
            pca.put_policy(ResourceArn=arn, Policy="not a policy")
        self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidPolicyException")


if __name__ == "__main__":
    unittest.main()
