package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"disco/registry"
)

// maxAnswerBytes bounds what the client reads of an answer.
const maxAnswerBytes = 64 << 20

// Client talks to a disco server's admin API. It is safe for concurrent use.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client for the admin API at base (such as
// "http://127.0.0.1:8054"; a base without a scheme means http) that sends
// token, if not empty, as a bearer token. A nil hc means http.DefaultClient.
func NewClient(base, token string, hc *http.Client) *Client {
	base = strings.TrimSpace(base)
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(base, "/"), token: token, hc: hc}
}

// ErrUnreachable marks a request that got no answer from the server: it
// could not be reached, or the connection failed.
var ErrUnreachable = errors.New("cannot reach the disco admin API")

// APIError is an error answer of the server.
type APIError struct {
	// StatusCode is the HTTP status code, Status its text ("400 Bad Request").
	StatusCode int
	Status     string
	// Message is the server's "error" message.
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("server said %s: %s", e.Status, e.Message)
}

// Register registers (or replaces) instance id of service.
func (c *Client) Register(ctx context.Context, service, id string, reg registry.Registration) (*InstanceView, error) {
	var v InstanceView
	if err := c.do(ctx, http.MethodPut, instancePath(service, id), reg, &v); err != nil {
		return nil, fmt.Errorf("register %s/%s: %w", service, id, err)
	}
	return &v, nil
}

// Deregister removes instance id of service. Deregistering is
// idempotent: an instance that is not registered is no error, and the
// answer's Removed is false.
func (c *Client) Deregister(ctx context.Context, service, id string) (*Deregistered, error) {
	var v Deregistered
	if err := c.do(ctx, http.MethodDelete, instancePath(service, id), nil, &v); err != nil {
		return nil, fmt.Errorf("deregister %s/%s: %w", service, id, err)
	}
	return &v, nil
}

// SetSettings replaces the settings of service, creating it if needed.
func (c *Client) SetSettings(ctx context.Context, service string, s registry.Settings) (*ServiceView, error) {
	var v ServiceView
	if err := c.do(ctx, http.MethodPut, servicePath(service), s, &v); err != nil {
		return nil, fmt.Errorf("set settings of %s: %w", service, err)
	}
	return &v, nil
}

// Services lists every service with its instance counts.
func (c *Client) Services(ctx context.Context) (*ServiceList, error) {
	var v ServiceList
	if err := c.do(ctx, http.MethodGet, "/v1/services", nil, &v); err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	return &v, nil
}

// Service returns one service with its settings and instances.
func (c *Client) Service(ctx context.Context, service string) (*ServiceView, error) {
	var v ServiceView
	if err := c.do(ctx, http.MethodGet, servicePath(service), nil, &v); err != nil {
		return nil, fmt.Errorf("get service %s: %w", service, err)
	}
	return &v, nil
}

// Heartbeat renews the ttl checks of instance id of service.
func (c *Client) Heartbeat(ctx context.Context, service, id string) (*InstanceView, error) {
	var v InstanceView
	if err := c.do(ctx, http.MethodPut, instancePath(service, id)+"/heartbeat", nil, &v); err != nil {
		return nil, fmt.Errorf("heartbeat %s/%s: %w", service, id, err)
	}
	return &v, nil
}

// Maintenance drains (enabled) or undrains instance id of service.
func (c *Client) Maintenance(ctx context.Context, service, id string, enabled bool, reason string) (*InstanceView, error) {
	var v InstanceView
	req := MaintenanceRequest{Enabled: &enabled, Reason: reason}
	if err := c.do(ctx, http.MethodPut, instancePath(service, id)+"/maintenance", req, &v); err != nil {
		return nil, fmt.Errorf("set maintenance of %s/%s: %w", service, id, err)
	}
	return &v, nil
}

// ReloadZones asks the server to reload its zone files and returns its
// report as JSON.
func (c *Client) ReloadZones(ctx context.Context) (json.RawMessage, error) {
	var v json.RawMessage
	if err := c.do(ctx, http.MethodPost, "/v1/zones/reload", nil, &v); err != nil {
		return nil, fmt.Errorf("reload zones: %w", err)
	}
	return v, nil
}

func servicePath(service string) string {
	return "/v1/services/" + url.PathEscape(service)
}

func instancePath(service, id string) string {
	return servicePath(service) + "/instances/" + url.PathEscape(id)
}

// do sends one request with body (when not nil) as JSON and decodes a 2xx
// answer into out (when not nil). Other answers become *APIError.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("admin API address %q: %w", c.base, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%w at %s: %w", ErrUnreachable, c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("read answer from %s: %w", c.base, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(resp, data)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode answer from %s: %w", c.base, err)
	}
	return nil
}

// apiError builds the error for a non-2xx answer, using the server's
// "error" message when there is one and the start of the body otherwise
// (a proxy's error page, say).
func apiError(resp *http.Response, data []byte) *APIError {
	e := &APIError{StatusCode: resp.StatusCode, Status: resp.Status}
	var eb ErrorBody
	if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
		e.Message = eb.Error
		return e
	}
	msg := strings.Join(strings.Fields(string(data)), " ")
	if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "") + "..."
	}
	if msg == "" {
		msg = "no error message"
	}
	e.Message = msg
	return e
}
