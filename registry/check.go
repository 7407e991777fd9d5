package registry

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CheckType says how an instance is checked.
type CheckType string

// The kinds of check.
const (
	// CheckHTTP passes on a 2xx answer to a request (GET unless Method
	// says otherwise) of URL, warns on 429.
	CheckHTTP CheckType = "http"
	// CheckTCP passes when a TCP connection to Address opens.
	CheckTCP CheckType = "tcp"
	// CheckTTL passes while heartbeats arrive at least every TTL.
	CheckTTL CheckType = "ttl"
	// CheckGRPC passes when the grpc.health.v1 Check of Service at Address
	// answers SERVING.
	CheckGRPC CheckType = "grpc"
	// CheckExec runs Command: exit 0 passes, 1 warns, anything else is
	// critical. Servers run them only when told to.
	CheckExec CheckType = "exec"
)

// Defaults for a check's omitted fields.
const (
	DefaultInterval = 10 * time.Second
	DefaultTimeout  = 2 * time.Second
	DefaultRise     = 1
	DefaultFall     = 3
	// MinInterval is the shortest interval (and ttl) a check may ask for.
	MinInterval = 100 * time.Millisecond
)

// Limits on what one check may carry, to keep a registration's stored form
// small.
const (
	// MaxCheckHeaders is the most header names an http check may send.
	MaxCheckHeaders = 32
	// MaxCheckHeaderBytes caps the size of an http check's headers, names
	// and values together.
	MaxCheckHeaderBytes = 8 << 10
	// MaxCheckBody is the longest body an http check may send.
	MaxCheckBody = 8 << 10
	// MaxCheckArgs is the most words an exec check's command may have,
	// the program included.
	MaxCheckArgs = 64
	// MaxCheckCommandBytes caps the size of an exec check's command.
	MaxCheckCommandBytes = 8 << 10
	// maxGRPCService is the longest gRPC service name.
	maxGRPCService = 255
	// maxMethod is the longest HTTP method name.
	maxMethod = 32
)

// Check is one active health check of an instance. Which fields apply
// depends on Type; the others stay zero. The zero value of each kind's
// optional fields is its default, so that records stored before a field
// existed read as they did.
type Check struct {
	Type CheckType `json:"type"`
	// URL is what an http check requests.
	URL string `json:"url,omitempty"`
	// Method is the http check's request method, upper case; empty means
	// GET.
	Method string `json:"method,omitempty"`
	// Headers are sent with an http check's request, names in canonical
	// form ("X-Probe"). A Host header sets the request's host.
	Headers map[string][]string `json:"headers,omitempty"`
	// Body is sent with an http check's request.
	Body string `json:"body,omitempty"`
	// Address is the host:port of a tcp or grpc check.
	Address string `json:"address,omitempty"`
	// Service is the service name a grpc check asks about; empty asks
	// about the server as a whole.
	Service string `json:"service,omitempty"`
	// TLS makes a grpc check speak TLS.
	TLS bool `json:"tls,omitempty"`
	// TLSSkipVerify accepts any certificate (https URLs, grpc with TLS).
	TLSSkipVerify bool `json:"tls_skip_verify,omitempty"`
	// TLSServerName is the name sent in TLS (SNI) and that the certificate
	// must be valid for, instead of the host dialed.
	TLSServerName string `json:"tls_server_name,omitempty"`
	// Command is what an exec check runs: a program (an absolute path or a
	// name looked up in the server's PATH) and its arguments, without a
	// shell.
	Command         []string `json:"command,omitempty"`
	TTL             Duration `json:"ttl,omitempty"`
	Interval        Duration `json:"interval,omitempty"`
	Timeout         Duration `json:"timeout,omitempty"`
	Rise            int      `json:"rise,omitempty"`
	Fall            int      `json:"fall,omitempty"`
	DeregisterAfter Duration `json:"deregister_after,omitempty"`
}

