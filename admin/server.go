// Package admin serves disco's admin HTTP API (register, deregister, drain
// and inspect instances; service settings; zone reloads; health, readiness
// and metrics endpoints) and provides a Go client for it.
//
// Every write goes through the registry and is answered only after the
// registry call returned, that is after the change is durable and published:
// the next DNS query sees it.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"time"

	"disco/registry"
)

// DefaultMaxBodyBytes is the default limit on a request body.
const DefaultMaxBodyBytes = 1 << 20

// MaxReasonBytes is the longest maintenance reason accepted.
const MaxReasonBytes = 256

// Timeouts of the HTTP server that Serve runs.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	shutdownTimeout   = 5 * time.Second
)

// Config configures the admin API.
type Config struct {
	// Registry is the registry the API reads and writes. Required.
	Registry *registry.Registry
	// Token, when not empty, is the bearer token every /v1 request must
	// carry.
	Token string
	// Logger receives the API's logs; nil discards them.
	Logger *slog.Logger
	// Heartbeat renews the ttl checks of an instance. Its errors are
	// *registry.Error values of kind registry.ErrNotFound (unknown instance)
	// or registry.ErrInvalid (no ttl check), or wrap registry.ErrUnavailable. When nil, heartbeats answer 503: health checks are not running.
	Heartbeat func(k registry.Key) error
	// ReloadZones reloads the zone files for POST /v1/zones/reload and
	// returns a JSON-encodable report. An error from Unprocessable (a zone
	// file with an error) answers 422. When nil, that route
	// answers 404.
	ReloadZones func(ctx context.Context) (any, error)
	// Ready reports readiness for /readyz (store loaded, DNS listening);
	// nil means ready.
	Ready func() bool
	// Metrics serves /metrics; when nil, that route answers 404.
	Metrics http.Handler
	// MaxBodyBytes limits request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Policy is the DNS serving policy, to report which services DNS
	// serves whole (fail open) and why each instance is served or not.
	Policy registry.Policy
	// Explainer answers GET /v1/explain; when nil, that route answers 404.
	Explainer Explainer
	// ExecChecks allows registrations with exec checks; without it they
	// are refused (400): whoever holds the token could otherwise run
	// commands as the server's user.
	ExecChecks bool
	// TLS, when not nil, makes Serve speak HTTPS with this configuration
	// (it needs a certificate; TLS 1.2 is the least version accepted).
	// LoadTLS builds one from PEM files.
	TLS *tls.Config
}

// LoadTLS returns a server TLS configuration with the PEM certificate
// (chain) in certFile and its private key in keyFile, accepting TLS 1.2 and
// later.
func LoadTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load admin TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// Server is the admin API. Its handler is safe for concurrent use.
type Server struct {
	cfg       Config
	reg       *registry.Registry
	log       *slog.Logger
	maxBody   int64
	tokenHash [sha256.Size]byte
	mux       *http.ServeMux
	handler   http.Handler
	// quit ends when the server shuts down, so that blocking queries
	// answer at once instead of holding the shutdown up.
	quit        context.Context
	stopWaiting context.CancelFunc
}

// New returns the admin API for cfg. It starts nothing.
func New(cfg Config) *Server {
	s := &Server{cfg: cfg, reg: cfg.Registry, log: cfg.Logger, maxBody: cfg.MaxBodyBytes}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "admin")
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	s.tokenHash = sha256.Sum256([]byte(cfg.Token))
	s.quit, s.stopWaiting = context.WithCancel(context.Background())
	s.mux = s.routes()
	s.handler = http.HandlerFunc(s.serveHTTP)
	return s
}

