// Package authority implements the operations of AWS Private CA on the
// domain: the lifecycle of certificate authorities, their keys, CSRs,
// certificates and tags. It reaches storage only through openpca.Store and
// CA keys only through openpca.KeyStore.
package authority

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/internal/logsample"
)

// Config holds the settings of a Service.
type Config struct {
	Store openpca.Store
	// Keys are the CA keys, in the stores where they can be kept; the
	// first store holds the keys of new CAs unless a request's
	// KeyStorageSecurityStandard asks for another (see keyStoreFor).
	Keys *Keys
	// RequireHardware refuses to create CAs whose keys would be kept in
	// software.
	RequireHardware bool
	// AllowUnmetStandard accepts a KeyStorageSecurityStandard that no key
	// store is declared to meet, and reports it: the operator's claim.
	AllowUnmetStandard bool
	Logger             *slog.Logger
	// Region is the region in the ARNs of the CAs this server creates.
	Region string
	// DefaultAccountID is the default account, which owns the buckets no
	// account was given.
	DefaultAccountID string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// MaxCAsPerAccount bounds how many CAs an account may have, including
	// deleted ones still restorable; 0 means DefaultMaxCAsPerAccount.
	MaxCAsPerAccount int
	// Objects holds the buckets audit reports and CRLs go to.
	Objects openpca.ObjectStore
	// Reports, if set, is woken when a report is requested.
	Reports interface{ Wake() }
	// CRLs, if set, is woken when a CA may want a new CRL.
	CRLs interface{ Wake() }
	// AuditReportInterval is the least time between two reports of a CA;
	// 0 means DefaultAuditReportInterval.
	AuditReportInterval time.Duration
	// Log signs checkpoints of the CAs' key-use logs and proves what they
	// hold.
	Log *auditlog.Log
	// PublicURL is where relying parties reach this server (its OCSP
	// responder, and local buckets' CRLs), as http(s)://host[:port].
	PublicURL string
	// OCSPUnknownRate bounds how many OCSP responses per second the server
	// signs for serials no CA issued; 0 means DefaultOCSPUnknownRate.
	OCSPUnknownRate float64
	// OCSPUnknownBudget bounds the bytes such responses add to each CA's
	// key-use log per hour; 0 means DefaultOCSPUnknownBudget.
	OCSPUnknownBudget int
	// OCSPSigners bounds how many OCSP answers the server signs at once
	// with its own processors (a responder's key, or a CA's in software;
	// one in a token or KMS takes OCSPStoreSigners); 0 means half its
	// CPUs, one at least. Anyone may ask about any serial, and answers for
	// issued certificates are held back by no rate: a flood of them (each
	// an RSA-4096 signing, say) would otherwise take every processor from
	// the API and its other requests. An answer that finds no signer free
	// within a second is tryLater (RFC 6960), which clients ask again
	// after. Delegated responders' keys are made one at a time apart,
	// each waiting as long as its issuance may.
	OCSPSigners int
	// OCSPStoreSigners bounds how many OCSP answers CAs sign at once in
	// each key store that is a token or KMS, no CA more than half of them
	// (one at least); 0 means DefaultOCSPStoreSigners. An answer that
	// finds no slot within a second is tryLater, as above.
	OCSPStoreSigners int
	// OCSPSignedByCA has each CA sign its OCSP answers with its own key,
	// each signing logged, instead of by a delegated responder.
	OCSPSignedByCA bool
	// Witnessed, if the server has witnesses, returns the latest
	// checkpoint of a CA's log they cosigned, which the audit log serves.
	Witnessed func(ctx context.Context, caID string) (*openpca.WitnessedCheckpoint, error)
	// Alarm, if set, is told of every CA's key-use log found not to
	// match its hashes.
	Alarm openpca.IntegrityAlarm
	// DestructionRefused, if set, is told of every key to destroy that
	// is left in its store for want of the audit key's word for it (see
	// DestroyKeys).
	DestructionRefused func()
}

