GO ?= go
FUZZTIME ?= 30s
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build test run lint fuzz fuzz-short bench bench-go bench-registrations clean

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

# Side-by-side with Knot DNS (installs dnsperf and knot when missing), then
# durable registrations per second through the API and through DNS UPDATE.
bench: bench-registrations
	bench/knot-compare.sh

bench-registrations:
	$(GO) test -run '^$$' -bench 'Register(HTTP|Update)' -benchtime 20000x ./cmd/disco

# Go benchmarks of the hot paths.
bench-go:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./dnsserver ./registry ./store ./zones
