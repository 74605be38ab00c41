GO ?= go

FUZZTIME ?= 60s
FUZZJOBS ?= 1

.PHONY: all build run test test-short vet fmt bench bench-go bench-allocs fuzz clean

all: build

build:
	$(GO) build -o bin/ferry ./cmd/ferry

# Runs the server on its embedded defaults (listens on :2222, data in ./ferry-data).
run:
	$(GO) run ./cmd/ferry serve

# The one command that passes the tests (CI runs this through .ci/run).
# The suite runs twice: plainly, where timing bounds (throughput under a
# slowloris attack) hold, and under the race detector (issue 9), where
# they are only logged (testenv.RaceEnabled). About 1.5 + 4 minutes on the
# 2-core CI machine.
test: vet
	$(GO) test -count=1 -timeout 40m ./...
	$(GO) test -race -count=1 -timeout 40m ./...
	$(MAKE) --no-print-directory bench-allocs

# The data-path benchmarks with -benchmem: prints allocs/op for the
# transport, channel and SFTP READ/WRITE paths and fails unless every one
# rounds to 0 (issue 8). Long enough runs that start-up (buffers growing,
# the window opening) does not count as steady state.
bench-allocs:
	$(GO) test -run '^$$' -bench 'Benchmark(Seal|Open)/(aes128-gcm|chacha20|aes128-ctr\+hmac-sha2-256-etm)' -benchmem -benchtime 20000x ./transport/internal/packet | tee bench-allocs.txt
	$(GO) test -run '^$$' -bench 'BenchmarkMuxOverTCP|BenchmarkChannelThroughput|BenchmarkRead|BenchmarkWrite' \
	  -benchmem -benchtime 1s ./transport ./connection ./sftp ./server | tee -a bench-allocs.txt
	@awk '/allocs\/op/ { for (i = 2; i <= NF; i++) if ($$i == "allocs/op" && $$(i-1) != 0) { print "allocation on the data path: " $$1; bad = 1 } } END { exit bad }' bench-allocs.txt

test-short:
	$(GO) test -short -count=1 ./...

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt:
	gofmt -w .

# Go benchmarks (allocs/op must be 0 on the data paths), then the side-by-side
# comparison with OpenSSH's sshd (needs root, openssh-server; see bench/README.md).
bench: bench-go
	GO=$(GO) bench/run.sh

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./transport/... ./connection ./sftp ./server

# Runs every fuzz target for FUZZTIME each, FUZZJOBS at a time (scripts/fuzz.sh).
fuzz:
	FUZZTIME=$(FUZZTIME) FUZZJOBS=$(FUZZJOBS) GO=$(GO) scripts/fuzz.sh

clean:
	rm -rf bin
