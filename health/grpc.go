package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"disco/registry"
)

// Settings of the gRPC checker's connections.
const (
	// grpcBufferSize is the read and write buffer of each connection:
	// health answers are a few bytes, and 10,000 connections with gRPC's
	// default 32 KiB buffers would hold 640 MiB.
	grpcBufferSize = 4 << 10
	// grpcMinConnectTimeout is the least time a connection attempt gets.
	grpcMinConnectTimeout = 5 * time.Second
	// grpcMaxBackoff caps the wait between attempts to reconnect.
	grpcMaxBackoff = 30 * time.Second
)

// GRPCChecker probes grpc checks with the grpc.health.v1 Check call:
// passing when the answer is SERVING, critical on any other answer, an
// error or a timeout. It keeps one connection per endpoint (address and TLS
// settings) for as long as the monitor holds a check on it, reused by
// every probe and closed with the last check that uses it; reconnecting is
// gRPC's job, with attempts at most one interval apart. A probe of a check
// nobody holds uses a connection of its own, closed after it. It ignores
// proxy settings from the environment and verifies TLS certificates unless
// told not to.
type GRPCChecker struct {
	mu    sync.Mutex
	conns map[grpcKey]*grpcConn
}

// grpcKey is what makes two checks share a connection.
type grpcKey struct {
	address    string
	tls, skip  bool
	serverName string
}

func grpcKeyOf(c registry.Check) grpcKey {
	return grpcKey{address: c.Address, tls: c.TLS, skip: c.TLSSkipVerify, serverName: c.TLSServerName}
}

// grpcConn is one connection and what the probes learn of it.
type grpcConn struct {
	key    grpcKey
	refs   int // guarded by GRPCChecker.mu
	cc     *grpc.ClientConn
	client healthpb.HealthClient
	// problem is why the last attempt to connect failed, in words ("" once
	// one succeeded); dialed is set while a TCP connection is open but the
	// handshakes on it have not finished.
	problem atomic.Pointer[string]
	dialed  atomic.Bool
}

// NewGRPCChecker returns a GRPCChecker with no connections.
func NewGRPCChecker() *GRPCChecker {
	return &GRPCChecker{conns: make(map[grpcKey]*grpcConn)}
}

// Hold opens (lazily: nothing is sent before the first probe) the
// connection c's probes use, or takes one more hold on it.
func (g *GRPCChecker) Hold(c registry.Check) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := grpcKeyOf(c)
	if gc := g.conns[k]; gc != nil {
		gc.refs++
		return
	}
	gc, err := newGRPCConn(k, c.Interval.Std())
	if err != nil {
		return // Check reports the error on every probe
	}
	gc.refs = 1
	g.conns[k] = gc
}

// Release drops a hold on c's connection and closes it with the last one.
func (g *GRPCChecker) Release(c registry.Check) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := grpcKeyOf(c)
	gc := g.conns[k]
	if gc == nil {
		return
	}
	if gc.refs--; gc.refs <= 0 {
		delete(g.conns, k)
		gc.cc.Close()
	}
}

// Conns returns how many connections the checker holds open.
func (g *GRPCChecker) Conns() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}

// newGRPCConn makes the connection for k. It dials nothing yet.
func newGRPCConn(k grpcKey, interval time.Duration) (*grpcConn, error) {
	gc := &grpcConn{key: k}
	var creds credentials.TransportCredentials = insecure.NewCredentials()
	if k.tls {
		creds = describedTLS{
			TransportCredentials: credentials.NewTLS(&tls.Config{
				MinVersion:         tls.VersionTLS12,
				ServerName:         k.serverName,
				InsecureSkipVerify: k.skip,
			}),
			conn: gc,
		}
	}
	dialer := &net.Dialer{KeepAlive: -1}
	cc, err := grpc.NewClient("passthrough:///"+k.address,
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			gc.dialed.Store(false)
			conn, err := dialer.DialContext(ctx, "tcp", addr)
			if err != nil {
				gc.setProblem(err.Error())
				return nil, err
			}
			gc.dialed.Store(true)
			if !k.tls {
				// Without TLS the connection is as good as open; an
				// HTTP/2 handshake left unanswered shows as a timeout.
				gc.setProblem("")
			}
			return conn, nil
		}),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  min(interval/4, time.Second),
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   min(max(interval, time.Second), grpcMaxBackoff),
			},
			MinConnectTimeout: grpcMinConnectTimeout,
		}),
		grpc.WithNoProxy(),
		grpc.WithUserAgent(UserAgent),
		grpc.WithReadBufferSize(grpcBufferSize),
		grpc.WithWriteBufferSize(grpcBufferSize),
		grpc.WithDisableServiceConfig(),
		grpc.WithDisableRetry(),
	)
	if err != nil {
		return nil, fmt.Errorf("grpc client for %s: %w", k.address, err)
	}
	gc.cc, gc.client = cc, healthpb.NewHealthClient(cc)
	return gc, nil
}

