# fedproxy — make targets. `make demo` and `make test` are the two set-up commands
# for a fresh Debian machine with the Rust toolchain (see README.md).

MAKEFLAGS  += --no-print-directory
CARGO      ?= cargo
FEDPROXY   := target/release/fedproxy
# every release's bundled captures (captures/slurm-22.05, slurm-24.11, slurm-26.05)
CAPTURES   := $(wildcard captures/slurm-*/*.pcap)
# The lab needs root, network namespaces and Debian's Slurm packages. LAB=0 skips it.
LAB        ?= 1
# The package test needs root and debootstrap; DEB=0 skips it (default: as LAB).
DEB        ?= $(LAB)
# test-lab runs: RELEASE or RELEASE:AUTH (default auth: 26.05 auth/slurm, others munge)
SLURM      ?= 22.05 24.11 26.05 mixed

.PHONY: all build demo test test-unit test-fuzz test-lab test-deb test-faults test-failover deb lab lab-down bench bench-codec fuzz soak clean

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

## test: unit, property and capture tests (with the rules and monitoring tests);
## then the real-Slurm lab tests and the Debian package test
test: test-unit
ifeq ($(LAB),1)
	$(MAKE) test-lab
endif
ifeq ($(DEB),1)
	$(MAKE) test-deb
endif

test-unit:
	scripts/install-build-deps
	scripts/install-dissector-deps
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

## test-lab: scripts/lab-test at every release of SLURM (make test-lab SLURM="26.05 mixed")
test-lab: build
	scripts/install-lab-deps
	$(CARGO) build --release --locked -p fedproxy --example legacy_fedinfo
	scripts/lab-matrix $(SLURM)
	scripts/lab-test-failopen
	scripts/lab-test-failover

## test-faults: 200 federated jobs through slurmctld/fedproxy kills, a 30 s partition
## and a slurmdbd restart, with and without proxies (~18 min; not part of make test)
test-faults: build
	scripts/install-lab-deps
	scripts/lab-test-faults

## test-failover: alpha with a backup controller (scripts/lab up --ha); clients fail
## over to it with and without proxies (part of test-lab, ~3 min)
test-failover: build
	scripts/install-lab-deps
	scripts/lab-test-failover

## deb: the Debian package (dpkg-deb); prints its path last
deb: build
	@scripts/install-ops-deps >/dev/null
	@scripts/build-deb --no-build

## test-deb: lintian, then install into Debian 12 and 13 roots (debootstrap, cached)
test-deb: build
	scripts/install-ops-deps
	scripts/test-deb

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
	$(CARGO) bench --locked -p slurm-codec --bench codec_roundtrip

## soak: SOAK_SECS (default 1800) of one-shot RPCs and persistent federation traffic
## through a fedproxy on loopback; RSS and fds must stay within 5 % after warm-up
soak:
	scripts/soak

clean:
	$(CARGO) clean
