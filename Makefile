# Two commands for a newcomer: `make run` and `make test`. Both need only python3, git and make:
# they create .venv, install what they need, and (for tests, as root on Debian) the system tools.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN_STAMP  := $(VENV)/.run-installed
TEST_STAMP := $(VENV)/.test-installed

.PHONY: run test lint typecheck unit system-deps clean bench bench-checker fuzz soak simulate

# The example zone's members are loopback addresses; demo-backends answers their health checks
# until the server exits. The shell execs the server (same pid), so `gslb reload` and Ctrl-C
# reach it with no wrapper in between. MaxMind's test GeoIP databases (deploy/geoip) locate
# the tour's clients. Extra flags: make run ARGS='--log-format json'.
ARGS ?=
GEOIP := --geoip deploy/geoip/GeoLite2-City-Test.mmdb --geoip-asn deploy/geoip/GeoLite2-ASN-Test.mmdb
run: $(RUN_STAMP)
	$(BIN)/gslb demo-backends --zones zones/ --while-pid $$$$ & \
	exec $(BIN)/gslb serve --zones zones/ --dns 127.0.0.1:5353 --http 127.0.0.1:8053 \
	  --nsid "$$(uname -n)" $(GEOIP) $(ARGS)

# system-deps first: pip builds the compiled UDP loop with the C compiler it installs.
test: system-deps $(TEST_STAMP) lint typecheck unit

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

unit: $(TEST_STAMP)
	$(BIN)/pytest

system-deps:
	PYTHON=$(PYTHON) sh tests/system-deps.sh

# gslb against PowerDNS LUA records and gdnsd on the same zone (dnsperf, pinned cores), then
# scale: 10 000 to 1 000 000 pools (memory, cold start, a write and a health change to the
# answers of two nodes) and 1 000 000 static records; writes docs/performance.md. About
# forty minutes (BENCH_SCALE=10000,100000 for a quicker one).
bench: $(TEST_STAMP) system-deps
	sh bench/deps.sh
	$(BIN)/python bench/answers.py
	$(BIN)/python bench/udpio.py
	$(BIN)/python bench/scale.py

# A million random mutations of valid queries, then a million coverage-guided ones (atheris),
# through the whole answer path (UDP, TCP, the UDP front); shorter runs are part of make
# test. About ten minutes.
fuzz: $(TEST_STAMP)
	$(BIN)/python -m tests.fuzz 1000000
	$(BIN)/python -m tests.fuzz_atheris -runs=1000000 -print_final_stats=1

# Ten minutes of DNS load at half the maximum while members flap and the configuration
# changes; writes docs/reliability.md.
soak: $(TEST_STAMP) system-deps
	sh bench/deps.sh
	$(BIN)/python bench/soak.py

# The balancing simulator: six scenarios (steady, a site failure, an ISP path failure, a
# recovery, a flash crowd, a drain) for gslb's policies and the emulated peers, around the
# real answer path; writes docs/balancing.md and its plots. About two minutes on two cores.
simulate: $(TEST_STAMP)
	$(BIN)/python bench/simulate.py

# Probes per second of one checker; failover delays for a process death and a silent one,
# with three checkers in quorum, PowerDNS ifportup and gdnsd beside them (members in a
# network namespace: root); agent drains; writes docs/performance.md. About ten minutes.
bench-checker: $(TEST_STAMP) system-deps
	sh bench/deps.sh
	$(BIN)/python bench/checker.py

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  rm -rf $(VENV); \
	  echo "python3 -m venv is missing; installing Debian's python3-venv"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv \
	    && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml setup.py gslb/shell/_udploop.c | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# The test tools at the versions last seen passing (tests/constraints.txt, from pip freeze):
# a new release of a checker or a library must not fail CI on code that did not change.
$(TEST_STAMP): pyproject.toml setup.py gslb/shell/_udploop.c tests/constraints.txt | $(BIN)/python
	$(BIN)/pip install -q -c tests/constraints.txt -e '.[test]'
	touch $(RUN_STAMP) $@

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis test-output
