# Every target installs what it needs itself (Debian packages, a cached
# virtualenv, test fixtures), so each works on a fresh machine as root.
# unit-fast is the exception: any user, once root has made the virtualenv.
SHELL := /bin/bash

.PHONY: demo test harness sanity units unit-fast lint galaxy integration targets molecule molecule-default molecule-fleet matrix bench build-init mirror clean

## demo: build and launch a container on localhost and prove it is isolated and limited
demo:
	scripts/demo.sh

## test: every test layer in order: harness, sanity, units, lint, galaxy, integration, targets, molecule-default, matrix, molecule-fleet
## (HANDMADE_TEST_SKIP="molecule-fleet ..." leaves layers out, reported as SKIPPED; refused in CI)
test:
	scripts/test.sh

harness:
	scripts/harness.sh
sanity:
	scripts/sanity.sh
units:
	scripts/units.sh
## unit-fast: the inner loop: plain pytest over tests/unit on one Python, no root, seconds
unit-fast:
	scripts/unit-fast.sh
lint:
	scripts/lint.sh
galaxy:
	scripts/galaxy.sh
integration:
	scripts/integration.sh
## targets: ansible-test integration: tests/integration/targets through ansible-playbook's task executor
targets:
	scripts/targets.sh
molecule: molecule-default molecule-fleet
molecule-default:
	scripts/molecule.sh default
molecule-fleet:
	scripts/molecule.sh fleet
## matrix: the role (site.yml, again, teardown.yml) on the oldest and the newest ansible-core supported
matrix:
	scripts/matrix.sh

## bench: launch, extraction and cgroup benchmarks side by side with their peers
bench:
	scripts/bench.sh

## build-init: rebuild the built-in init (src/init/init.c) into plugins/module_utils/_container/init_program.py
build-init:
	scripts/build-init.sh

## mirror: serve the offline Alpine-shaped test mirror on 127.0.0.1
mirror:
	scripts/mirror.sh

clean:
	rm -rf .build tests/output