// normalize validates c and fills in its defaults.
func (c Check) normalize() (Check, error) {
	invalid := func(format string, args ...any) (Check, error) {
		return Check{}, Invalid("%s check: %s", c.Type, fmt.Sprintf(format, args...))
	}
	if c.Interval == 0 {
		c.Interval = Duration(DefaultInterval)
	}
	if c.Timeout == 0 {
		// DefaultTimeout, or half the interval when that is shorter, so
		// that a check given only an interval is valid.
		c.Timeout = Duration(min(DefaultTimeout, c.Interval.Std()/2))
	}
	if c.Rise == 0 {
		c.Rise = DefaultRise
	}
	if c.Fall == 0 {
		c.Fall = DefaultFall
	}
	var err error
	switch c.Type {
	case CheckHTTP:
		c, err = c.normalizeHTTP()
	case CheckTCP:
		err = c.validateAddress(false)
	case CheckGRPC:
		c, err = c.normalizeGRPC()
	case CheckExec:
		err = c.validateExec()
	case CheckTTL:
		if c.TTL <= 0 {
			err = fmt.Errorf("ttl is required (e.g. \"30s\")")
		} else if c.TTL.Std() < MinInterval {
			err = fmt.Errorf("ttl %s is shorter than the minimum %s", c.TTL, MinInterval)
		}
	case "":
		return Check{}, Invalid("check type is required (%s)", checkTypes)
	default:
		return Check{}, Invalid("unknown check type %q (want %s)", c.Type, checkTypes)
	}
	if err != nil {
		return invalid("%v", err)
	}
	if extra := c.foreignFields(); len(extra) > 0 {
		verb := "does"
		if len(extra) > 1 {
			verb = "do"
		}
		return invalid("%s %s not apply (%s checks take %s)", strings.Join(extra, ", "), verb, c.Type, strings.Join(checkFields[c.Type], ", "))
	}
	switch {
	case c.Interval < 0 || c.Timeout < 0 || c.DeregisterAfter < 0:
		return invalid("durations must not be negative")
	case c.Interval.Std() < MinInterval:
		return invalid("interval %s is shorter than the minimum %s", c.Interval, MinInterval)
	case c.Type != CheckTTL && c.Timeout >= c.Interval:
		return invalid("timeout %s must be shorter than interval %s", c.Timeout, c.Interval)
	case c.Rise < 1 || c.Rise > 100:
		return invalid("rise %d is out of range 1-100", c.Rise)
	case c.Fall < 1 || c.Fall > 100:
		return invalid("fall %d is out of range 1-100", c.Fall)
	case c.DeregisterAfter != 0 && c.DeregisterAfter.Std() < time.Second:
		return invalid("deregister_after %s is shorter than 1s", c.DeregisterAfter)
	}
	return c, nil
}

// checkTypes lists the check types for messages.
const checkTypes = "http, tcp, grpc, exec or ttl"

// checkFields names the fields of each check type, besides type and the
// scheduling fields every active check has.
var checkFields = map[CheckType][]string{
	CheckHTTP: {"url", "method", "headers", "body", "tls_skip_verify", "tls_server_name"},
	CheckTCP:  {"address"},
	CheckGRPC: {"address", "service", "tls", "tls_skip_verify", "tls_server_name"},
	CheckExec: {"command"},
	CheckTTL:  {"ttl"},
}

// foreignFields names the fields c sets that its type does not use.
func (c Check) foreignFields() []string {
	set := map[string]bool{
		"url":             c.URL != "",
		"method":          c.Method != "",
		"headers":         len(c.Headers) > 0,
		"body":            c.Body != "",
		"address":         c.Address != "",
		"service":         c.Service != "",
		"tls":             c.TLS,
		"tls_skip_verify": c.TLSSkipVerify,
		"tls_server_name": c.TLSServerName != "",
		"command":         len(c.Command) > 0,
		"ttl":             c.TTL != 0,
	}
	var extra []string
	for _, name := range []string{"url", "method", "headers", "body", "address", "service", "tls",
		"tls_skip_verify", "tls_server_name", "command", "ttl"} {
		if set[name] && !slices.Contains(checkFields[c.Type], name) {
			extra = append(extra, name)
		}
	}
	return extra
}

