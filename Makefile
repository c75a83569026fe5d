# fedproxy — make targets. `make demo` and `make test` are the two set-up commands
# for a fresh Debian machine with the Rust toolchain (see README.md).

MAKEFLAGS  += --no-print-directory
CARGO      ?= cargo
FEDPROXY   := target/release/fedproxy
CAPTURES   := captures/slurm-22.05/*.pcap
# The lab needs root, network namespaces and Debian's Slurm packages. LAB=0 skips it.
LAB        ?= 1

.PHONY: all build demo test test-unit test-fuzz lab lab-down bench bench-codec fuzz clean test-lab

all: build

build:
	$(CARGO) build --release --locked -p fedproxy

## demo: replay the bundled federation captures and show the decoded conversation
demo: build
	@echo "== fedproxy replay: every frame decoded, re-encoded and compared"
	$(FEDPROXY) replay $(CAPTURES)
	@echo
	@echo "== the conversation between the two controllers (federation persistent connections)"
	$(FEDPROXY) replay --conversation --peers-only $(CAPTURES)
	@echo
	@echo "== the same captures played live through a running fedproxy on loopback"
	$(FEDPROXY) replay --live $(CAPTURES) | sed -n '/^live:/,$$p'

## test: unit, property and capture tests; then the real-Slurm lab tests
test: test-unit
ifeq ($(LAB),1)
	$(MAKE) test-lab
endif

test-unit:
	scripts/install-build-deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) test --release --locked --workspace --exclude fedproxy-fuzz-targets
	$(MAKE) test-fuzz

# Bounded fuzzing on stable: every fuzz/ target for FUZZ_TEST_SECS seconds on
# mutations of the captured frames, plus the regression inputs (fuzz-targets/).
FUZZ_TEST_SECS ?= 15
test-fuzz:
	FUZZ_TEST_SECS=$(FUZZ_TEST_SECS) $(CARGO) test --release --locked -p fedproxy-fuzz-targets -- --nocapture

## fuzz: cargo-fuzz (nightly, libFuzzer) on every target for FUZZ_SECS seconds each
FUZZ_SECS ?= 60
fuzz:
	FUZZ_SECS=$(FUZZ_SECS) scripts/fuzz

test-lab: build
	scripts/install-lab-deps
	scripts/lab-test

## lab: a real two-cluster Slurm federation with a fedproxy beside each slurmctld
lab: build
	scripts/lab up

lab-down:
	scripts/lab down

BENCH_ARGS ?=

## bench: fedproxy vs direct vs haproxy (TCP mode), interleaved, on captured frames;
## writes bench/results.json and README.md's Performance table (BENCH_ARGS=--lab adds the real lab)
bench:
	scripts/bench $(BENCH_ARGS)

## bench-codec: criterion benchmark of the codec (decode + re-encode of every captured frame)
bench-codec:
	$(CARGO) bench --locked -p slurm-codec --bench codec_roundtrip

clean:
	$(CARGO) clean
