"""Authentication with real keys, over HTTPS with the server's own CA:
AWS CLI v1 and v2 and boto3, and the operator commands for accounts and
keys."""

import json
import unittest

import boto3
import botocore.config
from botocore.exceptions import ClientError

import harness

CLIS = harness.aws_clis()

CONFIG = {"KeyAlgorithm": "EC_prime256v1", "SigningAlgorithm": "SHA256WITHECDSA", "Subject": {"CommonName": "Auth E2E"}}


def parse_key(out):
    values = dict(line.split("=", 1) for line in out.strip().splitlines())
    return values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"]


class AuthTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(extra_args=["--tls-self-signed"]).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop_cleanly()

    def boto3(self, key=None, secret=None):
        return boto3.client(
            "acm-pca", endpoint_url=self.server.url, region_name=harness.REGION, verify=self.server.ca_bundle,
            aws_access_key_id=key or harness.CLIENT_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=secret or harness.CLIENT_ENV["AWS_SECRET_ACCESS_KEY"],
            config=botocore.config.Config(retries={"max_attempts": 1}))

    def test_cli_with_keys_over_https(self):
        for i, (name, cmd) in enumerate(CLIS.items()):
            with self.subTest(cli=name):
                cli = harness.CLI(cmd, self.server.url, ca_bundle=self.server.ca_bundle)
                arn = cli.json("create-certificate-authority", "--certificate-authority-type", "ROOT",
                               "--certificate-authority-configuration", json.dumps(CONFIG))["CertificateAuthorityArn"]
                account = "2222333344%02d" % i
                self.server.openpca("accounts", "create", "--id", account, "--name", "cli-" + name)
                key, secret = parse_key(self.server.openpca("keys", "create", "--account", account))
                other = harness.CLI(cmd, self.server.url, ca_bundle=self.server.ca_bundle,
                                    env={"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret})
                self.assertEqual(other.json("list-certificate-authorities")["CertificateAuthorities"], [])
                p = other.run("describe-certificate-authority", "--certificate-authority-arn", arn, check=False)
                self.assertIn("(ResourceNotFoundException)", p.stderr)

                wrong = harness.CLI(cmd, self.server.url, ca_bundle=self.server.ca_bundle,
                                    env={"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": "wrong" + secret[5:]})
                p = wrong.run("list-certificate-authorities", check=False)
                self.assertIn("(InvalidSignatureException)", p.stderr)
                self.assertNotIn(secret, p.stderr)

                ro_key, ro_secret = parse_key(self.server.openpca("keys", "create", "--account", account, "--read-only"))
                reader = harness.CLI(cmd, self.server.url, ca_bundle=self.server.ca_bundle,
                                     env={"AWS_ACCESS_KEY_ID": ro_key, "AWS_SECRET_ACCESS_KEY": ro_secret})
                self.assertEqual(reader.json("list-certificate-authorities")["CertificateAuthorities"], [])
                p = reader.run("create-certificate-authority", "--certificate-authority-type", "ROOT",
                               "--certificate-authority-configuration", json.dumps(CONFIG), check=False)
                self.assertIn("(AccessDeniedException)", p.stderr)
                self.assertEqual(other.json("list-certificate-authorities")["CertificateAuthorities"], [])

                keys = self.server.openpca("keys", "list", "--account", account)
                self.assertRegex(keys, key + r"\s+" + account + r"\s+\S+\s+full\s+active")
                self.assertRegex(keys, ro_key + r"\s+" + account + r"\s+\S+\s+ReadOnly\s+active")
                self.server.openpca("keys", "revoke", key)
                p = other.run("list-certificate-authorities", check=False)
                self.assertIn("(UnrecognizedClientException)", p.stderr)

                unverified = harness.CLI(cmd, self.server.url)  # without the CA bundle
                p = unverified.run("list-certificate-authorities", check=False)
                self.assertNotEqual(p.returncode, 0)

    def test_boto3_over_https(self):
        pca = self.boto3()
        arn = pca.create_certificate_authority(CertificateAuthorityConfiguration=CONFIG,
                                               CertificateAuthorityType="ROOT")["CertificateAuthorityArn"]
        self.assertEqual(pca.describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]["Status"],
                         "PENDING_CERTIFICATE")
        with self.assertRaises(ClientError) as cm:
            self.boto3(secret="not-the-secret-at-all").list_certificate_authorities()
        self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidSignatureException")
        self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        with self.assertRaises(ClientError) as cm:
            self.boto3(key="OPCAUNKNOWNKEY0000000").list_certificate_authorities()
        self.assertEqual(cm.exception.response["Error"]["Code"], "UnrecognizedClientException")
        accounts = self.server.openpca("accounts", "list")
        self.assertIn(harness.ACCOUNT, accounts)


if __name__ == "__main__":
    unittest.main()
