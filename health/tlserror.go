package health

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// describeTLS says in words what went wrong in a TLS handshake with host
// (as dialed, such as 10.0.0.5:443) when it verified the certificate for
// name (the server name, or the host without its port). It reports false
// for an error that is not about TLS.
func describeTLS(err error, host, name string) (string, bool) {
	var (
		hostErr    x509.HostnameError
		unknown    x509.UnknownAuthorityError
		invalid    x509.CertificateInvalidError
		notTLS     tls.RecordHeaderError
		verifyErr  *tls.CertificateVerificationError
		constraint x509.ConstraintViolationError
	)
	switch {
	case errors.As(err, &hostErr):
		return fmt.Sprintf("certificate for %s is not valid for %s: it is valid for %s; set tls_server_name to one of those names",
			host, name, certNames(hostErr.Certificate)), true
	case errors.As(err, &unknown):
		issuer := "an unnamed issuer"
		if unknown.Cert != nil {
			issuer = fmt.Sprintf("%q", unknown.Cert.Issuer.String())
			if unknown.Cert.Issuer.String() == unknown.Cert.Subject.String() {
				issuer += ", self-signed"
			}
		}
		return fmt.Sprintf("certificate for %s is signed by an unknown authority (%s): trust its CA on this server or set tls_skip_verify",
			host, issuer), true
	case errors.As(err, &invalid):
		c := invalid.Cert
		switch {
		case invalid.Reason == x509.Expired && c != nil && time.Now().Before(c.NotBefore):
			return fmt.Sprintf("certificate for %s is not valid yet: valid from %s", host, c.NotBefore.UTC().Format(time.RFC3339)), true
		case invalid.Reason == x509.Expired && c != nil:
			return fmt.Sprintf("certificate for %s has expired: valid until %s", host, c.NotAfter.UTC().Format(time.RFC3339)), true
		}
		return fmt.Sprintf("certificate for %s is not valid: %s", host, strings.TrimPrefix(invalid.Error(), "x509: ")), true
	case errors.As(err, &constraint):
		return fmt.Sprintf("certificate for %s is not valid: %s", host, strings.TrimPrefix(constraint.Error(), "x509: ")), true
	case errors.As(err, &verifyErr):
		return fmt.Sprintf("certificate for %s is not valid for %s: %s", host, name, strings.TrimPrefix(verifyErr.Err.Error(), "x509: ")), true
	case errors.As(err, &notTLS):
		return fmt.Sprintf("TLS handshake with %s failed: the server does not speak TLS on that port", host), true
	}
	return "", false
}

// certNames lists the names and addresses a certificate is valid for.
func certNames(c *x509.Certificate) string {
	if c == nil {
		return "no name"
	}
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		if c.Subject.CommonName != "" {
			return fmt.Sprintf("no name (its common name %q is not used for verification: the certificate needs a subject alternative name)", c.Subject.CommonName)
		}
		return "no name"
	}
	return strings.Join(names, ", ")
}
