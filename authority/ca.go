package authority

import (
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/auditlog"
	"github.com/openpca/openpca/pki"
	"github.com/openpca/openpca/policy"
)

// IdempotencyWindow is how long an idempotency token returns the result of
// its first use.
const IdempotencyWindow = 5 * time.Minute

// CreateCertificateAuthority creates a CA: its key pair, generated and
// sealed here, and its CSR, signed with that key.
//
// AWS creates the key asynchronously and shows the CA as CREATING until it
// is ready. OpenPCA generates the key within the request, so the CA it
// returns is already PENDING_CERTIFICATE and its CSR is ready at once.
func (s *Service) CreateCertificateAuthority(ctx context.Context, in *openpca.CreateCertificateAuthorityRequest) (*openpca.CreateCertificateAuthorityResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	// The resource of a creation is every CA of the account, as AWS names
	// it in its denials.
	// The tags are the request's, and the new CA's own: AWS's example of
	// restricted tagging at creation denies by aws:ResourceTag.
	tags := requestTags(in.Tags, true)
	for _, t := range in.Tags {
		tags[prefixResourceTag+policy.FoldKey(t.Key)] = []string{t.Value}
	}
	if err := s.authorize(ctx, c, nil, openpca.CAARN(s.region, c.AccountID, "*"), tags); err != nil {
		return nil, err
	}
	// Tags given at creation need the right to tag too, as on AWS: else a
	// key denied tagging would tag a CA by creating it with the tags.
	if len(in.Tags) > 0 {
		if err := s.authorizeAction(ctx, c, ActionPrefix+"TagCertificateAuthority", nil, openpca.CAARN(s.region, c.AccountID, "*"), tags); err != nil {
			return nil, err
		}
	}
	cfg := in.CertificateAuthorityConfiguration
	if _, err := pki.SignatureAlgorithm(cfg.KeyAlgorithm, cfg.SigningAlgorithm); err != nil {
		return nil, openpca.Errorf(openpca.CodeInvalidArgs, "%v.", err)
	}
	// Before a key is made for it: CreateCSR would refuse it after.
	if _, err := pki.MarshalSubject(cfg.Subject); err != nil {
		return nil, openpca.Errorf(openpca.CodeInvalidArgs, "Invalid certificate authority configuration: Subject: %v.", err)
	}
	if cfg.CsrExtensions != nil && cfg.CsrExtensions.KeyUsage != nil {
		ku, err := pki.KeyUsageExtension(cfg.CsrExtensions.KeyUsage)
		if err == nil {
			err = pki.CheckKeyUsage(cfg.KeyAlgorithm, ku)
		}
		if err != nil {
			return nil, openpca.Errorf(openpca.CodeInvalidArgs, "Invalid certificate authority configuration: CsrExtensions: %v.", err)
		}
	}
	// AWS Private CA offers SM2 in its China regions alone.
	if cfg.KeyAlgorithm == openpca.KeyAlgorithmSm2 && openpca.Partition(s.region) != "aws-cn" {
		return nil, openpca.Errorf(openpca.CodeInvalidArgs, "KeyAlgorithm SM2 is available in the China regions (cn-north-1, cn-northwest-1) only; this server's region is %s.", s.region)
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	if err := checkTagCase(nil, in.Tags); err != nil {
		return nil, err
	}
	if err := checkRevocation(in.RevocationConfiguration); err != nil {
		return nil, err
	}
	if err := s.checkCRLBucket(ctx, c.AccountID, in.RevocationConfiguration); err != nil {
		return nil, err
	}
	ks, standard, err := s.keyStoreFor(in.KeyStorageSecurityStandard)
	if err != nil {
		return nil, err
	}
	if s.requireHardware && !ks.Hardware() {
		return nil, openpca.Errorf(openpca.CodeInvalidArgs, "This server keeps CA keys only in hardware, and its %s key store is not.", ks.Name())
	}
	// A retry gets the CA its token made without a key made for nothing:
	// in a token or KMS, one made and destroyed at each retry. (Requests
	// at the same moment on one server wait for the first; on several,
	// each makes one, and the store keeps one CA.) Before the CA's time
	// and id are drawn: one that waited and then creates (the first
	// failed) is created when it creates.
	if in.IdempotencyToken != "" {
		arn, end, err := s.joinCreation(ctx, c.AccountID, in.IdempotencyToken)
		if err != nil {
			return nil, err
		}
		if arn != "" {
			return &openpca.CreateCertificateAuthorityResponse{CertificateAuthorityArn: arn}, nil
		}
		defer end()
	}
	now := s.now().UTC()
	// A version 7 UUID grows with time, so that CAs created in the same
	// instant still list in creation order.
	uid, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	id := uid.String()
	ca := &openpca.CA{
		ID:                         id,
		AccountID:                  c.AccountID,
		ARN:                        openpca.CAARN(s.region, c.AccountID, id),
		Type:                       in.CertificateAuthorityType,
		Status:                     openpca.CertificateAuthorityStatusPendingCertificate,
		CreatedAt:                  now,
		LastStateChangeAt:          now,
		Config:                     *cfg,
		Revocation:                 in.RevocationConfiguration,
		KeyStorageSecurityStandard: standard,
		UsageMode:                  in.UsageMode,
		KeyStore:                   ks.Name(),
		Tags:                       in.Tags,
	}
	if ca.UsageMode == "" {
		ca.UsageMode = openpca.CertificateAuthorityUsageModeGeneralPurpose
	}
	token := openpca.IdempotencyToken{AccountID: c.AccountID, Operation: "CreateCertificateAuthority", Token: in.IdempotencyToken, Now: now, Since: now.Add(-IdempotencyWindow)}
	// Nor for an account at its limit, counting its creations under way
	// on this server (the store checks again, for other servers').
	n, err := s.store.AccountCAs(ctx, c.AccountID, now)
	if err != nil {
		return nil, err
	}
	_, elsewhere := ks.KeyStore.(openpca.RemoteKeyStore)
	done, err := s.creations.start(ctx, c.AccountID, n, s.maxCAs, !elsewhere)
	if err != nil {
		return nil, err
	}
	// Given back once the key is made and has signed, before the CA is
	// stored: a reservation still held once its CA is stored and counted
	// would refuse another creation the limit has room for. (One let
	// through meanwhile is refused by the store.)
	made := sync.OnceFunc(done)
	// Given back by a key's making the request gave up on, once it ends
	// (madeLate): an account that gives up on a slow KMS at once would
	// otherwise have as many keys made at once as it likes.
	handedOn := false
	defer func() {
		if !handedOn {
			made()
		}
	}()
	// A key whose handle is known before it exists is recorded before it
	// is made: a server that stops while its store makes it, or a store
	// that fails once it has, leaves a record that a purge acts on.
	namer, named := ks.KeyStore.(openpca.KeyNamer)
	if named {
		ca.KeyHandle = namer.KeyHandle(ca)
		if err := s.recordKeyMade(ctx, ca, now, false); err != nil {
			return nil, err
		}
	}
	// The key is made in its store, and signs its CSR there. A key in a
	// token or KMS is made in time (inTime): the request gives up on a
	// store that hangs. One whose record is made already is destroyed by
	// a purge if it is made after; one whose handle is known only once
	// made (KMS's ARN) is recorded then, and destroyed (madeLate).
	generate := func() (newKey, error) {
		handle, key, err := ks.GenerateKey(ctx, ca, cfg.KeyAlgorithm)
		return newKey{handle, key}, err
	}
	var m newKey
	switch {
	case named:
		m, err = inStore(ctx, s.keys, ks, ca, generate)
	case ks.Hardware():
		m, handedOn, err = s.madeLate(ctx, ks, ca, now, generate, made)
	default:
		m, err = generate()
	}
	handle, key := m.handle, m.key
	if err != nil {
		switch {
		case named && openpca.ErrorCode(err) == openpca.CodeInvalidArgs:
			// Refused before any key was made: nothing to destroy.
			if ferr := s.store.KeyDestroyed(context.WithoutCancel(ctx), ca.ID); ferr != nil {
				s.logger.WarnContext(ctx, "the record of a key its store refused to make stays, for a purge to find nothing", "ca", ca.ARN, "error", ferr)
			}
		case !named && handle != nil && ks.Hardware():
			// A key made, that its store could not destroy: recorded,
			// a purge destroys it.
			s.recordMade(ctx, ks, ca, now, handle)
		}
		return nil, err
	}
	ca.KeyHandle = handle
	// A key no CA came to hold (the request failed, or its idempotency
	// token returned an earlier CA) leaves its store; unless the store
	// may have stored the CA all the same (an error after its commit, a
	// connection lost): then the record of the key made decides (a purge
	// destroys the key if no CA holds it).
	kept := false
	defer func() {
		if !kept {
			// Beyond the request, but bounded: a store that hangs leaves
			// the key to its record, for a purge.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keyDestroyWait)
			defer cancel()
			s.destroyKeys(ctx, []*openpca.CA{ca}, false)
		}
	}()
	keyID, err := pki.SubjectKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	ca.KeyID = hex.EncodeToString(keyID)
	// A key outside the database is recorded before anything else can
	// fail: a server that stops before the CA is stored, or cannot destroy
	// the key when its request fails, would leave it in its token or KMS,
	// unknown. Storing the CA forgets the record; else a purge destroys
	// the key once the record is KeyMadeGrace old.
	if ks.Hardware() {
		// Whatever the request's end: a key left unrecorded here, that
		// the destruction below fails to destroy, is found by nothing.
		if err := s.recordKeyMade(context.WithoutCancel(ctx), ca, now, true); err != nil {
			return nil, err
		}
	}
	signer := bind(ctx, s.keys.fromStore(ks, ca, key))
	if ca.CSR, err = pki.CreateCSR(signer, cfg); err != nil {
		if err = wrongSignature(signer, err); signingFailed(err) {
			return nil, err
		}
		return nil, openpca.Errorf(openpca.CodeInvalidArgs, "Invalid certificate authority configuration: %v.", err)
	}
	made()
	created, err := s.store.CreateCA(ctx, ca, openpca.CSRUse(ca, c.Principal, openpca.RequestIDFrom(ctx)), token, s.maxCAs)
	switch {
	case errors.Is(err, openpca.ErrLimitExceeded):
		return nil, limitExceeded(c.AccountID, s.maxCAs)
	case errors.Is(err, openpca.ErrKeyGivenUp):
		return nil, err
	case err != nil:
		// Not known to be rolled back: a CA stored holds the key, and
		// the record of a key made is there for one not stored.
		kept = ks.Hardware()
		return nil, err
	}
	if kept = created.ID == ca.ID; kept {
		s.logger.InfoContext(ctx, "certificate authority created", "ca", ca.ARN, "type", ca.Type, "key_algorithm", cfg.KeyAlgorithm, "key_store", ca.KeyStore)
	}
	return &openpca.CreateCertificateAuthorityResponse{CertificateAuthorityArn: created.ARN}, nil
}

// newKey is a key a store made for a CA, and its handle.
type newKey struct {
	handle []byte
	key    crypto.Signer
}

// madeLate makes a key with generate in ks, a store that names its keys
// once made (KMS), in time (inTime). A key made after the request gave
// up (late) is no CA's: it is recorded, and destroyed, or left to a
// purge; and done, which gives back the creation's turn, is called once
// that is over, not by the caller.
func (s *Service) madeLate(ctx context.Context, ks KeyStore, ca *openpca.CA, now time.Time, generate func() (newKey, error), done func()) (newKey, bool, error) {
	// The call's result is taken by the request, or, once it gave up, by
	// the call itself: one or the other, whichever comes first, even
	// when both come at once. A call begun after the request gave up
	// makes nothing.
	var mu sync.Mutex
	var made *newKey
	var madeErr error
	begun, gaveUp := false, false
	m, err := inStore(ctx, s.keys, ks, ca, func() (newKey, error) {
		mu.Lock()
		if gaveUp {
			mu.Unlock()
			return newKey{}, context.Cause(ctx)
		}
		begun = true
		mu.Unlock()
		m, err := func() (m newKey, err error) {
			// A panic, which inTime would make the call's error, is one
			// here, so that the result is still taken by one or the other.
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("the key store %s failed: %v", ks.Name(), p)
				}
			}()
			return generate()
		}()
		mu.Lock()
		defer mu.Unlock()
		if !gaveUp {
			made, madeErr = &m, err
			return m, err
		}
		// Out of the store's slot, which its destruction takes again.
		go func() {
			defer done()
			if err != nil {
				s.logger.ErrorContext(ctx, "making a CA's key, which its request gave up on, failed", "ca", ca.ARN, "key_store", ks.Name(), "error", err)
			}
			if m.handle == nil {
				return
			}
			s.recordMade(ctx, ks, ca, now, m.handle)
			if err == nil {
				late := *ca
				late.KeyHandle = m.handle
				dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keyDestroyWait)
				defer cancel()
				s.destroyKeys(dctx, []*openpca.CA{&late}, false)
			}
		}()
		return m, err
	})
	mu.Lock()
	defer mu.Unlock()
	if made != nil {
		return *made, false, madeErr
	}
	gaveUp = true
	return m, begun, err
}

