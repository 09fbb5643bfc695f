# -*- coding: utf-8 -*-
# Copyright: handmade.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error type of the container package."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ContainerError(Exception):
    """A container could not be set up, run or tracked; the message says why and what to do."""
