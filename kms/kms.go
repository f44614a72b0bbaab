// Package kms keeps CA keys in AWS Key Management Service, or any server
// that speaks its API, through the AWS SDK's KMS client: each key is an
// asymmetric SIGN_VERIFY key made in KMS, which never lets it out and
// signs there. A CA records its key's ARN.
package kms

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/internal/awsconfig"
	"github.com/openpca/openpca/pki"
)

// Name of the store in CA records.
const Name = "kms"

// signTimeout bounds one signature: crypto.Signer gives no context.
const signTimeout = 30 * time.Second

// attemptTimeout bounds each attempt of every call to KMS (three at most):
// a KMS that takes connections and never answers must not hold a request,
// a start or a purge for good.
const attemptTimeout = 20 * time.Second

// newKeyWait bounds the wait for a key KMS has just made to show (see
// newKeySigner).
const newKeyWait = 30 * time.Second

// MaxKeyPolicy is the most bytes a key policy may have in KMS.
const MaxKeyPolicy = 32768

// Store keeps CA keys in KMS. It implements openpca.KeyStore.
type Store struct {
	client *awskms.Client
	// KeyPolicy, if set, is the key policy new keys are made with; KMS's
	// default policy otherwise.
	KeyPolicy string
}

var _ openpca.RemoteKeyStore = (*Store)(nil)

// Open returns a store on KMS in region, or on the KMS-compatible server at
// endpoint. Credentials come from the standard AWS configuration.
func Open(ctx context.Context, endpoint, region string) (*Store, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("kms: loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = region
	}
	return &Store{client: awskms.NewFromConfig(cfg, func(o *awskms.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.RetryMaxAttempts = 3
		o.HTTPClient = awsconfig.BoundBodies(awsconfig.HTTPClient(cfg, attemptTimeout), maxAnswer)
	})}, nil
}

// maxAnswer bounds the body of a KMS answer: those the store asks for (a
// key's metadata, public key, tags, a signature) take a few KB.
const maxAnswer = 1 << 20

// WrapPrefix starts a master key wrapped by KMS, as its file keeps it.
const WrapPrefix = "kms:"

// wrapContext binds a wrapped master key to its use: KMS unwraps it only
// with the same context.
var wrapContext = map[string]string{"purpose": "openpca-master-key"}

// Wrap encrypts a master key with the symmetric KMS key keyID (envelope
// encryption, as Vault's auto-unseal does), and returns it as its file
// keeps it: WrapPrefix and the ciphertext in base64. The key then exists
// in the clear only in the memory of a server that KMS lets unwrap it.
func (s *Store) Wrap(ctx context.Context, keyID string, key []byte) (string, error) {
	out, err := s.client.Encrypt(ctx, &awskms.EncryptInput{KeyId: &keyID, Plaintext: key, EncryptionContext: wrapContext})
	if err != nil {
		return "", fmt.Errorf("kms: wrapping the master key with %s: %w", keyID, err)
	}
	return WrapPrefix + base64.StdEncoding.EncodeToString(out.CiphertextBlob), nil
}

// Unwrap decrypts a master key Wrap returned.
func (s *Store) Unwrap(ctx context.Context, wrapped string) ([]byte, error) {
	blob, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(strings.TrimSpace(wrapped), WrapPrefix))
	if err != nil {
		return nil, fmt.Errorf("kms: the wrapped master key is not base64: %w", err)
	}
	out, err := s.client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blob, EncryptionContext: wrapContext})
	if err != nil {
		return nil, fmt.Errorf("kms: unwrapping the master key: %w", err)
	}
	return out.Plaintext, nil
}

// Name implements openpca.KeyStore.
func (*Store) Name() string { return Name }

// Hardware implements openpca.KeyStore.
func (*Store) Hardware() bool { return true }

// MakesKeysElsewhere implements openpca.RemoteKeyStore: KMS makes its
// keys, and the server waits on the network meanwhile.
func (*Store) MakesKeysElsewhere() {}

