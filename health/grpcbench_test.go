package health

import (
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// serveGRPCEndpoints serves the grpc.health.v1 service (the whole server
// SERVING) on n loopback addresses (127.0.0.1, 127.0.0.2, ...), each its
// own listener, prints their addresses and an empty line, and exits when
// stdin closes. Each endpoint needs two file descriptors (the listener and
// the connection it accepts): it raises its limit if it may, and serves
// fewer endpoints if it still falls short.
func serveGRPCEndpoints(n int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(2*n+256) {
		want := syscall.Rlimit{Cur: uint64(2*n + 256), Max: max(lim.Max, uint64(2*n+256))}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) != nil {
			want.Max = lim.Max
			want.Cur = lim.Max
			syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
		}
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
		n = min(n, int(lim.Cur-256)/2)
	}
	srv := grpc.NewServer(grpc.ReadBufferSize(4<<10), grpc.WriteBufferSize(4<<10))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	for i := range n {
		l, err := net.Listen("tcp", fmt.Sprintf("127.%d.%d.%d:0", i/62500, i/250%250, i%250+1))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go srv.Serve(l)
		fmt.Println(l.Addr())
	}
	fmt.Println()
	io.Copy(io.Discard, os.Stdin)
}
