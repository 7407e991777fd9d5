GO ?= go
FUZZTIME ?= 30s
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build test run lint fuzz fuzz-short bench bench-go bench-checks bench-watchers bench-transfer bench-registrations clean

build:
	$(GO) build -o bin/disco ./cmd/disco

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

run:
	$(GO) run ./cmd/disco serve

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

# fuzz runs every native fuzz target in the module for FUZZTIME each, one
# at a time; a failure leaves its input in the package's testdata/fuzz.
fuzz:
	@set -e; list=$$($(GO) test -list '^Fuzz' ./...); \
	targets=$$(echo "$$list" | awk '/^Fuzz/ { f[n++] = $$1 } /^ok/ { for (i = 0; i < n; i++) print $$2 "," f[i]; n = 0 }'); \
	[ -n "$$targets" ] || { echo "no fuzz targets found"; exit 1; }; \
	for t in $$targets; do \
		pkg=$${t%,*}; target=$${t#*,}; \
		echo "fuzz $$pkg $$target for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$target\$$" -fuzztime=$(FUZZTIME) "$$pkg"; \
	done

# fuzz-short is the brief run CI does.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=5s

clean:
	rm -rf bin

# Side-by-side with Knot DNS (installs dnsperf and knot when missing),
# after the cost of the health checks and the registration rates.
bench: bench-checks bench-registrations
	bench/knot-compare.sh

# Health checks at scale: 10,000 HTTP and 10,000 gRPC checks at a 1 s
# interval (about 15 s each: lag percentiles, CPU, memory), then exec
# checks per second.
bench-checks:
	$(GO) test -run '^$$' -bench 'Scale$$' -benchtime 1x ./health
	$(GO) test -run '^$$' -bench 'Exec$$' -benchtime 3s ./health

# disco as a primary: AXFR of 100,000 instances, serial and NOTIFY latency
# with a Knot secondary, queries while transfers stream.
bench-transfer:
	bench/transfer.sh

# Durable registrations per second through the API and through DNS UPDATE.
bench-registrations:
	$(GO) test -run '^$$' -bench 'Register(HTTP|Update)' -benchtime 20000x ./cmd/disco

# Go benchmarks of the hot paths.
bench-go:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./dnsserver ./registry ./store ./zones ./admin

# 10,000 blocking queries parked on a real server: memory, CPU, wake-up.
bench-watchers:
	bench/watchers.sh 10000
