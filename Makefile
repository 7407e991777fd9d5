GO ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build test run lint fuzz bench clean

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
