# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.handmade.containers.plugins.module_utils._container.errors import ContainerError
from ansible_collections.handmade.containers.plugins.module_utils._container.lifecycle import ensure_state


@pytest.mark.parametrize("params, message", [
    ({"state": "started"}, "needs a name"),
    ({"state": "exec", "name": "bad/name"}, "invalid container name"),
])
def test_named_states_validate_the_name(params, message, tmp_path):
    with pytest.raises(Exception) as caught:
        ensure_state(params, state_root=str(tmp_path))
    assert message in str(caught.value)


def test_exec_on_a_missing_container_says_to_start_it(tmp_path):
    with pytest.raises(ContainerError) as caught:
        ensure_state({"state": "exec", "name": "ghost"}, state_root=str(tmp_path))
    assert "ghost is not running" in str(caught.value) and "state=started" in str(caught.value)
