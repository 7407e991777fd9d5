package health

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"disco/registry"
)

// serveGRPCEndpoints answers grpc.health.v1 Check calls with SERVING on n
// loopback addresses (127.0.0.1, 127.0.0.2, ...; one port), prints them
// and an empty line, and exits when stdin closes. Like the HTTP endpoints
// it is a bare responder (HTTP/2 frames written by hand) rather than
// grpc-go's server, so that the endpoints, which in production run
// elsewhere, take little of the machine's CPU; the gRPC checker's tests run
// against the real server. One listener bound to the loopback device takes
// every address, so that 10,000 endpoints need no 10,000 listeners (nor
// their file descriptors); where that is not allowed, each address gets a
// listener of its own, and fewer endpoints may be served.
func serveGRPCEndpoints(n int) {
	if l, err := listenLoopbackDevice(); err == nil {
		go acceptGRPC(l)
		port := l.Addr().(*net.TCPAddr).Port
		for i := range n {
			fmt.Printf("127.%d.%d.%d:%d\n", i/62500, i/250%250, i%250+1, port)
		}
	} else {
		var lim syscall.Rlimit
		if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
			n = min(n, int(lim.Cur-256)/2)
		}
		for i := range n {
			l, err := net.Listen("tcp", fmt.Sprintf("127.%d.%d.%d:0", i/62500, i/250%250, i%250+1))
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			go acceptGRPC(l)
			fmt.Println(l.Addr())
		}
	}
	fmt.Println()
	io.Copy(io.Discard, os.Stdin)
}

// listenLoopbackDevice listens on every address of the loopback device
// (0.0.0.0 bound to "lo"), and on nothing else.
func listenLoopbackDevice() (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, "lo")
		}); err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp4", "0.0.0.0:0")
}

func acceptGRPC(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go answerGRPC(c)
	}
}

// HTTP/2 frame types and flags (RFC 9113) that answerGRPC reads or writes.
const (
	h2Data         = 0x0
	h2Headers      = 0x1
	h2Settings     = 0x4
	h2Ping         = 0x6
	h2GoAway       = 0x7
	h2WindowUpdate = 0x8

	h2EndStream  = 0x1
	h2Ack        = 0x1
	h2EndHeaders = 0x4
)

// h2Frame appends an HTTP/2 frame to b.
func h2Frame(b []byte, typ, flags byte, stream uint32, payload []byte) []byte {
	b = append(b, byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload)), typ, flags)
	b = binary.BigEndian.AppendUint32(b, stream&0x7fffffff)
	return append(b, payload...)
}

var (
	// ":status: 200" (static table 8), "content-type: application/grpc"
	// (name from static table 31, not indexed).
	grpcRespHeaders = append([]byte{0x88, 0x0f, 0x10, 16}, "application/grpc"...)
	// A gRPC message: uncompressed, 2 bytes, HealthCheckResponse{status:
	// SERVING}.
	grpcRespMessage = []byte{0, 0, 0, 0, 2, 0x08, 0x01}
	// "grpc-status: 0", a new name, not indexed.
	grpcRespTrailers = append(append([]byte{0x00, 11}, "grpc-status"...), 1, '0')
)

// answerGRPC speaks just enough HTTP/2 on c to answer every call with
// SERVING: settings and pings acknowledged, received data given back to the
// connection's window, and each request stream, once the client ends it,
// answered with headers, the message and trailers in one write.
func answerGRPC(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 4096)
	preface := make([]byte, 24)
	if _, err := io.ReadFull(br, preface); err != nil {
		return
	}
	if _, err := c.Write(h2Frame(nil, h2Settings, 0, 0, nil)); err != nil {
		return
	}
	var hdr [9]byte
	payload := make([]byte, 0, 16384)
	var out []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		typ, flags, stream := hdr[3], hdr[4], binary.BigEndian.Uint32(hdr[5:])&0x7fffffff
		if n > cap(payload) {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(br, payload); err != nil {
			return
		}
		out = out[:0]
		switch typ {
		case h2Settings:
			if flags&h2Ack == 0 {
				out = h2Frame(out, h2Settings, h2Ack, 0, nil)
			}
		case h2Ping:
			if flags&h2Ack == 0 {
				out = h2Frame(out, h2Ping, h2Ack, 0, payload)
			}
		case h2GoAway:
			return
		case h2Data, h2Headers:
			if typ == h2Data && n > 0 {
				out = h2Frame(out, h2WindowUpdate, 0, 0, binary.BigEndian.AppendUint32(nil, uint32(n)))
			}
			if flags&h2EndStream != 0 {
				out = h2Frame(out, h2Headers, h2EndHeaders, stream, grpcRespHeaders)
				out = h2Frame(out, h2Data, 0, stream, grpcRespMessage)
				out = h2Frame(out, h2Headers, h2EndHeaders|h2EndStream, stream, grpcRespTrailers)
			}
		}
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	}
}

// BenchmarkGRPCProbe measures one probe after another over one held
// connection to the bare responder (in this process): the checker's own
// cost, and the responder's, per probe.
func BenchmarkGRPCProbe(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go acceptGRPC(l)
	g := NewGRPCChecker()
	c := registry.Check{Type: registry.CheckGRPC, Address: l.Addr().String(),
		Interval: registry.Duration(time.Second), Timeout: registry.Duration(2 * time.Second)}
	g.Hold(c)
	defer g.Release(c)
	if r := g.Check(context.Background(), c); r.Status != registry.StatusPassing {
		b.Fatalf("%s %q", r.Status, r.Output)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if r := g.Check(context.Background(), c); r.Status != registry.StatusPassing {
			b.Fatalf("%s %q", r.Status, r.Output)
		}
	}
}