// Handler returns the API's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves the API on ln (over HTTPS when Config.TLS is set) until ctx
// is done, then shuts down gracefully: requests in flight get a few seconds
// to finish before their connections are closed. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(s.stopWaiting)
	errc := make(chan error, 1)
	if s.cfg.TLS != nil {
		srv.TLSConfig = s.cfg.TLS.Clone()
		srv.TLSConfig.MinVersion = max(srv.TLSConfig.MinVersion, tls.VersionTLS12)
		go func() { errc <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}
	s.log.Info("admin API listening", "addr", ln.Addr().String(), "auth", s.cfg.Token != "", "tls", s.cfg.TLS != nil)
	select {
	case err := <-errc:
		return fmt.Errorf("serve admin API on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("admin API shutdown did not finish in time; closing connections", "err", err)
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve admin API on %s: %w", ln.Addr(), err)
	}
	s.log.Info("admin API stopped")
	return nil
}

// CheckExposure returns an error when the admin API would listen on addr
// (host:port) without a token while addr is not a loopback address: anyone
// who reaches it could change what DNS answers.
func CheckExposure(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin address %q: want host:port, such as 127.0.0.1:8054", addr)
	}
	if token != "" || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("refusing to serve the admin API on %s without --admin-token: anyone who can reach it could change DNS answers; set --admin-token or listen on 127.0.0.1", addr)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// routes registers the API. Each path also has a method-less pattern that
// answers 405 with the allowed methods, and "/" answers 404, so that every
// answer is JSON.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	routes := []struct {
		method, path string
		h            func(http.ResponseWriter, *http.Request) error
	}{
		{"GET", "/healthz", s.healthz},
		{"GET", "/readyz", s.readyz},
		{"GET", "/metrics", s.metrics},
		{"GET", "/v1/services", s.listServices},
		{"GET", "/v1/services/{service}", s.getService},
		{"PUT", "/v1/services/{service}", s.putSettings},
		{"GET", "/v1/services/{service}/instances/{id}", s.getInstance},
		{"PUT", "/v1/services/{service}/instances/{id}", s.putInstance},
		{"DELETE", "/v1/services/{service}/instances/{id}", s.deleteInstance},
		{"PUT", "/v1/services/{service}/instances/{id}/heartbeat", s.heartbeat},
		{"PUT", "/v1/services/{service}/instances/{id}/maintenance", s.maintenance},
		{"POST", "/v1/zones/reload", s.reloadZones},
		{"GET", "/v1/explain", s.explain},
	}
	allow := map[string][]string{}
	var paths []string
	for _, rt := range routes {
		mux.Handle(rt.method+" "+rt.path, s.api(rt.h))
		if _, ok := allow[rt.path]; !ok {
			paths = append(paths, rt.path)
		}
		allow[rt.path] = append(allow[rt.path], rt.method)
		if rt.method == "GET" {
			allow[rt.path] = append(allow[rt.path], "HEAD")
		}
	}
	for _, p := range paths {
		methods := strings.Join(allow[p], ", ")
		mux.Handle(p, s.api(func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Allow", methods)
			return errorf(http.StatusMethodNotAllowed, "method %s is not allowed on %s; use %s", r.Method, r.URL.Path, methods)
		}))
	}
	s.uiRoutes(mux)
	mux.Handle("/", s.api(func(w http.ResponseWriter, r *http.Request) error {
		return errorf(http.StatusNotFound, "no such endpoint: %s %s (the API lives under /v1/services)", r.Method, r.URL.Path)
	}))
	return mux
}