// keySpecs are the key algorithms the store makes keys of.
var keySpecs = map[openpca.KeyAlgorithm]types.KeySpec{
	openpca.KeyAlgorithmEcPrime256v1: types.KeySpecEccNistP256,
	openpca.KeyAlgorithmEcSecp384r1:  types.KeySpecEccNistP384,
	openpca.KeyAlgorithmEcSecp521r1:  types.KeySpecEccNistP521,
	openpca.KeyAlgorithmRsa2048:      types.KeySpecRsa2048,
	openpca.KeyAlgorithmRsa3072:      types.KeySpecRsa3072,
	openpca.KeyAlgorithmRsa4096:      types.KeySpecRsa4096,
}

// ecdsaHashes are the only hashes KMS signs with for each EC key.
var ecdsaHashes = map[openpca.KeyAlgorithm]string{
	openpca.KeyAlgorithmEcPrime256v1: "SHA256",
	openpca.KeyAlgorithmEcSecp384r1:  "SHA384",
	openpca.KeyAlgorithmEcSecp521r1:  "SHA512",
}

// GenerateKey implements openpca.KeyStore: a SIGN_VERIFY key, described and
// tagged with the CA's ARN; its ARN is the handle.
func (s *Store) GenerateKey(ctx context.Context, ca *openpca.CA, alg openpca.KeyAlgorithm) ([]byte, crypto.Signer, error) {
	spec, ok := keySpecs[alg]
	if !ok {
		return nil, nil, openpca.Errorf(openpca.CodeInvalidArgs, "KeyAlgorithm %s: this server's KMS key store makes EC P-256, P-384 and P-521 and RSA 2048, 3072 and 4096 keys only.", alg)
	}
	if want, ok := ecdsaHashes[alg]; ok && !strings.HasPrefix(string(ca.Config.SigningAlgorithm), want) {
		return nil, nil, openpca.Errorf(openpca.CodeInvalidArgs, "SigningAlgorithm %s: KMS signs with %s keys using %s only; use %sWITHECDSA.",
			ca.Config.SigningAlgorithm, alg, want, want)
	}
	in := &awskms.CreateKeyInput{
		KeySpec: spec, KeyUsage: types.KeyUsageTypeSignVerify,
		Description: aws.String("OpenPCA key of " + ca.ARN),
		Tags:        []types.Tag{{TagKey: aws.String(caTag), TagValue: aws.String(ca.ARN)}},
	}
	if s.KeyPolicy != "" {
		in.Policy = aws.String(s.KeyPolicy)
	}
	// A key made is no longer the request's: a client that goes away must
	// not leave it made and unknown.
	ctx = context.WithoutCancel(ctx)
	out, err := s.client.CreateKey(ctx, in, func(o *awskms.Options) { o.Retryer = createKeyRetryer() })
	if err != nil {
		refused := refused(err)
		err = refusal(ca, err)
		if !refused {
			// Neither an answer nor a refusal: KMS may have made the key.
			err = errors.Join(err, fmt.Errorf("kms: CreateKey for %s had no answer: a key tagged openpca:certificate-authority=%s may have been made, which no CA holds", ca.ARN, ca.ARN))
		}
		return nil, nil, err
	}
	arn := aws.ToString(out.KeyMetadata.Arn)
	key, ours, err := s.newKeySigner(ctx, ca, arn)
	if foreign, ok := errors.AsType[*foreignKey](err); ok {
		// Not a key made for ca (a KMS that answered with another CA's,
		// broken or hostile): held, a purge of ca would destroy the other
		// CA's key. It is left alone, not destroyed, nor recorded.
		return nil, nil, errors.Join(openpca.Errorf(openpca.CodeServiceUnavailable, "KMS answered with a key that was not made for %s; retry later.", ca.ARN),
			fmt.Errorf("kms: CreateKey for %s answered with %w: it is left alone", ca.ARN, foreign))
	}
	if openpca.ErrorCode(err) == openpca.CodeInvalidState || errors.Is(err, errUntagged) {
		// Not the state of a CA that has none yet: a key KMS still does
		// not show, or lost as it was made, or not yet its tag.
		err = &openpca.Error{Code: openpca.CodeServiceUnavailable, Message: fmt.Sprintf("KMS does not show the key it made for %s; retry later.", ca.ARN), Cause: err}
	}
	if err != nil {
		// Returned, the key would be the caller's to destroy; as it is
		// not, it goes now, if its tag said it is the one made for ca,
		// or else its handle is returned, for the caller to record and a
		// purge to destroy (which looks at its tag again).
		if ours {
			_, derr := s.client.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: &arn, PendingWindowInDays: aws.Int32(pendingDays)})
			if derr == nil {
				return nil, nil, err
			}
			err = errors.Join(err, derr)
		}
		return []byte(arn), nil, errors.Join(err, fmt.Errorf("kms: the key %s made for %s stays, for a purge to destroy", arn, ca.ARN))
	}
	return []byte(arn), key, nil
}

