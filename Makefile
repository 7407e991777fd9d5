GO ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build test run lint fuzz bench bench-go clean

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

clean:
	rm -rf bin

# Side-by-side with Knot DNS (installs dnsperf and knot when missing).
bench:
	bench/knot-compare.sh

# Go benchmarks of the hot paths.
bench-go:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./dnsserver ./registry ./store ./zones
