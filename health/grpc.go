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
	// grpcWindow is the flow-control window of a connection and of each
	// call: gRPC's default, and its least.
	grpcWindow = 64 << 10
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
	key      grpcKey
	interval time.Duration
	refs     int // guarded by GRPCChecker.mu

	// mu guards cc and client, made by the first probe (not by Hold, which
	// runs under the monitor's lock), and closed, set by the last Release.
	mu     sync.Mutex
	cc     *grpc.ClientConn
	client healthpb.HealthClient
	closed bool

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

// Hold keeps the connection c's probes use (made by the first of them)
// open until the matching Release.
func (g *GRPCChecker) Hold(c registry.Check) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := grpcKeyOf(c)
	gc := g.conns[k]
	if gc == nil {
		gc = &grpcConn{key: k, interval: c.Interval.Std()}
		g.conns[k] = gc
	}
	gc.refs++
}

// Release drops a hold on c's connection and closes it with the last one.
func (g *GRPCChecker) Release(c registry.Check) {
	g.mu.Lock()
	k := grpcKeyOf(c)
	gc := g.conns[k]
	if gc == nil {
		g.mu.Unlock()
		return
	}
	gc.refs--
	if gc.refs > 0 {
		g.mu.Unlock()
		return
	}
	delete(g.conns, k)
	g.mu.Unlock()
	gc.close()
}

// Conns returns how many endpoints the checker holds a connection for.
func (g *GRPCChecker) Conns() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}

// open makes gc's client if it has none yet. It dials nothing: gRPC
// connects on the first call.
func (gc *grpcConn) open() (healthpb.HealthClient, error) {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	switch {
	case gc.closed:
		return nil, errors.New("the check is no longer probed")
	case gc.client != nil:
		return gc.client, nil
	}
	cc, err := newGRPCClient(gc)
	if err != nil {
		return nil, err
	}
	gc.cc, gc.client = cc, healthpb.NewHealthClient(cc)
	return gc.client, nil
}

// close closes gc's client, if it has one, and keeps it from making
// another.
func (gc *grpcConn) close() {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	gc.closed = true
	if gc.cc != nil {
		gc.cc.Close()
	}
}

// state is the connectivity state of gc's client.
func (gc *grpcConn) state() connectivity.State {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	if gc.cc == nil {
		return connectivity.Idle
	}
	return gc.cc.GetState()
}

// newGRPCClient makes the client of gc's endpoint.
func newGRPCClient(gc *grpcConn) (*grpc.ClientConn, error) {
	k, interval := gc.key, gc.interval
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
		// A fixed flow-control window turns off gRPC's bandwidth
		// estimation, whose pings would cost a round trip of writes and
		// reads per probe; a health answer is a few bytes.
		grpc.WithInitialWindowSize(grpcWindow),
		grpc.WithInitialConnWindowSize(grpcWindow),
		grpc.WithReadBufferSize(grpcBufferSize),
		grpc.WithWriteBufferSize(grpcBufferSize),
		grpc.WithDisableServiceConfig(),
		grpc.WithDisableRetry(),
	)
	if err != nil {
		return nil, fmt.Errorf("grpc client for %s: %w", k.address, err)
	}
	return cc, nil
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
		// Not held: a connection for this probe.
		gc = &grpcConn{key: grpcKeyOf(c), interval: c.Interval.Std()}
		defer gc.close()
	}
	client, err := gc.open()
	if err != nil {
		return Result{registry.StatusCritical, err.Error()}
	}
	if gc.state() == connectivity.TransientFailure {
		// Try again now rather than at the end of the backoff: this
		// probe reports the last failure, the next one the new attempt.
		gc.cc.ResetConnectBackoff()
	}
	resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: c.Service})
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
	case gc.state() == connectivity.Ready:
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