// errUntagged is a key KMS shows without the tag naming a CA, which the
// store makes every key with: AWS KMS may show a key's tags late, as it
// shows the key itself.
var errUntagged = errors.New("kms: the key has no " + caTag + " tag")

// foreignKey is a key tagged for another CA than the one it was made for.
type foreignKey struct{ arn, tag string }

func (f *foreignKey) Error() string {
	return fmt.Sprintf("the key %s, tagged %s=%s", f.arn, caTag, f.tag)
}

// createKeyRetryer tries a CreateKey again only when KMS throttled it:
// KMS makes a key for each CreateKey it takes, and one whose answer was
// lost, or that failed inside KMS, tried again, left a key no CA holds.
func createKeyRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.Retryables = []retry.IsErrorRetryable{retry.NoRetryCanceledError{}, retry.RetryableErrorCode{Codes: retry.DefaultThrottleErrorCodes}}
	})
}

// newKeySigner returns a signer of the key KMS has just made for ca, and
// whether its tag says it is (ours), which it looks at first. AWS KMS is
// eventually consistent, and documents NotFoundException and
// KMSInvalidStateException for a key used right after CreateKey, for
// seconds, rarely minutes: those, and a key without its tag yet, are
// tried again, for newKeyWait at most; any other answer is taken as it
// comes. A key tagged for another CA is a *foreignKey.
func (s *Store) newKeySigner(ctx context.Context, ca *openpca.CA, arn string) (key *signer, ours bool, err error) {
	deadline := time.Now().Add(newKeyWait)
	for wait := 200 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		var tag string
		if tag, err = s.tagOf(ctx, arn); err != nil {
			err = refusal(ca, err)
		} else {
			switch {
			case tag == ca.ARN:
				ours = true
				key, err = s.signer(ctx, ca, arn)
			case tag != "":
				return nil, false, &foreignKey{arn, tag}
			default:
				err = errUntagged
			}
		}
		var notFound *types.NotFoundException
		var state *types.KMSInvalidStateException
		if err == nil || !errors.As(err, &notFound) && !errors.As(err, &state) && !errors.Is(err, errUntagged) || time.Now().Add(wait).After(deadline) {
			return key, ours, err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ours, err
		}
	}
}

// refused reports whether err is KMS's refusal of a request (a status
// of 4xx), which it made nothing for. A request that got no answer (a
// timeout, a connection cut) has status 0, and one whose answer of 200
// could not be read whole may have made a key.
func refused(err error) bool {
	var answered interface{ HTTPStatusCode() int }
	if !errors.As(err, &answered) {
		return false
	}
	status := answered.HTTPStatusCode()
	return 400 <= status && status < 500
}

// Signer implements openpca.KeyStore. The key must be tagged for the CA,
// as the store makes every key: a row that names another CA's key (copied
// or changed by hand) would sign with it outside that key's log. A key
// KMS shows without its tag (one just made, on another server) is a
// ServiceUnavailableException, which clients retry.
func (s *Store) Signer(ctx context.Context, ca *openpca.CA) (crypto.Signer, error) {
	arn := string(ca.KeyHandle)
	tag, err := s.tagOf(ctx, arn)
	switch {
	case err != nil:
		return nil, refusal(ca, err)
	case tag == "":
		return nil, openpca.Errorf(openpca.CodeServiceUnavailable, "The KMS key %s of %s shows no %s tag: the CA signs with it once KMS shows the tag naming it.", arn, ca.ARN, caTag)
	case tag != ca.ARN:
		return nil, openpca.Errorf(openpca.CodeServiceUnavailable, "The KMS key of %s is %s: its row was changed outside the server, and it does not sign.", ca.ARN, &foreignKey{arn, tag})
	}
	return s.signer(ctx, ca, arn)
}