// recordKeyMade records that ca's key was made at now, or is about to be
// (RecordKeyMade), with the audit key's word that it may be destroyed
// once KeyMadeGrace has passed (a purge destroys it if no CA holds it
// then). A word the audit key could not sign (kept in a token that is
// away) fails the call; a key already made is recorded all the same, for
// a purge to name it to the operator rather than destroy it.
func (s *Service) recordKeyMade(ctx context.Context, ca *openpca.CA, now time.Time, made bool) error {
	record := *ca
	var signErr error
	record.Destruction, signErr = s.signDestruction(&record, auditlog.DestructionNeverStored, now.Add(openpca.KeyMadeGrace))
	if signErr != nil && !made {
		return signErr
	}
	if err := s.store.RecordKeyMade(ctx, &record, now); err != nil {
		return errors.Join(signErr, err)
	}
	return signErr
}

// recordMade records handle, of a key ks made for ca, which no CA holds:
// a purge destroys it.
func (s *Service) recordMade(ctx context.Context, ks KeyStore, ca *openpca.CA, now time.Time, handle []byte) {
	made := *ca
	made.KeyHandle = handle
	if err := s.recordKeyMade(context.WithoutCancel(ctx), &made, now, true); err != nil {
		s.logger.ErrorContext(ctx, "a key made in its store is not recorded with the audit key's word that it may be destroyed, and no purge will destroy it: destroy it by hand", "ca", ca.ARN, "key_store", ks.Name(), "key", string(handle), "error", err)
	}
}

