package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/openpca/openpca"
	"github.com/openpca/openpca/app"
	"github.com/openpca/openpca/auth"
	"github.com/openpca/openpca/authority"
	"github.com/openpca/openpca/internal/smallfile"
	"github.com/openpca/openpca/policy"
)

// policyName is what an inline policy's name may be: IAM's pattern for
// policy names. Listings and the operator log show it as it is: a name of
// an escape sequence wrote it to the operator's terminal, and "ReadOnly "
// passed for the managed ReadOnly.
var policyName = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)

// readPolicyFile reads a policy document for a key, named name, or after
// the file without its extension.
func readPolicyFile(path, name string) (openpca.KeyPolicy, error) {
	b, err := smallfile.Read(path)
	if err != nil {
		return openpca.KeyPolicy{}, err
	}
	fix := "give another --name"
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		fix = "it is the file's name: rename the file, or, to policy attach, give --name"
	}
	if !policyName.MatchString(name) {
		return openpca.KeyPolicy{}, fmt.Errorf("a policy's name is 1 to 128 letters, digits and +=,.@_- (IAM's), not %q: %s", name, fix)
	}
	kp := openpca.KeyPolicy{Name: name, Document: string(b)}
	p, err := policy.Parse(b, policy.Identity)
	if err == nil {
		err = authority.CheckKeyPolicy(p)
	}
	if err != nil {
		return kp, fmt.Errorf("%s: %v", path, err)
	}
	return kp, nil
}

// checkKeyPolicies refuses two policies of one name, and a policy of a
// key named as a managed policy.
func checkKeyPolicies(policies []openpca.KeyPolicy) error {
	seen := map[string]bool{}
	for _, kp := range policies {
		if seen[kp.Name] {
			return fmt.Errorf("two policies are named %s", kp.Name)
		}
		seen[kp.Name] = true
		if managed := slices.ContainsFunc(policy.ManagedNames(), func(m string) bool { return strings.EqualFold(m, kp.Name) }); managed != kp.Managed {
			return fmt.Errorf("%s is the name of a managed policy; name your own another way", kp.Name)
		}
	}
	_, err := auth.ResolvePolicies(policies)
	return err
}

// policyRecord describes policies for the operator log: each by its name,
// an inline one with its document, which says what it grants.
func policyRecord(policies []openpca.KeyPolicy) string {
	if len(policies) == 0 {
		return "none (full access to its account)"
	}
	parts := make([]string, len(policies))
	for i, kp := range policies {
		parts[i] = kp.Name + " (managed)"
		if !kp.Managed {
			parts[i] = kp.Name + " (inline: " + kp.Document + ")"
		}
	}
	return strings.Join(parts, ", ")
}

// policyNames says what a key may do, for listings.
func policyNames(policies []openpca.KeyPolicy) string {
	if len(policies) == 0 {
		return "full"
	}
	names := make([]string, len(policies))
	for i, p := range policies {
		names[i] = printable(p.Name)
	}
	return strings.Join(names, ",")
}

const policyUsage = `usage:
  openpca policy attach KEY-ID --file FILE [--name NAME]   attach an IAM policy document
  openpca policy attach KEY-ID --managed NAME              attach a managed policy (` + "ReadOnly, FullAccess" + `)
  openpca policy detach KEY-ID NAME [--leave-full-access]
  openpca policy list KEY-ID
  openpca policy simulate KEY-ID --action ACTION [--resource ARN] [--region REGION] [--context KEY=VALUE]...`

