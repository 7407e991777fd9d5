package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Instance returns one instance with its last check and recent transitions.
func (c *Client) Instance(ctx context.Context, service, id string) (*InstanceDetail, error) {
	var v InstanceDetail
	if err := c.do(ctx, http.MethodGet, instancePath(service, id), nil, &v); err != nil {
		return nil, fmt.Errorf("get instance %s/%s: %w", service, id, err)
	}
	return &v, nil
}

// Explain asks what DNS answers name (of type qtype, such as "A") now, and
// why.
func (c *Client) Explain(ctx context.Context, name, qtype string) (*Explanation, error) {
	var v Explanation
	q := url.Values{"name": {name}, "type": {qtype}}
	if err := c.do(ctx, http.MethodGet, "/v1/explain?"+q.Encode(), nil, &v); err != nil {
		return nil, fmt.Errorf("explain %s %s: %w", name, qtype, err)
	}
	return &v, nil
}

// WatchServices is Services as a blocking query: with index 0 it answers at
// once, otherwise once the list's index differs from index or wait (at
// most MaxWait) has passed. It returns the list and its index.
func (c *Client) WatchServices(ctx context.Context, index uint64, wait time.Duration) (*ServiceList, uint64, error) {
	var v ServiceList
	n, err := c.blocking(ctx, "/v1/services", index, wait, &v)
	if err != nil {
		return nil, 0, fmt.Errorf("list services: %w", err)
	}
	return &v, n, nil
}

// WatchService is Service as a blocking query, like WatchServices. A service
// that does not exist gives an *APIError with status 404 and, as its index,
// the one to wait on for it to appear.
func (c *Client) WatchService(ctx context.Context, service string, index uint64, wait time.Duration) (*ServiceView, uint64, error) {
	var v ServiceView
	n, err := c.blocking(ctx, servicePath(service), index, wait, &v)
	if err != nil {
		return nil, n, fmt.Errorf("get service %s: %w", service, err)
	}
	return &v, n, nil
}

func (c *Client) blocking(ctx context.Context, path string, index uint64, wait time.Duration, out any) (uint64, error) {
	if index > 0 {
		q := url.Values{"index": {strconv.FormatUint(index, 10)}}
		if wait > 0 {
			q.Set("wait", wait.String())
		}
		path += "?" + q.Encode()
	}
	h, err := c.send(ctx, http.MethodGet, path, nil, out)
	var n uint64
	if h != nil {
		n, _ = strconv.ParseUint(h.Get(IndexHeader), 10, 64)
	}
	return n, err
}
