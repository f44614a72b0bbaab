package authority

import (
	"context"
	"sort"
	"strings"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/policy"
)

// MaxTags is how many tags a CA may carry.
const MaxTags = 50

// checkTags refuses tags a request may not set: keys in the reserved aws:
// namespace, and the same key twice.
func checkTags(tags []openpca.Tag) error {
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		if strings.HasPrefix(policy.FoldKey(t.Key), "aws:") {
			return openpca.Errorf(openpca.CodeInvalidTag, "Tag key %q is invalid: the aws: prefix is reserved for AWS use.", t.Key)
		}
		if seen[t.Key] {
			return openpca.Errorf(openpca.CodeInvalidTag, "Tag key %q appears more than once in the request.", t.Key)
		}
		seen[t.Key] = true
	}
	return nil
}

// checkTagCase refuses an added tag whose key differs only in case from
// another the CA would carry. Policies' conditions name tags without
// regard to case (aws:ResourceTag/env is aws:ResourceTag/ENV), so of two
// such tags, their order would decide which one a condition sees: a
// policy that denies on env=prod would miss a CA that also has ENV=dev.
// Keys are folded as conditions fold them (policy.FoldKey).
// AWS documents tag keys as case-sensitive and says nothing of this; the
// refusal is our choice.
func checkTagCase(existing, added []openpca.Tag) error {
	keys := make(map[string]string, len(existing)+len(added))
	for _, t := range existing {
		keys[policy.FoldKey(t.Key)] = t.Key
	}
	for _, t := range added {
		k := policy.FoldKey(t.Key)
		if other, ok := keys[k]; ok && other != t.Key {
			return openpca.Errorf(openpca.CodeInvalidTag, "Tag key %q differs from tag key %q only in case, which policies' tag conditions do not tell apart.", t.Key, other)
		}
		keys[k] = t.Key
	}
	return nil
}

// TagCertificateAuthority adds tags to a CA, replacing the value of a key
// it already has.
func (s *Service) TagCertificateAuthority(ctx context.Context, in *openpca.TagCertificateAuthorityRequest) error {
	_, err := s.updateCA(ctx, in.CertificateAuthorityArn, requestTags(in.Tags, true), func(ca *openpca.CA) error {
		if err := checkTags(in.Tags); err != nil {
			return err
		}
		if err := checkTaggable(ca); err != nil {
			return err
		}
		if err := checkTagCase(ca.Tags, in.Tags); err != nil {
			return err
		}
		tags := ca.Tags
		for _, t := range in.Tags {
			i := indexOfTag(tags, t.Key)
			if i < 0 {
				tags = append(tags, t)
			} else {
				tags[i].Value = t.Value
			}
		}
		if len(tags) > MaxTags {
			return openpca.Errorf(openpca.CodeTooManyTags, "A certificate authority can have at most %d tags; this request would give %s %d.", MaxTags, ca.ARN, len(tags))
		}
		ca.Tags = tags
		return nil
	})
	return err
}

// UntagCertificateAuthority removes tags from a CA. A tag given with a
// value is removed only if the CA's tag has that value; a tag given
// without one is removed whatever its value.
func (s *Service) UntagCertificateAuthority(ctx context.Context, in *openpca.UntagCertificateAuthorityRequest) error {
	_, err := s.updateCA(ctx, in.CertificateAuthorityArn, requestTags(in.Tags, false), func(ca *openpca.CA) error {
		if err := checkTags(in.Tags); err != nil {
			return err
		}
		if err := checkTaggable(ca); err != nil {
			return err
		}
		kept := ca.Tags[:0]
		for _, t := range ca.Tags {
			if i := indexOfTag(in.Tags, t.Key); i >= 0 && (in.Tags[i].Value == "" || in.Tags[i].Value == t.Value) {
				continue
			}
			kept = append(kept, t)
		}
		ca.Tags = kept
		return nil
	})
	return err
}

// ListTags lists a CA's tags in key order.
func (s *Service) ListTags(ctx context.Context, in *openpca.ListTagsRequest) (*openpca.ListTagsResponse, error) {
	ca, err := s.findCA(ctx, in.CertificateAuthorityArn, nil)
	if err != nil {
		return nil, err
	}
	if err := checkTaggable(ca); err != nil {
		return nil, err
	}
	tags := append([]openpca.Tag(nil), ca.Tags...)
	sort.Slice(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key })
	if in.NextToken != "" {
		var after string
		if !decodeNextToken(in.NextToken, "ListTags/"+ca.ID, &after) || after == "" {
			// The model gives ListTags no InvalidNextTokenException.
			return nil, openpca.Errorf(openpca.CodeValidation, "The NextToken is not one this server returned for this list.")
		}
		i := sort.Search(len(tags), func(i int) bool { return tags[i].Key > after })
		tags = tags[i:]
	}
	limit := int(in.MaxResults)
	if limit <= 0 { // unset; the wire layer refuses negative values
		limit = MaxTags
	}
	out := &openpca.ListTagsResponse{Tags: tags}
	if len(tags) > limit {
		out.Tags = tags[:limit]
		out.NextToken = encodeNextToken("ListTags/"+ca.ID, tags[limit-1].Key)
	}
	if out.Tags == nil {
		out.Tags = []openpca.Tag{}
	}
	return out, nil
}

func indexOfTag(tags []openpca.Tag, key string) int {
	for i, t := range tags {
		if t.Key == key {
			return i
		}
	}
	return -1
}