// policyCommand runs "openpca policy attach|detach|list|simulate".
func policyCommand(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	if err := subcommand(args, policyUsage, stdout, stderr); err != nil {
		return err
	}
	var file, name, managed, action, resource, region string
	var leaveFull bool
	values := map[string][]string{}
	positional := map[string]string{"attach": "KEY-ID", "detach": "KEY-ID NAME", "list": "KEY-ID", "simulate": "KEY-ID"}[args[0]]
	if positional == "" {
		fmt.Fprintln(stderr, policyUsage)
		return fmt.Errorf("unknown policy command %q", args[0])
	}
	a, fs, err := openAdmin(ctx, "policy "+args[0], positional, args[1:], stderr, lookupEnv, func(fs *flag.FlagSet) {
		switch args[0] {
		case "attach":
			fs.StringVar(&file, "file", "", "a JSON file holding the policy document")
			fs.StringVar(&name, "name", "", "the policy's name (default: the file's, without its extension)")
			fs.StringVar(&managed, "managed", "", "the managed policy to attach instead: "+strings.Join(policy.ManagedNames(), ", "))
		case "detach":
			fs.BoolVar(&leaveFull, "leave-full-access", false, "detach the key's last policy, which leaves it with full access to its account")
		case "simulate":
			fs.StringVar(&action, "action", "", "the action, such as IssueCertificate or acm-pca:IssueCertificate")
			fs.StringVar(&resource, "resource", "*", "the ARN of the CA acted on (* for ListCertificateAuthorities and CreateCertificateAuthority)")
			fs.StringVar(&region, "region", "", "the server's --region, aws:RequestedRegion (default: the CA's, else the one the database records, else "+app.DefaultRegion+")")
			fs.Func("context", "a condition key's value, KEY=VALUE, such as acm-pca:TemplateArn=arn:aws:acm-pca:::template/EndEntityCertificate/V1 (repeatable)", func(kv string) error {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("%q is not KEY=VALUE", kv)
				}
				values[policy.FoldKey(k)] = append(values[policy.FoldKey(k)], v)
				return nil
			})
		}
	})
	if err != nil {
		return err
	}
	defer a.Close()
	key, err := a.Store.FindAccessKey(ctx, fs.Arg(0))
	if errors.Is(err, openpca.ErrNotFound) {
		return fmt.Errorf("there is no access key %s", fs.Arg(0))
	} else if err != nil {
		return err
	}
	switch args[0] {
	case "attach":
		var kp openpca.KeyPolicy
		switch {
		case managed != "" && file == "":
			if _, ok := policy.Managed(managed); !ok {
				return fmt.Errorf("there is no managed policy %s; there are %s", managed, strings.Join(policy.ManagedNames(), ", "))
			}
			kp = openpca.KeyPolicy{Name: managed, Managed: true}
		case file != "" && managed == "":
			if kp, err = readPolicyFile(file, name); err != nil {
				return err
			}
		default:
			return errors.New("give --file or --managed")
		}
		policies, err := a.Store.UpdateKeyPolicies(ctx, key.ID, func(key *openpca.AccessKey) ([]openpca.KeyPolicy, error) {
			// Attaching under a name the key already has replaces that
			// policy.
			policies := slices.DeleteFunc(slices.Clone(key.Policies), func(p openpca.KeyPolicy) bool { return p.Name == kp.Name })
			policies = append(policies, kp)
			return policies, checkKeyPolicies(policies)
		})
		if err != nil {
			return err
		}
		record(ctx, a, stderr, "policy attach", fmt.Sprintf("key %s: policy %s; its policies now: %s", key.ID, policyRecord([]openpca.KeyPolicy{kp}), policyNames(policies)))
		fmt.Fprintf(stdout, "attached %s to %s; its policies: %s\n", kp.Name, key.ID, policyNames(policies))
		return nil
	case "detach":
		policies, err := a.Store.UpdateKeyPolicies(ctx, key.ID, func(key *openpca.AccessKey) ([]openpca.KeyPolicy, error) {
			policies := slices.DeleteFunc(slices.Clone(key.Policies), func(p openpca.KeyPolicy) bool { return p.Name == fs.Arg(1) })
			if len(policies) == len(key.Policies) {
				return nil, fmt.Errorf("%s has no policy %s; it has %s", key.ID, fs.Arg(1), policyNames(key.Policies))
			}
			if len(policies) == 0 && !leaveFull {
				return nil, fmt.Errorf("%s is the last policy of %s: without a policy the key may do everything in its account. "+
					"Attach another first, or pass --leave-full-access", fs.Arg(1), key.ID)
			}
			return policies, nil
		})
		if err != nil {
			return err
		}
		record(ctx, a, stderr, "policy detach", fmt.Sprintf("key %s: policy %s; its policies now: %s", key.ID, fs.Arg(1), policyNames(policies)))
		fmt.Fprintf(stdout, "detached %s from %s; its policies: %s\n", fs.Arg(1), key.ID, policyNames(policies))
		return nil
	case "list":
		if len(key.Policies) == 0 {
			fmt.Fprintf(stdout, "%s has no policy: it may do everything in account %s\n", key.ID, key.AccountID)
		}
		for _, kp := range key.Policies {
			doc, kind := kp.Document, "inline"
			if kp.Managed {
				doc, _ = policy.ManagedDocument(kp.Name)
				kind = "managed"
			}
			fmt.Fprintf(stdout, "%s (%s)\n%s\n\n", printable(kp.Name), kind, strings.TrimSpace(doc))
		}
		return nil
	default: // simulate
		return simulate(ctx, a.Store, key, action, resource, region, a.Region, values, stdout)
	}
}

