# umlpy: `make run` boots the default image on this terminal, `make test` runs
# the whole suite, `make bench` the benchmarks, `make fuzz` the syscall fuzzer
# for many seeds.  Everything is built here, without root: the venv, the
# kernel image ./linux-um and rootfs/ images.

PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
VENV := .venv
PY := $(VENV)/bin/python
UMLPY := $(VENV)/bin/umlpy
KERNEL_SRC := $(shell find src/umlpy -name '*.py')

.PHONY: all run test test-ptrace bench fuzz ltp images docs clean

all: linux-um images

$(VENV)/.installed: pyproject.toml setup.py arch_um/_hostcall.c arch_um/_build.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

linux-um: $(VENV)/.installed $(KERNEL_SRC)
	$(UMLPY) build -o linux-um

images: $(VENV)/.installed
	rootfs/build.sh

run: all
	$(UMLPY) ./linux-um ubd0=rootfs/run.cow,rootfs/busybox.img eth0=user

# the whole suite on the default (seccomp) trap path, then a representative
# subset with every guest on the ptrace path alone (seccomp=off)
PTRACE_SUBSET := tests/test_trap.py tests/test_differential.py -k \
	't_forkwait or t_pipe or t_signals or t_threads or t_futex or t_clone or t_mmap or t_epoll or t_unix or t_tcp or t_rtsig or t_sigact or t_efault or t_ptrace or t_uffd or t_trapmix or fast or names'

# a test worker per CPU (pytest-xdist): a guest and its kernel take
# turns on one CPU more than they run side by side, so two workers on two
# CPUs halve the suite's time; then, alone, the tests that weigh the
# kernel's host CPU time or compare its speed early and late in one run
# (another worker's load would come and go under them); pytest's 5 is "no
# test selected" (a PYTEST_ARGS -k that picks none of them)
SERIAL_TESTS := tests/test_idle.py tests/test_stalls.py tests/test_timers_precision.py

test: all
	$(PY) -m pytest -q -n auto $(SERIAL_TESTS:%=--ignore=%) $(PYTEST_ARGS)
	$(PY) -m pytest -q $(SERIAL_TESTS) $(PYTEST_ARGS) || [ $$? = 5 ]
	UMLPY_TEST_TRAP=ptrace $(PY) -m pytest -q -n auto $(PTRACE_SUBSET)

test-ptrace: all
	UMLPY_TEST_TRAP=ptrace $(PY) -m pytest -q -n auto $(PTRACE_SUBSET)

bench: all
	$(PY) bench/run.py

# one boot per seed; FUZZ_USER=1000 fuzzes as a guest user, FUZZ_JOBS boots at once
FUZZ_SEEDS ?= 200
FUZZ_CALLS ?= 20000
FUZZ_FIRST ?= 1
FUZZ_JOBS ?= 1
fuzz: all
	$(PY) tests/fuzzing.py --seeds $(FUZZ_SEEDS) --calls $(FUZZ_CALLS) --first $(FUZZ_FIRST) \
		--jobs $(FUZZ_JOBS) $(if $(FUZZ_USER),--user $(FUZZ_USER))

# LTP's syscall tests in umlpy and in UML (conformance/ltp.py; needs root for
# the Debian image, Debian's user-mode-linux, ~15 min of CPU to build LTP and
# about an hour to run both); writes docs/conformance.md
LTP_SRC ?= $(firstword $(wildcard ../shared/ltp/ltp-*.tar.gz))
LTP_TESTS ?=
ltp: all
	$(PYTHON) conformance/ltp.py build --src $(LTP_SRC)
	$(PYTHON) conformance/ltp.py run --kernel uml $(if $(LTP_TESTS),--tests '$(LTP_TESTS)') --quiet & \
	  $(PYTHON) conformance/ltp.py run --kernel umlpy $(if $(LTP_TESTS),--tests '$(LTP_TESTS)'); wait
	$(PYTHON) conformance/ltp.py report

docs: $(VENV)/.installed
	$(UMLPY) syscalls --markdown > docs/syscalls.md

clean:
	rm -rf $(VENV) linux-um rootfs/cache rootfs/tree rootfs/*.cpio arch_um/*.so