func limitExceeded(accountID string, limit int) error {
	return openpca.Errorf(openpca.CodeLimitExceeded, "Account %s already has %d certificate authorities, the most it may have (deleted ones count until their restoration period ends).", accountID, limit)
}

// joinCreation looks for the CA that a CreateCertificateAuthority of
// account's token made; while one of the token is under way on this
// server, it waits for it to end and looks again. It returns the CA's ARN,
// or else end, which the caller calls when its own creation ends.
func (s *Service) joinCreation(ctx context.Context, account, token string) (arn string, end func(), err error) {
	for {
		now := s.now().UTC()
		id, err := s.store.FindIdempotent(ctx, openpca.IdempotencyToken{AccountID: account, Operation: "CreateCertificateAuthority", Token: token, Now: now, Since: now.Add(-IdempotencyWindow)})
		if err == nil {
			earlier, err := s.store.FindCA(ctx, account, id)
			if err != nil {
				return "", nil, err
			}
			return earlier.ARN, nil, nil
		}
		if !errors.Is(err, openpca.ErrNotFound) {
			return "", nil, err
		}
		end, waited, err := s.creations.join(ctx, account, token)
		if err != nil || !waited {
			return "", end, err
		}
	}
}

// DescribeCertificateAuthority describes a CA in any status.
func (s *Service) DescribeCertificateAuthority(ctx context.Context, in *openpca.DescribeCertificateAuthorityRequest) (*openpca.DescribeCertificateAuthorityResponse, error) {
	ca, err := s.findCA(ctx, in.CertificateAuthorityArn, nil)
	if err != nil {
		return nil, err
	}
	return &openpca.DescribeCertificateAuthorityResponse{CertificateAuthority: ca.Describe(s.now())}, nil
}