// hopHeaders are headers an http check may not set: the HTTP client
// writes them itself from the request.
var hopHeaders = []string{"Connection", "Content-Length", "Keep-Alive", "Proxy-Connection",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// normalizeHTTP validates an http check's fields and puts the method in
// upper case and the header names in canonical form.
func (c Check) normalizeHTTP() (Check, error) {
	if c.URL == "" {
		return c, fmt.Errorf("url is required")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("url %q must be an absolute http:// or https:// URL", c.URL)
	}
	if c.Method != "" {
		if len(c.Method) > maxMethod || !isToken(c.Method) {
			return c, fmt.Errorf("method %q is not an HTTP method (such as GET, POST or HEAD)", c.Method)
		}
		c.Method = strings.ToUpper(c.Method)
		if c.Method == "CONNECT" {
			return c, fmt.Errorf("method CONNECT cannot check health; use GET, HEAD, POST or another method")
		}
	}
	if len(c.Headers) == 0 {
		c.Headers = nil
	} else {
		if len(c.Headers) > MaxCheckHeaders {
			return c, fmt.Errorf("%d headers given, at most %d allowed", len(c.Headers), MaxCheckHeaders)
		}
		h := make(map[string][]string, len(c.Headers))
		size := 0
		for _, name := range slices.Sorted(maps.Keys(c.Headers)) {
			values := c.Headers[name]
			if !isToken(name) {
				return c, fmt.Errorf("header name %q is not valid: use letters, digits and -, as in X-Probe", name)
			}
			canon := textproto.CanonicalMIMEHeaderKey(name)
			if _, dup := h[canon]; dup {
				return c, fmt.Errorf("header %s is given twice (names are case-insensitive)", canon)
			}
			if slices.Contains(hopHeaders, canon) {
				return c, fmt.Errorf("header %s is set by the HTTP client and cannot be given", canon)
			}
			if len(values) == 0 {
				return c, fmt.Errorf("header %s has no value: give at least one, as in {%q:[\"v\"]}", canon, canon)
			}
			if canon == "Host" && len(values) > 1 {
				return c, fmt.Errorf("header Host has %d values; give one", len(values))
			}
			for _, v := range values {
				if !validHeaderValue(v) {
					return c, fmt.Errorf("header %s: value %q holds a control character (such as a line break)", canon, v)
				}
				size += len(canon) + len(v) + 4
			}
			h[canon] = slices.Clone(values)
		}
		if size > MaxCheckHeaderBytes {
			return c, fmt.Errorf("headers take %d bytes, at most %d allowed", size, MaxCheckHeaderBytes)
		}
		c.Headers = h
	}
	if len(c.Body) > MaxCheckBody {
		return c, fmt.Errorf("body is %d bytes, at most %d allowed", len(c.Body), MaxCheckBody)
	}
	if u.Scheme != "https" && (c.TLSSkipVerify || c.TLSServerName != "") {
		return c, fmt.Errorf("tls_skip_verify and tls_server_name apply to https:// URLs only")
	}
	return c.normalizeServerName()
}

// normalizeGRPC validates a grpc check's fields.
func (c Check) normalizeGRPC() (Check, error) {
	if err := c.validateAddress(true); err != nil {
		return c, err
	}
	if len(c.Service) > maxGRPCService {
		return c, fmt.Errorf("service name is %d bytes, at most %d allowed", len(c.Service), maxGRPCService)
	}
	for _, r := range c.Service {
		if r <= ' ' || r == 0x7f {
			return c, fmt.Errorf("service %q holds a space or control character", c.Service)
		}
	}
	if !c.TLS && (c.TLSSkipVerify || c.TLSServerName != "") {
		return c, fmt.Errorf("tls_skip_verify and tls_server_name apply only with \"tls\":true")
	}
	return c.normalizeServerName()
}

// normalizeServerName checks tls_server_name (a DNS name or an IP
// address) and puts it in lower case.
func (c Check) normalizeServerName() (Check, error) {
	if c.TLSServerName == "" {
		return c, nil
	}
	name := strings.ToLower(strings.TrimSuffix(c.TLSServerName, "."))
	if net.ParseIP(name) == nil && !validHostname(name) {
		return c, fmt.Errorf("tls_server_name %q is not a host name (such as api.example.com) or an IP address", c.TLSServerName)
	}
	c.TLSServerName = name
	return c, nil
}

// validateAddress checks a tcp or grpc check's host:port.
func (c Check) validateAddress(grpc bool) error {
	if c.Address == "" {
		return fmt.Errorf("address is required (host:port)")
	}
	host, port, err := net.SplitHostPort(c.Address)
	if err != nil || host == "" {
		if grpc && err != nil && lacksPort(c.Address) {
			return fmt.Errorf("address %q has no port: give host:port, as in 10.0.0.5:50051", c.Address)
		}
		return fmt.Errorf("address %q must be host:port", c.Address)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("address %q: port must be 1-65535", c.Address)
	}
	return nil
}

// lacksPort reports whether hostport has no ":port" where
// net.SplitHostPort looks for one: no colon at all, or a bracketed host
// ("[::1]") not followed by a colon.
func lacksPort(hostport string) bool {
	if !strings.Contains(hostport, ":") {
		return true
	}
	if strings.HasPrefix(hostport, "[") {
		if _, rest, ok := strings.Cut(hostport, "]"); ok {
			return !strings.HasPrefix(rest, ":")
		}
	}
	return false
}

// validateExec checks an exec check's command.
func (c Check) validateExec() error {
	switch {
	case len(c.Command) == 0:
		return fmt.Errorf("command is required: the program and its arguments, as in [\"/usr/lib/nagios/plugins/check_disk\",\"-w\",\"10%%\"]")
	case c.Command[0] == "":
		return fmt.Errorf("command: the program (the first word) is empty")
	case len(c.Command) > MaxCheckArgs:
		return fmt.Errorf("command has %d words, at most %d allowed", len(c.Command), MaxCheckArgs)
	case strings.Contains(c.Command[0], "/") && !strings.HasPrefix(c.Command[0], "/"):
		return fmt.Errorf("command: program %q is a relative path; give an absolute path or a bare name looked up in the server's PATH", c.Command[0])
	}
	size := 0
	for i, w := range c.Command {
		if strings.IndexByte(w, 0) >= 0 {
			return fmt.Errorf("command: word %d holds a NUL byte", i+1)
		}
		size += len(w) + 1
	}
	if size > MaxCheckCommandBytes {
		return fmt.Errorf("command takes %d bytes, at most %d allowed", size, MaxCheckCommandBytes)
	}
	return nil
}

// Equal reports whether c and o are the same check.
func (c Check) Equal(o Check) bool {
	return c.Type == o.Type && c.URL == o.URL && c.Method == o.Method &&
		maps.EqualFunc(c.Headers, o.Headers, slices.Equal[[]string]) && c.Body == o.Body &&
		c.Address == o.Address && c.Service == o.Service && c.TLS == o.TLS &&
		c.TLSSkipVerify == o.TLSSkipVerify && c.TLSServerName == o.TLSServerName &&
		slices.Equal(c.Command, o.Command) && c.TTL == o.TTL && c.Interval == o.Interval &&
		c.Timeout == o.Timeout && c.Rise == o.Rise && c.Fall == o.Fall && c.DeregisterAfter == o.DeregisterAfter
}

// EqualChecks reports whether a and b hold the same checks in the same
// order.
func EqualChecks(a, b []Check) bool { return slices.EqualFunc(a, b, Check.Equal) }

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2): a
// method or a header name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether v may be sent as a header value: no
// control characters but tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validHostname reports whether s is a DNS host name: dot-separated
// labels of letters, digits, - and _, each at most 63 bytes.
func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Duration is a time.Duration written in JSON as a Go duration string
// ("10s", "500ms").
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string such as "10s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"10s\" or \"500ms\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: want a string such as \"10s\" or \"500ms\"", s)
	}
	*d = Duration(v)
	return nil
}
