package openpca

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// CA is a certificate authority as the server keeps it: the description the
// API shows, plus its sealed private key, CSR, certificate and tags.
type CA struct {
	ID        string // the UUID that ends the ARN
	AccountID string
	ARN       string
	Type      CertificateAuthorityType
	// Status is the stored status. It is never EXPIRED: expiry is derived
	// from the certificate by StatusAt, so that a renewed CA returns to the
	// ACTIVE or DISABLED it had before.
	Status CertificateAuthorityStatus
	// StatusBeforeDeletion is where RestoreCertificateAuthority returns to.
	StatusBeforeDeletion CertificateAuthorityStatus
	CreatedAt            time.Time
	LastStateChangeAt    time.Time
	RestorableUntil      time.Time // set while DELETED
	FailureReason        FailureReason

	Config                     CertificateAuthorityConfiguration
	Revocation                 *RevocationConfiguration
	KeyStorageSecurityStandard KeyStorageSecurityStandard
	UsageMode                  CertificateAuthorityUsageMode

	// KeyStore names the key store that holds the CA's private key
	// (KeyStore.Name), and KeyHandle is how that store finds it: the
	// sealed key in the software store, the token object's id, the KMS
	// key's ARN.
	KeyStore  string
	KeyHandle []byte
	CSR       []byte // DER
	// KeyID is the SHA-1 hash of the public key's bits, in hex: the
	// CA's subject key identifier, and how OCSP requests name it.
	KeyID string
	// KeepKey is set by a restore on a CA whose key is in a token or KMS
	// (and that a purge had not claimed): the servers of the backed-up
	// database share the store, and may sign with the key still (having
	// restored the CA since, if it was deleted at the backup), so the
	// CA's purge leaves the key in its store, for the operator.
	KeepKey bool
	// Destruction is the server's signed word (auditlog.KeyDestruction)
	// that the CA's key in a token or KMS may be destroyed: kept with a
	// DELETED CA for its purge, and given with a key to destroy
	// (RecordKeyMade, KeysToDestroy). A key store destroys no key without
	// it.
	Destruction []byte

	// Certificate (DER) and CertificateChain (PEM, issuer first) are set by
	// ImportCertificateAuthorityCertificate.
	Certificate      []byte
	CertificateChain []byte
	Serial           string // of Certificate, as colon-separated hex
	NotBefore        time.Time
	NotAfter         time.Time

	Tags []Tag

	// Policy is the CA's resource policy (PutPolicy), "" if it has none,
	// and SharedWith the accounts its statements name.
	Policy     string
	SharedWith []string

	// Version counts the record's updates; UpdateCA refuses a stale one.
	Version int64
}

// MaxAccountPolicySize bounds the bytes of the resource policies of one
// account's CAs, all together (our choice; AWS documents none, and shares
// across accounts through RAM, whose shares are accepted). Each policy
// that names an account is read whenever that account lists the CAs
// shared with it, which it cannot refuse: 200 CAs with 80 KB policies of
// short conditions took 2.5 s of a processor at each such listing. A MiB
// holds a policy of a few KB for each of an account's CAs, and costs
// another account's listing some 0.2 s at most.
const MaxAccountPolicySize = 1 << 20

// Describe renders ca as the API's CertificateAuthority at time now. A CA
// that expired changed state when its certificate ended.
func (ca *CA) Describe(now time.Time) *CertificateAuthority {
	cfg := ca.Config
	status, changed := ca.StatusAt(now), ca.LastStateChangeAt
	if status == CertificateAuthorityStatusExpired && ca.NotAfter.After(changed) {
		changed = ca.NotAfter
	}
	return &CertificateAuthority{
		Arn:                               ca.ARN,
		OwnerAccount:                      ca.AccountID,
		CreatedAt:                         NewTimestamp(ca.CreatedAt),
		LastStateChangeAt:                 NewTimestamp(changed),
		Type:                              ca.Type,
		Serial:                            ca.Serial,
		Status:                            status,
		NotBefore:                         NewTimestamp(ca.NotBefore),
		NotAfter:                          NewTimestamp(ca.NotAfter),
		FailureReason:                     ca.FailureReason,
		CertificateAuthorityConfiguration: &cfg,
		RevocationConfiguration:           ca.describeRevocation(),
		RestorableUntil:                   NewTimestamp(ca.RestorableUntil),
		KeyStorageSecurityStandard:        ca.KeyStorageSecurityStandard,
		UsageMode:                         ca.UsageMode,
	}
}

// describeRevocation is the revocation configuration as AWS describes it:
// each of CRL and OCSP disabled unless configured, an enabled CRL with its
// defaults.
func (ca *CA) describeRevocation() *RevocationConfiguration {
	rc := RevocationConfiguration{}
	if ca.Revocation != nil {
		rc = *ca.Revocation
	}
	disabled := false
	if crl := ca.CRL(); crl != nil {
		rc.CrlConfiguration = crl
	}
	if rc.CrlConfiguration == nil {
		rc.CrlConfiguration = &CrlConfiguration{Enabled: &disabled}
	}
	if rc.OcspConfiguration == nil {
		rc.OcspConfiguration = &OcspConfiguration{Enabled: &disabled}
	}
	return &rc
}

// SetStatus moves ca to status at now.
func (ca *CA) SetStatus(status CertificateAuthorityStatus, now time.Time) {
	ca.Status = status
	ca.LastStateChangeAt = now
}