// serveHTTP checks the token on everything but the probe endpoints, then
// dispatches. A panic in a handler answers 500 rather than dropping the
// connection. A GET with ?pretty gets its JSON indented.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if wantsPretty(r) {
		pw := &prettyWriter{ResponseWriter: w}
		defer pw.finish()
		w = pw
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.writeError(w, r, fmt.Errorf("internal error: %v", v))
		}
	}()
	if s.cfg.Token != "" && !public(r.URL.Path) {
		if err := s.authorize(r); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// public reports whether path is served without a token. The status
// page's assets hold no data: the page asks the API with a token.
func public(p string) bool {
	if p == "/healthz" || p == "/readyz" || p == "/metrics" {
		return true
	}
	clean := path.Clean(p) // "/ui/../v1" is not the page
	return clean == "/ui" || strings.HasPrefix(clean, "/ui/")
}

// authorize checks the request's bearer token in constant time.
func (s *Server) authorize(r *http.Request) error {
	h := r.Header.Get("Authorization")
	if h == "" {
		return errorf(http.StatusUnauthorized, `missing "Authorization: Bearer <token>" header: this server requires the admin token (disco CLI: --token or DISCO_TOKEN)`)
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return errorf(http.StatusUnauthorized, `the Authorization header must be "Bearer <token>"`)
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(sum[:], s.tokenHash[:]) != 1 {
		return errorf(http.StatusUnauthorized, "wrong admin token")
	}
	return nil
}

// api adapts a handler that returns an error.
func (s *Server) api(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(ErrorBody{Error: fmt.Sprintf("encode answer: %v", err)})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// pathName returns the path wildcard name, folded to lower case and
// validated as the given kind of name.
func pathName(r *http.Request, wildcard, what string) (string, error) {
	name := registry.Fold(r.PathValue(wildcard))
	if err := registry.ValidateName(what, name); err != nil {
		return "", err
	}
	return name, nil
}

// pathKey returns the instance named by the path.
func pathKey(r *http.Request) (registry.Key, error) {
	service, err1 := pathName(r, "service", "service name")
	id, err2 := pathName(r, "id", "instance id")
	if err := registry.Join(err1, err2); err != nil {
		return registry.Key{}, err
	}
	return registry.Key{Service: service, ID: id}, nil
}

// lookup returns the instance k of the current snapshot, or an error
// wrapping registry.ErrNotFound. Writes check first so that the common
// mistake gets a plain message; the registry checks again under its lock.
func (s *Server) lookup(k registry.Key) (*registry.Instance, error) {
	return s.lookupIn(s.reg.Snapshot(), k)
}

// lookupIn returns the instance k of snap, or an error wrapping
// registry.ErrNotFound.
func (s *Server) lookupIn(snap *registry.Snapshot, k registry.Key) (*registry.Instance, error) {
	in, ok := snap.Instance(k.Service, k.ID)
	if !ok {
		return nil, registry.NotFound("instance %q of service %q is not registered", k.ID, k.Service)
	}
	return in, nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) error {
	if s.cfg.Ready != nil && !s.cfg.Ready() {
		return errorf(http.StatusServiceUnavailable, "not ready: the store is loading or DNS is not listening yet")
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Metrics == nil {
		return errorf(http.StatusNotFound, "metrics are not enabled on this server")
	}
	s.cfg.Metrics.ServeHTTP(w, r)
	return nil
}

func (s *Server) putSettings(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "service", "service name")
	if err != nil {
		return err
	}
	var set registry.Settings
	if err := readJSON(w, r, s.maxBody, &set); err != nil {
		return err
	}
	svc, err := s.reg.SetSettings(r.Context(), name, set)
	if err != nil {
		return err
	}
	s.log.Debug("service settings written", "service", name)
	writeJSON(w, http.StatusOK, s.serviceView(svc))
	return nil
}

func (s *Server) putInstance(w http.ResponseWriter, r *http.Request) error {
	var reg registry.Registration
	if err := readJSON(w, r, s.maxBody, &reg); err != nil {
		return err
	}
	in, err := registry.NewInstance(r.PathValue("service"), r.PathValue("id"), reg)
	if err != nil {
		return err
	}
	if !s.cfg.ExecChecks {
		for i, c := range in.Checks {
			if c.Type == registry.CheckExec {
				return errorf(http.StatusBadRequest, "check %d: exec checks are disabled on this server; "+
					"start disco serve with --enable-exec-checks to allow them (anyone with the admin token can then run commands as the server's user)", i+1)
			}
		}
	}
	stored, err := s.reg.Register(r.Context(), in)
	if err != nil {
		return err
	}
	s.log.Debug("instance registered", "service", in.Service, "instance", in.ID)
	writeJSON(w, http.StatusOK, s.instanceView(stored))
	return nil
}

func (s *Server) deleteInstance(w http.ResponseWriter, r *http.Request) error {
	k, err := pathKey(r)
	if err != nil {
		return err
	}
	// Deregistering is idempotent: an instance that is not registered is
	// already what the client asks for.
	removed := true
	if err := s.reg.Deregister(r.Context(), k.Service, k.ID); errors.Is(err, registry.ErrNotFound) {
		removed = false
	} else if err != nil {
		return err
	}
	s.log.Debug("instance deregistered", "service", k.Service, "instance", k.ID, "removed", removed)
	writeJSON(w, http.StatusOK, Deregistered{Service: k.Service, ID: k.ID, Removed: removed})
	return nil
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) error {
	k, err := pathKey(r)
	if err != nil {
		return err
	}
	if s.cfg.Heartbeat == nil {
		return errorf(http.StatusServiceUnavailable, "health checks not running on this server; heartbeats cannot be recorded")
	}
	if _, err := s.lookup(k); err != nil {
		return err
	}
	if err := s.cfg.Heartbeat(k); err != nil {
		return err
	}
	in, err := s.lookup(k)
	if err != nil {
		return err
	}
	s.log.Debug("heartbeat", "service", k.Service, "instance", k.ID)
	writeJSON(w, http.StatusOK, s.instanceView(in))
	return nil
}

func (s *Server) maintenance(w http.ResponseWriter, r *http.Request) error {
	k, err := pathKey(r)
	if err != nil {
		return err
	}
	var req MaintenanceRequest
	if err := readJSON(w, r, s.maxBody, &req); err != nil {
		return err
	}
	if req.Enabled == nil {
		return errorf(http.StatusBadRequest, `field "enabled" is required: true drains the instance, false undrains it`)
	}
	if len(req.Reason) > MaxReasonBytes {
		return errorf(http.StatusBadRequest, "reason is %d bytes, at most %d allowed", len(req.Reason), MaxReasonBytes)
	}
	if _, err := s.lookup(k); err != nil {
		return err
	}
	in, err := s.reg.SetMaintenance(r.Context(), k.Service, k.ID, *req.Enabled, req.Reason)
	if err != nil {
		return err
	}
	s.log.Debug("maintenance set", "service", k.Service, "instance", k.ID, "enabled", *req.Enabled)
	writeJSON(w, http.StatusOK, s.instanceView(in))
	return nil
}

func (s *Server) reloadZones(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.ReloadZones == nil {
		return errorf(http.StatusNotFound, "zone reloading is not enabled on this server (start it with --zones-dir)")
	}
	report, err := s.cfg.ReloadZones(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, report)
	return nil
}
