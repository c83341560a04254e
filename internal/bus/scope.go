package bus

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
)

// ScopedSubjects returns consumer filters for the subject prefixes (such as
// SubjectIgnited): every namespace when namespaces is empty, else only those.
func ScopedSubjects(namespaces []string, prefixes ...string) []string {
	var out []string
	for _, p := range prefixes {
		if len(namespaces) == 0 {
			out = append(out, p+".>")
			continue
		}
		for _, ns := range namespaces {
			out = append(out, p+"."+ns+".>")
		}
	}
	return out
}

// ScopedConsumerName returns the durable consumer name of a service limited to
// namespaces: name itself for all namespaces, else name and a hash of the scope.
// Services of one scope share a consumer; services of different scopes must not,
// or each would hand the other events it may not take.
func ScopedConsumerName(name string, namespaces []string) string {
	if len(namespaces) == 0 {
		return name
	}
	ns := slices.Clone(namespaces)
	slices.Sort(ns)
	sum := sha256.Sum256([]byte(strings.Join(slices.Compact(ns), ",")))
	return name + "-" + hex.EncodeToString(sum[:])[:8]
}