// DefaultMaxCAsPerAccount is AWS Private CA's default quota of CAs per
// account and region.
const DefaultMaxCAsPerAccount = 200

// Service implements openpca.PrivateCA: every operation of the model.
type Service struct {
	store openpca.Store
	keys  *Keys
	// requireHardware and allowUnmet are Config's.
	requireHardware, allowUnmet bool
	logger                      *slog.Logger
	// ocspFailures logs, sampled, the OCSP requests that failed: anyone
	// can send them, and while the store fails each one fails.
	ocspFailures *slog.Logger
	region       string
	// defaultAccount owns the buckets no account was given.
	defaultAccount string
	now            func() time.Time
	maxCAs         int

	objects        openpca.ObjectStore
	reports        interface{ Wake() }
	crls           interface{ Wake() }
	reportInterval time.Duration
	log            *auditlog.Log
	publicURL      string
	ocsp           ocspCache
	ocspFlights    singleflight.Group // signings of OCSP answers under way
	flights        flights            // those and responders' issuances
	ocspSignedByCA bool
	responders     responders
	// responderFlights are the issuances of OCSP responders under way.
	responderFlights   singleflight.Group
	ocspUnknown        *rate.Limiter
	ocspBudgets        ocspBudgets
	ocspSlots          *ocspSlots
	policies           *CAPolicies
	witnessed          func(ctx context.Context, caID string) (*openpca.WitnessedCheckpoint, error)
	alarm              openpca.IntegrityAlarm
	destructionRefused func()
	// issued keeps the certificates issued last, by ARN, for
	// GetCertificate: a certificate never changes once recorded.
	issued    *lru.Cache[string, *openpca.Certificate]
	creations *creations
}

// issuedCacheSize is how many recently issued certificates the service
// keeps for GetCertificate.
const issuedCacheSize = 4096

var _ openpca.PrivateCA = (*Service)(nil)

// New returns a Service.
func New(cfg Config) *Service {
	s := &Service{
		store: cfg.Store, keys: cfg.Keys, requireHardware: cfg.RequireHardware, allowUnmet: cfg.AllowUnmetStandard,
		logger: cfg.Logger, ocspFailures: logsample.Logger(cfg.Logger), region: cfg.Region, defaultAccount: cfg.DefaultAccountID,
		maxCAs:    cfg.MaxCAsPerAccount,
		witnessed: cfg.Witnessed,
		alarm:     cfg.Alarm, destructionRefused: cfg.DestructionRefused,
		objects: cfg.Objects, reports: cfg.Reports, crls: cfg.CRLs, reportInterval: cfg.AuditReportInterval, log: cfg.Log,
		publicURL: strings.TrimSuffix(cfg.PublicURL, "/"), ocspSignedByCA: cfg.OCSPSignedByCA,
		creations: newCreations(), policies: NewCAPolicies(),
	}
	if s.reportInterval == 0 {
		s.reportInterval = DefaultAuditReportInterval
	}
	if s.destructionRefused == nil {
		s.destructionRefused = func() {}
	}
	clock := cfg.Now
	if clock == nil {
		clock = time.Now
	}
	// Times are stored to the microsecond: one that the key-use log
	// records must be the one the store keeps, or an audit report could
	// not be checked against the log.
	s.now = func() time.Time { return clock().Truncate(time.Microsecond) }
	if s.maxCAs == 0 {
		s.maxCAs = DefaultMaxCAsPerAccount
	}
	unknown := cfg.OCSPUnknownRate
	if unknown == 0 {
		unknown = DefaultOCSPUnknownRate
	}
	s.ocspUnknown = rate.NewLimiter(rate.Limit(unknown), max(1, int(unknown)))
	s.ocspBudgets.perHour = cmp.Or(cfg.OCSPUnknownBudget, DefaultOCSPUnknownBudget)
	s.ocsp.limit = ocspCacheBytes
	s.ocspSlots = newOCSPSlots(cmp.Or(cfg.OCSPSigners, max(1, cpus()/2)), cmp.Or(cfg.OCSPStoreSigners, DefaultOCSPStoreSigners))
	s.issued, _ = lru.New[string, *openpca.Certificate](issuedCacheSize)
	return s
}

