"""Offline stand-in for pip's get-pip.py bootstrap script, used by ansible-test.

ansible-test bootstraps pip in every virtual environment it creates by running
a get-pip.py script that it downloads from its own host, caching it at
~/.ansible/test/cache/get_pip_<version>.py. Where that host cannot be reached
(only the package registries can), scripts/sanity.sh and scripts/units.sh put
this file there instead. ansible-test runs it inside the fresh virtual
environment with get-pip's command line: pip-install arguments such as
``pip==24.2`` plus get-pip's own flags.

It bootstraps pip from the interpreter's bundled copy (ensurepip), then lets
that pip install exactly what ansible-test asked for from the package index.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ensurepip
import os
import subprocess
import sys

# Flags that only get-pip.py understands; pip install would reject them.
GET_PIP_ONLY_FLAGS = ("--no-setuptools", "--no-wheel")

# Debian's CA bundle: ansible-test runs pip with a cleaned environment (no
# PIP_* or SSL_* variables), so a registry reached through an interception
# proxy only verifies when pip is told about this bundle in its own config.
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def write_environment_pip_conf():
    """Point the virtual environment's own pip.conf at the system CA bundle."""
    if not os.path.exists(SYSTEM_CA_BUNDLE):
        return
    with open(os.path.join(sys.prefix, "pip.conf"), "w") as pip_conf:
        pip_conf.write("[global]\ncert = %s\n" % SYSTEM_CA_BUNDLE)


def pip_install_arguments(get_pip_arguments):
    return [argument for argument in get_pip_arguments if argument not in GET_PIP_ONLY_FLAGS]


def main():
    write_environment_pip_conf()
    ensurepip.bootstrap()
    # ensurepip sets PIP_CONFIG_FILE=/dev/null in this process's environment,
    # which would hide the pip.conf written above from the pip run below.
    os.environ.pop("PIP_CONFIG_FILE", None)
    command = [sys.executable, "-m", "pip", "install", "--upgrade", "--force-reinstall"]
    command.extend(pip_install_arguments(sys.argv[1:]))
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main())
