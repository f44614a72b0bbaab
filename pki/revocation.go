package pki

import "github.com/openpca/openpca"

// crlReasons maps the API's revocation reasons to RFC 5280's CRLReason
// codes.
var crlReasons = map[openpca.RevocationReason]int{
	openpca.RevocationReasonUnspecified:                    0,
	openpca.RevocationReasonKeyCompromise:                  1,
	openpca.RevocationReasonCertificateAuthorityCompromise: 2,
	openpca.RevocationReasonAffiliationChanged:             3,
	openpca.RevocationReasonSuperseded:                     4,
	openpca.RevocationReasonCessationOfOperation:           5,
	openpca.RevocationReasonPrivilegeWithdrawn:             9,
	openpca.RevocationReasonAACompromise:                   10,
}

// CRLReason is RFC 5280's CRLReason code of a revocation reason, as CRLs
// and OCSP answers carry it.
func CRLReason(r openpca.RevocationReason) int { return crlReasons[r] }