func (s *Store) signer(ctx context.Context, ca *openpca.CA, arn string) (*signer, error) {
	out, err := s.client.GetPublicKey(ctx, &awskms.GetPublicKeyInput{KeyId: &arn})
	if err != nil {
		return nil, refusal(ca, err)
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("kms: the public key of %s: %w", arn, err)
	}
	return &signer{client: s.client, ca: ca, arn: arn, pub: pub}, nil
}

// pendingDays is how long KMS waits before it deletes a key: the shortest
// it allows.
const pendingDays = 7

// DestroyKey implements openpca.KeyStore: KMS deletes the key after the
// shortest waiting period it allows, seven days. A key already pending
// deletion, or deleted (another server destroyed it, or a try whose answer
// was lost), is ErrNotFound. A key that is not the CA's stays.
func (s *Store) DestroyKey(ctx context.Context, ca *openpca.CA) error {
	arn := string(ca.KeyHandle)
	err := s.checkOwner(ctx, ca, arn)
	if err == nil {
		_, err = s.client.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: &arn, PendingWindowInDays: aws.Int32(pendingDays)})
	}
	var notFound *types.NotFoundException
	var state *types.KMSInvalidStateException
	switch {
	case errors.As(err, &notFound):
		return openpca.ErrNotFound
	case errors.As(err, &state):
		if out, derr := s.client.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: &arn}); derr == nil && out.KeyMetadata.KeyState == types.KeyStatePendingDeletion {
			return openpca.ErrNotFound
		}
	}
	return err
}

// caTag tags each key with the ARN of the CA it was made for.
const caTag = "openpca:certificate-authority"

// checkOwner returns an error unless the key arn is the one ca was made
// with, tagged for it: a handle that names another CA's key (a row
// repaired by hand, a database restored beside another on the same
// account) must not destroy a key still in service. KMS shows no public
// key of a disabled key, whose tag alone tells.
func (s *Store) checkOwner(ctx context.Context, ca *openpca.CA, arn string) error {
	// Its tag first, which every key the store made carries: two CAs'
	// rows may name one key (a KMS that answered a CreateKey with a key
	// made before, which GenerateKey now refuses), whose public key is
	// then both CAs' own.
	tag, err := s.tagOf(ctx, arn)
	if err != nil {
		return err
	}
	if tag != ca.ARN {
		return fmt.Errorf("kms: the key %s of %s is not tagged %s=%s: whether it is the CA's is left to the operator", arn, ca.ARN, caTag, ca.ARN)
	}
	if ca.KeyID == "" {
		return nil // a record of a version that kept none
	}
	out, err := s.client.GetPublicKey(ctx, &awskms.GetPublicKeyInput{KeyId: &arn})
	if _, disabled := errors.AsType[*types.DisabledException](err); disabled {
		return nil // its tag says
	}
	if err != nil {
		return err
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		return fmt.Errorf("kms: the public key of %s: %w", arn, err)
	}
	if id, err := pki.SubjectKeyID(pub); err != nil || hex.EncodeToString(id) != ca.KeyID {
		return fmt.Errorf("kms: the key %s is not the one %s was made with: it is left to the operator", arn, ca.ARN)
	}
	return nil
}

// tagOf returns the CA the key arn is tagged for, which every key the
// store makes is made with, or "" if none.
func (s *Store) tagOf(ctx context.Context, arn string) (string, error) {
	in := &awskms.ListResourceTagsInput{KeyId: &arn}
	for range maxTagPages {
		out, err := s.client.ListResourceTags(ctx, in)
		if err != nil {
			return "", err
		}
		for _, t := range out.Tags {
			if aws.ToString(t.TagKey) == caTag {
				return aws.ToString(t.TagValue), nil
			}
		}
		if !out.Truncated || out.NextMarker == nil {
			return "", nil
		}
		in.Marker = out.NextMarker
	}
	return "", nil
}

// maxTagPages bounds the pages of a key's tags read: KMS keeps 50 tags a
// key at most, a page or two.
const maxTagPages = 4

// signer signs with a KMS key.
type signer struct {
	client *awskms.Client
	ca     *openpca.CA
	arn    string
	pub    crypto.PublicKey
}

func (s *signer) Public() crypto.PublicKey { return s.pub }