// caller returns the account a request acts for. Every request reaching
// the service has been authenticated, so a missing caller is a server bug.
func caller(ctx context.Context) (openpca.Caller, error) {
	c, ok := openpca.CallerFrom(ctx)
	if !ok || c.AccountID == "" {
		return openpca.Caller{}, errors.New("authority: request without a caller")
	}
	return c, nil
}

// findCA returns the CA named by arn, if the caller may perform the
// request's operation on it, with the request's own condition values (see
// authorize). A CA of another account that did not share it with the
// caller's, of another region, or deleted for good, is not found: the API
// does not reveal that it exists. Nor does it reveal to a key of the CA's
// own account what its policies keep it from: on a CA that does not exist,
// such a key is denied as it is on one that does.
func (s *Service) findCA(ctx context.Context, arn string, values conditions) (*openpca.CA, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	p, err := openpca.ParseCAARN(arn)
	if err != nil {
		return nil, err
	}
	notFound := caNotFound(arn)
	if p.Region != s.region {
		return nil, notFound
	}
	ca, err := s.store.FindCA(ctx, p.AccountID, p.CAID)
	if errors.Is(err, openpca.ErrNotFound) || err == nil && ca.Gone(s.now()) {
		// IAM decides before the service looks: the caller's own policies
		// are asked about the ARN, which has no tags to condition on.
		if p.AccountID == c.AccountID {
			if err := s.authorize(ctx, c, nil, arn, values); err != nil {
				return nil, err
			}
		}
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, c, ca, "", values); err != nil {
		return nil, err
	}
	return ca, nil
}

// updateCA finds the CA named by arn as findCA does, applies change to it
// and stores it, starting over if another request changed the CA
// meanwhile.
func (s *Service) updateCA(ctx context.Context, arn string, values conditions, change func(*openpca.CA) error) (*openpca.CA, error) {
	return s.updateLoggedCA(ctx, arn, values, change, nil)
}

// updateLoggedCA is updateCA, which also logs what logged makes of the
// changed CA, if logged is not nil, with the change.
func (s *Service) updateLoggedCA(ctx context.Context, arn string, values conditions, change func(*openpca.CA) error, logged func(*openpca.CA) (*openpca.KeyUse, error)) (*openpca.CA, error) {
	const attempts = 50
	for i := 0; ; i++ {
		if i > 0 {
			// Writers of one CA that collided retry at random times, so
			// that one of them gets through each round.
			select {
			case <-time.After(time.Duration(rand.Int64N(int64(time.Millisecond) << min(i, 6)))):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		ca, err := s.findCA(ctx, arn, values)
		if err != nil {
			return nil, err
		}
		if err := change(ca); err != nil {
			return nil, err
		}
		var use *openpca.KeyUse
		if logged != nil {
			if use, err = logged(ca); err != nil {
				return nil, err
			}
		}
		err = s.store.UpdateCA(ctx, ca, use)
		if errors.Is(err, openpca.ErrConflict) && i+1 < attempts {
			continue
		}
		if errors.Is(err, openpca.ErrNotFound) {
			return nil, caNotFound(arn)
		}
		return ca, err
	}
}

// caNotFound is the error for a CA that does not exist for the caller.
func caNotFound(arn string) error {
	return openpca.Errorf(openpca.CodeResourceNotFound, "Could not find Certificate Authority with ARN %s.", arn)
}

// invalidState is the error for an operation the CA's status forbids. Where
// AWS's wording is known, the message starts with it, since tools match
// on it.
func invalidState(format string, args ...any) error {
	return openpca.Errorf(openpca.CodeInvalidState, format, args...)
}