// MaxCAsPerPage is the most CAs ListCertificateAuthorities returns at once.
const MaxCAsPerPage = 100

// ListCertificateAuthorities lists the caller's CAs in creation order, or
// with ResourceOwner OTHER_ACCOUNTS the CAs other accounts shared with the
// caller's by their policies, those the caller may describe: a CA shared
// for IssueCertificate alone is not described to its users (on AWS, every
// permission that shares a CA lets the other account describe it). A page
// is filled with the CAs listed, read past those that are not; it has a
// NextToken only if a CA to list comes after it, and the token is the
// place of the page's last CA: a token never names a CA the caller is not
// shown.
func (s *Service) ListCertificateAuthorities(ctx context.Context, in *openpca.ListCertificateAuthoritiesRequest) (*openpca.ListCertificateAuthoritiesResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, c, nil, "*", nil); err != nil {
		return nil, err
	}
	// A list of CAs is the caller's account's, or those shared with it.
	owner := openpca.ResourceOwnerSelf // AWS's default
	if in.ResourceOwner == openpca.ResourceOwnerOtherAccounts {
		owner = in.ResourceOwner
	}
	listOf := "ListCertificateAuthorities/" + c.AccountID + "/" + string(owner)
	var after openpca.CACursor
	if in.NextToken != "" {
		var place cursorToken
		if !decodeNextToken(in.NextToken, listOf, &place) || place.ID == "" {
			return nil, openpca.Errorf(openpca.CodeInvalidNextToken, "The NextToken is not one this server returned for this list.")
		}
		after = openpca.CACursor{CreatedAt: time.UnixMicro(place.CreatedAt), ID: place.ID}
	}
	out := &openpca.ListCertificateAuthoritiesResponse{CertificateAuthorities: []openpca.CertificateAuthority{}}
	// AWS returns at most 100 CAs a page, whatever MaxResults says (up to
	// 1000): its API reference says so of MaxResults.
	limit := min(int(in.MaxResults), MaxCAsPerPage)
	if limit <= 0 { // unset; the wire layer refuses negative values
		limit = MaxCAsPerPage
	}
	list := s.store.ListCAs
	if in.ResourceOwner == openpca.ResourceOwnerOtherAccounts {
		list = s.store.ListSharedCAs
	}
	now := s.now()
	listed := func(ca *openpca.CA) bool {
		if ca.Gone(now) {
			return false
		}
		return in.ResourceOwner != openpca.ResourceOwnerOtherAccounts ||
			Decide(s.policies, c, ActionPrefix+"DescribeCertificateAuthority", ca, "", ConditionValues(c, ca, s.region, nil, now)).Allowed
	}
	var last *openpca.CA // the last CA on the page
	for {
		cas, err := list(ctx, c.AccountID, after, limit+1)
		if err != nil {
			return nil, err
		}
		for _, ca := range cas {
			after = openpca.CACursor{CreatedAt: ca.CreatedAt, ID: ca.ID}
			if !listed(ca) {
				continue
			}
			// A CA to list past a full page: there is a next one.
			if len(out.CertificateAuthorities) == limit {
				out.NextToken = encodeNextToken(listOf, cursorToken{last.CreatedAt.UnixMicro(), last.ID})
				return out, nil
			}
			out.CertificateAuthorities = append(out.CertificateAuthorities, *ca.Describe(now))
			last = ca
		}
		if len(cas) <= limit {
			return out, nil
		}
	}
}

// cursorToken is the place of a page of CAs, in a NextToken.
type cursorToken struct {
	CreatedAt int64  `json:"t"`
	ID        string `json:"i"`
}