// StatusAt is the status of ca at time now: an ACTIVE or DISABLED CA whose
// certificate has expired is EXPIRED.
func (ca *CA) StatusAt(now time.Time) CertificateAuthorityStatus {
	switch ca.Status {
	case CertificateAuthorityStatusActive, CertificateAuthorityStatusDisabled:
		if !ca.NotAfter.IsZero() && now.After(ca.NotAfter) {
			return CertificateAuthorityStatusExpired
		}
	}
	return ca.Status
}

// Gone reports whether ca was deleted and its restoration period is over:
// it is deleted for good and must be treated as not found.
func (ca *CA) Gone(now time.Time) bool {
	return ca.Status == CertificateAuthorityStatusDeleted && !now.Before(ca.RestorableUntil)
}

// ARNs. AWS Private CA names a CA
// arn:<partition>:acm-pca:<region>:<account>:certificate-authority/<uuid>
// and a certificate <ca-arn>/certificate/<serial in lowercase hex>; the
// partition is the region's (see Partition).
const (
	caResource   = "certificate-authority/"
	certResource = "/certificate/"
)

// CAARN returns the ARN of the CA id of account in region.
func CAARN(region, accountID, id string) string {
	return fmt.Sprintf("arn:%s:acm-pca:%s:%s:%s%s", Partition(region), region, accountID, caResource, id)
}

// partitions are AWS's partitions other than aws, with the regions of
// each, as the endpoint data of the AWS SDKs (botocore's partitions.json)
// defines them.
var partitions = []partition{
	{"aws-cn", regexp.MustCompile(`^cn-\w+-\d+$`)},
	{"aws-eusc", regexp.MustCompile(`^eusc-(de)-\w+-\d+$`)},
	{"aws-iso", regexp.MustCompile(`^us-iso-\w+-\d+$`)},
	{"aws-iso-b", regexp.MustCompile(`^us-isob-\w+-\d+$`)},
	{"aws-iso-e", regexp.MustCompile(`^eu-isoe-\w+-\d+$`)},
	{"aws-iso-f", regexp.MustCompile(`^us-isof-\w+-\d+$`)},
	{"aws-us-gov", regexp.MustCompile(`^us-gov-\w+-\d+$`)},
}

// Partition returns the partition of region, as its ARNs name it: aws-cn
// for cn-north-1, aws-us-gov for us-gov-west-1, and so on; aws for the
// regions of no other partition, and for names that are no AWS region.
func Partition(region string) string {
	for _, p := range partitions {
		if p.regions.MatchString(region) {
			return p.id
		}
	}
	return "aws"
}

type partition struct {
	id      string
	regions *regexp.Regexp
}

// IsPartition reports whether id names an AWS partition.
func IsPartition(id string) bool {
	return id == "aws" || slices.ContainsFunc(partitions, func(p partition) bool { return p.id == id })
}

// CertificateARN is the ARN of the certificate of serial (lowercase hex)
// that the CA caARN issued.
func CertificateARN(caARN, serial string) string {
	return caARN + "/certificate/" + serial
}

// ParsedARN is a CA ARN taken apart.
type ParsedARN struct {
	Partition string
	Region    string
	AccountID string
	CAID      string
	// CertificateSerial is the lowercase hex serial of a certificate ARN.
	CertificateSerial string
}

// ParseCAARN parses the ARN of a certificate authority. A string that is not
// one is an InvalidArnException.
func ParseCAARN(arn string) (ParsedARN, error) {
	p, err := parseARN(arn)
	if err == nil && p.CertificateSerial != "" {
		err = fmt.Errorf("it names a certificate, not a certificate authority")
	}
	if err != nil {
		return ParsedARN{}, Errorf(CodeInvalidArn, "The ARN %s is not a valid certificate authority ARN: %v.", arn, err)
	}
	return p, nil
}

// ParseCertificateARN parses the ARN of a certificate issued by a CA.
func ParseCertificateARN(arn string) (ParsedARN, error) {
	p, err := parseARN(arn)
	if err == nil && p.CertificateSerial == "" {
		err = fmt.Errorf("it names a certificate authority, not a certificate")
	}
	if err != nil {
		return ParsedARN{}, Errorf(CodeInvalidArn, "The ARN %s is not a valid certificate ARN: %v.", arn, err)
	}
	return p, nil
}

func parseARN(arn string) (ParsedARN, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "acm-pca" {
		return ParsedARN{}, fmt.Errorf("it is not an acm-pca ARN")
	}
	p := ParsedARN{Partition: parts[1], Region: parts[3], AccountID: parts[4]}
	resource, ok := strings.CutPrefix(parts[5], caResource)
	if !ok {
		return ParsedARN{}, fmt.Errorf("its resource is not %q", strings.TrimSuffix(caResource, "/"))
	}
	id, serial, hasCert := strings.Cut(resource, certResource)
	if u, err := uuid.Parse(id); err != nil || u.String() != id {
		return ParsedARN{}, fmt.Errorf("%q is not a certificate authority id", id)
	}
	p.CAID = id
	if hasCert {
		if serial == "" || strings.Trim(serial, "0123456789abcdef") != "" {
			return ParsedARN{}, fmt.Errorf("%q is not a certificate serial in lowercase hex", serial)
		}
		p.CertificateSerial = serial
	} else if strings.Contains(resource, "/") {
		return ParsedARN{}, fmt.Errorf("unexpected path after the certificate authority id")
	}
	if p.Region == "" || !ValidAccountID(p.AccountID) {
		return ParsedARN{}, fmt.Errorf("it lacks a region or a 12-digit account")
	}
	if want := Partition(p.Region); p.Partition != want {
		return ParsedARN{}, fmt.Errorf("the partition of region %s is %s, not %q", p.Region, want, p.Partition)
	}
	return p, nil
}