func (gc *grpcConn) setProblem(p string) { gc.problem.Store(&p) }

func (gc *grpcConn) lastProblem() string {
	if p := gc.problem.Load(); p != nil {
		return *p
	}
	return ""
}

// describedTLS is TLS transport credentials that remember, in words, why
// the last handshake failed.
type describedTLS struct {
	credentials.TransportCredentials
	conn *grpcConn
}

func (d describedTLS) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := d.TransportCredentials.ClientHandshake(ctx, authority, raw)
	if err == nil {
		d.conn.setProblem("")
		return conn, info, nil
	}
	k := d.conn.key
	name := k.serverName
	if name == "" {
		name, _, _ = net.SplitHostPort(k.address)
	}
	msg, ok := describeTLS(err, k.address, name)
	switch {
	case !ok && ctx.Err() != nil:
		msg = fmt.Sprintf("TLS handshake with %s did not finish in time", k.address)
	case !ok:
		msg = fmt.Sprintf("TLS handshake with %s failed: %v", k.address, err)
	}
	d.conn.setProblem(msg)
	return nil, nil, err
}

func (d describedTLS) Clone() credentials.TransportCredentials {
	return describedTLS{TransportCredentials: d.TransportCredentials.Clone(), conn: d.conn}
}

// Check asks c.Address about c.Service within c.Timeout (and ctx).
func (g *GRPCChecker) Check(ctx context.Context, c registry.Check) Result {
	ctx, cancel := withTimeout(ctx, c.Timeout.Std())
	defer cancel()
	g.mu.Lock()
	gc := g.conns[grpcKeyOf(c)]
	g.mu.Unlock()
	if gc == nil {
		// Not held (or it could not be made): a connection for this probe.
		var err error
		if gc, err = newGRPCConn(grpcKeyOf(c), c.Interval.Std()); err != nil {
			return Result{registry.StatusCritical, err.Error()}
		}
		defer gc.cc.Close()
	}
	if gc.cc.GetState() == connectivity.TransientFailure {
		// Try again now rather than at the end of the backoff: this
		// probe reports the last failure, the next one the new attempt.
		gc.cc.ResetConnectBackoff()
	}
	resp, err := gc.client.Check(ctx, &healthpb.HealthCheckRequest{Service: c.Service})
	who := "server " + c.Address
	if c.Service != "" {
		who = fmt.Sprintf("service %q at %s", c.Service, c.Address)
	}
	if err == nil {
		if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
			return Result{registry.StatusCritical, fmt.Sprintf("%s is %s", who, s)}
		}
		return Result{registry.StatusPassing, who + " is SERVING"}
	}
	st, _ := status.FromError(err)
	switch {
	case st.Code() == codes.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		return Result{registry.StatusCritical, grpcTimeout(gc, c)}
	case st.Code() == codes.NotFound:
		return Result{registry.StatusCritical, fmt.Sprintf("service %q is unknown to %s (NOT_FOUND)", c.Service, c.Address)}
	case st.Code() == codes.Unimplemented:
		return Result{registry.StatusCritical, fmt.Sprintf("%s does not serve the grpc.health.v1 health service (UNIMPLEMENTED)", c.Address)}
	case st.Code() == codes.Unavailable:
		if p := gc.lastProblem(); p != "" {
			return Result{registry.StatusCritical, p}
		}
		return Result{registry.StatusCritical, fmt.Sprintf("%s is unavailable: %s", c.Address, st.Message())}
	}
	return Result{registry.StatusCritical, fmt.Sprintf("grpc.health.v1 Check of %s failed: %s: %s", who, st.Code(), st.Message())}
}

// grpcTimeout says how far a probe that ran out of time got.
func grpcTimeout(gc *grpcConn, c registry.Check) string {
	p := gc.lastProblem()
	switch {
	case gc.cc.GetState() == connectivity.Ready:
		return fmt.Sprintf("timeout: %s did not answer the health check within %s", c.Address, c.Timeout)
	case gc.dialed.Load() && p == "" && c.TLS:
		return fmt.Sprintf("timeout: %s accepted the connection but the TLS or HTTP/2 handshake did not finish within %s", c.Address, c.Timeout)
	case gc.dialed.Load() && p == "":
		return fmt.Sprintf("timeout: %s accepted the connection but did not answer the HTTP/2 handshake within %s", c.Address, c.Timeout)
	case p != "":
		return fmt.Sprintf("timeout: no connection to %s within %s (last attempt: %s)", c.Address, c.Timeout, p)
	}
	return fmt.Sprintf("timeout: no connection to %s within %s", c.Address, c.Timeout)
}