// Sign asks KMS to sign digest, as the key's type and opts say: ECDSA, RSA
// PKCS #1 v1.5, or RSA-PSS with a salt the length of the hash, as KMS
// makes it and Go's x509 asks for it.
func (s *signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	alg, err := algorithm(s.pub, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), signTimeout)
	defer cancel()
	out, err := s.client.Sign(ctx, &awskms.SignInput{KeyId: &s.arn, Message: digest, MessageType: types.MessageTypeDigest, SigningAlgorithm: alg})
	if err != nil {
		return nil, refusal(s.ca, err)
	}
	return out.Signature, nil
}

func algorithm(pub crypto.PublicKey, opts crypto.SignerOpts) (types.SigningAlgorithmSpec, error) {
	names := map[crypto.Hash]string{crypto.SHA256: "SHA_256", crypto.SHA384: "SHA_384", crypto.SHA512: "SHA_512"}
	h, ok := names[opts.HashFunc()]
	if !ok {
		return "", fmt.Errorf("kms: KMS does not sign %v digests", opts.HashFunc())
	}
	switch pub.(type) {
	case *ecdsa.PublicKey:
		return types.SigningAlgorithmSpec("ECDSA_" + h), nil
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			if pss.SaltLength != rsa.PSSSaltLengthEqualsHash && pss.SaltLength != opts.HashFunc().Size() {
				return "", fmt.Errorf("kms: KMS makes RSA-PSS signatures with a salt the length of the hash only")
			}
			return types.SigningAlgorithmSpec("RSASSA_PSS_" + h), nil
		}
		return types.SigningAlgorithmSpec("RSASSA_PKCS1_V1_5_" + h), nil
	}
	return "", fmt.Errorf("kms: a key of type %T", pub)
}

// refusal says why KMS did not do what was asked, in AWS's terms: a key it
// refuses to use (disabled, pending deletion, deleted) is InvalidState; a
// use the key does not allow (a hash KMS does not sign with for its curve)
// is InvalidArgs; a key policy it refuses (--kms-key-policy), rights the
// server lacks, a handle that names no key it can use and a quota of
// KMS's account reached are internal failures, logged; anything else,
// KMS being unreachable or throttling, is ServiceUnavailable, which
// clients retry.
func refusal(ca *openpca.CA, err error) error {
	var disabled *types.DisabledException
	var state *types.KMSInvalidStateException
	var notFound *types.NotFoundException
	var usage *types.InvalidKeyUsageException
	var policy *types.MalformedPolicyDocumentException
	var limit *types.LimitExceededException
	var api smithy.APIError
	switch {
	case errors.As(err, &policy):
		// The operator's to mend: an internal failure, logged (the SDKs
		// retry it as any 500, to the same refusal).
		return fmt.Errorf("kms: KMS refuses the key policy the server was given (--kms-key-policy): %w", err)
	case errors.As(err, &limit):
		// A quota of KMS's account (its keys, those pending deletion
		// among them): KMS answered, and answers a retry the same until
		// the operator raises the quota. (The SDKs retry it as throttling
		// first.)
		return fmt.Errorf("kms: KMS refuses a key for %s: a quota of the KMS account is reached: %w", ca.ARN, err)
	case errors.As(err, &api) && slices.Contains([]string{"AccessDeniedException", "InvalidArnException", "UnsupportedOperationException", "IncorrectKeyException"}, api.ErrorCode()):
		// KMS answered, and will answer a retry the same: the server's
		// rights or the CA's key handle are the operator's to mend.
		return fmt.Errorf("kms: KMS refuses to act on the key of %s: %w", ca.ARN, err)
	case errors.As(err, &disabled) || errors.As(err, &state) || errors.As(err, &notFound):
		return &openpca.Error{Code: openpca.CodeInvalidState, Message: fmt.Sprintf("The KMS key of %s cannot sign: it is disabled, pending deletion or deleted.", ca.ARN), Cause: err}
	case errors.As(err, &usage):
		return &openpca.Error{Code: openpca.CodeInvalidArgs, Message: fmt.Sprintf("The KMS key of %s cannot make this signature.", ca.ARN), Cause: err}
	}
	// KMS's error names its endpoint: the operator's log has it.
	return &openpca.Error{Code: openpca.CodeServiceUnavailable, Message: fmt.Sprintf("KMS, which keeps the key of %s, cannot be reached; retry later.", ca.ARN), Cause: err}
}
