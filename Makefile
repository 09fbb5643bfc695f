# Every target installs what it needs itself (Debian packages, a cached
# virtualenv, test fixtures), so each works on a fresh machine as root.
SHELL := /bin/bash

.PHONY: demo test sanity units lint galaxy integration molecule molecule-default molecule-fleet bench mirror clean

## demo: build and launch a container on localhost and prove it is isolated and limited
demo:
	scripts/demo.sh

## test: every test layer in order: sanity, units, integration, molecule
test:
	scripts/test.sh

sanity:
	scripts/sanity.sh
units:
	scripts/units.sh
lint:
	scripts/lint.sh
galaxy:
	scripts/galaxy.sh
integration:
	scripts/integration.sh
molecule: molecule-default molecule-fleet
molecule-default:
	scripts/molecule.sh default
molecule-fleet:
	scripts/molecule.sh fleet

## bench: launch, extraction and cgroup benchmarks side by side with their peers
bench:
	scripts/bench.sh

## mirror: serve the offline Alpine-shaped test mirror on 127.0.0.1
mirror:
	scripts/mirror.sh

clean:
	rm -rf .build tests/output
