package etcdstore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// ClientConfig says how to reach an etcd cluster.
type ClientConfig struct {
	// Endpoints are the client URLs of the etcd members
	// ("http://10.0.0.1:2379", "https://..."); at least one.
	Endpoints []string
	// CAFile is a PEM file of the CAs that sign the members' certificates;
	// empty uses the system's roots (for https endpoints).
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// members that require client certificates. Both or neither.
	CertFile, KeyFile string
	// Username and Password authenticate to etcd when its auth is enabled.
	// Both or neither.
	Username, Password string
}

// Validate reports every problem with c.
func (c ClientConfig) Validate() error {
	var errs []error
	if len(c.Endpoints) == 0 {
		errs = append(errs, errors.New("at least one etcd endpoint is required"))
	}
	for _, ep := range c.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			errs = append(errs, fmt.Errorf("etcd endpoint %q: want http://host:port or https://host:port", ep))
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("etcd client certificate and key go together: give both or neither"))
	}
	if (c.Username == "") != (c.Password == "") {
		errs = append(errs, errors.New("etcd username and password go together: give both or neither"))
	}
	return errors.Join(errs...)
}

// tls returns the TLS configuration, or nil for plain-text endpoints.
func (c ClientConfig) tls() (*tls.Config, error) {
	secure := c.CAFile != "" || c.CertFile != ""
	for _, ep := range c.Endpoints {
		secure = secure || strings.HasPrefix(ep, "https://")
	}
	if !secure {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("etcd CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA file %s holds no PEM certificate", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// NewClient returns a client of the etcd cluster c describes. It does not
// wait for the cluster to answer (unless Username is set: then it
// authenticates, within a few seconds). It reconnects within about a second
// of a member coming back, and notices a dead connection within a few
// seconds. The caller closes it.
func NewClient(c ClientConfig) (*clientv3.Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tlsCfg, err := c.tls()
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            c.Endpoints,
		TLS:                  tlsCfg,
		Username:             c.Username,
		Password:             c.Password,
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		PermitWithoutStream:  true,
		Logger:               zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %s: %w", strings.Join(c.Endpoints, ","), err)
	}
	return cli, nil
}
