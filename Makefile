# neo-events. `make demo` runs the pipeline on a local stack; `make test` runs every test.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
DEVSTACK := eval "$$(scripts/devstack.sh)"
TEST_FLAGS ?= -race -count=1 -timeout 30m
BENCH_OUT ?= bench-results

.PHONY: all build test test-short demo bench lint fmt fuzz clean

all: build

build:
	$(GO) build ./...

## test: start PostgreSQL and Redis if needed, then every test with -race, and the one -race hides without it.
test:
	$(DEVSTACK); $(GO) vet ./...; $(GO) test $(TEST_FLAGS) -p 2 ./...
	$(GO) test -count=1 -run 'TestIdleWorkersKeepTheirStacks' ./internal/consumer/ # skipped under -race

## test-short: unit tests only, no services.
test-short:
	$(GO) test -short -count=1 ./...

## demo: the whole pipeline on the local stack.
demo:
	$(DEVSTACK); scripts/demo.sh

## bench: Go benchmarks of the hot paths plus the standard publisher-bench profile.
bench:
	$(DEVSTACK); scripts/bench.sh $(BENCH_OUT)

## fuzz: run every fuzz target (func Fuzz* in a _test.go file) for FUZZTIME each.
FUZZTIME ?= 15s
fuzz:
	@for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
	  for fn in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "== $$(dirname $$f) $$fn"; \
	    $(GO) test $$(dirname $$f) -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) || exit 1; \
	  done; \
	done

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	@if command -v golangci-lint >/dev/null; then golangci-lint run ./...; \
	  else echo "golangci-lint not installed: ran gofmt and go vet only"; fi

clean:
	rm -rf $(BENCH_OUT)
