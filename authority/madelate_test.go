package authority

import (
	"context"
	"crypto"
	"log/slog"
	"testing"
	"time"

	"github.com/openpca/openpca"
)

// panicking is a store that names its keys once made, as KMS does, and
// panics making one.
type panicking struct{}

func (panicking) Name() string   { return "kms" }
func (panicking) Hardware() bool { return true }
func (panicking) GenerateKey(context.Context, *openpca.CA, openpca.KeyAlgorithm) ([]byte, crypto.Signer, error) {
	panic("the store failed")
}
func (panicking) Signer(context.Context, *openpca.CA) (crypto.Signer, error) { return nil, nil }
func (panicking) DestroyKey(context.Context, *openpca.CA) error              { return nil }

// TestMadeLatePanic: a store that panics making a key gives its error to
// the request, which gives the creation's turn back: one handed on to a
// call that ended in a panic would never be.
func TestMadeLatePanic(t *testing.T) {
	ks := KeyStore{KeyStore: panicking{}}
	s := &Service{keys: NewKeys([]KeyStore{ks}, slog.New(slog.DiscardHandler), nil), logger: slog.New(slog.DiscardHandler)}
	ca := &openpca.CA{ARN: "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/01a24b08-96bc-7efd-b897-2b9b77a2005f"}
	generate := func() (newKey, error) {
		handle, key, err := ks.GenerateKey(t.Context(), ca, openpca.KeyAlgorithmEcPrime256v1)
		return newKey{handle, key}, err
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, handedOn, err := s.madeLate(ctx, ks, ca, time.Now(), generate, func() { t.Error("the turn given back by the call, not the request") })
	if err == nil || handedOn {
		t.Errorf("a store that panicked: %v, the turn handed on %v; want its error, and the turn the request's", err, handedOn)
	}
}
