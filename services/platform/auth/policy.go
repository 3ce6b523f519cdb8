package auth

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Policy maps a full method name ("/slotwatch.accountpool.v1.AccountPoolService/Acquire")
// to the roles that may call it. Admin may call every listed method; a
// method that is not listed is denied to everyone.
type Policy map[string][]Role

// Allows says whether role may call method.
func (p Policy) Allows(role Role, method string) bool {
	roles, ok := p[method]
	if !ok {
		return false
	}
	return role == RoleAdmin || slices.Contains(roles, role)
}

// Merge returns one policy holding every method of ps (a server with
// several services).
func Merge(ps ...Policy) Policy {
	out := Policy{}
	for _, p := range ps {
		for m, r := range p {
			out[m] = append(out[m], r...)
		}
	}
	return out
}

// Covers returns an error naming every method of desc the policy does not
// list, and every method the policy lists under desc's service that desc
// does not have (a typo that would otherwise deny quietly).
func (p Policy) Covers(desc *grpc.ServiceDesc) error {
	methods := map[string]bool{}
	for _, m := range desc.Methods {
		methods["/"+desc.ServiceName+"/"+m.MethodName] = true
	}
	for _, s := range desc.Streams {
		methods["/"+desc.ServiceName+"/"+s.StreamName] = true
	}
	var problems []string
	for m := range methods {
		if _, ok := p[m]; !ok {
			problems = append(problems, "no roles for "+m)
		}
	}
	for m, roles := range p {
		if strings.HasPrefix(m, "/"+desc.ServiceName+"/") && !methods[m] {
			problems = append(problems, "policy lists "+m+", which the service does not have")
		}
		for _, r := range roles {
			if !knownRole(r) {
				problems = append(problems, fmt.Sprintf("unknown role %q for %s", r, m))
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return fmt.Errorf("auth policy of %s: %s", desc.ServiceName, strings.Join(problems, "; "))
}

// CoversServer checks the policy against every service registered on a
// server except those in exempt (health, reflection).
func (p Policy) CoversServer(info map[string]grpc.ServiceInfo, exempt func(service string) bool) error {
	var problems []string
	for svc, si := range info {
		if exempt(svc) {
			continue
		}
		for _, m := range si.Methods {
			if full := "/" + svc + "/" + m.Name; !p.listed(full) {
				problems = append(problems, full)
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return fmt.Errorf("auth policy lists no roles for %s: every method needs an entry (admin-only ones {auth.RoleAdmin}); unlisted methods are denied", strings.Join(problems, ", "))
}

func (p Policy) listed(method string) bool {
	_, ok := p[method]
	return ok
}

// BearerToken reads "authorization: Bearer <token>" from incoming metadata.
func BearerToken(ctx context.Context) (string, error) {
	vals := metadata.ValueFromIncomingContext(ctx, "authorization")
	switch {
	case len(vals) == 0:
		return "", status.Error(codes.Unauthenticated, "no bearer token: send the metadata \"authorization: Bearer <token>\"")
	case len(vals) > 1:
		return "", status.Error(codes.Unauthenticated, "more than one authorization value: send one bearer token")
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", status.Error(codes.Unauthenticated, "authorization is not \"Bearer <token>\"")
	}
	return strings.TrimSpace(tok), nil
}

// Authorize authenticates the caller of method from ctx's metadata and
// checks the policy. It returns the identity whenever the token is known,
// even when the role may not call method, so that the caller's role can be
// logged. Errors are UNAUTHENTICATED or PERMISSION_DENIED and never hold the
// token.
func Authorize(ctx context.Context, tokens *Tokens, policy Policy, method string) (Identity, error) {
	tok, err := BearerToken(ctx)
	if err != nil {
		return Identity{}, err
	}
	id, ok := tokens.Lookup(tok)
	if !ok {
		return Identity{}, status.Error(codes.Unauthenticated, "unknown bearer token")
	}
	if !policy.Allows(id.Role, method) {
		if !policy.listed(method) {
			return id, status.Errorf(codes.PermissionDenied, "%s is not open to any role", method)
		}
		return id, status.Errorf(codes.PermissionDenied, "role %s may not call %s", id.Role, method)
	}
	return id, nil
}

// WatchAuthorization blocks while id, already authorized for method, stays
// so: it returns nil when ctx ends, UNAUTHENTICATED as soon as a reload of
// the tokens file no longer has id's token (revoked), and PERMISSION_DENIED
// as soon as it gives the token a role that may not call method. A reload
// that keeps the caller allowed is waited past. While any caller is watched
// the file is re-read every ReloadEvery in the background (one goroutine
// per Tokens, gone when the last watch returns), so a long-lived stream
// learns of the change without waiting for other traffic. Errors never hold
// the token.
func WatchAuthorization(ctx context.Context, tokens *Tokens, policy Policy, id Identity, method string) error {
	release := tokens.w.hold()
	defer release()
	for {
		set, changed := tokens.w.latest()
		e, ok := set.lookupDigest(id.digest)
		if !ok {
			return status.Error(codes.Unauthenticated, "bearer token revoked: it is no longer in the server's tokens file; this stream has ended")
		}
		if !policy.Allows(e.role, method) {
			return status.Errorf(codes.PermissionDenied, "the token's role is now %s, which may not call %s; this stream has ended", e.role, method)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}
