# SPDX-License-Identifier: GPL-2.0
# Entry points of the HMM series harness.  See README.md.

BASE ?= ours
THP ?= madvise
FILTER ?=
KUNIT_FILTER ?=
FLAVOUR ?=
STRESS_SECONDS ?= 120
SEED ?=
METRIC ?= write_zero
MIB ?= 4
comma := ,

S := scripts
SHELL := /bin/bash

.PHONY: deps tree kernel guest run shell kunit selftests conformance \
	harness-check check stress clean series series-check bench profile

deps:
	@bash $(S)/deps.sh

tree: deps
	@bash $(S)/prepare-tree.sh $(BASE)

kernel: tree
	@bash $(S)/build-kernel.sh $(BASE)

guest: kernel
	@bash $(S)/build-guest.sh $(BASE)

# Boot the kernel and show HMM at work with a few device tests.
run: guest
	@bash $(S)/run-guest.sh -s -v $(BASE) -T $(THP) -t 600 run demo
	@echo "run: console log in build/logs/run.console.log"

# Boot into a shell on this terminal (leave with 'reboot -f').
shell: guest
	@bash $(S)/run-guest.sh -i -v $(BASE) -T $(THP) shell kunit

kunit: guest
	@bash $(S)/run-guest.sh -v $(BASE) -t 900 \
		$(if $(KUNIT_FILTER),-a kunit.filter_glob=$(KUNIT_FILTER)) kunit kunit

selftests: guest
	@bash $(S)/run-guest.sh -v $(BASE) -T $(THP) -t 1800 \
		$(if $(FILTER),-F $(FILTER)) selftests selftests

conformance: guest
	@bash $(S)/run-guest.sh -v $(BASE) -T $(THP) -t 1800 \
		$(if $(FILTER),-F $(FILTER)) conformance-$(BASE)-$(THP) conformance

harness-check: deps
	@bash $(S)/check.sh harness

check: deps
	@bash $(S)/check.sh

# The reliability stages in long mode: a STRESS_SECONDS storm, 50 OOM
# kills, 200000 fuzz calls (SEED to replay one), fault injection too with
# FLAVOUR=debug.
stress: tree
	@bash $(S)/build-kernel.sh $(BASE) $(FLAVOUR)
	@bash $(S)/build-guest.sh $(BASE) $(FLAVOUR)
	@bash $(S)/run-guest.sh -v $(BASE) $(if $(FLAVOUR),-f $(FLAVOUR)) -T $(THP) \
		-t $$(( $(STRESS_SECONDS) * 3 + 3000 )) \
		-a "hmmh.storm=$(STRESS_SECONDS) hmmh.oom=50 hmmh.fuzz=200000 hmmh.fuzzsecs=600 hmmh.faults=5000 $(if $(FLAVOUR),hmmh.bound=30) $(if $(SEED),hmmh.seed=$(SEED))" \
		stress$(if $(FLAVOUR),-$(FLAVOUR)) storm,oom,$(if $(filter debug,$(FLAVOUR)),faultinj$(comma))fuzz,dataloss

# The git format-patch series in build/series/, generated from linux/ and
# patches/ (patches/series.d/plan), then verified patch by patch.
series: deps
	@python3 $(S)/make-series.py

series-check: series
	@bash $(S)/series-check.sh

# Pristine base against ours, alternating boots; table + build/bench/results.json.
bench: deps
	@bash $(S)/bench.sh

# Where the instructions of one bench metric (or hmm_range_fault() driver
# row) go, per function, pristine against ours (QEMU plugin
# bench/prof/tbcount.c, scripts/profile.py).
profile: deps
	@BENCH_PROFILE=$(METRIC) BENCH_BIG=$(MIB) bash $(S)/bench.sh

clean:
	rm -rf build
	@echo "clean: build/ removed (ccache kept)"
