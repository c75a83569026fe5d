# fedproxy — make targets. `make demo` and `make test` are the two set-up commands
# for a fresh Debian machine with the Rust toolchain (see README.md).

MAKEFLAGS  += --no-print-directory
CARGO      ?= cargo
FEDPROXY   := target/release/fedproxy
# every release's bundled captures (captures/slurm-22.05, slurm-24.11, slurm-26.05)
CAPTURES   := $(wildcard captures/slurm-*/*.pcap)
# The lab needs root, network namespaces and Debian's Slurm packages. LAB=0 skips it.
LAB        ?= 1
# test-lab runs: RELEASE or RELEASE:AUTH (default auth: 26.05 auth/slurm, others munge)
SLURM      ?= 22.05 24.11 26.05 mixed

.PHONY: all build demo test test-unit test-lab lab lab-down bench bench-codec clean

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
	$(CARGO) test --release --locked --workspace

## test-lab: scripts/lab-test at every release of SLURM (make test-lab SLURM="26.05 mixed")
test-lab: build
	scripts/install-lab-deps
	$(CARGO) build --release --locked -p fedproxy --example legacy_fedinfo
	scripts/lab-matrix $(SLURM)

## lab: a real two-cluster Slurm federation with a fedproxy beside each slurmctld
## (LAB_UP_ARGS="--slurm 26.05 --auth slurm" for another release)
lab: build
	scripts/lab up $(LAB_UP_ARGS)

lab-down:
	scripts/lab down

BENCH_ARGS ?=

## bench: fedproxy vs direct vs haproxy (TCP mode), interleaved, on captured frames;
## writes bench/results.json and README.md's Performance table (BENCH_ARGS=--lab adds the real lab)
bench:
	scripts/bench $(BENCH_ARGS)

## bench-codec: criterion benchmark of the codec (decode + re-encode of every captured frame)
bench-codec:
	$(CARGO) bench --locked -p fedproxy --bench codec_roundtrip

clean:
	$(CARGO) clean
