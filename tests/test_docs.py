"""The runnable examples in docstrings stay true."""

import doctest
import importlib

import pytest

MODULES = ["rnnlab.nn.cells.rnn", "rnnlab.nn.cells.lstm", "rnnlab.nn.cells.gru", "rnnlab.nn.recurrent"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
