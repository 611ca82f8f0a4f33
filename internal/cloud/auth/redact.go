package auth

import (
	"net/url"
	"sort"
	"strings"

	"github.com/skyfleet/skyfleet/internal/cloud"
)

// Redacted replaces a credential value scrubbed by Redact.
const Redacted = "[redacted]"

// minRedactLen is the shortest value Redact scrubs: shorter values (a region code, a "1")
// would match ordinary words and digits and garble the message without protecting anything,
// since real keys and passwords are far longer.
const minRedactLen = 4

// Redact returns s with every credential value of creds (and its URL-encoded form)
// replaced by Redacted. Providers pass SDK error texts through it, because a cloud API may
// echo an access key or a request signature in its error. Only top-level string values
// are scrubbed; values shorter than four characters are left alone.
func Redact(s string, creds ...*cloud.Credentials) string {
	var secrets []string
	for _, c := range creds {
		for _, k := range c.Keys() {
			v, ok := c.Get(k)
			if !ok || len(v) < minRedactLen {
				continue
			}
			secrets = append(secrets, v)
			if q := url.QueryEscape(v); q != v {
				secrets = append(secrets, q)
			}
		}
	}
	// Longest first, so that a value containing another is replaced whole.
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, v := range secrets {
		s = strings.ReplaceAll(s, v, Redacted)
	}
	return s
}

// RedactError returns err with its message scrubbed by Redact, or nil for nil. errors.Is and
// errors.As still see the original error through Unwrap; only the text changes.
func RedactError(err error, creds ...*cloud.Credentials) error {
	if err == nil {
		return nil
	}
	msg := Redact(err.Error(), creds...)
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