// simulate answers whether key may perform action on resource with the
// given condition values, and which statement decided, as the server
// would decide it now. region is the one given, if any, and serverRegion
// the servers' (recorded in the database).
func simulate(ctx context.Context, store openpca.Store, key *openpca.AccessKey, action, resource, region, serverRegion string, values map[string][]string, stdout io.Writer) error {
	if action == "" {
		return errors.New("--action is required")
	}
	if !strings.Contains(action, ":") {
		action = authority.ActionPrefix + action
	}
	policies, err := auth.ResolvePolicies(key.Policies)
	if err != nil {
		return err
	}
	c := openpca.Caller{AccountID: key.AccountID, Principal: key.ID, Policies: policies}
	var ca *openpca.CA
	var notes []string
	if strings.EqualFold(action, authority.ActionPrefix+"CreateCertificateAuthority") {
		// The server decides a creation on the CAs of the caller's account
		// and its own region, as AWS names them.
		if region == "" {
			region = serverRegion
		}
		creation := openpca.CAARN(region, key.AccountID, "*")
		if resource != "*" && resource != creation {
			return fmt.Errorf("a creation by %s is decided on %s (give --region for the server's other than %s)", key.ID, creation, region)
		}
		resource = creation
		notes = append(notes, "note: a creation with tags also needs acm-pca:TagCertificateAuthority on "+creation+", with the tags as aws:RequestTag and aws:ResourceTag")
	} else if resource != "*" {
		p, err := openpca.ParseCAARN(resource)
		if err != nil {
			return err
		}
		if region == "" {
			region = p.Region // the server's: it makes CAs of its region alone
		}
		ca, err = store.FindCA(ctx, p.AccountID, p.CAID)
		if errors.Is(err, openpca.ErrNotFound) {
			return fmt.Errorf("there is no certificate authority %s", resource)
		} else if err != nil {
			return err
		}
		// As the server, which answers ResourceNotFoundException for it
		// whatever the policies say.
		if ca.Gone(time.Now()) {
			return fmt.Errorf("there is no certificate authority %s: it was deleted, and its restoration period has ended", resource)
		}
	}
	if !key.RevokedAt.IsZero() {
		fmt.Fprintf(stdout, "note: %s was revoked at %s; the server refuses every request signed with it\n", key.ID, key.RevokedAt.Format(time.RFC3339))
	}
	if region == "" {
		region = serverRegion
	}
	if strings.EqualFold(action, authority.ActionPrefix+"IssueCertificate") && ca != nil {
		// As the server does for a request that names no template.
		p, _ := openpca.ParseCAARN(ca.ARN)
		for k, v := range authority.IssueConditions(authority.IssueTemplateARN("", p.Partition)) {
			if _, named := values[k]; !named {
				values[k] = v
				notes = append(notes, fmt.Sprintf("note: %s is %s, as for a request that names no template", k, v[0]))
			}
		}
	}
	v := authority.Decide(authority.NewCAPolicies(), c, action, ca, resource, authority.ConditionValues(c, ca, region, values, time.Now()))
	decision := "denied"
	if v.Allowed {
		decision = "allowed"
	} else if v.NotShared {
		decision = "denied (the server answers ResourceNotFoundException)"
	}
	fmt.Fprintf(stdout, "%s: %s on %s by %s\n%s\n", decision, v.Action, v.Resource, key.ID, v.Reason)
	notes = append(notes, "note: aws:SourceIp and aws:SecureTransport come from a request's connection; give them with --context (aws:SecureTransport is false unless given)")
	fmt.Fprintln(stdout, strings.Join(notes, "\n"))
	return nil
}
