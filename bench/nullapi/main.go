// Command nullapi is the control of the write-load benchmark: an HTTP
// server that answers every request the way disco answers a registration
// (200 and a small JSON body) and does nothing else. Sending bench/regload's
// writes to it instead of to disco shows what the write load alone (the
// generator, loopback TCP, an HTTP server on the server's core) costs the
// DNS figures, apart from disco's own write path.
//
//	nullapi -addr 127.0.0.1:8099
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8099", "listen address")
	flag.Parse()
	body := []byte(`{"service":"churn","id":"c-1","address":"10.200.0.1","port":80,"health":{"status":"passing"}}` + "\n")
	err := http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	fmt.Fprintln(os.Stderr, "nullapi:", err)
	os.Exit(1)
}
