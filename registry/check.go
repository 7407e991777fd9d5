package registry

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"
)

// CheckType says how an instance is checked.
type CheckType string

// The kinds of check.
const (
	// CheckHTTP passes on a 2xx answer to a GET of URL, warns on 429.
	CheckHTTP CheckType = "http"
	// CheckTCP passes when a TCP connection to Address opens.
	CheckTCP CheckType = "tcp"
	// CheckTTL passes while heartbeats arrive at least every TTL.
	CheckTTL CheckType = "ttl"
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

// Check is one active health check of an instance.
type Check struct {
	Type            CheckType `json:"type"`
	URL             string    `json:"url,omitempty"`
	Address         string    `json:"address,omitempty"`
	TTL             Duration  `json:"ttl,omitempty"`
	Interval        Duration  `json:"interval,omitempty"`
	Timeout         Duration  `json:"timeout,omitempty"`
	Rise            int       `json:"rise,omitempty"`
	Fall            int       `json:"fall,omitempty"`
	DeregisterAfter Duration  `json:"deregister_after,omitempty"`
}

// normalize validates c and fills in its defaults.
func (c Check) normalize() (Check, error) {
	invalid := func(format string, args ...any) (Check, error) {
		return Check{}, fmt.Errorf("%w: %s check: "+format, append([]any{ErrInvalid, c.Type}, args...)...)
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
	switch c.Type {
	case CheckHTTP:
		u, err := url.Parse(c.URL)
		if c.URL == "" {
			return invalid("url is required")
		}
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalid("url %q must be an absolute http:// or https:// URL", c.URL)
		}
		if c.Address != "" || c.TTL != 0 {
			return invalid("only url applies, not address or ttl")
		}
	case CheckTCP:
		host, port, err := net.SplitHostPort(c.Address)
		if c.Address == "" {
			return invalid("address is required (host:port)")
		}
		if err != nil || host == "" {
			return invalid("address %q must be host:port", c.Address)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return invalid("address %q: port must be 1-65535", c.Address)
		}
		if c.URL != "" || c.TTL != 0 {
			return invalid("only address applies, not url or ttl")
		}
	case CheckTTL:
		if c.TTL <= 0 {
			return invalid("ttl is required (e.g. \"30s\")")
		}
		if c.TTL.Std() < MinInterval {
			return invalid("ttl %s is shorter than the minimum %s", c.TTL, MinInterval)
		}
		if c.URL != "" || c.Address != "" {
			return invalid("only ttl applies, not url or address")
		}
	case "":
		return Check{}, fmt.Errorf("%w: check type is required (http, tcp or ttl)", ErrInvalid)
	default:
		return Check{}, fmt.Errorf("%w: unknown check type %q (want http, tcp or ttl)", ErrInvalid, c.Type)
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
